"""Per-trial overhead: sweeplab's orchestration vs a stock Ray Tune ``Tuner``, in one run.

Both run the same trials of a trainer of known cost (``_fixed_cost.py``: ``--epochs`` epochs
that together do ``--seconds`` of work and report a deterministic, configuration-dependent
``val_acc``), ``--concurrency`` at a time, on the same 6-dimensional MLP search space:

- sweeplab: ``studies.run_study`` on a spec with its defaults — TPE from an Optuna study in a
  SQLite file, ASHA, one database write per epoch, the progress view — and sweeplab's own trial
  function; only ``trainer.fit`` is swapped for the fixed-cost one, in the Ray workers, through
  Ray's public ``worker_process_setup_hook``;
- stock: ``tune.Tuner`` with ``OptunaSearch()`` and ``ASHAScheduler()`` at their defaults
  (``metric``/``mode`` given to ``TuneConfig``), ``num_samples = --trials``,
  ``max_concurrent_trials = --concurrency``, everything else Tune's default except the results
  folder (a temporary directory) — what a Tune user writes first.

Each side runs in a fresh Python process with its own local Ray (``num_cpus = --cpus``).
Overhead per trial = (wall − Σ trial compute / concurrency) / trials, where the wall time runs
from the first trial's start (in its worker) until ``run_study`` (or ``Tuner.fit``) returns, and
the compute is the epochs the trials actually ran (ASHA stops some early) times the epoch's work.
Start-up is reported apart, in two parts: imports and ``ray.init``; then from the call to the
first trial's start (creating the study and the ``Tuner``, the first worker process and its
imports — sweeplab's trial function imports torch, the stock one does not). With ``--work cpu``
(default) the work is CPU time, so orchestration that takes CPU from the trials counts as
overhead; ``--work sleep`` measures latency only (see ``_fixed_cost.py``).

Usage::

    python benchmarks/trial_overhead.py                              # 200 trials of 0.5 s
    python benchmarks/trial_overhead.py --trials 40 --seconds 0.1    # quick

The last line is machine-readable ``key=value`` pairs, the ratio (stock / sweeplab overhead)
first.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]  # _common/_fixed_cost, and this checkout's packages

import _fixed_cost  # noqa: E402
from _common import format_pairs, machine  # noqa: E402

TARGET_MS = 50.0
TARGET_RATIO = 10.0
INITS = ["default", "xavier_uniform", "kaiming_normal", "orthogonal"]
OPTIMIZERS = ["sgd", "adam", "adamw"]
BATCH_SIZES = [32, 64, 128]


def sweeplab_space() -> dict:
    return {
        "lr": {"type": "float", "low": 1e-4, "high": 0.3, "log": True},
        "batch_size": {"type": "categorical", "choices": BATCH_SIZES},
        "init": {"type": "categorical", "choices": INITS},
        "optimizer": {"type": "categorical", "choices": OPTIMIZERS},
        "dropout": {"type": "float", "low": 0.0, "high": 0.5},
        "weight_decay": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True},
    }


def _start_ray(args: argparse.Namespace, hook: bool) -> float:
    """Import what a run needs and start Ray; returns the seconds it took."""
    started = time.perf_counter()
    import ray
    from ray import tune  # noqa: F401  (both sides pay for Tune's import here, not in the wall)

    ray.init(
        num_cpus=args.cpus,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
        runtime_env={"worker_process_setup_hook": _fixed_cost.install} if hook else None,
    )
    return time.perf_counter() - started


def child_sweeplab(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    import optuna
    from rich.console import Console

    from sweeplab import studies

    imports = time.perf_counter() - started
    startup = imports + _start_ray(args, hook=True)
    folder = tempfile.mkdtemp(prefix="sweeplab-overhead-")
    spec = studies.spec_from_dict(
        {
            "study": {"name": "overhead", "storage": f"sqlite:///{folder}/overhead.db"},
            "data": {"dataset": "digits"},
            "model": {"kind": "mlp", "hidden": [32]},
            "budget": {"n_trials": args.trials, "max_epochs": args.epochs},
            "search": {"concurrency": args.concurrency},
            "space": sweeplab_space(),
        }
    )
    quiet = Console(file=io.StringIO())
    cpu = time.process_time()
    started = time.perf_counter()
    if args.profile:
        import cProfile

        with cProfile.Profile() as profile:
            summary = studies.run_study(spec, console=quiet)
        profile.dump_stats(args.profile)
    else:
        summary = studies.run_study(spec, console=quiet)
    wall = time.perf_counter() - started
    ended = time.time()
    cpu = time.process_time() - cpu
    study = optuna.load_study(study_name="overhead", storage=spec.study.storage)
    trials = study.get_trials(deepcopy=False)
    # The seam must hold: had the real trainer run, the values would not be the made-up curve's
    # (a pruned trial's value is its last epoch's).
    for t in trials:
        made_up = _fixed_cost.curve(t.params, int(t.user_attrs.get("epochs_run", 0)))
        if t.value is not None and abs(t.value - made_up) > 1e-9:
            raise SystemExit(f"trial {t.number} was not trained by the fixed-cost trainer")
    first = min(float(t.user_attrs["run_started_at"]) for t in trials)
    return {
        "startup_s": startup,
        "first_trial_s": wall - (ended - first),
        "wall_s": ended - first,
        "trials": len(trials),
        "epochs": sum(int(t.user_attrs.get("epochs_run", 0)) for t in trials),
        "counts": summary.counts,
        "driver_cpu_s": cpu,
        **timeline([t.user_attrs for t in trials]),
    }


def timeline(attrs: list[dict]) -> dict:
    """Where a sweeplab trial's overhead goes, from the facts each trial records.

    ``gap``: from one trial's last epoch to the next trial's start on the same worker process
    (the searcher's suggest, Tune's bookkeeping, the actor reset); ``inside``: a trial's wall
    time minus its epochs (the trial function's set-up and the per-epoch reports).
    """
    import statistics

    runs: dict[int, list[tuple[float, float]]] = {}
    inside = []
    for a in attrs:
        if "run_started_at" not in a or "pid" not in a:
            continue
        work = sum(s for s in a.get("epoch_seconds", []) if s is not None)
        runs.setdefault(a.get("pid", 0), []).append((a["run_started_at"], work))
        if "wall_time_s" in a:
            inside.append(a["wall_time_s"] - work)
    gaps = []
    for starts in runs.values():
        starts.sort()
        for (start, work), (following, _) in itertools.pairwise(starts):
            gaps.append(following - start - work)
    median = statistics.median
    return {
        "gap_ms": 1000 * median(gaps) if gaps else float("nan"),
        "inside_ms": 1000 * median(inside) if inside else float("nan"),
    }


def child_stock(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    imports = time.perf_counter() - started
    startup = imports + _start_ray(args, hook=False)
    space = {
        "lr": tune.loguniform(1e-4, 0.3),
        "batch_size": tune.choice(BATCH_SIZES),
        "init": tune.choice(INITS),
        "optimizer": tune.choice(OPTIMIZERS),
        "dropout": tune.uniform(0.0, 0.5),
        "weight_decay": tune.loguniform(1e-6, 1e-2),
        "max_epochs": args.epochs,
    }
    folder = tempfile.mkdtemp(prefix="stock-overhead-")
    started = time.perf_counter()
    tuner = tune.Tuner(
        _fixed_cost.stock_trainable,
        param_space=space,
        tune_config=tune.TuneConfig(
            metric="val_acc",
            mode="max",
            search_alg=OptunaSearch(),
            scheduler=ASHAScheduler(),
            num_samples=args.trials,
            max_concurrent_trials=args.concurrency,
        ),
        run_config=tune.RunConfig(name="stock", storage_path=folder),
    )
    results = tuner.fit()
    wall = time.perf_counter() - started
    ended = time.time()
    epochs = sum(int(r.metrics.get("training_iteration", 0)) for r in results)
    first = min(float(r.metrics["started_at"]) for r in results)
    return {
        "startup_s": startup,
        "first_trial_s": wall - (ended - first),
        "wall_s": ended - first,
        "trials": len(results),
        "epochs": epochs,
        "errors": len(results.errors),
    }


def run_child(side: str, args: argparse.Namespace) -> dict:
    env = dict(os.environ)
    env[_fixed_cost.WORK_ENV] = args.work
    env[_fixed_cost.EPOCH_S_ENV] = repr(args.seconds / args.epochs)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(ROOT), env.get("PYTHONPATH", "")])
    command = [sys.executable, __file__, "--child", side, *sys.argv[1:]]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"the {side} run failed (exit {done.returncode})")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - started
    return result


def overhead_ms(result: dict, args: argparse.Namespace) -> float:
    compute = result["epochs"] * args.seconds / args.epochs
    return 1000.0 * (result["wall_s"] - compute / args.concurrency) / result["trials"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=0.5, help="work per trial run to the end")
    parser.add_argument("--epochs", type=int, default=5, help="reports per trial")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs given to the local Ray")
    parser.add_argument("--work", choices=("cpu", "sleep"), default="cpu")
    parser.add_argument("--sides", default="sweeplab,stock", help="which to run (comma list)")
    parser.add_argument("--profile", type=Path, help="write cProfile stats of sweeplab's driver")
    parser.add_argument("--child", choices=("sweeplab", "stock"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child = child_sweeplab if args.child == "sweeplab" else child_stock
        print(json.dumps(child(args)))
        return 0

    print(machine())
    # Measured: sweeplab's run costs the work plus ~0.1-1 s per trial, stock Tune's ~1-2 s per
    # trial (a new actor for each), both plus ~10-30 s of start-up.
    work_s = args.trials * args.seconds / args.concurrency
    low, high = 2 * work_s + args.trials * 1.0 + 40, 2 * work_s + args.trials * 3.0 + 60
    print(
        f"{args.trials} trials of {args.seconds} s {args.work} work in {args.epochs} epochs, "
        f"{args.concurrency} at a time; expect {low / 60:.0f}-{high / 60:.0f} min"
    )
    started = time.perf_counter()
    figures = {}
    for side in args.sides.split(","):
        result = run_child(side, args)
        figures[side] = result
        print(
            f"{side:8s} overhead {overhead_ms(result, args):7.1f} ms/trial; wall "
            f"{result['wall_s']:.1f} s for {result['trials']} trials, {result['epochs']} epochs "
            f"run ({result['epochs'] * args.seconds / args.epochs:.1f} s of work); start-up: "
            f"imports + ray.init {result['startup_s']:.1f} s, then {result['first_trial_s']:.1f} s "
            "to the first trial's start"
        )
        if "gap_ms" in result:
            print(
                f"         median gap between trials on a worker {result['gap_ms']:.0f} ms, "
                f"median time in a trial beyond its epochs {result['inside_ms']:.0f} ms, "
                f"driver CPU {1000 * result['driver_cpu_s'] / result['trials']:.0f} ms/trial"
            )
    if set(figures) != {"sweeplab", "stock"}:
        return 0
    ours, stock = overhead_ms(figures["sweeplab"], args), overhead_ms(figures["stock"], args)
    ratio = stock / ours if ours > 0 else float("inf")
    print(
        f"stock/sweeplab overhead: {ratio:.1f}x (targets: sweeplab <= {TARGET_MS:.0f} ms/trial "
        f"and >= {TARGET_RATIO:.0f}x less than stock); total {time.perf_counter() - started:.0f} s"
    )
    print(
        format_pairs(
            {
                "ratio_stock_over_sweeplab": ratio,
                "overhead_ms_sweeplab": ours,
                "overhead_ms_stock": stock,
                "startup_s_sweeplab": figures["sweeplab"]["startup_s"],
                "startup_s_stock": figures["stock"]["startup_s"],
                "first_trial_s_sweeplab": figures["sweeplab"]["first_trial_s"],
                "first_trial_s_stock": figures["stock"]["first_trial_s"],
                "trials": args.trials,
                "seconds": args.seconds,
                "work": args.work,
                "meets_target": ours <= TARGET_MS and ratio >= TARGET_RATIO,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
