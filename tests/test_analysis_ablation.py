"""Tests of the ablation statistics and tables against numbers worked out by hand.

The fixed data (test accuracy per seed) and what follows from it with pencil and paper:

=========================  =======================  ========  ==========  ===========
variant                    test_acc per seed        mean      s²          s²/n
=========================  =======================  ========  ==========  ===========
baseline                   0.90 0.92 0.91           0.91      1/10000     1/30000
+mixup                     0.95 0.96 0.97           0.96      1/10000     1/30000
-dropout                   0.89 0.90 0.88 0.87      0.885     5/30000     1/24000
crop=on,weight_decay=off   0.91 0.93 0.90           0.91333   7/30000     7/90000
+cutout                    0.93                     0.93      --          --
=========================  =======================  ========  ==========  ===========

so, against the baseline, with SE² = s_v²/n_v + s_b²/n_b and Welch–Satterthwaite
ν = SE⁴ / ((s_v²/n_v)²/(n_v − 1) + (s_b²/n_b)²/(n_b − 1)):

- +mixup:    Δ = +0.05,   SE² = 2/30000,  ν = 4 exactly,   t = 0.05/√(2/30000) = √37.5
- -dropout:  Δ = −0.025,  SE² = 3/40000,  ν = 81/(25/3 + 8) = 243/49,  t = −5/√3
- crop=...:  Δ = +1/300,  SE² = 1/9000,   ν = 100/((49 + 9)/2) = 100/29,  t = 1/√10
"""

from __future__ import annotations

import doctest
import html.parser
import importlib
import io
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState
from PIL import Image
from scipy import stats

from sweeplab import analysis
from sweeplab.analysis import (
    ablation_bar_chart,
    ablation_table,
    to_csv,
    to_html,
    to_latex,
    to_markdown,
    trials_frame,
    write_ablation_tables,
)
from sweeplab.analysis.ablation.stats import ABLATION_COLUMNS, N_RESAMPLES, bootstrap_ci, welch

BASELINE = [0.90, 0.92, 0.91]
ACCS: dict[str, list[float]] = {
    "baseline": BASELINE,
    "+mixup": [0.95, 0.96, 0.97],
    "-dropout": [0.89, 0.90, 0.88, 0.87],
    "crop=on,weight_decay=off": [0.91, 0.93, 0.90],
    "+cutout": [0.93],
}
VARIANTS = list(ACCS)
# Trials that must not count: not COMPLETE, or COMPLETE without a variant.
IGNORED: list[dict[str, Any]] = [
    {"state": "FAIL", "variant": "+cutout", "seed": 1, "test_acc": 0.99},
    {"state": "PRUNED", "variant": "+mixup", "seed": 3, "test_acc": 0.10},
    {"state": "RUNNING", "variant": "baseline", "seed": 3, "test_acc": 0.50},
    {"state": "FAIL", "variant": "+only-failed", "seed": 0, "test_acc": 0.70},
    {"state": "COMPLETE", "variant": None, "seed": 0, "test_acc": 0.20},
]

# variant -> (Δ, SE², ν, t), from the module docstring.
HAND = {
    "+mixup": (0.05, 2 / 30000, 4.0, math.sqrt(37.5)),
    "-dropout": (-0.025, 3 / 40000, 243 / 49, -5 / math.sqrt(3)),
    "crop=on,weight_decay=off": (1 / 300, 1 / 9000, 100 / 29, 1 / math.sqrt(10)),
}
T_975_4DOF = 2.776445  # Student's t table, 0.975 quantile, 4 degrees of freedom


def trial_row(state: str, variant: str | None, seed: int, test_acc: float) -> dict[str, Any]:
    """A trials-frame row; train and val accuracy are test accuracy + 0.02 and + 0.01."""
    return {
        "state": state,
        "variant": variant,
        "seed": seed,
        "train_acc": test_acc + 0.02,
        "val_acc": test_acc + 0.01,
        "test_acc": test_acc,
        "test_loss": 1.0 - test_acc,
        "epochs_run": 10 + seed,
        "wall_time_s": 2.0 * (seed + 1),
    }


def fixed_frame(with_ignored: bool = True) -> pd.DataFrame:
    rows = [
        trial_row("COMPLETE", v, seed, acc)
        for v, accs in ACCS.items()
        for seed, acc in enumerate(accs)
    ]
    if with_ignored:
        rows += [trial_row(**r) for r in IGNORED]
    frame = pd.DataFrame(rows)
    frame.insert(0, "number", range(len(frame)))
    return frame


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return ablation_table(fixed_frame())


def row_of(table: pd.DataFrame, variant: str) -> pd.Series:
    return table.set_index("variant").loc[variant]


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------


def test_rows_columns_and_order(table: pd.DataFrame) -> None:
    assert list(table.columns) == list(ABLATION_COLUMNS)
    assert {c: str(t) for c, t in table.dtypes.items()} == ABLATION_COLUMNS
    assert list(table["variant"]) == VARIANTS
    assert list(table["n"]) == [3, 3, 4, 3, 1]
    assert table.attrs == {
        "baseline": "baseline",
        "metric": "test_acc",
        "confidence": 0.95,
        "method": "welch",
        "seed": 0,
        "n_resamples": N_RESAMPLES,
    }


def test_baseline_is_first_even_when_it_appears_later() -> None:
    frame = fixed_frame()
    frame = pd.concat(
        [frame[frame["variant"] != "baseline"], frame[frame["variant"] == "baseline"]]
    )
    assert list(ablation_table(frame)["variant"]) == ["baseline", *VARIANTS[1:]]


def test_means_and_stds_by_hand(table: pd.DataFrame) -> None:
    expected = {  # variant -> (mean, std with ddof = 1), from the module docstring
        "baseline": (0.91, 0.01),
        "+mixup": (0.96, 0.01),
        "-dropout": (0.885, math.sqrt(5 / 30000)),
        "crop=on,weight_decay=off": (2.74 / 3, math.sqrt(7 / 30000)),
    }
    for variant, (mean, std) in expected.items():
        row = row_of(table, variant)
        assert row["test_acc_mean"] == pytest.approx(mean, abs=1e-12)
        assert row["test_acc_std"] == pytest.approx(std, rel=1e-9)
        assert row["val_acc_mean"] == pytest.approx(mean + 0.01, abs=1e-12)
        assert row["val_acc_std"] == pytest.approx(std, rel=1e-9)
        assert row["train_acc_mean"] == pytest.approx(mean + 0.02, abs=1e-12)
        # gap = train − test = 0.02 on every seed: mean 0.02, no spread
        assert row["gap_mean"] == pytest.approx(0.02, abs=1e-12)
        assert row["gap_std"] == pytest.approx(0.0, abs=1e-12)
    dropout = row_of(table, "-dropout")
    assert dropout["epochs_run_mean"] == (10 + 11 + 12 + 13) / 4
    assert dropout["wall_time_s_mean"] == (2 + 4 + 6 + 8) / 4


@pytest.mark.parametrize("variant", list(HAND))
def test_welch_against_hand_formulas(table: pd.DataFrame, variant: str) -> None:
    delta, se2, dof, t = HAND[variant]
    row = row_of(table, variant)
    assert row["delta"] == pytest.approx(delta, abs=1e-12)
    assert row["dof"] == pytest.approx(dof, rel=1e-9)
    se = math.sqrt(se2)
    assert row["delta"] / se == pytest.approx(t, rel=1e-9)
    half = stats.t.ppf(0.975, dof) * se
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((delta - half, delta + half), rel=1e-9)
    assert row["p_value"] == pytest.approx(2 * stats.t.sf(abs(t), dof), rel=1e-9)


def test_four_dof_case_against_closed_forms(table: pd.DataFrame) -> None:
    # With ν = 4 the t distribution has a closed form:
    # F(t) = 1/2 + (3/8)·(t/√(1 + t²/4))·(1 − t²/(12·(1 + t²/4))), so p = 2·(1 − F(|t|)).
    row = row_of(table, "+mixup")
    t = math.sqrt(37.5)
    u = 1 + t * t / 4
    p = 2 * (1 - (0.5 + 3 / 8 * t / math.sqrt(u) * (1 - t * t / (12 * u))))
    assert row["p_value"] == pytest.approx(p, rel=1e-9)
    assert row["p_value"] == pytest.approx(0.0036022, abs=1e-7)
    se = math.sqrt(2 / 30000)
    assert row["ci_low"] == pytest.approx(0.05 - T_975_4DOF * se, abs=1e-7)
    assert row["ci_high"] == pytest.approx(0.05 + T_975_4DOF * se, abs=1e-7)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((0.027330, 0.072670), abs=1e-6)


@pytest.mark.parametrize("variant", list(HAND))
def test_matches_scipy_welch(table: pd.DataFrame, variant: str) -> None:
    result = stats.ttest_ind(ACCS[variant], BASELINE, equal_var=False)
    ci = result.confidence_interval(0.95)
    row = row_of(table, variant)
    assert row["p_value"] == pytest.approx(result.pvalue, rel=1e-9)
    assert row["dof"] == pytest.approx(result.df, rel=1e-9)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-9)


def test_significance_is_p_below_one_minus_confidence(table: pd.DataFrame) -> None:
    # p: +mixup 0.0036, -dropout 0.035, crop 0.77
    assert table["significant"].tolist() == [pd.NA, True, True, False, pd.NA]
    strict = ablation_table(fixed_frame(), confidence=0.99)
    assert row_of(strict, "+mixup")["significant"]
    assert not row_of(strict, "-dropout")["significant"]
    wider = row_of(strict, "+mixup")
    assert (
        wider["ci_high"] - wider["ci_low"]
        > row_of(table, "+mixup")["ci_high"] - (row_of(table, "+mixup")["ci_low"])
    )
    # Just either side of -dropout's p-value.
    p = row_of(table, "-dropout")["p_value"]
    assert row_of(ablation_table(fixed_frame(), confidence=1 - p - 1e-9), "-dropout")["significant"]
    assert not row_of(ablation_table(fixed_frame(), confidence=1 - p + 1e-9), "-dropout")[
        "significant"
    ]


def test_baseline_row_and_single_seed_have_no_test(table: pd.DataFrame) -> None:
    base = row_of(table, "baseline")
    assert base["delta"] == 0.0
    cutout = row_of(table, "+cutout")
    assert cutout["delta"] == pytest.approx(0.02, abs=1e-12)
    assert cutout["test_acc_mean"] == pytest.approx(0.93)  # the FAIL trial's 0.99 is ignored
    for row in (base, cutout):
        for name in ("ci_low", "ci_high", "dof", "p_value"):
            assert math.isnan(row[name]), name
        assert row["significant"] is pd.NA
    assert math.isnan(cutout["test_acc_std"])
    # A single-seed baseline leaves every comparison untested.
    one = fixed_frame()
    one = one[(one["variant"] != "baseline") | (one["seed"] == 0)]
    solo = ablation_table(one)
    assert solo["p_value"].isna().all() and solo["ci_low"].isna().all()
    assert row_of(solo, "+mixup")["delta"] == pytest.approx(0.96 - 0.90, abs=1e-12)


def test_only_complete_trials_with_a_variant_count(table: pd.DataFrame) -> None:
    clean = ablation_table(fixed_frame(with_ignored=False))
    pd.testing.assert_frame_equal(table, clean)
    assert "+only-failed" not in set(table["variant"])


def test_a_rerun_seed_counts_once_the_last_run() -> None:
    frame = fixed_frame()
    rerun = pd.DataFrame([trial_row("COMPLETE", "+mixup", 0, 0.98)])
    frame = pd.concat([frame, rerun], ignore_index=True)
    row = row_of(ablation_table(frame), "+mixup")
    assert row["n"] == 3
    assert row["test_acc_mean"] == pytest.approx((0.98 + 0.96 + 0.97) / 3, abs=1e-12)


def test_zero_variance_on_both_sides() -> None:
    r = welch(np.array([0.95, 0.95]), np.array([0.90, 0.90]))
    assert r.delta == pytest.approx(0.05)
    assert (r.ci_low, r.ci_high, r.p_value) == (r.delta, r.delta, 0.0)
    assert math.isnan(welch(np.array([0.9, 0.9]), np.array([0.9, 0.9])).p_value)


@pytest.mark.parametrize("metric", ["val_acc", "test_loss", "gap"])
def test_other_metrics(metric: str) -> None:
    table = ablation_table(fixed_frame(), metric=metric)
    row = row_of(table, "+mixup")
    expected = {"val_acc": 0.05, "test_loss": -0.05, "gap": 0.0}[metric]
    assert row["delta"] == pytest.approx(expected, abs=1e-12)
    assert table.attrs["metric"] == metric
    extra = metric == "test_loss"
    assert ("test_loss_mean" in table.columns) == extra
    if extra:
        assert row["test_loss_mean"] == pytest.approx(0.04, abs=1e-12)


def test_pure_and_deterministic() -> None:
    frame = fixed_frame()
    before = frame.copy()
    a = ablation_table(frame, method="bootstrap", seed=3)
    b = ablation_table(frame, method="bootstrap", seed=3)
    pd.testing.assert_frame_equal(frame, before)
    pd.testing.assert_frame_equal(a, b)


# ---------------------------------------------------------------------------------------------
# Bootstrap
# ---------------------------------------------------------------------------------------------

CLEAR_BASE = [0.881, 0.894, 0.902, 0.887, 0.913, 0.899, 0.905, 0.892]
CLEAR = {"baseline": CLEAR_BASE, "+aug": [a + 0.05 for a in CLEAR_BASE]}


def clear_frame(extra: dict[str, list[float]] | None = None) -> pd.DataFrame:
    groups = {**CLEAR, **(extra or {})}
    return pd.DataFrame(
        [trial_row("COMPLETE", v, s, a) for v, accs in groups.items() for s, a in enumerate(accs)]
    )


def test_bootstrap_contains_the_true_difference_and_is_seeded() -> None:
    table = ablation_table(clear_frame(), method="bootstrap", seed=7)
    row = row_of(table, "+aug")
    assert row["delta"] == pytest.approx(0.05, abs=1e-12)
    assert row["ci_low"] < 0.05 < row["ci_high"]
    # A difference of resampled means lies within ± (max − min) of the data = ± 0.032.
    assert row["ci_low"] >= 0.05 - 0.032 and row["ci_high"] <= 0.05 + 0.032
    assert row["significant"]
    same = ablation_table(clear_frame(), method="bootstrap", seed=7)
    pd.testing.assert_frame_equal(table, same)
    other = row_of(ablation_table(clear_frame(), method="bootstrap", seed=8), "+aug")
    assert (other["ci_low"], other["ci_high"]) != (row["ci_low"], row["ci_high"])
    assert other["p_value"] == row["p_value"]  # p is Welch's whatever the interval's method
    welch_row = row_of(ablation_table(clear_frame()), "+aug")
    assert (welch_row["ci_low"], welch_row["ci_high"]) != (row["ci_low"], row["ci_high"])


def test_bootstrap_interval_does_not_depend_on_other_variants() -> None:
    alone = row_of(ablation_table(clear_frame(), method="bootstrap"), "+aug")
    crowd = ablation_table(clear_frame({"-aug": [0.8, 0.81, 0.79]}), method="bootstrap")
    assert (row_of(crowd, "+aug")["ci_low"], row_of(crowd, "+aug")["ci_high"]) == (
        alone["ci_low"],
        alone["ci_high"],
    )


def test_bootstrap_ci_needs_two_values_a_side() -> None:
    rng = np.random.default_rng(0)
    low, high = bootstrap_ci(np.array([0.9]), np.array([0.8, 0.9]), rng=rng)
    assert math.isnan(low) and math.isnan(high)
    table = ablation_table(fixed_frame(), method="bootstrap")
    assert math.isnan(row_of(table, "+cutout")["ci_low"])


# ---------------------------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("confidence", [0.0, 1.0, -0.5, 1.5])
def test_rejects_confidence_outside_the_open_unit_interval(confidence: float) -> None:
    with pytest.raises(ValueError, match="confidence must be in"):
        ablation_table(fixed_frame(), confidence=confidence)


@pytest.mark.parametrize("confidence", [1e-6, 1 - 1e-6])
def test_accepts_confidence_just_inside(confidence: float) -> None:
    assert len(ablation_table(fixed_frame(), confidence=confidence)) == len(VARIANTS)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "student"}, "method must be one of"),
        ({"seed": -1}, "seed must be an int >= 0"),
        (
            {"baseline": "vanilla"},
            r"no COMPLETE trial of the baseline variant 'vanilla'.*'\+mixup'",
        ),
        ({"metric": "f1"}, r"lacks column\(s\) \['f1'\]"),
    ],
)
def test_rejects_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ablation_table(fixed_frame(), **kwargs)


def test_rejects_frames_that_are_not_an_ablation() -> None:
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['variant'\].*sweeplab ablate"):
        ablation_table(fixed_frame().drop(columns="variant"))
    frame = fixed_frame()
    with pytest.raises(ValueError, match="no COMPLETE trial with a `variant`"):
        ablation_table(frame[frame["state"] != "COMPLETE"])


# ---------------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------------


def test_markdown(table: pd.DataFrame) -> None:
    text = to_markdown(table)
    lines = text.splitlines()
    assert lines[0].startswith("| Variant | n | Train acc (%) |")
    assert len({line.count(" | ") for line in lines[:7]}) == 1  # header, rule, 5 rows
    assert lines[2] == (
        "| `baseline` | 3 | 93.0 ± 1.0 | 92.0 ± 1.0 | 91.0 ± 1.0 | 2.0 ± 0.0 | – | – | – | 11 | 4.0 |"
    )
    assert "| **+5.0**\\* | [+2.7, +7.3] | 0.004 |" in lines[3]
    assert "| **−2.5**\\* | [−4.7, −0.3] | 0.035 |" in lines[4]
    assert "| `crop=on,weight_decay=off` | 3 |" in lines[5]
    assert "| +0.3 | [−2.8, +3.5] | 0.770 |" in lines[5]
    assert lines[6] == "| `+cutout` | 1 | 95.0 | 94.0 | 93.0 | 2.0 | +2.0 | – | – | 10 | 2.0 |"
    footnote = lines[-1]
    assert "n = 1–4 seeds per variant" in footnote
    assert "95% CI of Δ: Welch's t interval" in footnote
    assert "p < 0.05" in footnote


def test_markdown_footnote_of_a_bootstrap_table() -> None:
    text = to_markdown(ablation_table(fixed_frame(), method="bootstrap", seed=5, confidence=0.9))
    assert "90% CI of Δ: percentile bootstrap (10,000 resamples, seed 5)" in text
    assert "p < 0.1." in text


def _strip_escaped(tex: str) -> str:
    return re.sub(r"\\[{}%_$&#]", "", tex)


def test_latex(table: pd.DataFrame) -> None:
    tex = to_latex(table)
    assert tex.isascii()
    lines = tex.splitlines()
    rules = [line for line in lines if line in ("\\toprule", "\\midrule", "\\bottomrule")]
    assert rules == ["\\toprule", "\\midrule", "\\bottomrule"]
    assert lines[1] == "\\begin{tabular}{lrrrrrrrrrr}"
    top, bottom = lines.index("\\toprule"), lines.index("\\bottomrule")
    rows = lines[top + 1 : bottom]
    rows.remove("\\midrule")
    assert len(rows) == 1 + len(VARIANTS)
    for row in rows:
        assert row.endswith(" \\\\")
        assert row.count(" & ") == 10
    body = _strip_escaped(tex)
    assert body.count("{") == body.count("}")
    assert not re.search(r"(?<!\\)[_%#&]", body.replace(" & ", " ").split("\n", 1)[1])
    for line in lines:
        assert _strip_escaped(line).count("$") % 2 == 0, line
    assert "crop=on,weight\\_decay=off & 3" in tex
    assert "\\textbf{+5.0}$^{*}$ & [+2.7, +7.3]" in tex
    assert "\\textbf{$-$2.5}$^{*}$ & [$-$4.7, $-$0.3]" in tex
    assert "96.0 $\\pm$ 1.0" in tex
    assert "\\end{tabular}" in tex and "$p$ $<$ 0.05" in tex


def test_csv_round_trips(table: pd.DataFrame) -> None:
    back = pd.read_csv(io.StringIO(to_csv(table)))
    assert list(back.columns) == list(table.columns)
    assert list(back["variant"]) == VARIANTS
    numeric = [c for c, t in ABLATION_COLUMNS.items() if t in ("float64", "int64")]
    pd.testing.assert_frame_equal(back[numeric], table[numeric], check_dtype=False, rtol=0, atol=0)
    assert back["significant"].tolist()[1:4] == [True, True, False]


class _TagCounter(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.depth: list[str] = []
        self.rows = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.depth.append(tag)
        self.rows += tag == "tr"

    def handle_endtag(self, tag: str) -> None:
        assert self.depth.pop() == tag


def test_html(table: pd.DataFrame) -> None:
    text = to_html(table)
    assert text.startswith('<table class="sweeplab-ablation"') and text.endswith("</table>\n")
    assert text.isascii()
    parser = _TagCounter()
    parser.feed(text)
    assert parser.depth == []
    assert parser.rows == 1 + len(VARIANTS) + 1  # header, variants, footnote
    assert "<strong>+5.0</strong>*" in text and "&minus;2.5" in text
    assert "(+" not in text and "(&minus;" not in text, "no parentheses around a delta"
    assert "96.0 &plusmn; 1.0" in text and "<link" not in text


def test_write_ablation_tables(table: pd.DataFrame, tmp_path: Path) -> None:
    paths = write_ablation_tables(table, tmp_path / "out", stem="cifar")
    assert {k: p.name for k, p in paths.items()} == {
        "md": "cifar.md",
        "tex": "cifar.tex",
        "csv": "cifar.csv",
        "html": "cifar.html",
    }
    writers = {"md": to_markdown, "tex": to_latex, "csv": to_csv, "html": to_html}
    for ext, path in paths.items():
        assert path.read_text(encoding="utf-8") == writers[ext](table)
    with pytest.raises(ValueError, match="stem must be a file name"):
        write_ablation_tables(table, tmp_path, stem="a/b")


def test_bar_chart(table: pd.DataFrame, tmp_path: Path) -> None:
    path = ablation_bar_chart(table, tmp_path / "fig" / "ablation.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 800 and image.height > 400
    with pytest.raises(ValueError, match="deltas are of 'test_acc', not 'val_acc'"):
        ablation_bar_chart(table, tmp_path / "x.png", metric="val_acc")
    with pytest.raises(ValueError, match="no variant besides the baseline"):
        ablation_bar_chart(table.iloc[:1], tmp_path / "y.png")
    assert sorted(p.name for p in tmp_path.rglob("*.png")) == ["ablation.png"]


# ---------------------------------------------------------------------------------------------
# A real study in SQLite, written with plain Optuna ask/tell
# ---------------------------------------------------------------------------------------------


def test_sqlite_study_end_to_end(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'ablation.db'}"
    study = optuna.create_study(storage=storage, study_name="ablate", direction="maximize")
    plan = [(v, s, a, TrialState.COMPLETE) for v, accs in ACCS.items() for s, a in enumerate(accs)]
    plan += [(r["variant"], r["seed"], r["test_acc"], TrialState[r["state"]]) for r in IGNORED]
    for variant, seed, acc, state in plan:
        trial = study.ask()
        if variant is not None:
            trial.set_user_attr("variant", variant)
        trial.set_user_attr("seed", seed)
        # Three epochs; the best is the second, whose metrics the frame reports.
        row = trial_row("COMPLETE", variant, seed, acc)
        trial.set_user_attr("train_acc", [0.5, row["train_acc"], 0.99])
        trial.set_user_attr("val_acc", [0.5, row["val_acc"], 0.40])
        trial.set_user_attr("train_loss", [1.0, 0.5, 0.4])
        trial.set_user_attr("val_loss", [1.0, 0.6, 0.7])
        for name in ("test_acc", "test_loss", "epochs_run", "wall_time_s"):
            trial.set_user_attr(name, row[name])
        trial.set_user_attr("best_epoch", 2)
        if state == TrialState.RUNNING:
            continue
        study.tell(trial, row["val_acc"] if state == TrialState.COMPLETE else None, state=state)

    frame = trials_frame(optuna.load_study(study_name="ablate", storage=storage))
    assert str(frame["variant"].dtype) == "string" and str(frame["seed"].dtype) == "Int64"
    assert frame["state"].value_counts().to_dict() == {
        "COMPLETE": 15,
        "FAIL": 2,
        "PRUNED": 1,
        "RUNNING": 1,
    }
    table = ablation_table(frame)
    pd.testing.assert_frame_equal(table, ablation_table(fixed_frame()))
    assert row_of(table, "+mixup")["p_value"] == pytest.approx(0.0036022, abs=1e-7)
    assert row_of(table, "-dropout")["dof"] == pytest.approx(243 / 49, rel=1e-9)
    paths = write_ablation_tables(table, tmp_path / "tables")
    assert "**+5.0**\\*" in paths["md"].read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# Package hygiene
# ---------------------------------------------------------------------------------------------


def test_public_names() -> None:
    for name in ("ablation_table", "ablation_bar_chart", "to_markdown", "to_latex", "to_csv"):
        assert name in analysis.__all__ and callable(getattr(analysis, name))
    assert {"to_html", "write_ablation_tables"} <= set(analysis.__all__)


@pytest.mark.parametrize(
    "module",
    [
        "sweeplab.analysis.ablation",
        "sweeplab.analysis.ablation.stats",
        "sweeplab.analysis.ablation.cells",
        "sweeplab.analysis.ablation.charts",
        "sweeplab.analysis.ablation.tables",
        "sweeplab.analysis.ablation.report",
    ],
)
def test_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
