"""How each hyperparameter is drawn: as categories, on a log axis or on a linear one.

The trials frame holds values only; the search space's distributions (where a study has them)
say which numeric parameters were sampled on a log scale and which numbers are really categories
(``batch_size in [32, 64, 128]``). Without them the kind is inferred from the values.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd
from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial

from sweeplab.analysis._frames import PARAM_PREFIX

__all__ = [
    "MIN_BINS",
    "MIN_POINTS_PER_BIN",
    "Scale",
    "binned_summary",
    "bucket",
    "distribution_scales",
    "param_names",
    "param_scales",
]

Scale = Literal["categorical", "log", "linear"]
#: Continuous parameters are cut into this many equal-width (log-width for log parameters) buckets.
N_BUCKETS = 4
#: A marginal summary (median and quartiles per bin) needs this many trials in a bin: below 5 the
#: quartiles are the extreme points themselves, and the median of 2 or 3 is one trial's luck.
MIN_POINTS_PER_BIN = 5
#: and this many such bins: through 2 points any line is straight, so a trend needs 3.
MIN_BINS = 3
# Positive values spanning this ratio or more are drawn on a log axis when no distribution says.
_LOG_SPAN = 100.0


def distribution_scales(trials: Sequence[FrozenTrial]) -> dict[str, Scale]:
    """Each parameter's scale from the distributions it was sampled with (the latest trial wins)."""
    scales: dict[str, Scale] = {}
    for trial in sorted(trials, key=lambda t: t.number):
        for name, dist in trial.distributions.items():
            if isinstance(dist, CategoricalDistribution):
                scales[name] = "categorical"
            else:
                scales[name] = "log" if getattr(dist, "log", False) else "linear"
    return scales


def param_names(trials: pd.DataFrame) -> list[str]:
    """The parameter names of a trials frame (without the ``param.`` prefix), sorted."""
    return sorted(
        c.removeprefix(PARAM_PREFIX) for c in trials.columns if c.startswith(PARAM_PREFIX)
    )


def _inferred(values: pd.Series) -> Scale:
    if not pd.api.types.is_numeric_dtype(values) or values.dtype == "boolean":
        return "categorical"
    present = values.dropna().astype(float)
    if len(present) and present.min() > 0 and present.max() / present.min() >= _LOG_SPAN:
        return "log"
    return "linear"


def param_scales(
    trials: pd.DataFrame, scales: Mapping[str, Scale] | None = None
) -> dict[str, Scale]:
    """The scale of every parameter of ``trials``: from ``scales`` where given, else inferred
    (text and booleans are categorical; positive numbers spanning two decades or more are log)."""
    given = dict(scales or {})
    return {
        name: given.get(name) or _inferred(trials[PARAM_PREFIX + name])
        for name in param_names(trials)
    }


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _label(v: object) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(v).lower()
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6g}"
    return str(v)


def bucket(values: pd.Series, scale: Scale, n: int = N_BUCKETS) -> pd.Series:
    """Labels grouping ``values``: the value itself for categories (and numbers with ``n`` or
    fewer distinct values), else an equal-width (log-width) interval label such as
    ``"[0.001, 0.01)"``. The result is an ordered categorical; NA stays NA.

    Example:
        >>> bucket(pd.Series([1.0, 2.0, 3.0, 4.0, 5.0]), "linear", n=2).astype(str).tolist()
        ['[1, 3)', '[1, 3)', '[3, 5]', '[3, 5]', '[3, 5]']
    """
    present = values.dropna()
    distinct = sorted(present.unique(), key=lambda v: (str(type(v)), v))
    if scale == "categorical" or len(distinct) <= n:
        labels = [_label(v) for v in distinct]
        if len(set(labels)) < len(labels):  # values equal to 6 digits: keep them apart
            labels = [repr(float(v)) if isinstance(v, float) else repr(v) for v in distinct]
        mapping = dict(zip(distinct, labels, strict=True))
        out = values.map(lambda v: mapping.get(v) if not pd.isna(v) else None)
        return pd.Series(pd.Categorical(out, categories=labels, ordered=True), index=values.index)
    x = present.astype(float)
    lo, hi = float(x.min()), float(x.max())
    if scale == "log":
        edges = np.logspace(math.log10(lo), math.log10(hi), n + 1)
    else:
        edges = np.linspace(lo, hi, n + 1)
    edges[0], edges[-1] = lo, hi  # exact ends, free of rounding in logspace
    labels = [
        f"[{_fmt(a)}, {_fmt(b)}{']' if i == n - 1 else ')'}"
        for i, (a, b) in enumerate(itertools.pairwise(edges))
    ]
    # searchsorted on the inner edges: bucket i holds [edge_i, edge_i+1), the last one is closed.
    index = np.searchsorted(edges[1:-1], x.to_numpy(), side="right")
    out = pd.Series([None] * len(values), index=values.index, dtype="object")
    out[present.index] = [labels[i] for i in index]
    return pd.Series(pd.Categorical(out, categories=labels, ordered=True), index=values.index)


def binned_summary(
    x: pd.Series,
    y: pd.Series,
    *,
    min_points: int = MIN_POINTS_PER_BIN,
    max_bins: int = N_BUCKETS,
) -> pd.DataFrame:
    """Median and interquartile range of ``y`` in bins of a numeric ``x``, robust to one outlier.

    A number with ``max_bins`` or fewer distinct values is binned by value; otherwise the trials
    are cut, in order of ``x``, into equal-count bins of at least ``min_points`` each (at most
    ``max_bins``), so no bin is left with one trial the way equal-width buckets leave it. Bins
    with fewer than ``min_points`` trials are dropped: a median of two is not a summary.

    Args:
        x: the parameter's values (numeric; NA rows are ignored).
        y: the objective, aligned with ``x``.
        min_points: trials a bin needs.
        max_bins: most bins.

    Returns:
        One row per kept bin, by ``x``: ``x`` (the median parameter value in the bin, which sits
        right on a log axis too), ``median``, ``q1``, ``q3`` of ``y`` and ``n`` trials.

    Example:
        >>> x = pd.Series(range(10), dtype=float)
        >>> y = pd.Series([1.0] * 9 + [-50.0])  # one diverged trial
        >>> binned_summary(x, y, min_points=5)
             x  median   q1   q3  n
        0  2.0     1.0  1.0  1.0  5
        1  7.0     1.0  1.0  1.0  5
    """
    data = pd.DataFrame({"x": x.astype(float), "y": y.astype(float)}).dropna()
    data = data.sort_values("x", kind="stable")
    if data["x"].nunique() <= max_bins:
        groups = [g for _, g in data.groupby("x", sort=True)]
    else:
        k = min(max_bins, len(data) // max(1, min_points))
        groups = [data.iloc[idx] for idx in np.array_split(np.arange(len(data)), k)] if k else []
    rows = [
        [float(g["x"].median()), float(g["y"].median()), float(g["y"].quantile(0.25)),
         float(g["y"].quantile(0.75)), len(g)]
        for g in groups
        if len(g) >= min_points
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["x", "median", "q1", "q3", "n"]).astype({"n": "int64"})
