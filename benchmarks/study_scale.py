"""The driver's cost per trial as a study grows: at trial 10, 100, 1000 and 5000 of one study.

Optuna's RDB storage and TPE are known to slow down as the history grows (optuna #3048, #2172).
This measures what a user of thousands of short trials pays per trial at each size, on SQLite and
(where a server is given) PostgreSQL, with sweeplab's defaults (TPE multivariate + constant liar,
ASHA, a database write per epoch, the budget counts, the progress view):

- the study is grown to N trials by plain Optuna ask/tell with a random sampler (fast, and the
  history TPE then reads is N trials of the same space);
- then ``studies.run_study`` runs ``--probe`` more trials of a near-zero-cost trainer (the
  fixed-cost one of ``trial_overhead.py``, swapped into the Ray workers through Ray's public
  ``worker_process_setup_hook``), one at a time, so each trial's cost is the driver's critical
  path: per trial = (wall from the first probe trial's start to the run's end) / probe −
  its compute;
- and, apart, TPE's own ``sample`` of one configuration at that size (in-process, no Ray), to
  tell the sampler's growth from the storage's.

Each backend runs in a fresh Python process with its own local Ray. The reference for the ratio
is the same study at trial 100, in the same run. Target: per-trial cost at trial 5000 within 2x
of that at trial 100.

sweeplab's TPE models a window of the history (``[search] history_window``, 1000 by default: the
best quarter of the whole history and the most recent rest, ``studies/_tpe.py``), which is what
bounds the sampler's growth. What the window costs in search quality is measured last, in-process:
the same sampler with a window of ``--window`` (250) against the whole history (0), for 4 windows'
worth of trials, on two tasks of known optimum (Hartmann-6, and the fixed-cost trainer's
6-parameter mixed space of categorical and log-scaled choices), over ``--quality-seeds`` seeds;
the figure is the paired difference of final regrets with a 95 % t interval.

Usage::

    python benchmarks/study_scale.py                   # SQLite: 10, 100, 1000, 5000
    python benchmarks/study_scale.py --postgres URL    # and PostgreSQL
    python benchmarks/study_scale.py --quick           # 10, 100; a smoke run

The last line is machine-readable ``key=value`` pairs, the SQLite ratio (5000 vs 100) first.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

import _fixed_cost  # noqa: E402
from _common import format_pairs, machine, t_interval  # noqa: E402
from trial_overhead import sweeplab_space  # noqa: E402

TARGET_RATIO = 2.0
EPOCHS = 2
EPOCH_S = 0.001  # near-zero compute: the driver is what is measured


def _grow(storage: str, name: str, space: object, to: int) -> float:
    """Add random trials until the study has ``to``; returns the seconds it took."""
    import optuna

    from sweeplab import searchspace

    started = time.perf_counter()
    study = optuna.load_study(
        study_name=name, storage=storage, sampler=optuna.samplers.RandomSampler(seed=to)
    )
    have = len(study.get_trials(deepcopy=False))
    for _ in range(max(0, to - have)):
        trial = study.ask()
        config = searchspace.sample(trial, space)
        study.tell(trial, _fixed_cost.curve(config, EPOCHS))
    return time.perf_counter() - started


def _tpe_sample_ms(spec: object, storage: str, name: str, repeats: int = 5) -> float:
    """Median ms of TPE's sample of one configuration against the study's whole history,
    outside Ray and the budget (the trials asked are failed again at once)."""
    import optuna
    from optuna.trial import TrialState

    from sweeplab import searchspace
    from sweeplab.studies._study import make_sampler

    study = optuna.load_study(
        study_name=name, storage=storage, sampler=make_sampler(spec, n_existing=0)
    )
    times = []
    for _ in range(repeats):
        trial = study.ask()
        started = time.perf_counter()
        searchspace.sample(trial, spec.space)
        times.append(time.perf_counter() - started)
        study.tell(trial, state=TrialState.FAIL)
    return 1000.0 * statistics.median(times)


# Hartmann-6 (Dixon & Szegő): minimum -3.32237 on [0, 1]^6.
_H_ALPHA = (1.0, 1.2, 3.0, 3.2)
_H_A = (
    (10, 3, 17, 3.5, 1.7, 8), (0.05, 10, 17, 0.1, 8, 14),
    (3, 3.5, 1.7, 10, 17, 8), (17, 8, 0.05, 10, 0.1, 14),
)  # fmt: skip
_H_P = (
    (0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886),
    (0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991),
    (0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650),
    (0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381),
)
HARTMANN6_MIN = -3.32237


def hartmann6(x: list[float]) -> float:
    """The Hartmann-6 function; its minimum over [0, 1]^6 is :data:`HARTMANN6_MIN`."""
    import math

    return -sum(
        alpha * math.exp(-sum(a * (xi - p) ** 2 for a, xi, p in zip(row, x, prow, strict=True)))
        for alpha, row, prow in zip(_H_ALPHA, _H_A, _H_P, strict=True)
    )


# The fixed-cost trainer's best configuration (its quality() peaks there, see _fixed_cost).
_MIXED_BEST = {"lr": 1e-2, "dropout": 0.0, "weight_decay": 1e-5, "optimizer": "adam",
               "init": "orthogonal"}  # fmt: skip


def window_quality(window: int, seeds: int) -> dict:
    """Final regret of sweeplab's TPE with a window of ``window`` against the whole history,
    after ``4 * window`` trials, per task; paired over seeds."""
    import optuna

    from sweeplab import searchspace, studies
    from sweeplab.studies._study import make_sampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    hart_space = {f"x{i}": {"type": "float", "low": 0.0, "high": 1.0} for i in range(6)}
    mixed_space = sweeplab_space()
    tasks = {
        "hartmann6": (hart_space, lambda c: hartmann6([c[f"x{i}"] for i in range(6)]),
                      "minimize", HARTMANN6_MIN),
        "mixed": (mixed_space, lambda c: _fixed_cost.curve(c, EPOCHS), "maximize",
                  _fixed_cost.curve(_MIXED_BEST, EPOCHS)),
    }  # fmt: skip
    n_trials = 4 * window
    out: dict[str, dict] = {}
    for task, (space, objective, direction, optimum) in tasks.items():
        regrets: dict[int, list[float]] = {window: [], 0: []}
        sample_ms: dict[int, list[float]] = {window: [], 0: []}
        for seed in range(seeds):
            for w in (window, 0):
                spec = studies.spec_from_dict(
                    {
                        "study": {"name": "q", "seed": seed, "direction": direction},
                        "data": {"dataset": "digits"},
                        "search": {"history_window": w},
                        "space": space,
                    }
                )
                study = optuna.create_study(direction=direction, sampler=make_sampler(spec, 0))
                started = time.perf_counter()
                for _ in range(n_trials):
                    trial = study.ask()
                    study.tell(trial, objective(searchspace.sample(trial, spec.space)))
                sample_ms[w].append(1000.0 * (time.perf_counter() - started) / n_trials)
                regrets[w].append(abs(study.best_value - optimum))
        diff = [a - b for a, b in zip(regrets[window], regrets[0], strict=True)]
        out[task] = {
            "window": statistics.median(regrets[window]),
            "full": statistics.median(regrets[0]),
            "diff": t_interval(diff),
            "ms_window": statistics.mean(sample_ms[window]),
            "ms_full": statistics.mean(sample_ms[0]),
        }
        print(f"# quality {task}: done", file=sys.stderr, flush=True)
    return out


def child(args: argparse.Namespace, backend: str, storage: str) -> dict:
    import optuna
    import ray
    from rich.console import Console

    from sweeplab import studies

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
        runtime_env={"worker_process_setup_hook": _fixed_cost.install},
    )
    name = f"scale-{backend}-{os.getpid()}"
    raw = {
        "study": {"name": name, "storage": storage},
        "data": {"dataset": "digits"},
        "model": {"kind": "mlp", "hidden": [32]},
        "budget": {"n_trials": 1, "max_epochs": EPOCHS, "max_failures": 20},
        "search": {"concurrency": 1, "grace_period": 1, "reduction_factor": 2},
        "space": sweeplab_space(),
    }
    spec = studies.spec_from_dict(raw)
    studies.open_study(spec, studies.open_storage(storage))
    quiet = Console(file=io.StringIO())
    rows = []
    for size in args.sizes:
        grow_s = _grow(storage, name, spec.space, size)
        sample_ms = _tpe_sample_ms(spec, storage, name)
        done = sum(
            t.state.is_finished() and t.state.name != "FAIL"
            for t in optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
        )
        probe = spec.with_overrides(n_trials=done + args.probe)
        before = {t.number for t in optuna.load_study(study_name=name, storage=storage).trials}
        studies.run_study(probe, console=quiet)
        ended = time.time()
        new = [
            t
            for t in optuna.load_study(study_name=name, storage=storage).trials
            if t.number not in before and "run_started_at" in t.user_attrs
        ]
        first = min(float(t.user_attrs["run_started_at"]) for t in new)
        epochs = sum(int(t.user_attrs.get("epochs_run", 0)) for t in new)
        per_trial = 1000.0 * ((ended - first) - epochs * EPOCH_S) / len(new)
        rows.append(
            {"size": size, "per_trial_ms": per_trial, "tpe_sample_ms": sample_ms,
             "grow_s": grow_s, "probe": len(new)}
        )  # fmt: skip
        print(f"# {backend} size {size}: {per_trial:.1f} ms/trial", file=sys.stderr, flush=True)
    ray.shutdown()
    return {"backend": backend, "rows": rows}


def run_child(args: argparse.Namespace, backend: str, storage: str) -> dict:
    env = dict(os.environ)
    env[_fixed_cost.WORK_ENV] = "sleep"
    env[_fixed_cost.EPOCH_S_ENV] = repr(EPOCH_S)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(ROOT), env.get("PYTHONPATH", "")])
    sizes = ",".join(str(s) for s in args.sizes)
    command = [
        sys.executable, __file__, "--child", backend, "--storage", storage, "--sizes", sizes,
        "--probe", str(args.probe),
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"the {backend} run failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,100,1000,5000", help="trial counts to measure at")
    parser.add_argument("--probe", type=int, default=20, help="trials timed at each size")
    parser.add_argument("--postgres", help="a PostgreSQL URL to measure as well (a fresh DB)")
    parser.add_argument("--window", type=int, default=250, help="window of the quality check")
    parser.add_argument(
        "--quality-seeds", type=int, default=10, help="seeds of the quality check (0: skip it)"
    )
    parser.add_argument("--quick", action="store_true", help="sizes 10,100, probe 5")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--storage", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.probe, args.window, args.quality_seeds = "10,100", 5, 50, 3
    args.sizes = sorted(int(s) for s in str(args.sizes).split(","))
    if args.child:
        print(json.dumps(child(args, args.child, args.storage)))
        return 0

    print(f"# {machine()}")
    print(f"# sizes {args.sizes}, {args.probe} probe trials each, {EPOCHS} epochs of ~0 s")
    folder = tempfile.mkdtemp(prefix="sweeplab-scale-")
    backends = [("sqlite", f"sqlite:///{folder}/scale.db")]
    if args.postgres:
        backends.append(("postgresql", args.postgres))
    started = time.perf_counter()
    results = [run_child(args, backend, storage) for backend, storage in backends]
    pairs: dict[str, object] = {}
    reference = 100 if 100 in args.sizes else args.sizes[0]
    largest = args.sizes[-1]
    for result in results:
        backend = result["backend"]
        print(f"\n{backend}: size, driver ms/trial, TPE sample ms, seconds to grow")
        by_size = {row["size"]: row for row in result["rows"]}
        for row in result["rows"]:
            print(
                f"  {row['size']:>6}  {row['per_trial_ms']:8.1f}  {row['tpe_sample_ms']:8.1f}"
                f"  {row['grow_s']:7.1f}"
            )
        ratio = by_size[largest]["per_trial_ms"] / by_size[reference]["per_trial_ms"]
        tpe = by_size[largest]["tpe_sample_ms"] / by_size[reference]["tpe_sample_ms"]
        print(
            f"  per-trial cost at {largest} / at {reference}: {ratio:.2f}x (target <= "
            f"{TARGET_RATIO:g}x: {'met' if ratio <= TARGET_RATIO else 'missed'}); "
            f"TPE's sample alone: {tpe:.2f}x"
        )
        pairs[f"{backend}_ratio_{largest}_{reference}"] = ratio
        pairs[f"{backend}_ms_{largest}"] = by_size[largest]["per_trial_ms"]
        pairs[f"{backend}_ms_{reference}"] = by_size[reference]["per_trial_ms"]
        pairs[f"{backend}_tpe_ratio"] = tpe
    if args.quality_seeds > 0:  # 0: the cost figures only
        quality = window_quality(args.window, args.quality_seeds)
        print(
            f"\nsearch quality, TPE window {args.window} vs the whole history, "
            f"{4 * args.window} trials, {args.quality_seeds} seeds: median final regret "
            "(window, whole), paired difference window - whole [95% CI], ms per trial"
        )
        for task, row in quality.items():
            mean, low, high = row["diff"]
            print(
                f"  {task:<10} {row['window']:.4g}  {row['full']:.4g}  {mean:+.3g} "
                f"[{low:+.3g}, {high:+.3g}]  {row['ms_window']:.1f} vs {row['ms_full']:.1f}"
            )
            pairs[f"{task}_regret_diff"] = mean
            pairs[f"{task}_regret_diff_low"] = low
            pairs[f"{task}_regret_diff_high"] = high
    pairs["minutes"] = (time.perf_counter() - started) / 60
    print(format_pairs(pairs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
