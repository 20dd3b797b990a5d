"""Several objectives: the spec's rules, non-dominated sorting, and a real multi-objective study
(Ray Tune, digits, SQLite) read back by best, status, export, report and ablate."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from conftest import run_cli, tiny_spec
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.study import StudyDirection
from optuna.trial import TrialState, create_trial
from rich.console import Console

from sweeplab import analysis
from sweeplab.analysis import write_report
from sweeplab.studies import load_spec, records, run_study
from sweeplab.studies._run import make_scheduler
from sweeplab.studies._study import open_study
from sweeplab.studies._tune.moasha import MultiObjectiveASHA, rung_history
from sweeplab.studies._tune.outcomes import objective_values, trial_outcome
from sweeplab.studies.asha import asha_rungs, moasha_stops, non_dominated_ranks, pareto_order
from sweeplab.studies.errors import SpecConflict
from sweeplab.studies.storage import open_storage

SPACE = """
[space.lr]
type = "float"
low = 3e-3
high = 3e-2
log = true

[space.norm]
type = "categorical"
choices = ["none", "batch", "layer"]
"""


def _spec(tmp_path: Path, study: str, *, search: str = 'scheduler = "none"', **kw) -> Path:
    """A tiny digits spec with ``study`` lines added to ``[study]`` and ``search`` to
    ``[search]`` (where it overrides tiny_spec's scheduler)."""
    path = tiny_spec(tmp_path, space=SPACE, **kw)
    text = path.read_text(encoding="utf-8").replace("seed = 1\n", f"seed = 1\n{study}\n", 1)
    if "sampler" in search:
        text = text.replace('sampler = "random"\n', "", 1)
    text = text.replace('scheduler = "asha"\n', f"{search}\n", 1)
    path.write_text(text, encoding="utf-8")
    return path


# --- the spec ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("study", "search", "expected"),
    [
        ('objective = ["val_acc"]', 'scheduler = "none"', "needs 2 or more metric names"),
        ('objective = ["val_acc", "val_acc"]', 'scheduler = "none"', "val_acc is given twice"),
        (
            'objective = ["val_acc", "params"]\ndirection = ["maximize"]',
            'scheduler = "none"',
            "study.direction: one per objective; 2 objectives",
        ),
        (
            'objective = ["val_acc", "params"]\ndirection = "maximize"',
            'scheduler = "none"',
            "study.direction: 2 objectives need a list of 2 directions",
        ),
        (
            'objective = ["val_acc", "params"]\ndirection = ["maximize", "down"]',
            'scheduler = "none"',
            '"down" is neither',
        ),
        ('objective = "val_acc"\ndirection = ["maximize"]', "", "one objective takes one"),
        (
            'objective = ["val_acc", "flops"]\ndirection = ["maximize", "minimize"]',
            'scheduler = "none"',
            "study.objective[1]: sweeplab's training loop reports val_acc, val_loss, train_acc, "
            'train_loss, epochs, params, train_time; got "flops"',
        ),
        (
            'objective = ["val_acc", "params"]',
            'scheduler = "hyperband"',
            'use "asha" (multi-objective ASHA',
        ),
        (
            'objective = ["val_acc", "params"]',
            'scheduler = "pbt"',
            'search.scheduler: "pbt" copies the trials that rank best by one objective',
        ),
        (
            'objective = ["val_acc", "params"]',
            'scheduler = "asha"\nsampler = "tpe"\nrung_model = true',
            "search.rung_model: models one objective",
        ),
        (
            'objective = ["val_acc", "params"]',
            'scheduler = "none"\nsampler = "cmaes"',
            '"cmaes" optimises one objective',
        ),
        (
            'objective = ["val_acc", "params"]',
            'scheduler = "none"\npack = 4',
            "search.pack: packed trials are judged by one objective",
        ),
        ('objective = "params"', "", '"params" is a cost'),
    ],
)
def test_bad_objectives_are_refused_exit_2(capsys, tmp_path, study, search, expected) -> None:
    path = _spec(tmp_path, study, search=search or 'scheduler = "asha"')
    code, _, err = run_cli(capsys, "run", str(path))
    assert code == 2
    assert expected in " ".join(err.split()), err
    assert "Traceback" not in err
    assert not (tmp_path / "study.db").exists(), "a refused spec must not create a database"


def test_directions_are_inferred_per_objective_and_single_specs_keep_their_form(
    tmp_path,
) -> None:
    spec = load_spec(_spec(tmp_path, 'objective = ["val_acc", "val_loss", "epochs"]'))
    assert spec.study.objectives == ("val_acc", "val_loss", "epochs")
    assert spec.study.directions == ("maximize", "minimize", "minimize")
    assert spec.study.primary == "val_acc" and spec.study.multi_objective
    # One objective is stored as it always was (resume compares stored specs).
    single = load_spec(_spec(tmp_path, 'objective = "val_loss"', search=""))
    assert single.to_dict()["study"]["objective"] == "val_loss"
    assert single.to_dict()["study"]["direction"] is None
    assert single.study.directions == ("minimize",) and not single.study.multi_objective


# --- non-dominated sorting ----------------------------------------------------------------------


@pytest.mark.parametrize("flip", [False, True])
def test_non_dominated_ranks_peel_fronts_in_either_direction(flip: bool) -> None:
    # (accuracy up, cost down): A and B trade off, C is beaten by A, D by C, E equals A.
    points = [(0.9, 5.0), (0.8, 2.0), (0.85, 6.0), (0.7, 7.0), (0.9, 5.0)]
    directions = ["maximize", "minimize"]
    if flip:  # the same problem stated the other way round: both ranks must agree
        points = [(-a, -c) for a, c in points]
        directions = ["minimize", "maximize"]
    assert non_dominated_ranks(points, directions) == [0, 0, 1, 2, 0]


def test_non_dominated_ranks_edge_cases() -> None:
    assert non_dominated_ranks([], ["maximize", "minimize"]) == []
    assert non_dominated_ranks([(1.0, 1.0)], ["minimize", "minimize"]) == [0]
    # Better in one objective and equal in the other is dominance; equal in all is not.
    assert non_dominated_ranks([(1.0, 1.0), (1.0, 2.0)], ["minimize", "minimize"]) == [0, 1]
    three = [(1, 1, 3), (1, 3, 1), (3, 1, 1), (2, 2, 2), (3, 3, 3)]
    assert non_dominated_ranks(three, ["minimize"] * 3) == [0, 0, 0, 0, 1]


def test_pareto_numbers_skips_unfinished_and_nonfinite_trials() -> None:
    trials = [
        create_trial(values=[0.9, 5.0]),
        create_trial(values=[0.8, 2.0]),
        create_trial(values=[0.95, 1.0], state=TrialState.COMPLETE),
        create_trial(state=TrialState.PRUNED),
        create_trial(values=[float("inf"), 0.0]),
    ]
    for i, t in enumerate(trials):
        t.number = i
    assert analysis.pareto_numbers(trials, ["maximize", "minimize"]) == {2}
    assert analysis.pareto_numbers(trials[:2], ["maximize", "minimize"]) == {0, 1}


def test_a_finished_trial_is_valued_by_every_objective_at_its_last_epoch() -> None:
    report = {"epoch": 3, "is_last": True, "best_value": 0.95, "val_acc": 0.9, "params": 100}
    outcome = trial_outcome(
        report, lost=False, objective="val_acc", use_best_value=True, epochs_run=3,
        objectives=("val_acc", "epochs", "params"),
    )  # fmt: skip
    assert outcome.state == TrialState.COMPLETE and outcome.value == [0.9, 3.0, 100.0]
    missing = trial_outcome(
        report, lost=False, objective="val_acc", use_best_value=True, epochs_run=3,
        objectives=("val_acc", "train_time"),
    )  # fmt: skip
    assert missing.state == TrialState.FAIL and "no finite train_time" in missing.attrs["error"]
    # A training function's returned metric wins over its last epoch's.
    final = {**report, "final_metrics": [("val_acc", 0.5)]}
    assert objective_values(final, ["val_acc"]) == [0.5]


def test_multi_objective_tpe_samples_beside_pruned_trials_with_curves() -> None:
    # Optuna's TPE ranks a pruned trial by its curve in the study's one direction, which a
    # multi-objective study has not: the sampler shows it pruned trials without their curves.
    from sweeplab.studies._tpe import BoundedTPESampler

    sampler = BoundedTPESampler(window=1000, n_startup_trials=2, seed=0, multivariate=True)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    x = optuna.distributions.FloatDistribution(0, 1)
    for i in range(4):
        study.add_trial(create_trial(params={"x": i / 4}, distributions={"x": x},
                                     values=[i / 4, i]))  # fmt: skip
    study.add_trial(create_trial(params={"x": 0.9}, distributions={"x": x},
                                 state=TrialState.PRUNED, intermediate_values={1: 0.3}))  # fmt: skip
    trial = study.ask()
    assert 0 <= trial.suggest_float("x", 0, 1) <= 1
    assert study.trials[4].intermediate_values == {1: 0.3}  # the study's own record is kept


# --- multi-objective ASHA -------------------------------------------------------------------------


def test_moasha_stops_the_dominated_trials_at_a_rung() -> None:
    moasha = MultiObjectiveASHA(
        objectives=["val_acc", "params"], directions=["maximize", "minimize"],
        rungs=[1, 2, 4], reduction_factor=2, max_epochs=4,
    )  # fmt: skip

    def judge(trial: str, epoch: int, acc: float, params: int) -> str:
        return moasha.judge(trial, {"epoch": epoch, "val_acc": acc, "params": params})

    assert judge("a", 1, 0.9, 10) == "CONTINUE"  # an empty rung stops nobody
    assert judge("b", 1, 0.8, 20) == "STOP"  # a beats it in both
    assert judge("c", 1, 0.95, 30) == "CONTINUE"  # on the front with a: top 2 of 3
    assert judge("d", 1, 0.5, 5) == "CONTINUE"  # the front's other edge: top 2 of 4
    assert judge("e", 1, 0.85, 12) == "STOP"  # a beats it: outside the top 3 of 5
    # Each rung is judged once per trial, and the next rung starts empty.
    assert judge("a", 1, 0.1, 99) == "CONTINUE"
    assert judge("a", 2, 0.92, 10) == "CONTINUE"
    assert judge("c", 2, 0.6, 30) == "STOP"  # a beats it at rung 2
    # The budget's last epoch is not a rung to stop at; reports without the objectives pass.
    assert judge("c", 4, 0.1, 99) == "CONTINUE"
    assert moasha.judge("f", {"epoch": 1, "error": "boom"}) == "CONTINUE"
    assert moasha.judge("f", {"epoch": 1, "val_acc": 0.1}) == "CONTINUE"


def test_moasha_judges_against_the_vectors_of_earlier_runs() -> None:
    """On a resume the rungs start from what earlier runs reached them with, not empty."""
    settings = {
        "objectives": ["val_acc", "params"], "directions": ["maximize", "minimize"],
        "rungs": [1, 2, 4], "reduction_factor": 2, "max_epochs": 4,
    }  # fmt: skip
    earlier = [
        create_trial(values=[0.9, 10.0], user_attrs={"val_acc": [0.9, 0.95], "params": [10, 10]}),
        create_trial(state=TrialState.PRUNED, user_attrs={"val_acc": [0.85], "params": [8]}),
        # a failed trial, and one without the params curve, count nowhere
        create_trial(state=TrialState.FAIL, user_attrs={"val_acc": [0.99], "params": [1]}),
        create_trial(values=[0.99, 1.0], user_attrs={"val_acc": [0.99, 0.99]}),
    ]
    history = rung_history(earlier, settings["objectives"], [1, 2])
    assert history == {1: [(0.9, 10.0), (0.85, 8.0)], 2: [(0.95, 10.0)]}
    report = {"epoch": 1, "val_acc": 0.8, "params": 20}  # dominated by both earlier trials
    fresh = MultiObjectiveASHA(**settings)
    assert fresh.judge("a", report) == "CONTINUE"  # an empty rung stops nobody
    resumed = MultiObjectiveASHA(**settings, history=history)
    assert resumed.judge("a", report) == "STOP"


@pytest.mark.parametrize("eta", [2.0, 3.0])
def test_moasha_keeps_the_top_share_of_the_pareto_order(eta: float) -> None:
    dirs = ["minimize", "minimize"]
    recorded = [(float(i), float(9 - i)) for i in range(9)]  # one front of 9
    kept = 0
    for i in range(9):  # the same points again: each is judged against the 9 and itself
        kept += not moasha_stops(recorded[i], recorded, eta, dirs)
    order = pareto_order([*recorded, recorded[0]], dirs)
    assert order[:2] == [0, 8]  # the front's extremes first (infinite crowding distance)
    assert 1 <= kept <= -(-10 // int(eta))


def test_the_report_ranks_the_parameters_per_objective(tmp_path) -> None:
    """Accuracy driven by lr, size by width: each objective's ranking says so, with intervals."""
    storage = f"sqlite:///{tmp_path / 'mo.db'}"
    study = optuna.create_study(
        storage=storage, study_name="costs", directions=["maximize", "minimize"]
    )
    study.set_user_attr(records.OBJECTIVE, ["val_acc", "params"])  # as sweeplab stores them
    rng = np.random.default_rng(0)
    space = {"lr": FloatDistribution(1e-3, 1e-1, log=True), "width": IntDistribution(16, 256)}
    for _ in range(40):
        lr, width = (
            float(np.exp(rng.uniform(np.log(1e-3), np.log(1e-1)))),
            int(rng.integers(16, 257)),
        )
        acc = 0.9 - 0.1 * (np.log10(lr) + 2) ** 2 + rng.normal(0, 0.005)
        study.add_trial(
            create_trial(
                values=[acc, 785 * width], params={"lr": lr, "width": width}, distributions=space
            )
        )
    out = tmp_path / "report"
    text = write_report(storage, "costs", out).read_text(encoding="utf-8")
    section = text.split("## Importance per objective", 1)[1].split("\n## ", 1)[0]
    rows = {
        line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:4]]
        for line in section.splitlines()
        if line.startswith("| `")
    }
    assert set(rows) == {"`lr`", "`width`"}
    share = {p: [float(c.split(" [")[0]) for c in cells] for p, cells in rows.items()}
    assert share["`lr`"][0] > 0.8 > share["`width`"][0]  # val_acc: lr
    assert share["`width`"][1] > 0.8 > share["`lr`"][1]  # params: width
    assert all(" – " in c for cells in rows.values() for c in cells)  # every share has its interval
    assert "Warning" not in section  # 40 trials, 2 dimensions: a usable ranking


def test_the_history_has_a_panel_per_objective_with_its_own_best_so_far(tmp_path) -> None:
    """Three objectives, two directions: each panel's best-so-far line runs its own way, the
    Pareto trials are the coloured points, and the report's history is that figure."""
    from sweeplab.analysis._pareto import draw_objectives_history

    storage = f"sqlite:///{tmp_path / 'mo.db'}"
    study = optuna.create_study(
        storage=storage, study_name="three", directions=["maximize", "minimize", "minimize"]
    )
    study.set_user_attr(records.OBJECTIVE, ["val_acc", "epochs", "params"])
    rows = [(0.5, 9, 300), (0.8, 3, 900), (0.6, 1, 100), (0.4, 8, 800), (0.9, 12, 50)]
    for values in rows:
        study.tell(study.ask(), list(values))
    fig = draw_objectives_history(study)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_ylabel() for ax in axes] == ["val_acc", "epochs", "params"]
    assert [ax.get_title(loc="left").rsplit(", ", 1)[1] for ax in axes] == [
        "maximize",
        "minimize",
        "minimize",
    ]
    expected = [[0.5, 0.8, 0.8, 0.8, 0.9], [9, 3, 1, 1, 1], [300, 300, 100, 100, 50]]
    for ax, best in zip(axes, expected, strict=True):
        (line,) = ax.get_lines()
        assert list(line.get_ydata())[:-1] == best  # the step's last point repeats the end
    # #2 (0.6, 1, 100) beats #0 and #3 in all three; #1, #2 and #4 trade off.
    front = {int(x) for x in axes[0].collections[1].get_offsets()[:, 0]}
    assert front == {1, 2, 4}
    out = tmp_path / "report"
    text = write_report(storage, "three", out).read_text(encoding="utf-8")
    assert "![Optimisation history](optimization_history.png)" in text
    assert "optimisation history has a panel per objective" in text
    assert (out / "optimization_history.png").stat().st_size > 0


# --- a real study ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mo_study(ray_local, tmp_path_factory):
    """A 6-trial study of (val_acc up, params down): multi-objective TPE and ASHA (rungs at
    epochs 1 and 2 of 4, eta 2)."""
    tmp = tmp_path_factory.mktemp("mo")
    path = _spec(
        tmp,
        'objective = ["val_acc", "params"]\ndirection = ["maximize", "minimize"]',
        search='scheduler = "asha"\nsampler = "tpe"\nn_startup_trials = 3',
        n_trials=6,
        max_epochs=4,
    )
    spec = load_spec(path)
    summary = run_study(spec, console=Console(file=io.StringIO(), width=200))
    return spec, summary, tmp


@pytest.mark.slow
def test_the_study_has_two_directions_and_each_trial_both_values(mo_study) -> None:
    spec, summary, _ = mo_study
    study = optuna.load_study(study_name=spec.study.name, storage=spec.study.storage)
    assert study.directions == [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE]
    assert study.metric_names == ["val_acc", "params"]
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == summary.counts["complete"] >= 1  # an empty rung stops nobody
    assert summary.counts["complete"] + summary.counts["pruned"] == 6
    for t in complete:
        attrs = t.user_attrs
        assert len(t.values) == 2
        # Both values are the last epoch's: the accuracy measured then, the network's size.
        assert t.values[0] == pytest.approx(attrs["val_acc"][-1])
        assert t.values[1] > 0 and t.values[1] == int(t.values[1])
    # norm = batch/layer adds parameters to the same MLP, none adds none.
    by_norm = {t.params["norm"]: t.values[1] for t in complete}
    if "none" in by_norm and len(by_norm) > 1:
        assert by_norm["none"] == min(by_norm.values())
    assert summary.pareto and summary.best_number is None
    assert set(summary.pareto) == {t.number for t in study.best_trials}


@pytest.mark.slow
def test_best_prints_the_pareto_front(mo_study, capsys) -> None:
    spec, _, _ = mo_study
    study = optuna.load_study(study_name=spec.study.name, storage=spec.study.storage)
    front = {t.number for t in study.best_trials}
    code, out, _ = run_cli(capsys, "best", spec.study.name, "--storage", spec.study.storage)
    assert code == 0
    assert "Pareto front of tiny (maximize val_acc, minimize params)" in out
    assert "val_acc" in out and "params" in out and "norm=" in out
    code, out, _ = run_cli(
        capsys, "best", spec.study.name, "--storage", spec.study.storage, "--json"
    )
    data = json.loads(out)
    assert data["objectives"] == ["val_acc", "params"]
    assert {row["number"] for row in data["pareto_front"]} == front
    for row in data["pareto_front"]:
        trial = study.trials[row["number"]]
        assert [row["values"]["val_acc"], row["values"]["params"]] == trial.values


@pytest.mark.slow
def test_status_and_studies_show_both_objectives(mo_study, capsys) -> None:
    spec, _, _ = mo_study
    code, out, _ = run_cli(capsys, "status", spec.study.name, "--storage", spec.study.storage)
    assert code == 0 and "(maximize val_acc, minimize params)" in out
    assert " *" in out  # the front is marked
    code, out, _ = run_cli(capsys, "studies", "--storage", spec.study.storage)
    assert code == 0 and "on the Pareto front" in out
    code, out, _ = run_cli(
        capsys, "status", spec.study.name, "--storage", spec.study.storage, "--trial", "0"
    )
    assert code == 0 and ", " in out.splitlines()[0]


@pytest.mark.slow
def test_export_marks_pareto_optimal_trials(mo_study, capsys, tmp_path) -> None:
    spec, _, _ = mo_study
    out_csv = tmp_path / "trials.csv"
    code, _, _ = run_cli(
        capsys, "export", spec.study.name, "--storage", spec.study.storage, "-o", str(out_csv)
    )
    assert code == 0
    frame = pd.read_csv(out_csv)
    study = optuna.load_study(study_name=spec.study.name, storage=spec.study.storage)
    assert {"value.val_acc", "value.params", "pareto"} <= set(frame.columns)
    assert set(frame.loc[frame["pareto"], "number"]) == {t.number for t in study.best_trials}
    for _, row in frame.iterrows():
        trial = study.trials[row["number"]]
        values = [row["value.val_acc"], row["value.params"]]
        if trial.state == TrialState.COMPLETE:
            assert values == trial.values
        else:  # a pruned trial has no values (its curve is the first objective's)
            assert pd.isna(values).all() and not row["pareto"]


@pytest.mark.slow
def test_report_has_the_pareto_figure_and_table(mo_study, capsys, tmp_path) -> None:
    spec, _, _ = mo_study
    out = tmp_path / "report"
    code, _, err = run_cli(
        capsys, "report", spec.study.name, "--storage", spec.study.storage, "-o", str(out)
    )
    assert code == 0, err
    text = (out / "report.md").read_text(encoding="utf-8")
    assert "## Pareto front" in text and "![Pareto front](pareto_front.png)" in text
    assert (out / "pareto_front.png").stat().st_size > 1000
    study = optuna.load_study(study_name=spec.study.name, storage=spec.study.storage)
    for t in study.best_trials:
        assert f"| #{t.number} |" in text
    assert "## Importance per objective" in text


@pytest.mark.slow
def test_resume_accepts_the_same_objectives_and_refuses_other_directions(mo_study) -> None:
    spec, _, tmp = mo_study
    storage = open_storage(spec.study.storage)
    open_study(spec, storage)  # the stored spec matches: no conflict
    other = load_spec(
        _spec(tmp, 'objective = ["val_acc", "params"]\ndirection = ["maximize", "maximize"]')
    )
    other = other.with_overrides(storage=spec.study.storage)
    with pytest.raises(SpecConflict, match=r"study\.direction"):
        open_study(other, storage)


@pytest.mark.slow
def test_ablate_refuses_a_multi_objective_study(mo_study, capsys) -> None:
    spec, _, _ = mo_study
    code, _, err = run_cli(capsys, "ablate", spec.study.name, "--storage", spec.study.storage)
    assert code == 2 and "has 2 objectives" in err and "Traceback" not in err


@pytest.mark.slow
def test_moasha_prunes_the_study_at_its_rungs(mo_study) -> None:
    spec, _, _ = mo_study
    study = optuna.load_study(study_name=spec.study.name, storage=spec.study.storage)
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    assert pruned, "multi-objective ASHA with eta 2 stops some of 6 trials"
    for t in pruned:  # stopped where it judges, never at the budget's end
        assert t.user_attrs["epochs_run"] in asha_rungs(1, 2, 4)[:-1]
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        assert len(t.values) == 2 and t.user_attrs["epochs_run"] == 4


@pytest.mark.slow
def test_a_resumed_moasha_starts_from_the_stored_rung_vectors(mo_study) -> None:
    spec, _, _ = mo_study
    study = optuna.load_study(study_name=spec.study.name, storage=spec.study.storage)
    finished = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    for t in finished:  # the cost objective is kept per epoch, like the loop's own curves
        assert len(t.user_attrs["params"]) == t.user_attrs["epochs_run"]
        assert set(t.user_attrs["params"]) == {t.user_attrs["params"][0]}
    scheduler = make_scheduler(spec, pack=1, history=study)
    assert scheduler.rungs == [1, 2]
    assert len(scheduler.earlier[1]) == len(finished)  # every trial reached the first rung
    reached = [t for t in finished if t.user_attrs["epochs_run"] >= 2]
    assert sorted(scheduler.earlier[2]) == sorted(
        (t.user_attrs["val_acc"][1], float(t.user_attrs["params"][1])) for t in reached
    )
    assert make_scheduler(spec, pack=1).earlier == {1: [], 2: []}  # a new study: empty rungs


@pytest.mark.slow
def test_nsga2_runs_a_multi_objective_study(ray_local, tmp_path) -> None:
    path = _spec(
        tmp_path,
        'objective = ["val_loss", "params"]',
        search='scheduler = "none"\nsampler = "nsga2"\nn_startup_trials = 2',
        n_trials=3,
        max_epochs=1,
        concurrency=1,  # each generation is told before the next is asked
    )
    spec = load_spec(path)
    summary = run_study(spec, console=Console(file=io.StringIO(), width=200))
    study = optuna.load_study(study_name=spec.study.name, storage=spec.study.storage)
    # NSGA-II's own record: each trial's generation (population 2: the third is a child).
    key = optuna.samplers.NSGAIISampler._get_generation_key()
    assert sorted(t.system_attrs[key] for t in study.trials) == [0, 0, 1]
    assert study.directions == [StudyDirection.MINIMIZE, StudyDirection.MINIMIZE]
    assert summary.counts["complete"] == 3 and summary.pareto


def test_the_readme_example_is_a_valid_multi_objective_spec() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n### Several objectives\n", 1)[1].split("\n### ", 1)[0]
    text = section.split("```toml\n", 1)[1].split("```", 1)[0]
    from sweeplab.studies import parse_spec

    spec = parse_spec(text)
    assert spec.study.objectives == ("val_acc", "params")
    assert spec.study.directions == ("maximize", "minimize")
