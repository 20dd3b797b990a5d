"""Tests of sweeplab's analysis package against a real SQLite study written with plain Optuna.

The fixture writes the storage schema sweeplab uses (per-epoch user-attribute lists, intermediate
values per epoch, failure attributes, a crash-and-retry pair, a conditional parameter) with
objective values from a fixed formula, so every expected number below can be recomputed here.
"""

from __future__ import annotations

import doctest
import importlib
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState
from PIL import Image

from sweeplab import analysis
from sweeplab.analysis import (
    Frames,
    curves_frame,
    frames,
    param_importances,
    plot_importances,
    plot_learning_curves,
    plot_optimization_history,
    trials_frame,
    write_report,
)
from sweeplab.analysis._frames import CURVE_COLUMNS, TRIAL_COLUMNS
from sweeplab.analysis._report import StudyInfo, best_trial, rank_trials, render_report
from sweeplab.studies import StorageError, StudyNotFound
from sweeplab.studies.storage import describe_storage, mask_secrets

STUDY = "cifar-sweep"
SECRET = "hunter2"
SECRET_URL = f"postgresql://sweeper:{SECRET}@db.internal:5432/sweeps"
T0 = 1_700_000_000  # run_started_at of trial 0, unix seconds

# number -> (state, epochs, extra attrs). Trial 4 is an "old" trial: intermediate values only.
PLAN: dict[int, tuple[TrialState, int, dict[str, Any]]] = {
    0: (TrialState.COMPLETE, 6, {}),
    1: (TrialState.COMPLETE, 6, {}),
    2: (TrialState.PRUNED, 2, {}),
    3: (TrialState.COMPLETE, 6, {}),
    4: (TrialState.COMPLETE, 6, {"bare": True}),
    5: (TrialState.PRUNED, 2, {}),
    6: (TrialState.FAIL, 3, {"fail_reason": "error", "error": f"lost {SECRET_URL} | retry"}),
    7: (TrialState.COMPLETE, 6, {}),
    8: (TrialState.PRUNED, 4, {}),
    9: (TrialState.FAIL, 2, {"fail_reason": "interrupted", "interrupted": True}),
    10: (TrialState.COMPLETE, 5, {"retry_of": 9, "stopped_early": True}),
    11: (TrialState.RUNNING, 2, {"bare": True}),  # sweeplab writes the lists at the end
}
N_WAITING = 1  # trial 12, queued but not started


def params_of(n: int) -> dict[str, Any]:
    """Fixed hyperparameters of trial ``n``; sgd trials (odd n) also get ``momentum``."""
    p: dict[str, Any] = {
        "lr": 10 ** (-1 - (n % 4) * 0.75),
        "batch_size": (32, 64, 128)[n % 3],
        "optimizer": "sgd" if n % 2 else "adam",
        "init": ("kaiming", "xavier")[(n // 2) % 2],
        "dropout": round(0.05 * (n % 5), 2),
        "weight_decay": 10.0 ** -(2 + n % 4),
        "augment.flip": n % 2 == 0,
        "augment.crop": n % 3 != 0,
        "augment.noise": n % 4 == 1,
        "augment.mixup": n % 5 == 2,
    }
    if p["optimizer"] == "sgd":
        p["momentum"] = 0.8 + 0.05 * (n % 3)
    return p


def val_acc(n: int, epoch: int) -> float:
    """The objective curve: rises, peaks at epoch 4, then overfits slightly."""
    p = params_of(n)
    ceiling = 0.95 - 0.08 * abs(math.log10(p["lr"]) + 2.5) - 0.1 * p["dropout"]
    ceiling += 0.02 * p["augment.flip"] + 0.01 * p["augment.crop"]
    return round(ceiling * (1 - math.exp(-epoch / 1.5)) - 0.04 * max(0, epoch - 3), 6)


def curve(n: int, epochs: int) -> dict[str, list[float]]:
    acc = [val_acc(n, e) for e in range(1, epochs + 1)]
    return {
        "val_acc": acc,
        "train_acc": [round(a + 0.03, 6) for a in acc],
        "val_loss": [round(2.3 * (1 - a), 6) for a in acc],
        "train_loss": [round(2.3 * (0.97 - a), 6) for a in acc],
        "epoch_seconds": [10.0] * epochs,
    }


def best_epoch(n: int) -> int:
    epochs = PLAN[n][1]
    acc = [val_acc(n, e) for e in range(1, epochs + 1)]
    return acc.index(max(acc)) + 1


def _suggest(trial: optuna.Trial) -> None:
    trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    trial.suggest_categorical("batch_size", [32, 64, 128])
    optimizer = trial.suggest_categorical("optimizer", ["adam", "sgd"])
    trial.suggest_categorical("init", ["kaiming", "xavier"])
    trial.suggest_float("dropout", 0.0, 0.5)
    trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True)
    for name in ("flip", "crop", "noise", "mixup"):
        trial.suggest_categorical(f"augment.{name}", [False, True])
    if optimizer == "sgd":
        trial.suggest_float("momentum", 0.5, 0.99)


def build_study(storage: str) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=storage, study_name=STUDY, direction="maximize")
    study.set_user_attr("objective", "val_acc")
    study.set_user_attr("sweeplab_version", "0.1.0")
    study.set_user_attr("sweeplab_spec", {"study": {"name": STUDY}, "storage": SECRET_URL})
    for n, (state, epochs, extra) in PLAN.items():
        study.enqueue_trial(params_of(n))
        trial = study.ask()
        assert trial.number == n
        _suggest(trial)
        for epoch in range(1, epochs + 1):
            trial.report(val_acc(n, epoch), step=epoch)
        if not extra.get("bare"):
            attrs: dict[str, Any] = {
                **curve(n, epochs),
                "epochs_run": epochs,
                "run_started_at": T0 + 100 * n,
                "run_finished_at": T0 + 100 * n + 10 * epochs,
                "wall_time_s": 10.0 * epochs,
                "seed": n,
                "device": "cpu",
                "stopped_early": extra.get("stopped_early", False),
                **{k: v for k, v in extra.items() if k != "stopped_early"},
            }
            if state == TrialState.COMPLETE:
                attrs["best_epoch"] = best_epoch(n)
                attrs["test_acc"] = round(val_acc(n, best_epoch(n)) - 0.01, 6)
                attrs["test_loss"] = 0.5
            for key, value in attrs.items():
                trial.set_user_attr(key, value)
        if state == TrialState.COMPLETE:
            study.tell(trial, val_acc(n, best_epoch(n)))
        elif state != TrialState.RUNNING:
            study.tell(trial, state=state)
    study.enqueue_trial({"lr": 1e-3})


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'study.db'}"
    build_study(url)
    return url


@pytest.fixture(scope="module")
def fr(storage: str) -> Frames:
    return frames(storage, STUDY)


@pytest.fixture(scope="module")
def report_dir(storage: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(storage, STUDY, tmp_path_factory.mktemp("report")).parent


def _best_complete() -> int:
    complete = [n for n, (s, _, _) in PLAN.items() if s == TrialState.COMPLETE]
    return max(complete, key=lambda n: (val_acc(n, best_epoch(n)), -n))


# ---------------------------------------------------------------------------------------------
# Frames
# ---------------------------------------------------------------------------------------------


def test_trials_frame_columns_and_dtypes(fr: Frames) -> None:
    trials = fr.trials
    assert list(trials.columns[: len(TRIAL_COLUMNS)]) == list(TRIAL_COLUMNS)
    params = list(trials.columns[len(TRIAL_COLUMNS) :])
    assert params == sorted(f"param.{k}" for k in params_of(1))  # odd n: includes momentum
    for name, dtype in TRIAL_COLUMNS.items():
        assert str(trials[name].dtype) == dtype, name
    assert str(trials["param.lr"].dtype) == "float64"
    assert str(trials["param.batch_size"].dtype) == "Int64"
    assert str(trials["param.optimizer"].dtype) == "string"
    assert str(trials["param.augment.flip"].dtype) == "boolean"
    assert list(trials["number"]) == list(range(len(PLAN) + N_WAITING))


def test_trials_frame_states_and_values(fr: Frames) -> None:
    t = fr.trials.set_index("number")
    for n, (state, epochs, _) in PLAN.items():
        assert t.loc[n, "state"] == state.name
        assert t.loc[n, "epochs_run"] == epochs
        assert t.loc[n, "best_intermediate"] == max(val_acc(n, e) for e in range(1, epochs + 1))
        if state == TrialState.COMPLETE:
            assert t.loc[n, "value"] == val_acc(n, best_epoch(n))
        else:  # Optuna keeps the last report on PRUNED trials; it is not a final value
            assert pd.isna(t.loc[n, "value"])
    assert t.loc[12, "state"] == "WAITING"
    assert t.loc[12, "epochs_run"] == 0


def test_trials_frame_metrics_at_best_epoch_else_last(fr: Frames) -> None:
    t = fr.trials.set_index("number")
    be = best_epoch(0)
    assert be == 4
    assert t.loc[0, "best_epoch"] == be
    assert t.loc[0, "val_acc"] == curve(0, 6)["val_acc"][be - 1]
    assert t.loc[0, "train_loss"] == curve(0, 6)["train_loss"][be - 1]
    assert t.loc[0, "test_acc"] == round(val_acc(0, be) - 0.01, 6)
    assert t.loc[2, "val_acc"] == curve(2, 2)["val_acc"][-1]  # PRUNED: last epoch
    assert pd.isna(t.loc[2, "best_epoch"]) and pd.isna(t.loc[2, "test_acc"])


def test_trials_frame_params_and_conditional(fr: Frames) -> None:
    t = fr.trials.set_index("number")
    for n in PLAN:
        p = params_of(n)
        assert t.loc[n, "param.lr"] == pytest.approx(p["lr"])
        assert bool(t.loc[n, "param.augment.flip"]) is p["augment.flip"]
        if p["optimizer"] == "sgd":
            assert t.loc[n, "param.momentum"] == pytest.approx(p["momentum"])
        else:
            assert pd.isna(t.loc[n, "param.momentum"])
    assert t.loc[12, "param.lr"] == pytest.approx(1e-3)  # WAITING: the queued parameters
    assert pd.isna(t.loc[12, "param.optimizer"])


def test_trials_frame_times_failures_and_retries(fr: Frames) -> None:
    t = fr.trials.set_index("number")
    assert t.loc[3, "started"] == pd.Timestamp(T0 + 300, unit="s", tz="UTC")
    assert t.loc[3, "completed"] == pd.Timestamp(T0 + 360, unit="s", tz="UTC")
    assert t.loc[3, "duration_s"] == 60.0
    assert t.loc[3, "wall_time_s"] == 60.0
    assert t.loc[6, "fail_reason"] == "error" and SECRET in t.loc[6, "error"]
    assert t.loc[9, "fail_reason"] == "interrupted" and bool(t.loc[9, "interrupted"])
    assert t.loc[10, "retry_of"] == 9 and bool(t.loc[10, "stopped_early"])
    assert not bool(t.loc[0, "stopped_early"])
    # Trials without sweeplab attributes (older writer, still running) get NA, not an error.
    for n in (4, 11):
        for col in ("val_acc", "test_acc", "wall_time_s", "fail_reason", "stopped_early"):
            assert pd.isna(t.loc[n, col]), (n, col)
        assert pd.notna(t.loc[n, "started"])  # Optuna's own timestamp
    assert pd.isna(t.loc[11, "completed"]) and pd.isna(t.loc[11, "duration_s"])


def test_curves_frame(fr: Frames) -> None:
    curves = fr.curves
    assert list(curves.columns) == list(CURVE_COLUMNS)
    for name, dtype in CURVE_COLUMNS.items():
        assert str(curves[name].dtype) == dtype, name
    assert len(curves) == sum(epochs for _, epochs, _ in PLAN.values())
    assert len(curves) == fr.trials["epochs_run"].sum()
    c0 = curves[curves["number"] == 0]
    assert list(c0["epoch"]) == [1, 2, 3, 4, 5, 6]
    assert list(c0["objective"]) == [val_acc(0, e) for e in range(1, 7)]
    assert list(c0["train_loss"]) == curve(0, 6)["train_loss"]
    c11 = curves[curves["number"] == 11]  # RUNNING: objective only, lists come at the end
    assert set(c11["state"]) == {"RUNNING"} and list(c11["epoch"]) == [1, 2]
    assert c11["val_acc"].isna().all() and c11["objective"].notna().all()
    assert curves.equals(curves.sort_values(["number", "epoch"], kind="stable"))


def test_study_functions_match_frames(storage: str, fr: Frames) -> None:
    study = optuna.load_study(study_name=STUDY, storage=storage)
    pd.testing.assert_frame_equal(trials_frame(study), fr.trials)
    pd.testing.assert_frame_equal(curves_frame(study), fr.curves)


def test_empty_study(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    optuna.create_study(storage=url, study_name="empty", direction="minimize")
    trials, curves = frames(url, "empty")
    assert trials.empty and list(trials.columns) == list(TRIAL_COLUMNS)
    assert curves.empty and list(curves.columns) == list(CURVE_COLUMNS)
    assert param_importances(optuna.load_study(study_name="empty", storage=url)).empty
    text = write_report(url, "empty", tmp_path / "out").read_text()
    assert "no trial has completed" in text
    assert "no trials yet" in text
    assert not list((tmp_path / "out").glob("*.png"))


def test_missing_database_or_study(tmp_path: Path, storage: str) -> None:
    missing = tmp_path / "nope.db"
    with pytest.raises(StorageError, match="no study database"):
        frames(f"sqlite:///{missing}", STUDY)
    assert not missing.exists()  # no empty database left behind
    with pytest.raises(StudyNotFound, match=STUDY):  # lists the studies that exist
        frames(storage, "typo")


# ---------------------------------------------------------------------------------------------
# Importance
# ---------------------------------------------------------------------------------------------


def test_param_importances(storage: str) -> None:
    study = optuna.load_study(study_name=STUDY, storage=storage)
    first, second = param_importances(study), param_importances(study)
    assert not first.empty and first.attrs["reason"] == ""
    pd.testing.assert_series_equal(first, second)
    assert first.sum() == pytest.approx(1.0)
    assert (first >= 0).all() and first.is_monotonic_decreasing
    assert "momentum" not in first.index  # conditional: absent from adam trials
    assert first.attrs["excluded"] == ["momentum"]
    assert first.attrs["n_trials"] == 6
    assert not param_importances(study, seed=1).equals(first) or len(first) == 1


def test_param_importances_needs_two_complete_and_a_varying_space() -> None:
    study = optuna.create_study()
    study.enqueue_trial({"x": 1.0})
    study.optimize(lambda t: t.suggest_float("x", 0, 2), n_trials=1)
    assert "at least 2 complete trials" in param_importances(study).attrs["reason"]
    study.enqueue_trial({"x": 1.0})
    study.optimize(lambda t: t.suggest_float("x", 0, 2), n_trials=1)
    assert "trivial" in param_importances(study).attrs["reason"]


# ---------------------------------------------------------------------------------------------
# Report and figures
# ---------------------------------------------------------------------------------------------


def test_report_contents(report_dir: Path) -> None:
    text = (report_dir / "report.md").read_text()
    best = _best_complete()
    assert text.startswith(f"# Study report: {STUDY}\n")
    assert f"trial #{best}" in text
    assert f"{100 * val_acc(best, best_epoch(best)):.2f} %" in text  # accuracies in percent
    assert "| COMPLETE | 6 |" in text and "| PRUNED | 3 |" in text and "| FAIL | 2 |" in text
    assert "| RUNNING | 1 |" in text and "| WAITING | 1 |" in text
    assert "still running" in text
    assert "Trial #10 re-ran trial #9" in text
    for png in ("param_importances.png", "learning_curves.png", "optimization_history.png"):
        assert f"]({png})" in text  # relative links


def test_report_pngs_are_images(report_dir: Path) -> None:
    pngs = sorted(report_dir.glob("*.png"))
    assert [p.name for p in pngs] == [
        "generalization_gap.png",
        "interactions.png",
        "isolation.png",
        "learning_curves.png",
        "marginal_effects.png",
        "optimization_history.png",
        "parallel_coordinates.png",
        "param_importances.png",
    ]
    assert not list(report_dir.glob("*.svg"))  # PNG only, unless `report --svg`
    for png in pngs:
        assert png.stat().st_size > 10_000
        with Image.open(png) as image:
            assert image.format == "PNG"
            assert image.width >= 800 and image.height >= 300


def test_report_is_byte_identical(storage: str, report_dir: Path, tmp_path: Path) -> None:
    again = write_report(storage, STUDY, tmp_path)
    assert again.read_bytes() == (report_dir / "report.md").read_bytes()
    assert (tmp_path / "report.html").read_bytes() == (report_dir / "report.html").read_bytes()


def test_report_masks_passwords(report_dir: Path) -> None:
    text = (report_dir / "report.md").read_text()
    assert SECRET not in text  # neither in the spec nor in trial 6's error message
    assert "postgresql://sweeper:***@db.internal:5432/sweeps" in text


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("postgresql://user:secret@host/db", "postgresql://user:***@host/db"),
        ("postgresql+psycopg://u:p%40ss@h:5432/d", "postgresql+psycopg://u:***@h:5432/d"),
        ("mysql://u:pw@h/d?charset=utf8", "mysql://u:***@h/d?charset=utf8"),
        ("postgresql://h/d?user=u&password=pw", "postgresql://h/d?user=u&password=***"),
        ("postgresql://user@host/db", "postgresql://user@host/db"),
        ("sqlite:///runs/a:b.db", "sqlite:///runs/a:b.db"),
        ("err: x://a:b@c and y://d:e@f", "err: x://a:***@c and y://d:***@f"),
    ],
)
def test_mask_secrets(raw: str, masked: str) -> None:
    assert mask_secrets(raw) == masked


def test_describe_storage_masks_storage_objects() -> None:
    class FakeRDB(optuna.storages.InMemoryStorage):
        url = "postgresql://u:pw@h/d"

    assert describe_storage(FakeRDB()) == "postgresql://u:***@h/d"
    assert describe_storage(optuna.storages.InMemoryStorage()) == "InMemoryStorage"


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_ranking_and_best_follow_direction(direction: str, tmp_path: Path) -> None:
    study = optuna.create_study(direction=direction)
    for x in (0.3, 0.1, 0.5, 0.1):  # a tie: the lower number wins
        trial = study.ask()
        trial.report(x, step=1)
        study.tell(trial, x)
    trials = trials_frame(study)
    maximize = direction == "maximize"
    best = best_trial(trials, maximize)
    assert best is not None and int(best["number"]) == (2 if maximize else 1)
    assert list(rank_trials(trials, maximize)["number"]) == (
        [2, 0, 1, 3] if maximize else [1, 3, 0, 2]
    )
    path = plot_optimization_history(trials, tmp_path / "h.png", direction=direction)
    assert path.stat().st_size > 10_000


def test_trials_table_shows_top_20_and_counts_the_rest() -> None:
    study = optuna.create_study(direction="maximize")
    for i in range(25):
        study.enqueue_trial({"x": float(i)})
    study.optimize(lambda t: t.suggest_float("x", 0, 30), n_trials=25)
    info = StudyInfo(name="s", storage="mem", direction=study.direction)
    text = render_report(info, trials_frame(study), None, {})
    assert "Showing the top 20 of 25 trials; 5 more not shown." in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "COMPLETE" in line]
    assert [int(r.split("|")[1]) for r in rows[1:]] == list(range(24, 4, -1))  # [0] is summary


def test_plots_refuse_empty_input(tmp_path: Path) -> None:
    empty = Frames(trials_frame(optuna.create_study()), curves_frame(optuna.create_study()))
    with pytest.raises(ValueError, match="objective"):
        plot_learning_curves(empty.curves, tmp_path / "c.png")
    with pytest.raises(ValueError, match="COMPLETE"):
        plot_optimization_history(empty.trials, tmp_path / "h.png", direction="maximize")
    with pytest.raises(ValueError, match="because"):
        reason = pd.Series(dtype=float)
        reason.attrs["reason"] = "because"
        plot_importances(reason, tmp_path / "i.png")
    with pytest.raises(ValueError, match="direction"):
        plot_optimization_history(empty.trials, tmp_path / "h.png", direction="up")
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------------------------------------
# Package hygiene
# ---------------------------------------------------------------------------------------------


def test_public_api() -> None:
    assert sorted(analysis.__all__) == [
        "Frames",
        "ablation_bar_chart",
        "ablation_metric",
        "ablation_path",
        "ablation_path_chart",
        "ablation_table",
        "asha_rungs",
        "curves_frame",
        "directions_of",
        "frames",
        "greedy_path",
        "isolation_table",
        "objective_names",
        "param_importances",
        "pareto_frame",
        "pareto_numbers",
        "path_to_html",
        "path_to_latex",
        "path_to_markdown",
        "path_trials_frame",
        "plot_generalization_gap",
        "plot_importance_comparison",
        "plot_importances",
        "plot_interactions",
        "plot_isolation",
        "plot_learning_curves",
        "plot_marginal_effects",
        "plot_objectives_history",
        "plot_optimization_history",
        "plot_parallel_coordinates",
        "plot_pareto",
        "render_ablation_sections",
        "rung_correlations",
        "seed_variance",
        "seed_variance_markdown",
        "to_csv",
        "to_html",
        "to_latex",
        "to_markdown",
        "trials_frame",
        "write_ablation_tables",
        "write_path_tables",
        "write_report",
    ]


def test_import_has_no_side_effects() -> None:
    # matplotlib and seaborn load when a figure is drawn; torch, Ray and the trainer never.
    code = (
        "import sys, sweeplab.analysis; "
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('matplotlib', 'seaborn', 'torch', 'ray') or m.startswith('sweeplab.trainer')); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


@pytest.mark.parametrize(
    "module",
    ["sweeplab.analysis", "sweeplab.analysis._frames", "sweeplab.analysis._importance", "sweeplab.analysis._markdown",
     "sweeplab.analysis._plots", "sweeplab.analysis._report", "sweeplab.analysis._params",
     "sweeplab.analysis._rungs", "sweeplab.analysis._isolation", "sweeplab.analysis._search_plots",
     "sweeplab.analysis._report_html", "sweeplab.analysis._figures",
     "sweeplab.analysis._importance_basis", "sweeplab.analysis._report_importance"],
)  # fmt: skip
def test_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
