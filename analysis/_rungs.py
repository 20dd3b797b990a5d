"""Is early stopping trustworthy? How well a trial's rank at one ASHA rung predicts the next.

ASHA (Li et al., "A System for Massively Parallel Hyperparameter Tuning", MLSys 2020) stops a
trial at a rung when its objective is not in the top 1/η of the trials seen there. That is only
sound if the ranking at a rung predicts the ranking later on. Here the ranking is compared, for
the trials that reached two consecutive rungs, with Spearman's rank correlation ρ.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import pandas as pd

__all__ = ["MIN_TRUSTWORTHY_RHO", "RUNG_COLUMNS", "rung_correlations"]

# Below ρ = 0.5 a rung ranking explains well under half of the later ranking's order (ρ² < 0.25),
# i.e. a trial ASHA stops there had a real chance of ending up among the best; that is the usual
# line between a "moderate" and a "weak" rank correlation.
MIN_TRUSTWORTHY_RHO = 0.5
# Spearman's ρ needs 3 trials to be defined at all (any 2 give ±1); with 3 or 4 it can only take
# a handful of values (3 trials: -1, -0.5, 0, 0.5, 1), so one swapped pair reads as "no
# correlation". It is shown from 3 trials but judged (and warned about) only from 5.
_MIN_PAIRS = 3
_MIN_TO_JUDGE = 5

#: Columns of :func:`rung_correlations`.
RUNG_COLUMNS = ("rung", "next_rung", "n_trials", "spearman_rho", "p_value", "trustworthy")


def rung_correlations(curves: pd.DataFrame, rungs: Sequence[int]) -> pd.DataFrame:
    """Spearman's ρ between the objectives of trials at each pair of consecutive rungs.

    Args:
        curves: the curves frame (:func:`analysis.curves_frame`); reads ``number``, ``epoch``,
            ``objective``. Trials of any state count if they reported both epochs.
        rungs: rung epochs in increasing order (:func:`sweeplab.studies.asha.asha_rungs`).

    Returns:
        One row per consecutive pair, columns :data:`RUNG_COLUMNS`: ``n_trials`` reached both
        ``rung`` and ``next_rung``; ``spearman_rho`` and its two-sided ``p_value`` (NaN with fewer
        than 3 such trials or a constant objective); ``trustworthy`` is ``rho >=``
        :data:`MIN_TRUSTWORTHY_RHO`, NA with fewer than 5 trials (too few to judge). Only
        trials ASHA promoted reach the next rung, so ρ is measured over the best of each rung,
        where ranking is hardest.

    Example:
        >>> curves = pd.DataFrame({"number": [0, 0, 1, 1, 2, 2], "epoch": [1, 2] * 3,
        ...                        "objective": [0.1, 0.2, 0.3, 0.5, 0.2, 0.4]})
        >>> rung_correlations(curves, [1, 2])[["rung", "next_rung", "n_trials", "spearman_rho"]]
           rung  next_rung  n_trials  spearman_rho
        0     1          2         3           1.0
    """
    from scipy.stats import spearmanr

    at = curves.dropna(subset=["objective"]).pivot_table(
        index="number", columns="epoch", values="objective", aggfunc="last"
    )
    rows = []
    for rung, nxt in itertools.pairwise(rungs):
        if rung in at.columns and nxt in at.columns:
            pair = at[[rung, nxt]].dropna()
        else:
            pair = pd.DataFrame(columns=[rung, nxt])
        rho = p = math.nan
        if len(pair) >= _MIN_PAIRS and pair[rung].nunique() > 1 and pair[nxt].nunique() > 1:
            result = spearmanr(pair[rung], pair[nxt])
            rho, p = float(result.statistic), float(result.pvalue)
        judged = not math.isnan(rho) and len(pair) >= _MIN_TO_JUDGE
        trust = rho >= MIN_TRUSTWORTHY_RHO if judged else pd.NA
        rows.append([rung, nxt, len(pair), rho, p, trust])
    return pd.DataFrame(rows, columns=list(RUNG_COLUMNS)).astype(
        {"rung": "int64", "next_rung": "int64", "n_trials": "int64", "spearman_rho": "float64",
         "p_value": "float64", "trustworthy": "boolean"}
    )  # fmt: skip
