"""ASHA's rungs and its stopping rule, as Ray Tune's ``ASHAScheduler`` applies them.

Asynchronous successive halving (Li et al., 2020, "A System for Massively Parallel
Hyperparameter Tuning") judges a trial at rungs ``r * eta**k`` epochs for ``k = 0, 1, ...``
while ``<= max_epochs``, with ``r`` the ``grace_period`` and ``eta`` the ``reduction_factor``; at
each rung a trial whose objective is below the ``(1 - 1/eta)`` quantile of the values recorded
there so far stops. These are the one definition the run (which epochs to report at once),
packed trials (which judge each member themselves) and the report (which rungs to draw and
correlate) share. Pure functions: numpy only, no Ray.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sweeplab.studies._spec import StudySpec


def asha_rungs(grace_period: int, reduction_factor: float, max_epochs: int) -> list[int]:
    """The epochs at which Ray's ASHA judges a trial that reports every epoch, increasing.

    Ray places the rungs at ``grace_period * reduction_factor**k`` for ``k < K`` with
    ``K = int(log(max_t / grace_period) / log(reduction_factor) + 1)`` (numpy's logs, as in
    ``ray.tune.schedulers.async_hyperband._Bracket``) and judges a trial at its first report at or
    past each one, so a fractional rung (eta = 2.5: 12.5) is judged at the epoch after it.

    Example:
        >>> asha_rungs(2, 3, 18), asha_rungs(1, 2, 10), asha_rungs(2, 2.5, 20)
        ([2, 6, 18], [1, 2, 4, 8], [2, 5, 13])
    """
    n_rungs = int(np.log(max_epochs / grace_period) / np.log(reduction_factor) + 1)
    return [math.ceil(grace_period * reduction_factor**k) for k in range(max(n_rungs, 0))]


def expected_epochs(grace_period: int, reduction_factor: float, max_epochs: int) -> float:
    """The epochs ASHA grants a trial on average once its rungs are full: every trial trains
    to the first rung, and a share ``1/eta`` of those reaching each rung goes on to the next.

    Early in a study rungs are still filling and stop fewer trials, so this is a lower bound
    then; the progress view's ETA uses it until finished trials give their own average.

    Example:
        >>> round(expected_epochs(2, 3, 18), 2), expected_epochs(1, 2, 1)
        (4.67, 1.0)
    """
    rungs = asha_rungs(grace_period, reduction_factor, max_epochs)
    if not rungs:
        return float(max_epochs)
    total = float(min(rungs[0], max_epochs))
    for k, rung in enumerate(rungs):
        following = rungs[k + 1] if k + 1 < len(rungs) else max_epochs
        total += max(0, min(following, max_epochs) - rung) / reduction_factor ** (k + 1)
    return total


def hyperband_brackets(grace_period: int, reduction_factor: float, max_epochs: int) -> int:
    """How many brackets asynchronous Hyperband runs: one per first rung
    ``grace_period * eta**s`` that fits under ``max_epochs`` (Li et al. 2018's ``s_max + 1``).

    Example:
        >>> hyperband_brackets(1, 3, 27), hyperband_brackets(2, 3, 4), hyperband_brackets(4, 2, 4)
        (4, 1, 1)
    """
    return max(1, len(asha_rungs(grace_period, reduction_factor, max_epochs)))


def hyperband_expected_epochs(grace_period: int, reduction_factor: float, max_epochs: int) -> float:
    """The epochs asynchronous Hyperband grants a trial on average: bracket ``s`` is ASHA with
    grace period ``grace_period * eta**s`` and one rung fewer per step, and Ray puts a new trial
    in a bracket with probability proportional to ``e**rungs`` (``AsyncHyperBandScheduler
    .on_trial_add``), so bracket ``s`` gets weight ``e**-s``.

    Example:
        >>> round(hyperband_expected_epochs(1, 3, 9), 2)
        3.59
    """
    n = hyperband_brackets(grace_period, reduction_factor, max_epochs)
    firsts = [min(max_epochs, math.ceil(grace_period * reduction_factor**s)) for s in range(n)]
    weights = np.exp(-np.arange(n, dtype=float))
    each = [expected_epochs(g, reduction_factor, max_epochs) for g in firsts]
    return float(np.average(each, weights=weights))


def asha_stops(
    value: float, recorded: Sequence[float], reduction_factor: float, maximize: bool
) -> bool:
    """Whether a value reaching a rung is below the rung's cutoff (Ray's ``_Bracket.on_result``).

    An empty rung stops nobody.

    Example:
        >>> asha_stops(0.5, [0.9, 0.8], 2.0, maximize=True)
        True
        >>> asha_stops(0.5, [], 2.0, maximize=True)
        False
    """
    if not recorded:
        return False
    sign = 1.0 if maximize else -1.0
    cutoff = np.nanpercentile([sign * v for v in recorded], (1 - 1 / reduction_factor) * 100)
    return bool(sign * value < cutoff)


def rungs_from_spec(spec: Mapping[str, Any] | None) -> list[int] | None:
    """ASHA's rungs from a stored spec (the study's ``sweeplab_spec`` attribute), or ``None``
    when the study did not use ASHA or the spec lacks the numbers.

    Example:
        >>> spec = {"search": {"grace_period": 2, "reduction_factor": 3},
        ...         "budget": {"max_epochs": 18}}
        >>> rungs_from_spec(spec), rungs_from_spec({"search": {"scheduler": "none"}})
        ([2, 6, 18], None)
    """
    if not isinstance(spec, Mapping):
        return None
    search, budget = spec.get("search") or {}, spec.get("budget") or {}
    if search.get("scheduler", "asha") != "asha":
        return None
    try:
        return asha_rungs(
            int(search.get("grace_period", 2)),
            float(search.get("reduction_factor", 3.0)),
            int(budget["max_epochs"]),
        )
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None


def judged_rungs(spec: StudySpec) -> tuple[int, ...]:
    """The epochs at which the spec's scheduler judges trials, increasing; none without one.
    Hyperband's brackets judge at subsets of ASHA's rungs, so both share these."""
    search = spec.search
    if search.scheduler == "pbt":  # where population based training ranks the population
        from sweeplab.studies._spec import pbt_settings

        interval = pbt_settings(spec).interval
        return tuple(range(interval, spec.budget.max_epochs, interval))
    if search.scheduler not in ("asha", "hyperband"):
        return ()
    return tuple(asha_rungs(search.grace_period, search.reduction_factor, spec.budget.max_epochs))


# --- several objectives ---------------------------------------------------------------------


def non_dominated_ranks(values: Sequence[Sequence[float]], directions: Sequence[str]) -> list[int]:
    """Each point's Pareto rank by non-dominated sorting (Deb et al., NSGA-II): 0 for the points
    no other point dominates (the Pareto front), 1 for the front once those are removed, ...

    A point dominates another when it is at least as good in every objective and better in
    one; ``directions`` says per objective whether more (``maximize``) or less is better.
    Equal points share a rank.

    Example:
        >>> non_dominated_ranks([(0.9, 5), (0.8, 2), (0.7, 4), (0.9, 5)], ["maximize", "minimize"])
        [0, 0, 1, 0]
    """
    signs = [-1.0 if d == "maximize" else 1.0 for d in directions]
    points = [tuple(s * float(v) for s, v in zip(signs, p, strict=True)) for p in values]
    ranks = [-1] * len(points)
    left, rank = set(range(len(points))), 0
    while left:
        front = {i for i in left if not any(_dominates(points[j], points[i]) for j in left)}
        for i in front:
            ranks[i] = rank
        left -= front
        rank += 1
    return ranks


def crowding_distances(points: Sequence[Sequence[float]]) -> list[float]:
    """NSGA-II's crowding distance of each point within one front (all objectives minimised,
    or all signed alike): per objective, the gap between a point's two neighbours over the
    front's range, summed; the extremes of any objective get ``inf`` (they are kept first).

    Example:
        >>> crowding_distances([(0, 4), (1, 2), (2, 1.5), (4, 0)])
        [inf, 1.125, 1.25, inf]
    """
    n = len(points)
    out = [0.0] * n
    if n == 0:
        return out
    for m in range(len(points[0])):
        order = sorted(range(n), key=lambda i: points[i][m])
        low, high = points[order[0]][m], points[order[-1]][m]
        out[order[0]] = out[order[-1]] = math.inf
        if high == low:
            continue
        for before, i, after in zip(order, order[1:], order[2:], strict=False):
            out[i] += (points[after][m] - points[before][m]) / (high - low)
    return out


def pareto_order(values: Sequence[Sequence[float]], directions: Sequence[str]) -> list[int]:
    """The points' indices best first: by Pareto rank (:func:`non_dominated_ranks`), within a
    front by crowding distance, largest first (NSGA-II's order: the front's spread is kept),
    then by index (the earlier point first).

    Example:
        >>> pareto_order([(0.7, 7), (0.9, 5), (0.8, 2), (0.85, 6)], ["maximize", "minimize"])
        [1, 2, 3, 0]
    """
    signs = [-1.0 if d == "maximize" else 1.0 for d in directions]
    points = [tuple(s * float(v) for s, v in zip(signs, p, strict=True)) for p in values]
    ranks = non_dominated_ranks(values, directions)
    crowding = [0.0] * len(points)
    for rank in set(ranks):
        members = [i for i, r in enumerate(ranks) if r == rank]
        for i, d in zip(members, crowding_distances([points[i] for i in members]), strict=True):
            crowding[i] = d
    return sorted(range(len(points)), key=lambda i: (ranks[i], -crowding[i], i))


def moasha_stops(
    values: Sequence[float],
    recorded: Sequence[Sequence[float]],
    reduction_factor: float,
    directions: Sequence[str],
) -> bool:
    """Multi-objective ASHA's rule at a rung (Schmucker et al., 2021, "Multi-objective
    Asynchronous Successive Halving"; Syne Tune's MOASHA): the vectors recorded at the rung so
    far and the new one are put in :func:`pareto_order`; the new one goes on only if it is among
    the first ``ceil(n / eta)`` of those ``n``. An empty rung stops nobody; with one objective
    this is :func:`asha_stops`'s top ``1/eta`` share.

    Example:
        >>> dirs = ["maximize", "minimize"]
        >>> moasha_stops((0.7, 9), [(0.9, 5), (0.8, 2)], 2.0, dirs)  # dominated by both
        True
        >>> moasha_stops((0.95, 9), [(0.9, 5), (0.8, 2)], 2.0, dirs)  # on the front's edge
        False
        >>> moasha_stops((0.1, 99), [], 2.0, dirs)
        False
    """
    points = [*recorded, values]
    position = pareto_order(points, directions).index(len(points) - 1)
    return position >= math.ceil(len(points) / reduction_factor)


def _dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """``a`` dominates ``b`` (both minimised)."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(
        x < y for x, y in zip(a, b, strict=True)
    )
