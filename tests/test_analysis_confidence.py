"""Analysis that says how sure it is: bootstrap intervals on importances, a warning (or no ranking)
under a minimum of trials, importances measured at an ASHA rung so pruned trials count, and
marginal-effect summaries that one outlier cannot bend and that are not drawn through too few
points.

Studies are real Optuna studies in SQLite, written as sweeplab writes them (the objective
reported once per epoch as an intermediate value, the stored spec with ASHA's numbers), with
objectives from fixed formulas so the expected answer is known: ``x`` matters a hundred times
more than ``y``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.container import BarContainer
from optuna.trial import TrialState

from sweeplab.analysis import write_report
from sweeplab.analysis._importance import importance_intervals
from sweeplab.analysis._importance_basis import (
    MIN_RELIABLE_TRIALS,
    MIN_TRIALS_TO_RANK,
    Verdict,
    format_share,
    importance_basis,
    needed_trials,
    ranking_verdict,
)
from sweeplab.analysis._params import MIN_BINS, MIN_POINTS_PER_BIN, binned_summary
from sweeplab.analysis._search_plots import draw_importance_comparison, draw_marginal_effects

SPEC = {
    "study": {"name": "s", "objective": "val_acc"},
    "search": {"scheduler": "asha", "grace_period": 2, "reduction_factor": 3},
    "budget": {"max_epochs": 18},
}  # rungs at epochs 2, 6, 18


def objective(x: float, y: float, epoch: int = 18) -> float:
    """Rises with the epoch; ``x`` moves it by up to 0.5, ``y`` by up to 0.005."""
    return round(0.4 + 0.5 * x + 0.005 * y + 0.01 * epoch, 6)


def point(n: int) -> tuple[float, float, str]:
    """Trial ``n``'s parameters: a fixed low-discrepancy spread, the same on every run."""
    return (n * 0.618034) % 1.0, (n * 0.414214) % 1.0, ("sgd", "adam")[n % 2]


def build(url: str, name: str, *, complete: int, pruned_at_2: int = 0, spec: bool = True) -> None:
    """``complete`` trials trained to epoch 18, then ``pruned_at_2`` stopped at epoch 2."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=url, study_name=name, direction="maximize")
    study.set_user_attr("objective", "val_acc")
    if spec:
        study.set_user_attr("sweeplab_spec", SPEC)
    for n in range(complete + pruned_at_2):
        x, y, opt = point(n)
        study.enqueue_trial({"x": x, "y": y, "opt": opt})
        trial = study.ask()
        trial.suggest_float("x", 0.0, 1.0)
        trial.suggest_float("y", 0.0, 1.0)
        trial.suggest_categorical("opt", ["sgd", "adam"])
        epochs = 18 if n < complete else 2
        curve = [objective(x, y, e) for e in range(1, epochs + 1)]
        for epoch, value in enumerate(curve, start=1):
            trial.report(value, step=epoch)
        trial.set_user_attr("val_acc", curve)
        trial.set_user_attr("epochs_run", epochs)
        if n < complete:
            trial.set_user_attr("best_epoch", epochs)
            study.tell(trial, curve[-1])
        else:
            study.tell(trial, state=TrialState.PRUNED)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'study.db'}"
    build(url, "many", complete=30, spec=False)
    build(url, "few", complete=8, spec=False)
    build(url, "three", complete=3, spec=False)
    build(url, "asha", complete=4, pruned_at_2=18)
    return url


def _trials(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)


def _importance_rows(text: str) -> list[list[str]]:
    section = text.split("## Hyperparameter importance", 1)[1].split("\n## ", 1)[0]
    return [
        [c.strip() for c in line.strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("| `")
    ]


# ---------------------------------------------------------------------------------------------
# Bootstrap intervals
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["fanova", "ped_anova"])
def test_intervals_contain_the_estimate_and_separate_what_matters(db: str, method: str) -> None:
    trials = _trials(db, "many")
    direction = optuna.study.StudyDirection.MAXIMIZE
    ci = importance_intervals(trials, direction, method=method, n_resamples=30)
    assert list(ci.columns) == ["importance", "low", "high"]
    assert ci.attrs["n_resamples"] == 30 and ci.attrs["level"] == 0.9
    assert ci.attrs["n_trials"] == 30
    assert ((ci["low"] <= ci["importance"] + 1e-12) & (ci["importance"] <= ci["high"])).all()
    assert ci.index[0] == "x"
    # x matters a hundred times more than y: their intervals do not overlap
    assert ci.loc["x", "low"] > ci.loc["y", "high"]
    again = importance_intervals(trials, direction, method=method, n_resamples=30)
    pd.testing.assert_frame_equal(ci, again)  # seeded: the same trials give the same interval


def test_intervals_refuse_bad_arguments_and_stay_empty_without_data(db: str) -> None:
    trials = _trials(db, "few")
    direction = optuna.study.StudyDirection.MAXIMIZE
    with pytest.raises(ValueError, match="level must be a coverage in"):
        importance_intervals(trials, direction, level=1.0)
    with pytest.raises(ValueError, match="n_resamples must be"):
        importance_intervals(trials, direction, n_resamples=-1)
    assert (
        importance_intervals(trials, direction, n_resamples=0)[["low", "high"]].isna().all().all()
    )
    empty = importance_intervals([], direction)
    assert empty.empty and "at least 2 complete trials" in empty.attrs["reason"]


def test_figure_draws_the_intervals_as_error_bars(db: str) -> None:
    trials = _trials(db, "many")
    direction = optuna.study.StudyDirection.MAXIMIZE
    tables = {
        label: importance_intervals(trials, direction, method=m, n_resamples=20)
        for label, m in (("fANOVA", "fanova"), ("PED-ANOVA", "ped_anova"))
    }
    for frame in tables.values():
        frame.attrs["measured_at"] = "epoch 6"
    fig = draw_importance_comparison(tables)
    for ax, frame in zip(fig.axes, tables.values(), strict=True):
        assert ax.get_title() == "fANOVA (30 trials at epoch 6)" or ax.get_title().startswith(
            "PED-ANOVA (30 trials at epoch 6)"
        )
        (bars,) = [c for c in ax.containers if isinstance(c, BarContainer)]
        assert bars.errorbar is not None
        segments = bars.errorbar.lines[2][0].get_segments()
        rows = [t.get_text() for t in ax.get_yticklabels()]  # bottom-up
        for segment, param in zip(segments, rows, strict=True):
            low, high = frame.loc[param, ["low", "high"]]
            assert segment[0][0] == pytest.approx(min(low, frame.loc[param, "importance"]))
            assert segment[1][0] == pytest.approx(high)
    assert "90% percentile bootstrap interval over 20 resamples" in fig.texts[0].get_text()


# ---------------------------------------------------------------------------------------------
# How many trials a ranking needs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "dims", "verdict"),
    [(MIN_TRIALS_TO_RANK - 1, 2, Verdict.TOO_FEW), (MIN_TRIALS_TO_RANK, 2, Verdict.UNRELIABLE),
     (MIN_RELIABLE_TRIALS - 1, 2, Verdict.UNRELIABLE), (MIN_RELIABLE_TRIALS, 2, Verdict.RELIABLE),
     (25, 13, Verdict.UNRELIABLE), (26, 13, Verdict.RELIABLE)],
)  # fmt: skip
def test_ranking_verdict_boundaries(n: int, dims: int, verdict: Verdict) -> None:
    assert ranking_verdict(n, dims) is verdict
    assert needed_trials(13) == 26


def test_unreliable_shares_have_at_most_two_significant_digits() -> None:
    for v in (0.123456, 0.0456789, 0.999, 0.5, 0.01):
        text = format_share(v, reliable=False)
        assert len(text.lstrip("0.").replace(".", "")) <= 2, text


def test_report_warns_under_the_minimum(db: str, tmp_path: Path) -> None:
    text = write_report(db, "few", tmp_path).read_text()
    assert "> **Warning:** the ranking is unreliable: 8 trials, fewer than the 20 needed" in text
    rows = _importance_rows(text)
    assert rows[0][0] == "`x`"
    for row in rows:
        for number in re.findall(r"\d+(?:\.\d+)?", " ".join(row[1:])):
            assert len(number.lstrip("0.").replace(".", "")) <= 2, row
    assert "fANOVA 90% interval" in text and (tmp_path / "param_importances.png").exists()


def test_report_does_not_rank_very_few_trials(db: str, tmp_path: Path) -> None:
    text = write_report(db, "three", tmp_path).read_text()
    assert "Not ranked: 3 trials are too few (fewer than 5)" in text
    assert not _importance_rows(text) and "| Parameter | fANOVA" not in text
    assert not (tmp_path / "param_importances.png").exists()


# ---------------------------------------------------------------------------------------------
# Measured at a rung, so pruned trials count
# ---------------------------------------------------------------------------------------------


def test_basis_is_the_highest_rung_with_enough_trials(db: str) -> None:
    trials = _trials(db, "asha")  # 4 complete, 18 pruned at epoch 2
    basis = importance_basis(trials, [2, 6, 18])
    assert basis.epoch == 2 and len(basis.trials) == 22
    assert (basis.n_complete, basis.n_pruned) == (4, 18)
    by_x = {t.params["x"]: t.value for t in basis.trials}
    for n in range(22):  # each stand-in carries its trial's objective at epoch 2
        x, y, _ = point(n)
        assert by_x[x] == objective(x, y, 2)
    # with a lower bar, the later rung that 4 trials reached is not preferred: it holds no more
    # trials than completed, so the final objective serves
    assert importance_basis(trials, [2, 6, 18], min_trials=4).epoch is None
    assert importance_basis(trials, None).epoch is None  # no ASHA: the complete trials only
    many = importance_basis(_trials(db, "many"), [2, 6, 18])
    assert many.epoch is None and len(many.trials) == 30  # enough complete trials


def test_report_measures_at_the_rung_and_says_so(db: str, tmp_path: Path) -> None:
    text = write_report(db, "asha", tmp_path).read_text()
    assert (
        "Measured on the objective at epoch 2, an ASHA rung, of the 22 trials that reached it "
        "(4 that completed, 18 pruned there or later)." in text
    )
    assert "so both count the pruned trials here" in text
    assert "over 40 resamples of the 22 trials" in text
    assert "Figure: importance by fANOVA and PED-ANOVA over 22 trials measured at epoch 2" in text
    assert "**Warning:** the ranking is unreliable" not in text  # 22 trials for 3 dimensions
    assert _importance_rows(text)[0][0] == "`x`"


# ---------------------------------------------------------------------------------------------
# Marginal effects
# ---------------------------------------------------------------------------------------------


def _trials_frame(xs: list[float], ys: list[float], **params: list) -> pd.DataFrame:
    frame = pd.DataFrame({"number": range(len(xs)), "state": "COMPLETE", "value": ys,
                          "param.x": xs})  # fmt: skip
    for name, values in params.items():
        frame["param." + name] = values
    return frame


def test_binned_summary_is_not_moved_by_an_outlier() -> None:
    xs = pd.Series(np.linspace(0, 1, 20))
    ys = pd.Series([0.9] * 20)
    ys[2] = -5.0  # one diverged trial in the first bin
    summary = binned_summary(xs, ys)
    assert summary["n"].tolist() == [5, 5, 5, 5]
    assert summary["median"].tolist() == pytest.approx([0.9] * 4)
    mean_first_bin = ys[:5].mean()
    assert mean_first_bin < 0  # what the old bucket mean drew
    # a bin with too few trials is dropped rather than summarised
    assert binned_summary(pd.Series([1.0, 1.0, 2.0]), pd.Series([0.1, 0.2, 0.3])).empty


def test_marginal_line_is_the_median_in_its_band(tmp_path: Path) -> None:
    xs = list(np.linspace(0.0, 1.0, 40))
    ys = [0.5 + 0.3 * x for x in xs]
    ys[1] = -10.0  # diverged
    fig = draw_marginal_effects(_trials_frame(xs, ys))
    (ax,) = [a for a in fig.axes if a.get_visible()]
    (line,) = ax.get_lines()
    assert len(line.get_xdata()) == 4  # 40 trials: 4 equal-count bins of 10
    assert min(line.get_ydata()) > 0.5  # the mean of the first bin would be below -0.5
    assert any(isinstance(c, PolyCollection) for c in ax.collections)  # the IQR band


def test_no_marginal_line_through_too_few_points() -> None:
    few = 3 * MIN_POINTS_PER_BIN - 1  # not enough for MIN_BINS full bins
    xs = [i / few for i in range(few)]
    frame = _trials_frame(xs, [0.5 + x for x in xs], opt=["a"] * (few - 2) + ["b", "b"])
    fig = draw_marginal_effects(frame)
    by_title = {a.get_title(): a for a in fig.axes if a.get_visible()}
    numeric = by_title[f"x (n = {few})"]
    assert not numeric.get_lines()
    assert not [c for c in numeric.collections if isinstance(c, PolyCollection)]
    assert f"a trend needs ≥ {MIN_POINTS_PER_BIN} trials in ≥ {MIN_BINS} bins" in " ".join(
        t.get_text() for t in numeric.texts
    )
    categorical = by_title[f"opt (n = {few})"]
    # one box (whiskers, caps, median, box: all lines) at category "a" only; "b" has 2 trials
    positions = {round(float(np.mean(line.get_xdata()))) for line in categorical.get_lines()}
    assert positions == {0}
    assert len(categorical.collections) == 2  # the dots of "a" and of "b"
