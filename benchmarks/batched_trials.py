"""Batched trials: K MLP trials trained as one stacked model vs the same K one after another.

Both sides are real sweeplab studies (Ray Tune, the SQLite study database, the same spec): the
reference runs with ``[search] pack = 1`` (one trial per Ray trial, concurrency 1), the batched
run with ``pack = K`` (one Ray trial training all K). The random sampler with the same seed gives
both studies the same K configurations (checked), which differ in ``lr``, ``weight_decay``,
``dropout``, ``init`` and Adam vs AdamW; the batch size is fixed so that all K pack together.
No pruning, same epochs: the ratio is of trials per hour (K / wall time of ``run_study``; Ray
is started once before both and paid by neither). ``train_ratio`` compares the time inside the
training epochs only (without each run's fixed start-up: Tune, the worker, loading the data).

Accuracy per trial must match within noise: a batched member trains on the batch order of the
pack's first member rather than its own, so each pair of runs differs like two seeds of one
configuration. The script prints each pair and the mean absolute difference.

On a CUDA device the same comparison runs with K = 32 (``--gpu-k``) on the GPU; without one that
part prints "skipped".

Usage::

    python benchmarks/batched_trials.py [--data-root /work/shared/data] [--epochs 2] [--k 8]

MNIST from ``--data-root`` (torchvision layout) when present, sklearn digits otherwise. The last
line is machine-readable ``key=value`` pairs, the ratio first.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import optuna
import torch
from rich.console import Console

from sweeplab.studies import load_spec, run_study

# The shared data folder beside the checkout (``/work/shared/data`` for ``/work/main`` and for a
# worktree ``/work/wt/NAME``), if any.
DEFAULT_ROOT = next(
    (
        p / "shared" / "data"
        for p in Path(__file__).resolve().parents
        if (p / "shared" / "data").is_dir()
    ),
    Path("data"),
)

SPACE = """
[space.lr]
type = "float"
low = 1e-4
high = 3e-3
log = true

[space.weight_decay]
type = "float"
low = 1e-6
high = 1e-3
log = true

[space.dropout]
type = "float"
low = 0.0
high = 0.3

[space.init]
type = "categorical"
choices = ["default", "kaiming_normal", "xavier_uniform"]

[space.optimizer]
type = "categorical"
choices = ["adam", "adamw"]
"""


def spec_text(name: str, db: Path, args: argparse.Namespace, pack: int, k: int, gpu: bool) -> str:
    mnist = (args.data_root / "MNIST" / "raw").is_dir()
    data = f'dataset = "mnist"\nroot = "{args.data_root}"' if mnist else 'dataset = "digits"'
    if mnist and args.subset:
        data += f"\nsubset = {args.subset}"
    hidden = ", ".join(str(h) for h in args.hidden)
    return f"""
[study]
name = "{name}"
storage = "sqlite:///{db}"
seed = {args.seed}

[data]
{data}

[model]
kind = "mlp"
hidden = [{hidden}]

[budget]
n_trials = {k}
max_epochs = {args.epochs}

[search]
sampler = "random"
scheduler = "none"
concurrency = 1
pack = {pack}

[search.resources]
cpus = {args.cpus}
gpus = {1 if gpu else 0}

[space.batch_size]
type = "categorical"
choices = [{args.batch_size}]
{SPACE}
"""


def run(name: str, args: argparse.Namespace, pack: int, k: int, gpu: bool, tmp: Path) -> dict:
    path = tmp / f"{name}.toml"
    db = tmp / f"{name}.db"
    path.write_text(spec_text(name, db, args, pack, k, gpu), encoding="utf-8")
    spec = load_spec(path)
    started = time.perf_counter()
    summary = run_study(spec, console=Console(file=io.StringIO()))
    wall = time.perf_counter() - started
    study = optuna.load_study(study_name=name, storage=spec.study.storage)
    trials = sorted(study.trials, key=lambda t: t.number)
    return {
        "wall": wall,
        "complete": summary.counts["complete"],
        "params": [t.params for t in trials],
        "test_acc": [t.user_attrs.get("test_acc", float("nan")) for t in trials],
        # Seconds spent in training epochs: a pack's members share each epoch, so the pack's
        # training time is one member's, not their sum.
        "train_s": (
            sum(sum(t.user_attrs["epoch_seconds"]) for t in trials)
            if pack == 1
            else max(sum(t.user_attrs["epoch_seconds"]) for t in trials)
        ),
    }


def compare(label: str, args: argparse.Namespace, k: int, gpu: bool, tmp: Path) -> dict:
    sequential = run(f"{label}_sequential", args, 1, k, gpu, tmp)
    packed = run(f"{label}_packed", args, k, k, gpu, tmp)
    if sequential["params"] != packed["params"]:
        raise SystemExit("the two studies sampled different configurations; cannot compare")
    if sequential["complete"] != k or packed["complete"] != k:
        raise SystemExit(
            f"not every trial completed: {sequential['complete']}, {packed['complete']}"
        )
    ratio = sequential["wall"] / packed["wall"]
    train_ratio = sequential["train_s"] / packed["train_s"]
    deltas = [p - s for p, s in zip(packed["test_acc"], sequential["test_acc"], strict=True)]
    for i, (s, p) in enumerate(zip(sequential["test_acc"], packed["test_acc"], strict=True)):
        print(f"  {label} trial {i}: test_acc sequential {s:.4f}  batched {p:.4f}  ({p - s:+.4f})")
    per_hour = {key: k / run["wall"] * 3600 for key, run in (("seq", sequential), ("pack", packed))}
    print(
        f"{label}: K={k}: sequential {sequential['wall']:.1f} s ({per_hour['seq']:.0f} trials/h), "
        f"batched {packed['wall']:.1f} s ({per_hour['pack']:.0f} trials/h): {ratio:.2f}x; "
        f"training epochs alone {sequential['train_s']:.1f} s vs {packed['train_s']:.1f} s: "
        f"{train_ratio:.2f}x; mean |delta test_acc| {sum(abs(d) for d in deltas) / k:.4f}"
    )
    return {
        "ratio": ratio,
        "train_ratio": train_ratio,
        "trials_per_hour_batched": per_hour["pack"],
        "trials_per_hour_sequential": per_hour["seq"],
        "acc_batched": sum(packed["test_acc"]) / k,
        "acc_sequential": sum(sequential["test_acc"]) / k,
        "acc_mean_abs_delta": sum(abs(d) for d in deltas) / k,
        "acc_max_abs_delta": max(abs(d) for d in deltas),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--k", type=int, default=8, help="trials per pack on the CPU")
    parser.add_argument("--gpu-k", type=int, default=32, help="trials per pack on a GPU")
    parser.add_argument("--hidden", type=int, nargs="+", default=[64])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--subset", type=int, default=None, help="MNIST training examples")
    parser.add_argument("--cpus", type=int, default=1, help="CPUs (torch threads) per trial")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-gpu", action="store_true")
    args = parser.parse_args()

    import ray

    ray.init(num_cpus=max(2, args.cpus), include_dashboard=False, log_to_driver=False,
             logging_level="ERROR")  # fmt: skip
    mnist = (args.data_root / "MNIST" / "raw").is_dir()
    print(
        f"torch {torch.__version__}, {'MNIST' if mnist else 'digits'}"
        f"{f' (subset {args.subset})' if mnist and args.subset else ''}, MLP {args.hidden}, "
        f"batch {args.batch_size}, {args.epochs} epochs, {args.cpus} CPU(s) per trial"
    )
    pairs: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="sweeplab-batched-") as tmp:
        cpu = compare("cpu", args, args.k, gpu=False, tmp=Path(tmp))
        pairs.update(cpu)
        if not args.no_gpu and torch.cuda.is_available():
            gpu = compare("gpu", args, args.gpu_k, gpu=True, tmp=Path(tmp))
            pairs.update({f"gpu_{key}": value for key, value in gpu.items()})
        else:
            print("gpu: skipped (no CUDA device)")
    ray.shutdown()
    pairs.update(k=args.k, epochs=args.epochs, hidden=args.hidden[0], batch_size=args.batch_size)
    print(" ".join(f"{key}={value:.4g}" for key, value in pairs.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
