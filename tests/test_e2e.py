"""End to end: real Ray Tune trials, real training on digits, a real SQLite study database."""

from __future__ import annotations

import io
import json
import math

import optuna
import pandas as pd
import pytest
from conftest import tiny_spec
from optuna.trial import TrialState
from rich.console import Console

from sweeplab.studies import load_spec, run_study
from sweeplab.studies.asha import asha_rungs
from sweeplab.studies.cli import main

pytestmark = pytest.mark.slow


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


def _load(spec) -> optuna.Study:
    # Plain Optuna, no sweeplab code: the database is a standard Optuna study.
    return optuna.load_study(study_name=spec.study.name, storage=spec.study.storage)


@pytest.fixture(scope="module")
def finished(ray_local, tmp_path_factory):
    """An 8-trial ASHA study, run once for the whole module."""
    tmp = tmp_path_factory.mktemp("e2e")
    spec = load_spec(tiny_spec(tmp, n_trials=8, max_epochs=6))
    summary = run_study(spec, console=_quiet())
    return spec, summary


def test_budget_is_met_with_pruned_trials_stored_as_pruned(finished) -> None:
    spec, summary = finished
    study = _load(spec)
    states = [t.state for t in study.trials]
    finished_count = states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED)
    assert finished_count == 8 == summary.counts["complete"] + summary.counts["pruned"]
    assert states.count(TrialState.PRUNED) >= 1, "ASHA with reduction factor 2 stops some trials"
    assert states.count(TrialState.RUNNING) == 0
    for t in study.trials:
        attrs = t.user_attrs
        epochs = attrs["epochs_run"]
        # The objective curve is the intermediate values, one per epoch, equal to val_acc.
        assert sorted(t.intermediate_values) == list(range(1, epochs + 1))
        assert [t.intermediate_values[e] for e in range(1, epochs + 1)] == pytest.approx(
            attrs["val_acc"]
        )
        assert (
            len(attrs["train_loss"]) == len(attrs["train_acc"]) == len(attrs["val_loss"]) == epochs
        )
        assert attrs["seed"] == spec.study.seed + t.number
        assert {"torch_version", "sweeplab_version", "node_ip", "run_started_at"} <= set(attrs)
        if t.state == TrialState.COMPLETE:
            assert 0.0 < attrs["test_acc"] <= 1.0
            assert t.value == pytest.approx(max(attrs["val_acc"]))  # restore_best_weights
            assert attrs["val_acc"][attrs["best_epoch"] - 1] == pytest.approx(t.value)
        else:
            # Optuna's convention: a pruned trial's value is its last intermediate value.
            assert "test_acc" not in attrs and t.value == t.intermediate_values[epochs]
            assert epochs < spec.budget.max_epochs
            # Stopped where ASHA judges, although epochs between rungs reach Tune in batches.
            search = spec.search
            assert epochs in asha_rungs(search.grace_period, search.reduction_factor, 6)


def test_conditional_parameters_only_where_they_apply(finished) -> None:
    spec, _ = finished
    for t in _load(spec).trials:
        assert ("momentum" in t.params) == (t.params["optimizer"] == "sgd")
        assert ("mixup_alpha" in t.params) == t.params["augment.mixup"]


def test_running_again_does_no_work_and_extending_runs_exactly_the_difference(finished) -> None:
    spec, _ = finished
    before = {t.number: (t.state, t.value) for t in _load(spec).trials}
    again = run_study(spec, console=_quiet())
    assert again.ran == 0
    assert {t.number: (t.state, t.value) for t in _load(spec).trials} == before

    more = run_study(spec.with_overrides(n_trials=10), console=_quiet())
    trials = _load(spec).trials
    assert more.counts["complete"] + more.counts["pruned"] == 10
    assert {t.number: (t.state, t.value) for t in trials if t.number in before} == before


def test_inspecting_commands_read_the_study(finished, tmp_path, capsys) -> None:
    spec, _ = finished
    storage = ["--storage", spec.study.storage]

    def sweeplab(*args: str) -> str:
        with pytest.raises(SystemExit) as code:
            main([*args])
        out = capsys.readouterr()
        assert code.value.code == 0, out.err
        return out.out

    assert "complete" in sweeplab("status", "tiny", *storage)
    best = json.loads(sweeplab("best", "tiny", *storage, "--json"))
    study = _load(spec)
    assert best["number"] == study.best_trial.number and best["value"] == study.best_value
    assert isinstance(best["params"]["augment"], list)
    sweeplab("export", "tiny", *storage, "-o", str(tmp_path / "t.csv"))
    sweeplab("export", "tiny", *storage, "-o", str(tmp_path / "t.parquet"))
    csv = pd.read_csv(tmp_path / "t.csv")
    assert len(csv) == len(study.trials) == len(pd.read_parquet(tmp_path / "t.parquet"))
    assert {"number", "state", "value", "param.lr", "test_acc", "duration_s"} <= set(csv.columns)
    # One train_acc per trial: best --json says what export (and status, the report) say: the
    # eval-mode accuracy on the training split, not the running accuracy of the best epoch.
    row = csv.set_index("number").loc[best["number"]]
    attrs = study.best_trial.user_attrs
    assert best["metrics"]["train_acc"] == pytest.approx(row["train_acc"])
    assert best["metrics"]["train_acc"] == pytest.approx(attrs["final_train_acc"])
    assert attrs["final_train_acc"] != attrs["train_acc"][attrs["best_epoch"] - 1]
    sweeplab("report", "tiny", *storage, "-o", str(tmp_path / "report"))
    report = (tmp_path / "report" / "report.md").read_text()
    assert f"trial #{study.best_trial.number}" in report
    assert sorted(p.suffix for p in (tmp_path / "report").iterdir()).count(".png") >= 3


def test_two_trials_really_run_at_once(ray_local, tmp_path) -> None:
    spec = load_spec(tiny_spec(tmp_path, n_trials=6, max_epochs=12, scheduler="none"))
    run_study(spec, console=_quiet())
    spans = sorted(
        (t.user_attrs["run_started_at"], t.user_attrs["run_finished_at"])
        for t in _load(spec).trials
    )
    most_at_once = max(
        sum(1 for start, end in spans if start <= moment < end) for moment, _ in spans
    )
    assert most_at_once == 2


DIVERGING_SPACE = """
[space.lr]
type = "categorical"
choices = [0.01, 1e30]

[space.optimizer]
value = "sgd"
"""


def test_diverging_trials_fail_with_their_reason_and_the_study_goes_on(ray_local, tmp_path) -> None:
    spec = load_spec(
        tiny_spec(tmp_path, n_trials=3, max_epochs=3, scheduler="none", space=DIVERGING_SPACE)
    )
    summary = run_study(spec, console=_quiet())
    trials = _load(spec).trials
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert summary.counts["complete"] == 3
    assert failed, "lr = 1e30 with SGD must diverge"
    for t in failed:
        assert t.params["lr"] == 1e30
        assert t.user_attrs["fail_reason"] == "diverged"
        assert "diverged at epoch" in t.user_attrs["error"]
    for t in trials:
        if t.state == TrialState.COMPLETE:
            assert t.params["lr"] == 0.01 and math.isfinite(t.value)


SMALL_SPACE = """
[space.lr]
type = "float"
low = 0.005
high = 0.03
step = 0.005

[space.optimizer]
type = "categorical"
choices = ["sgd", "adam"]
"""


@pytest.mark.parametrize("sampler", ["tpe", "random", "grid", "cmaes"])
def test_every_sampler_runs_a_study(ray_local, tmp_path, sampler) -> None:
    spec = load_spec(
        tiny_spec(
            tmp_path, n_trials=4, max_epochs=2, sampler=sampler, scheduler="none", space=SMALL_SPACE
        )
    )
    summary = run_study(spec, console=_quiet())
    trials = _load(spec).trials
    assert summary.counts["complete"] == 4 == len(trials)
    if sampler == "grid":
        points = {(t.params["lr"], t.params["optimizer"]) for t in trials}
        assert len(points) == 4, "the grid sampler visits distinct grid points"


def test_grid_budget_is_capped_at_the_grid_size(ray_local, tmp_path) -> None:
    space = '[space.optimizer]\ntype = "categorical"\nchoices = ["sgd", "adam"]\n'
    spec = load_spec(
        tiny_spec(tmp_path, n_trials=9, max_epochs=1, sampler="grid", scheduler="none", space=space)
    )
    summary = run_study(spec, console=_quiet())
    assert summary.counts["complete"] == 2 and summary.n_trials == 2
    assert sorted(t.params["optimizer"] for t in _load(spec).trials) == ["adam", "sgd"]


def test_time_limit_stops_starting_new_trials(ray_local, tmp_path) -> None:
    spec = load_spec(
        tiny_spec(
            tmp_path,
            n_trials=50,
            max_epochs=1,
            scheduler="none",
            budget_extra="time_limit_s = 0.001",
        )
    )
    summary = run_study(spec, console=_quiet())
    assert summary.stop_reason == "time limit reached"
    assert summary.counts["complete"] < 50 and summary.counts["running"] == 0


def test_optuna_dashboard_reads_the_database(finished) -> None:
    """optuna-dashboard serves the study from the database, with no sweeplab code involved."""
    import wsgiref.util

    import optuna_dashboard  # a dev dependency: never skipped

    spec, _ = finished
    app = optuna_dashboard.wsgi(spec.study.storage)

    def get(path: str) -> dict:
        environ: dict = {}
        wsgiref.util.setup_testing_defaults(environ)
        environ["PATH_INFO"] = path
        status: list[str] = []
        body = b"".join(app(environ, lambda s, headers, *exc: status.append(s)))
        assert status == ["200 OK"], (path, status, body[:200])
        return json.loads(body)

    summaries = get("/api/studies")["study_summaries"]
    (summary,) = [s for s in summaries if s["study_name"] == "tiny"]
    detail = get(f"/api/studies/{summary['study_id']}")
    assert len(detail["trials"]) == len(_load(spec).trials)
    assert {t["state"] for t in detail["trials"]} >= {"Complete", "Pruned"}


def test_hyperband_runs_every_bracket_and_stops_trials_only_at_rungs(ray_local, tmp_path) -> None:
    """scheduler = "hyperband": Ray's ASHA with one bracket per first rung; a trial of bracket s
    is first judged at grace * eta**s, so some trials run past the first rung of bracket 0."""
    from ray.tune.schedulers import ASHAScheduler

    from sweeplab.studies._run import make_scheduler

    spec = load_spec(
        tiny_spec(tmp_path, n_trials=12, max_epochs=8, scheduler="hyperband", concurrency=2)
    )
    scheduler = make_scheduler(spec, pack=1)
    assert isinstance(scheduler, ASHAScheduler)
    assert len(scheduler._brackets) == 4  # first rungs 1, 2, 4, 8 (grace 1, eta 2, 8 epochs)
    assert len(make_scheduler(spec.with_overrides(max_epochs=1), pack=1)._brackets) == 1
    summary = run_study(spec, console=_quiet())
    assert summary.counts["complete"] + summary.counts["pruned"] == 12
    rungs = asha_rungs(1, 2, 8)
    for t in _load(spec).trials:
        epochs = t.user_attrs["epochs_run"]
        if t.state == TrialState.PRUNED:
            assert epochs in rungs and epochs < 8, epochs
        else:
            assert t.state == TrialState.COMPLETE and epochs == 8
