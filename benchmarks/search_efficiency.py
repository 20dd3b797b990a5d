"""Search efficiency: epochs sweeplab's default search (TPE + ASHA) needs to find a good MLP,
against random search without pruning and grid search, over several seeds, in one run.

Every study runs through sweeplab's real run path (``studies.run_study``: Ray Tune, the Optuna
study in one SQLite file, real training by ``trainer.fit``) on one local Ray instance. The
problem: an MLP (64-32, ReLU) on scikit-learn's bundled 8x8 digits (or ``--dataset mnist`` with a
``--subset``), searching six hyperparameters — lr (log), batch size, init, optimizer, dropout,
weight decay — for ``--trials`` trials of up to ``--max-epochs`` epochs each:

- ``tpe_asha``: sweeplab's defaults — TPE (8 random start-up trials, multivariate, constant
  liar) and ASHA (grace period 2, reduction factor 3);
- ``random``: random search, every trial trained to ``--max-epochs`` (no pruning);
- ``grid``: the grid sampler on a coarse grid of the same ranges (lr, weight decay and dropout
  at 4/3/3 values), points drawn in a seeded random order, no pruning.

The metric. The target is the best validation accuracy any trial of any method and seed
reached, less ``--tolerance`` (0.5 % of it). Every study's trials are replayed in time order from
the per-epoch curves in its database: each epoch any trial ran (a pruned or failed trial counts
the epochs it ran) adds one to the study's epoch count, and a completed trial's objective (its
best epoch's ``val_acc``) joins the best-so-far at the end of its last epoch. Pruned trials never
count as found configurations (only completed ones do), which is conservative for ASHA. A
study's cost is the epochs (and the wall time since its first trial started) until its
best-so-far first reaches the target; a study that never reaches it is censored at its total and
counted as "not reached". Means over seeds carry 95 % Student-t intervals; the ratio of means
a 95 % bootstrap interval (seeds resampled within each method).

Usage::

    python benchmarks/search_efficiency.py            # 5 seeds x 3 methods x 40 trials
    python benchmarks/search_efficiency.py --quick    # 2 seeds x 3 methods x 10 trials

The plot (best-so-far against cumulative epochs, mean over seeds with a 95 % band) goes to
``--plot`` (docs/img/search_efficiency.png). The last line is machine-readable ``key=value``
pairs, the ratio (random's epochs over sweeplab's) first.
"""

from __future__ import annotations

import argparse
import io
import math
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

from _common import format_pairs, machine, t_interval  # noqa: E402

TARGET_RATIO = 3.0
METHODS = ("tpe_asha", "random", "grid")
LABELS = {
    "tpe_asha": "sweeplab default (TPE + ASHA)",
    "random": "random, no pruning",
    "grid": "grid, no pruning",
}
SPACE = {
    "lr": {"type": "float", "low": 1e-4, "high": 0.3, "log": True},
    "batch_size": {"type": "categorical", "choices": [32, 64, 128]},
    "init": {
        "type": "categorical",
        "choices": ["default", "xavier_uniform", "kaiming_normal", "orthogonal"],
    },
    "optimizer": {"type": "categorical", "choices": ["sgd", "adam", "adamw"]},
    "dropout": {"type": "float", "low": 0.0, "high": 0.5},
    "weight_decay": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True},
}
GRID_SPACE = {
    **SPACE,
    "lr": {"type": "categorical", "choices": [1e-4, 1e-3, 1e-2, 1e-1]},
    "dropout": {"type": "categorical", "choices": [0.0, 0.25, 0.5]},
    "weight_decay": {"type": "categorical", "choices": [1e-6, 1e-4, 1e-2]},
}


@dataclass
class Replay:
    """One study replayed in time order."""

    method: str
    seed: int
    epochs: list[int]  # cumulative epochs at each completed trial
    seconds: list[float]  # wall time since the first trial started, same points
    best: list[float]  # best-so-far objective, same points
    total_epochs: int
    total_seconds: float

    def cost_to(self, target: float) -> tuple[float, float, bool]:
        """(epochs, seconds, reached) until the best-so-far first reaches ``target``."""
        for e, s, b in zip(self.epochs, self.seconds, self.best, strict=True):
            if b >= target:
                return e, s, True
        return self.total_epochs, self.total_seconds, False


def study_spec(method: str, seed: int, args: argparse.Namespace, storage: str) -> dict:
    data = {"dataset": args.dataset}
    if args.dataset != "digits":
        data.update(root=str(args.root), subset=args.subset)
    return {
        "study": {"name": f"{method}-seed{seed}", "storage": storage, "seed": seed},
        "data": data,
        "model": {"kind": "mlp", "hidden": [64, 32], "activation": "relu"},
        "budget": {"n_trials": args.trials, "max_epochs": args.max_epochs},
        "search": {
            "sampler": "tpe" if method == "tpe_asha" else method,
            "scheduler": "asha" if method == "tpe_asha" else "none",
            "concurrency": args.concurrency,
        },
        "space": GRID_SPACE if method == "grid" else SPACE,
    }


def replay(study, method: str, seed: int) -> Replay:
    """Epoch and completion events of a study's trials, in the order they happened."""
    from optuna.trial import TrialState

    events = []  # (time, is_completion, value)
    first = math.inf
    for t in study.get_trials(deepcopy=False):
        attrs = t.user_attrs
        if "run_started_at" not in attrs:
            continue
        start = float(attrs["run_started_at"])
        first = min(first, start)
        clock = start
        for seconds in attrs.get("epoch_seconds", []):
            clock += float(seconds or 0.0)
            events.append((clock, 0, None))
        if t.state == TrialState.COMPLETE and t.value is not None:
            events.append((clock, 1, float(t.value)))
    events.sort(key=lambda e: (e[0], e[1]))
    epochs, seconds, best = [], [], []
    count, so_far = 0, -math.inf
    for clock, is_completion, value in events:
        if not is_completion:
            count += 1
            continue
        so_far = max(so_far, value)
        epochs.append(count)
        seconds.append(clock - first)
        best.append(so_far)
    total_s = (events[-1][0] - first) if events else 0.0
    return Replay(method, seed, epochs, seconds, best, count, total_s)


def bootstrap_ratio(
    num: list[float], den: list[float], n: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of mean(num) / mean(den), seeds resampled per side."""
    import numpy as np

    rng = np.random.default_rng(seed)
    a = rng.choice(np.asarray(num), size=(n, len(num))).mean(axis=1)
    b = rng.choice(np.asarray(den), size=(n, len(den))).mean(axis=1)
    ratios = a / b
    return float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))


def plot(replays: list[Replay], target: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    top = max(r.total_epochs for r in replays)
    grid = np.unique(np.geomspace(1, max(top, 2), 200).round())
    for method, color in zip(METHODS, ("tab:blue", "tab:orange", "tab:green"), strict=False):
        runs = [r for r in replays if r.method == method]
        if not runs:
            continue
        curves = []
        for r in runs:
            idx = np.searchsorted(np.asarray(r.epochs), grid, side="right") - 1
            values = np.where(idx >= 0, np.asarray(r.best)[np.clip(idx, 0, None)], np.nan)
            values[grid > r.total_epochs] = np.nan  # this study had stopped by then
            curves.append(values)
        curves = np.asarray(curves)
        defined = (~np.isnan(curves)).sum(axis=0) == len(runs)  # every seed has a value
        mean = np.where(defined, np.nanmean(np.where(defined, curves, 0.0), axis=0), np.nan)
        if len(runs) > 1:
            from scipy import stats

            sem = np.std(curves, axis=0, ddof=1) / math.sqrt(len(runs))
            half = stats.t.ppf(0.975, len(runs) - 1) * sem
            ax.fill_between(grid, mean - half, mean + half, color=color, alpha=0.2, lw=0)
        ax.plot(grid, mean, color=color, label=LABELS[method])
    ax.axhline(target, color="black", ls="--", lw=0.8, label="target (best found − 0.5 %)")
    ax.set_xscale("log")
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

    ticks = [t for t in (10, 20, 50, 100, 200, 500, 1000, 2000, 5000) if t <= grid[-1] * 1.5]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("cumulative training epochs (all trials, pruned ones included)")
    ax.set_ylabel("best validation accuracy so far")
    low = min(min(r.best) for r in replays if r.best)
    ax.set_ylim(max(low, target - 0.08), min(1.0, target + 0.02))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    seeds = len({r.seed for r in replays})
    ax.set_title(
        f"Search efficiency: mean over {seeds} seed{'s' * (seeds > 1)}, 95 % band", fontsize=10
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=40, help="per study")
    parser.add_argument("--max-epochs", type=int, default=18, help="per trial")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--dataset", choices=("digits", "mnist"), default="digits")
    parser.add_argument("--root", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--subset", type=int, default=5000, help="MNIST training examples")
    parser.add_argument("--tolerance", type=float, default=0.005, help="relative, of the best")
    parser.add_argument(
        "--db", type=Path, help="keep the studies in this SQLite file (again: replot, no training)"
    )
    parser.add_argument(
        "--plot", type=Path, default=ROOT / "docs" / "img" / "search_efficiency.png"
    )
    parser.add_argument("--quick", action="store_true", help="2 seeds, 10 trials of 6 epochs")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.trials, args.max_epochs = 2, 10, 6
    methods = args.methods.split(",")
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"--methods: unknown {', '.join(unknown)} (known: {', '.join(METHODS)})")

    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import optuna
    import ray
    from rich.console import Console
    from rich.progress import Progress

    from sweeplab import studies

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(machine())
    print(
        f"{args.dataset}, MLP 64-32; {args.seeds} seeds x {len(methods)} methods x "
        f"{args.trials} trials of up to {args.max_epochs} epochs, {args.concurrency} at a time"
    )
    db = args.db or Path(tempfile.mkdtemp(prefix="sweeplab-efficiency-")) / "efficiency.db"
    storage = f"sqlite:///{db}"
    started = time.perf_counter()
    ray.init(
        num_cpus=args.concurrency, include_dashboard=False, log_to_driver=False,
        logging_level="ERROR",
    )  # fmt: skip
    quiet = Console(file=io.StringIO())
    replays: list[Replay] = []
    study_seconds: dict[str, list[float]] = {m: [] for m in methods}
    jobs = [(seed, method) for seed in range(args.seeds) for method in methods]
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("studies", total=len(jobs))
        for seed, method in jobs:
            spec = studies.spec_from_dict(study_spec(method, seed, args, storage))
            tick = time.perf_counter()
            studies.run_study(spec, console=quiet)
            study_seconds[method].append(time.perf_counter() - tick)
            study = optuna.load_study(study_name=spec.study.name, storage=storage)
            replays.append(replay(study, method, seed))
            progress.advance(task)
            if len(replays) == len(methods):  # one seed of every method: extrapolate
                so_far = time.perf_counter() - started
                progress.console.print(
                    f"first seed took {so_far:.0f} s: the whole run should take about "
                    f"{so_far * args.seeds / 60:.0f} min"
                )
    ray.shutdown()
    elapsed = time.perf_counter() - started

    best = max(max(r.best) for r in replays if r.best)
    target = best * (1.0 - args.tolerance)
    print(f"best val_acc found by any study: {best:.4f}; target {target:.4f}; database {db}")
    costs: dict[str, list[tuple[float, float, bool]]] = {
        m: [r.cost_to(target) for r in replays if r.method == m] for m in methods
    }
    for method in methods:
        epochs = [c[0] for c in costs[method]]
        seconds = [c[1] for c in costs[method]]
        reached = sum(c[2] for c in costs[method])
        e_mean, e_low, e_high = t_interval(epochs)
        s_mean, s_low, s_high = t_interval(seconds)
        best_each = [max(r.best) if r.best else float("nan") for r in replays if r.method == method]
        print(
            f"{LABELS[method]:32s} epochs to target {e_mean:7.0f} [{e_low:.0f}, {e_high:.0f}], "
            f"wall {s_mean:6.1f} s [{s_low:.1f}, {s_high:.1f}]; reached by {reached}/"
            f"{len(epochs)} seeds; best {statistics.fmean(best_each):.4f}; "
            f"{statistics.fmean(study_seconds[method]):.0f} s per study"
        )
    pairs: dict[str, object] = {}
    if "tpe_asha" in methods and "random" in methods:
        ours = [c[0] for c in costs["tpe_asha"]]
        theirs = [c[0] for c in costs["random"]]
        ratio = statistics.fmean(theirs) / statistics.fmean(ours)
        low, high = bootstrap_ratio(theirs, ours)
        wall_ratio = statistics.fmean([c[1] for c in costs["random"]]) / statistics.fmean(
            [c[1] for c in costs["tpe_asha"]]
        )
        print(
            f"random / sweeplab epochs to target: {ratio:.2f}x (95 % bootstrap {low:.2f}-"
            f"{high:.2f}; target >= {TARGET_RATIO:.0f}x); wall time {wall_ratio:.2f}x"
        )
        pairs.update(ratio_epochs_random_over_sweeplab=ratio, ratio_low=low, ratio_high=high)
        pairs["ratio_wall_random_over_sweeplab"] = wall_ratio
        if "grid" in methods:
            grid_epochs = [c[0] for c in costs["grid"]]
            pairs["ratio_epochs_grid_over_sweeplab"] = statistics.fmean(
                grid_epochs
            ) / statistics.fmean(ours)
    for method in methods:
        pairs[f"epochs_{method}"] = statistics.fmean(c[0] for c in costs[method])
        pairs[f"reached_{method}"] = f"{sum(c[2] for c in costs[method])}/{len(costs[method])}"
    pairs.update(best=best, seeds=args.seeds, trials=args.trials, total_s=elapsed)
    plot(replays, target, args.plot)
    size_kb = args.plot.stat().st_size / 1024
    print(f"plot: {args.plot} ({size_kb:.0f} KB); total {elapsed:.0f} s")
    print(format_pairs(pairs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
