"""Scaling: trials per hour with 2 trials at a time vs 1 on CPU cores, and 4 trials sharing a
GPU (fractional GPU resources) vs 1 per GPU, in one run.

Each case is a sweeplab study run through the real path (``studies.run_study``: Ray Tune, the
SQLite study, ``trainer.fit``) on one local Ray instance: ``--trials`` trials of an MLP
(``--hidden``, 512-512) on the bundled digits, ``--epochs`` epochs each, random sampling
without pruning, and the same study seed — so every case trains exactly the same
configurations, and only how many run at once changes. Trials per hour = trials / the run's
wall time (start of ``run_study`` to its return, Ray's worker start-up included); the figure
from the first trial's start (steady state) is printed too.

- CPU: ``concurrency`` 1 vs 2, one CPU (one torch thread) per trial. Target >= 1.7x on 2 cores.
- GPU (only where ``torch.cuda.is_available()``): ``[search.resources] gpus = 1`` with
  concurrency 1 vs ``gpus = 0.25`` with concurrency 4. Without a GPU this part prints that it was
  skipped and its figures are ``skipped`` on the last line.

Usage::

    python benchmarks/scaling.py            # 48 trials of 20 epochs per case (1.5 minutes)
    python benchmarks/scaling.py --quick    # 4 trials of 2 epochs

The last line is machine-readable ``key=value`` pairs, the CPU ratio first.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

from _common import format_pairs, machine  # noqa: E402

TARGET_CPU = 1.7
GPUS_PER_TRIAL_SHARED = 0.25
SPACE = {
    "lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
    "optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
    "batch_size": {"type": "categorical", "choices": [32, 64]},
}


def run_case(
    name: str, args: argparse.Namespace, storage: str, *, concurrency: int, gpus: float
) -> tuple[float, float]:
    """Run one study; returns its trials per hour over the whole run and from the first
    trial's start (steady state: without the study set-up and the workers' start-up)."""
    import optuna
    from rich.console import Console

    from sweeplab import studies

    spec = studies.spec_from_dict(
        {
            "study": {"name": name.replace(" ", "_"), "storage": storage, "seed": args.seed},
            "data": {"dataset": "digits"},
            "model": {"kind": "mlp", "hidden": list(args.hidden)},
            "budget": {"n_trials": args.trials, "max_epochs": args.epochs},
            "search": {
                "sampler": "random",
                "scheduler": "none",
                "concurrency": concurrency,
                "resources": {"cpus": 1, "gpus": gpus},
            },
            "space": SPACE,
        }
    )
    started = time.perf_counter()
    summary = studies.run_study(spec, console=Console(file=io.StringIO()))
    wall = time.perf_counter() - started
    ended = time.time()
    done = summary.counts["complete"] + summary.counts["pruned"]
    if done != args.trials:
        raise SystemExit(f"{name}: {done} of {args.trials} trials finished ({summary.counts})")
    study = optuna.load_study(study_name=spec.study.name, storage=storage)
    first = min(float(t.user_attrs["run_started_at"]) for t in study.get_trials(deepcopy=False))
    per_hour, steady = done * 3600.0 / wall, done * 3600.0 / (ended - first)
    print(
        f"{name:18s} {per_hour:8.0f} trials/hour ({done} trials in {wall:.1f} s; "
        f"{steady:.0f}/hour from the first trial's start, {wall - (ended - first):.1f} s before it)"
    )
    return per_hour, steady


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=48, help="per case")
    parser.add_argument("--epochs", type=int, default=20, help="per trial")
    parser.add_argument("--hidden", type=int, nargs="+", default=[512, 512], help="MLP widths")
    parser.add_argument("--quick", action="store_true", help="4 trials of 2 epochs, MLP 64")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs given to the local Ray")
    parser.add_argument("--no-gpu", action="store_true", help="skip the GPU part")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.epochs, args.hidden = 4, 2, [64]

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import optuna
    import ray
    import torch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    gpu = torch.cuda.is_available() and not args.no_gpu
    print(machine())
    print(
        f"digits, MLP {'-'.join(map(str, args.hidden))}, {args.trials} trials x {args.epochs} "
        "epochs per case; " + (f"GPU: {torch.cuda.get_device_name(0)}" if gpu else "no GPU")
    )
    storage = f"sqlite:///{tempfile.mkdtemp(prefix='sweeplab-scaling-')}/scaling.db"
    started = time.perf_counter()
    ray.init(
        num_cpus=max(args.cpus, 4 if gpu else 1),
        num_gpus=1 if gpu else 0,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
    )
    try:
        (cpu_1, cpu_1s) = run_case("cpu 1 at a time", args, storage, concurrency=1, gpus=0)
        (cpu_2, cpu_2s) = run_case("cpu 2 at a time", args, storage, concurrency=2, gpus=0)
        pairs: dict[str, object] = {
            "ratio_cpu_2_over_1": cpu_2 / cpu_1,
            "ratio_cpu_steady": cpu_2s / cpu_1s,
            "cpu_1_trials_per_hour": cpu_1,
            "cpu_2_trials_per_hour": cpu_2,
        }
        print(
            f"CPU: 2 at a time / 1 at a time = {cpu_2 / cpu_1:.2f}x (target >= {TARGET_CPU}x); "
            f"{cpu_2s / cpu_1s:.2f}x from the first trial's start"
        )
        if gpu:
            (gpu_1, gpu_1s) = run_case("gpu 1 per gpu", args, storage, concurrency=1, gpus=1.0)
            (gpu_4, gpu_4s) = run_case(
                "gpu 4 per gpu", args, storage, concurrency=4, gpus=GPUS_PER_TRIAL_SHARED
            )
            print(f"GPU: 4 per GPU / 1 per GPU = {gpu_4 / gpu_1:.2f}x")
            pairs.update(
                ratio_gpu_4_over_1=gpu_4 / gpu_1,
                ratio_gpu_steady=gpu_4s / gpu_1s,
                gpu_1_trials_per_hour=gpu_1,
                gpu_4_trials_per_hour=gpu_4,
            )
        else:
            why = "--no-gpu" if args.no_gpu else "torch.cuda.is_available() is False"
            print(f"GPU part skipped: {why}")
            pairs.update(ratio_gpu_4_over_1="skipped")
    finally:
        ray.shutdown()
    pairs["total_s"] = time.perf_counter() - started
    print(f"total {pairs['total_s']:.0f} s")
    print(format_pairs(pairs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
