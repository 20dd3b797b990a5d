"""Ablation statistics: every variant against the baseline, over seeds.

An ablation study (``sweeplab ablate``) trains each variant of one configuration -- the baseline,
a component removed (``-dropout``), one added (``+mixup``) or a combination
(``crop=on,weight_decay=off``) -- once per seed; every COMPLETE trial carries the user attributes
``variant`` and ``seed``. :func:`ablation_table` summarises the study the way papers report an
ablation: mean ± std over seeds per variant, and the difference of each variant's mean from the
baseline's with a confidence interval and a p-value.

For a variant v against the baseline b, with sample means x̄, sample variances s² (ddof = 1) and
seed counts n (Welch 1947, "The generalization of Student's problem when several different
population variances are involved"; Satterthwaite 1946 for the degrees of freedom):

- Δ = x̄_v − x̄_b (``delta``)
- SE = √(s_v²/n_v + s_b²/n_b)
- ν = SE⁴ / ((s_v²/n_v)² / (n_v − 1) + (s_b²/n_b)² / (n_b − 1))  (``dof``, Welch–Satterthwaite)
- t = Δ / SE and p = 2·P(T_ν > |t|)  (``p_value``, Welch's two-sided t test)
- CI = Δ ± t_{(1+c)/2, ν}·SE for confidence c (``ci_low``, ``ci_high``), or, with
  ``method="bootstrap"``, the (1−c)/2 and (1+c)/2 percentiles of Δ over :data:`N_RESAMPLES`
  resamples that draw each group's seeds with replacement (Efron & Tibshirani 1993, ch. 13).

Welch's test, not Student's, because a component often changes the spread across seeds as well as
the mean (dropout, for one, usually narrows it).
"""

from __future__ import annotations

import math
import zlib
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd

__all__ = [
    "ABLATION_COLUMNS",
    "METHODS",
    "N_RESAMPLES",
    "SUMMARISED",
    "Comparison",
    "ablation_metric",
    "ablation_table",
    "bootstrap_ci",
    "is_fraction",
    "metric_name",
    "welch",
]

#: How the confidence interval of Δ can be computed.
METHODS = ("welch", "bootstrap")
#: Bootstrap resamples per variant.
N_RESAMPLES = 10_000
#: Per-seed metrics summarised as ``<name>_mean`` and ``<name>_std``; gap = train_acc − test_acc.
SUMMARISED = ("train_acc", "val_acc", "test_acc", "gap")

#: Columns of :func:`ablation_table` and their dtypes. Accuracies are fractions (0.978, not 97.8);
#: ``delta``, ``ci_low`` and ``ci_high`` are in the units of the table's metric. A metric other
#: than those in :data:`SUMMARISED` adds ``<metric>_mean`` and ``<metric>_std`` after ``gap_std``.
ABLATION_COLUMNS: dict[str, str] = {
    "variant": "string",
    "n": "int64",
    **{f"{m}_{s}": "float64" for m in SUMMARISED for s in ("mean", "std")},
    "delta": "float64",
    "ci_low": "float64",
    "ci_high": "float64",
    "dof": "float64",
    "p_value": "float64",
    "significant": "boolean",
    "epochs_run_mean": "float64",
    "wall_time_s_mean": "float64",
}

_NAMES = {
    "train_acc": "training accuracy",
    "val_acc": "validation accuracy",
    "test_acc": "test accuracy",
    "gap": "generalisation gap (training minus test accuracy)",
    "train_loss": "training loss",
    "val_loss": "validation loss",
    "test_loss": "test loss",
}


def is_fraction(metric: str) -> bool:
    """Whether a metric is a fraction correct, shown in percent (its differences in points).

    Example:
        >>> is_fraction("test_acc"), is_fraction("gap"), is_fraction("test_loss")
        (True, True, False)
    """
    return metric == "gap" or metric.endswith("_acc")


def metric_name(metric: str) -> str:
    """A metric's name in words, for footnotes and axis labels; unknown names are kept.

    Example:
        >>> metric_name("val_acc")
        'validation accuracy'
    """
    return _NAMES.get(metric, metric)


def ablation_metric(trials: pd.DataFrame, objective: str) -> str:
    """The metric an ablation compares its variants on: one rule for every mode.

    The objective's counterpart on the held-out test split (``val_acc`` -> ``test_acc``,
    ``val_loss`` -> ``test_loss``, a training function's ``val_f1`` -> ``test_f1``), measured
    once at the end of each trial, where the trials recorded it; else the objective itself. The
    validation split chose the baseline in the search, so its numbers flatter the baseline; the
    test split did not. The ablation path measures its Δ and shares by the same rule.

    Example:
        >>> ablation_metric(pd.DataFrame({"test_acc": [0.9]}), "val_acc")
        'test_acc'
        >>> ablation_metric(pd.DataFrame({"test_acc": [0.9], "test_loss": [0.3]}), "val_loss")
        'test_loss'
        >>> ablation_metric(pd.DataFrame({"test_acc": [np.nan], "test_f1": [0.8]}), "val_f1")
        'test_f1'
        >>> ablation_metric(pd.DataFrame({"test_acc": [np.nan]}), "perplexity")
        'perplexity'
    """
    test = "test_" + objective.removeprefix("val_")
    if test in trials.columns and trials[test].notna().any():
        return test
    return objective


class Comparison(NamedTuple):
    """A variant against the baseline; NaN where the statistic is undefined (n < 2 on a side)."""

    delta: float
    ci_low: float
    ci_high: float
    dof: float
    p_value: float


def welch(variant: np.ndarray, baseline: np.ndarray, confidence: float = 0.95) -> Comparison:
    """Welch's t test and t interval for the difference of means, variant − baseline.

    Where both groups have zero variance, SE = 0: the interval is the point Δ and p is 0 (NaN
    when Δ = 0 too), as :func:`scipy.stats.ttest_ind` gives.

    Args:
        variant: the variant's per-seed values (no NaN).
        baseline: the baseline's per-seed values (no NaN).
        confidence: coverage of the interval, in (0, 1).

    Returns:
        The comparison; only ``delta`` is defined when either group has fewer than 2 values.

    Example:
        >>> r = welch(np.array([0.95, 0.96, 0.97]), np.array([0.90, 0.92, 0.91]))
        >>> round(r.delta, 4), round(r.dof, 4), round(r.ci_low, 4), round(r.ci_high, 4)
        (0.05, 4.0, 0.0273, 0.0727)
    """
    from scipy import stats

    n_v, n_b = len(variant), len(baseline)
    delta = float(np.mean(variant) - np.mean(baseline)) if n_v and n_b else math.nan
    if n_v < 2 or n_b < 2:
        return Comparison(delta, math.nan, math.nan, math.nan, math.nan)
    a = float(np.var(variant, ddof=1)) / n_v  # s_v²/n_v
    b = float(np.var(baseline, ddof=1)) / n_b  # s_b²/n_b
    se = math.sqrt(a + b)
    if se == 0.0:
        return Comparison(delta, delta, delta, math.nan, 0.0 if delta else math.nan)
    dof = (a + b) ** 2 / (a**2 / (n_v - 1) + b**2 / (n_b - 1))
    p_value = float(2.0 * stats.t.sf(abs(delta / se), dof))
    half = float(stats.t.ppf((1.0 + confidence) / 2.0, dof)) * se
    return Comparison(delta, delta - half, delta + half, dof, p_value)


def bootstrap_ci(
    variant: np.ndarray,
    baseline: np.ndarray,
    confidence: float = 0.95,
    *,
    rng: np.random.Generator,
    n_resamples: int = N_RESAMPLES,
) -> tuple[float, float]:
    """Percentile bootstrap interval for the difference of means, variant − baseline.

    Each resample draws ``len(variant)`` variant values and ``len(baseline)`` baseline values with
    replacement, independently (the groups are separate runs).

    Args:
        variant: the variant's per-seed values (no NaN).
        baseline: the baseline's per-seed values (no NaN).
        confidence: coverage of the interval, in (0, 1).
        rng: the random generator; the result is a function of its state.
        n_resamples: number of bootstrap resamples.

    Returns:
        ``(low, high)``; ``(nan, nan)`` when either group has fewer than 2 values.

    Example:
        >>> low, high = bootstrap_ci(np.array([0.95, 0.96, 0.97]), np.array([0.90, 0.92, 0.91]),
        ...                          rng=np.random.default_rng(0))
        >>> bool(0.03 <= low < 0.05 < high <= 0.07)
        True
    """
    if len(variant) < 2 or len(baseline) < 2:
        return math.nan, math.nan
    v = variant[rng.integers(0, len(variant), size=(n_resamples, len(variant)))].mean(axis=1)
    b = baseline[rng.integers(0, len(baseline), size=(n_resamples, len(baseline)))].mean(axis=1)
    alpha = 1.0 - confidence
    low, high = np.quantile(v - b, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def _rng_for(seed: int, variant: str) -> np.random.Generator:
    # One stream per variant, keyed by its name: a variant's interval depends on its own data and
    # the seed only, not on which other variants the study has or in what order.
    return np.random.default_rng([seed, zlib.crc32(variant.encode("utf-8"))])


def _floats(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _check(
    trials: pd.DataFrame, baseline: str, metric: str, confidence: float, method: str, seed: int
) -> None:
    required = ["state", "variant", "train_acc", "val_acc", "test_acc"]
    if metric != "gap":
        required.append(metric)
    missing = [c for c in dict.fromkeys(required) if c not in trials.columns]
    if missing:
        raise ValueError(
            f"trials frame lacks column(s) {missing}; build it with analysis.trials_frame(study) "
            "from a study written by `sweeplab ablate` (its trials carry `variant` and `seed`)."
        )
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), e.g. 0.95; got {confidence!r}.")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0; got {seed!r}.")
    if not isinstance(baseline, str) or not baseline:
        raise ValueError(f"baseline must be a non-empty variant name; got {baseline!r}.")


def _complete(trials: pd.DataFrame) -> pd.DataFrame:
    """COMPLETE trials that name a variant; of several with one (variant, seed), the last."""
    done = trials[(trials["state"] == "COMPLETE") & trials["variant"].notna()].copy()
    done["variant"] = done["variant"].astype(str)
    if "seed" in done.columns:
        # A re-run of the same seed is the same experiment again, not a new sample: counting it
        # twice would understate the spread. Trials without a seed cannot be matched; all count.
        seeded = done["seed"].notna()
        keep = ~done.duplicated(["variant", "seed"], keep="last") | ~seeded
        done = done[keep]
    return done


def ablation_table(
    trials: pd.DataFrame,
    *,
    baseline: str = "baseline",
    metric: str = "test_acc",
    confidence: float = 0.95,
    method: Literal["welch", "bootstrap"] = "welch",
    seed: int = 0,
) -> pd.DataFrame:
    """One row per variant: mean ± std over seeds, and the difference from the baseline.

    Only COMPLETE trials with a ``variant`` count; where several COMPLETE trials share a variant
    and a ``seed``, the last one (in ``trials`` order) counts. A NaN metric is left out of that
    metric's statistics. The result is a function of its arguments alone (the bootstrap is seeded
    per variant from ``seed`` and the variant's name).

    Args:
        trials: the trials frame, :func:`analysis.trials_frame` of an ablation study; reads
            ``state``, ``variant``, ``seed``, ``train_acc``, ``val_acc``, ``test_acc``,
            ``metric``, ``epochs_run`` and ``wall_time_s`` (the last three where present).
        baseline: the variant every other one is compared with.
        metric: the column the difference, interval and test are computed on; a column of
            ``trials`` or ``"gap"`` (train_acc − test_acc).
        confidence: coverage c of the interval, in (0, 1); a variant is ``significant`` when
            p < 1 − c.
        method: ``"welch"`` for Welch's t interval, ``"bootstrap"`` for a percentile bootstrap
            (:data:`N_RESAMPLES` resamples); ``p_value`` is Welch's t test either way. With a
            handful of seeds the percentile bootstrap undercovers (its interval is too narrow: a
            resample of 3 values has only 10 distinct means), so prefer ``"welch"`` below ~10
            seeds per variant.
        seed: seed of the bootstrap, an int >= 0.

    Returns:
        Columns :data:`ABLATION_COLUMNS`, the baseline first and then the variants in the order
        they first appear in ``trials``. The baseline's row has ``delta`` 0 and NaN interval,
        ``dof`` and ``p_value``; ``significant`` is NA wherever ``p_value`` is NaN. ``attrs``
        holds ``baseline``, ``metric``, ``confidence``, ``method``, ``seed`` and
        ``n_resamples``, which the table writers read.

    Raises:
        ValueError: a required column is missing, an argument is out of range, no COMPLETE trial
            names a variant, or none names ``baseline``.

    Example:
        >>> trials = pd.DataFrame({
        ...     "state": ["COMPLETE"] * 6, "seed": [0, 1, 2] * 2,
        ...     "variant": ["baseline"] * 3 + ["+mixup"] * 3,
        ...     "train_acc": [0.99, 0.99, 0.99, 0.97, 0.98, 0.99],
        ...     "val_acc": [0.91, 0.92, 0.91, 0.95, 0.96, 0.96],
        ...     "test_acc": [0.90, 0.92, 0.91, 0.95, 0.96, 0.97]})
        >>> table = ablation_table(trials)
        >>> table[["variant", "n", "test_acc_mean", "delta", "p_value", "significant"]].round(4)
            variant  n  test_acc_mean  delta  p_value  significant
        0  baseline  3           0.91   0.00      NaN         <NA>
        1    +mixup  3           0.96   0.05   0.0036         True
    """
    _check(trials, baseline, metric, confidence, method, seed)
    done = _complete(trials)
    if done.empty:
        raise ValueError(
            "no COMPLETE trial with a `variant` user attribute; is this an ablation study "
            "(`sweeplab ablate`), and has any of its trials finished?"
        )
    order = list(dict.fromkeys(done["variant"]))
    if baseline not in order:
        raise ValueError(
            f"no COMPLETE trial of the baseline variant {baseline!r}; the variants are {order}. "
            "Pass the baseline's name as `baseline=`."
        )
    order = [baseline, *(v for v in order if v != baseline)]

    values = {m: _floats(done[m]) for m in ("train_acc", "val_acc", "test_acc")}
    values["gap"] = values["train_acc"] - values["test_acc"]
    if metric not in values:
        values[metric] = _floats(done[metric])
    for extra in ("epochs_run", "wall_time_s"):
        values[extra] = (
            _floats(done[extra]) if extra in done.columns else np.full(len(done), np.nan)
        )
    summarised = [*SUMMARISED, *(() if metric in SUMMARISED else (metric,))]
    columns = dict(ABLATION_COLUMNS)
    if metric not in SUMMARISED:
        at = list(columns).index("gap_std") + 1
        items = list(columns.items())
        added = [(f"{metric}_mean", "float64"), (f"{metric}_std", "float64")]
        columns = dict(items[:at] + added + items[at:])

    def present(name: str, variant: str) -> np.ndarray:
        x = values[name][(done["variant"] == variant).to_numpy()]
        return x[~np.isnan(x)]

    base = present(metric, baseline)
    rows = []
    for variant in order:
        row: dict[str, object] = {
            "variant": variant,
            "n": int((done["variant"] == variant).sum()),
        }
        for name in summarised:
            x = pd.Series(present(name, variant), dtype="float64")
            row[f"{name}_mean"], row[f"{name}_std"] = x.mean(), x.std(ddof=1)
        for name in ("epochs_run", "wall_time_s"):
            row[f"{name}_mean"] = pd.Series(present(name, variant), dtype="float64").mean()
        if variant == baseline:
            delta = 0.0 if len(base) else math.nan
            cmp = Comparison(delta, math.nan, math.nan, math.nan, math.nan)
        else:
            cmp = welch(present(metric, variant), base, confidence)
            if method == "bootstrap":
                low, high = bootstrap_ci(
                    present(metric, variant), base, confidence, rng=_rng_for(seed, variant)
                )
                cmp = cmp._replace(ci_low=low, ci_high=high)
        row.update(cmp._asdict())
        row["significant"] = None if math.isnan(cmp.p_value) else cmp.p_value < 1.0 - confidence
        rows.append(row)

    table = pd.DataFrame(
        {name: pd.Series([r[name] for r in rows], dtype=dt) for name, dt in columns.items()}
    )
    table.attrs.update(
        baseline=baseline,
        metric=metric,
        confidence=float(confidence),
        method=method,
        seed=int(seed),
        n_resamples=N_RESAMPLES,
    )
    return table
