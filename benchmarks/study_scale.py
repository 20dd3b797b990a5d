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
from _common import format_pairs, machine  # noqa: E402
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
    parser.add_argument("--quick", action="store_true", help="sizes 10,100, probe 5")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--storage", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.probe = "10,100", 5
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
    pairs["minutes"] = (time.perf_counter() - started) / 60
    print(format_pairs(pairs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
