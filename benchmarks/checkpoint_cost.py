"""What checkpointing costs a trial, with and without, measured in the same run.

Each task trains the same network, parameters and seed three ways, interleaved round by round
so that a change in the machine's load hits all of them alike:

- ``off``: no checkpointing (``artifacts = false``);
- ``default``: what a study does by default: a checkpoint once ``checkpoint_every_s = 10``
  seconds have passed (at an epoch's end, or within a longer epoch), and the final weights;
- ``every_epoch``: the worst case, ``checkpoint_every_s = 0``: a checkpoint after every epoch.

Saves go through the real path: the trainer's full training state serialised, written
atomically (a temporary file, then a rename) into an artifact folder, the previous checkpoint
deleted as the driver deletes it. The cost is each round's wall time against that round's
``off`` run: their mean and 95 % interval.
It also reports the work a kill loses at most: the longest stretch of training between two
saves of the ``default`` run (a kill loses at most that, plus the restart).

Tasks: the quickstart preset (digits, its MLP, 20 epochs, the catalog's default
hyperparameters) and, when ``--root`` holds MNIST, a 784-128-64-10 MLP on MNIST (5 epochs).

Usage::

    python benchmarks/checkpoint_cost.py [--root ../shared/data] [--rounds 5]

The last line is machine-readable ``key=value`` pairs, the cost ratios first.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from sweeplab import trainer
from sweeplab.studies import load_spec
from sweeplab.studies import storage as study_storage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import format_pairs, machine, t_interval

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data"
MODES = {"off": None, "default": 10.0, "every_epoch": 0.0}


def tasks(root: Path) -> dict[str, tuple]:
    """Task name -> (data, model, params, fit settings)."""
    spec = load_spec("quickstart")
    out = {
        "quickstart": (
            spec.data_settings(),
            spec.model_settings(),
            {},
            spec.fit_settings(seed=0, num_threads=1),
        )
    }
    if (root / "MNIST" / "raw").is_dir():
        out["mnist_mlp"] = (
            trainer.DataSettings(dataset="mnist", root=str(root)),
            trainer.ModelSettings(kind="mlp", hidden=(128, 64)),
            {"lr": 1e-3},
            trainer.FitSettings(max_epochs=5, seed=0, device="cpu", num_threads=1),
        )
    return out


def run(task: tuple, every_s: float | None, folder: str) -> dict[str, float]:
    """One training run; its wall time, saves, bytes and the longest gap between saves."""
    data, model, params, settings = task
    store = study_storage.open_artifact_store(folder)
    saves: list[float] = []
    sizes: list[int] = []
    previous: list = []

    def save(blob: bytes, info: trainer.SaveInfo) -> None:
        where = study_storage.artifact_id("bench", 0, info.kind, info.epoch, info.step)
        record = study_storage.put_artifact(
            store, where, blob, kind=info.kind, epoch=info.epoch, step=info.step
        )
        if info.kind == "checkpoint":
            for old in previous:
                study_storage.remove_artifact(store, old)
            previous[:] = [record]
        saves.append(time.perf_counter())
        sizes.append(len(blob))

    checkpointing = None
    if every_s is not None:
        checkpointing = trainer.Checkpointing(every_s=every_s, save=save, save_weights=save)
    started = time.perf_counter()
    trainer.fit(data, model, params, settings, checkpointing=checkpointing)
    wall = time.perf_counter() - started
    # A kill loses the training since the last save: at most the longest stretch between the
    # start, the checkpoints and the end (where the weights are saved).
    marks = [started, *saves[:-1], started + wall]
    return {
        "wall": wall,
        "saves": len(saves),
        "bytes": max(sizes, default=0),
        "max_gap": max(b - a for a, b in itertools.pairwise(marks)),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="holds MNIST/raw")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per task")
    args = parser.parse_args(argv)
    print(machine())
    pairs: dict[str, object] = {}
    figures: dict[str, object] = {}
    for name, task in tasks(args.root).items():
        trainer.load_dataset(task[0], torch.device("cpu"))  # warm the cache
        results: dict[str, list[dict]] = {mode: [] for mode in MODES}
        with tempfile.TemporaryDirectory() as folder:
            run(task, None, folder)  # warm-up: allocator, kernels
            modes = list(MODES)
            for round_ in range(args.rounds):
                # Rotated each round, so no mode always runs first (or after the slowest).
                for mode in modes[round_ % 3 :] + modes[: round_ % 3]:
                    results[mode].append(run(task, MODES[mode], folder))
        off = statistics.median(r["wall"] for r in results["off"])
        print(f"\n{name}: {args.rounds} rounds, off = {off:.3f} s (median)")
        for mode in MODES:
            walls = [r["wall"] for r in results[mode]]
            last = results[mode][-1]
            # Each round's ratio against that round's own "off" run, then their mean and 95 %
            # interval: load changes between rounds cancel out.
            ratios = [
                r["wall"] / o["wall"] for r, o in zip(results[mode], results["off"], strict=True)
            ]
            mean, low, high = t_interval(ratios)
            print(
                f"  {mode:<12} {statistics.median(walls):8.3f} s  x{mean:.3f} "
                f"[{low:.3f}, {high:.3f}]  saves {last['saves']:3d}  "
                f"checkpoint {last['bytes'] / 1e6:6.2f} MB  "
                f"longest stretch between saves {last['max_gap']:.2f} s"
            )
            if mode != "off":
                pairs[f"{name}_{mode}_vs_off"] = mean
                figures[f"{name}_{mode}_vs_off_high"] = high
        figures[f"{name}_max_lost_s"] = results["default"][-1]["max_gap"]
        figures[f"{name}_checkpoint_mb"] = results["every_epoch"][-1]["bytes"] / 1e6
    print(format_pairs({**pairs, **figures}))


if __name__ == "__main__":
    main()
