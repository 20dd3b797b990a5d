"""Hyperparameter importance: fANOVA over the COMPLETE trials, seeded so a database always gives
the same numbers.

fANOVA (Hutter, Hoos & Leyton-Brown, "An Efficient Approach for Assessing Hyperparameter
Importance", ICML 2014) fits a random forest from parameters to objective and attributes the
forest's variance to each parameter; Optuna's :class:`~optuna.importance.FanovaImportanceEvaluator`
implements it, and its ``seed`` fixes the forest. Importances are normalised to sum to 1.

fANOVA needs every assessed parameter present in every trial it reads, so conditional parameters
(``momentum`` exists on sgd trials only) are left out rather than dropping the trials without them.

A handful of trials gives a ranking that another handful would reverse, so
:func:`importance_intervals` adds a percentile bootstrap interval to each importance: the spread of
the importance over resamples of the same trials, the honest error bar of a number read off
one small sample.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import optuna
import pandas as pd
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from sweeplab.analysis._frames import study_direction

__all__ = [
    "DEFAULT_SEED",
    "LEVEL",
    "METHODS",
    "N_RESAMPLES",
    "importance_intervals",
    "importances_of",
    "param_importances",
]

#: Seed of the fANOVA forest unless the caller picks another.
DEFAULT_SEED = 0
#: Importance methods and what the report calls them.
METHODS = {"fanova": "fANOVA", "ped_anova": "PED-ANOVA"}
#: Trees of the fANOVA forest behind a point estimate (Optuna's default).
FANOVA_TREES = 64
#: Bootstrap resamples behind an interval, and the trees of each resample's fANOVA forest. A
#: 64-tree fit costs ~0.13 s on 20 trials, so 200 full resamples would add half a minute to a
#: report; 40 resamples of 8-tree forests add ~1 s. The few trees add the forest's own noise to
#: the spread, so the interval errs wide, never narrow; 40 resamples put each end of a 90 %
#: interval between the 2nd and 3rd most extreme resample, precise enough to tell a parameter
#: that matters from one that may not.
N_RESAMPLES = 40
RESAMPLE_TREES = 8
#: Coverage of the percentile interval: the 5th to the 95th percentile of the resamples.
LEVEL = 0.9


def _evaluator(
    method: str, seed: int, n_trees: int = FANOVA_TREES
) -> optuna.importance.BaseImportanceEvaluator:
    if method == "fanova":
        return optuna.importance.FanovaImportanceEvaluator(n_trees=n_trees, seed=seed)
    if method == "ped_anova":
        # PED-ANOVA (Watanabe et al., IJCAI 2023) compares the density of each parameter in the
        # top 10 % of trials with its density over all of them; it has no randomness, so the seed
        # is not needed for determinism.
        return optuna.importance.PedAnovaImportanceEvaluator()
    raise ValueError(f"method must be one of {sorted(METHODS)}; got {method!r}.")


@contextmanager
def _quiet_optuna() -> Iterator[None]:
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(max(verbosity, optuna.logging.WARNING))
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)


def _empty(reason: str) -> pd.Series:
    series = pd.Series(dtype="float64", name="importance")
    series.index.name = "param"
    series.attrs["reason"] = reason
    return series


def _shared_params(trials: Sequence[FrozenTrial]) -> list[str]:
    """Names of parameters present, with one and the same distribution, in every trial."""
    shared: dict[str, BaseDistribution] | None = None
    for trial in trials:
        if shared is None:
            shared = dict(trial.distributions)
            continue
        shared = {
            name: dist
            for name, dist in shared.items()
            if trial.distributions.get(name) == dist  # a changed range is not comparable
        }
    return sorted(shared or {})


def _varying(trials: Sequence[FrozenTrial], names: Sequence[str]) -> list[str]:
    """The subset of ``names`` that took at least two distinct values across ``trials``."""
    return [n for n in names if len({repr(t.params[n]) for t in trials}) > 1]


def _finite_complete(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    return sorted(
        (
            t
            for t in trials
            if t.state == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value)
        ),
        key=lambda t: t.number,
    )


def _assessable(complete: Sequence[FrozenTrial]) -> tuple[list[str], str]:
    """The parameters importance can be assessed over, or an empty list and the reason why not."""
    if len(complete) < 2:
        return [], (
            f"importance needs at least 2 complete trials with a finite objective; "
            f"the study has {len(complete)}."
        )
    shared = _shared_params(complete)
    if not shared:
        return [], "no parameter is present in every complete trial."
    params = _varying(complete, shared)
    if not params:
        return [], (
            f"the search space is trivial: none of {shared} took two different values "
            "across the complete trials."
        )
    if len({t.value for t in complete}) < 2:
        return [], "the objective has the same value in every complete trial."
    return params, ""


def _evaluate(
    trials: Sequence[FrozenTrial],
    direction: optuna.study.StudyDirection,
    params: Sequence[str],
    evaluator: optuna.importance.BaseImportanceEvaluator,
) -> dict[str, float]:
    """Normalised importances of ``params`` over ``trials`` (duplicates allowed: a resample).

    Raises:
        ValueError, RuntimeError: Optuna could not assess them.
    """
    storage = optuna.storages.InMemoryStorage()
    # Creating a study logs an INFO line; this private copy is an implementation detail.
    with _quiet_optuna():
        storage.create_new_study(directions=[direction], study_name="analysis-importance")
    copy = optuna.Study(study_name="analysis-importance", storage=storage)
    copy.add_trials(trials)
    raw = optuna.importance.get_param_importances(copy, evaluator=evaluator, params=list(params))
    return {k: float(v) for k, v in raw.items()}


def importances_of(
    trials: Sequence[FrozenTrial],
    direction: optuna.study.StudyDirection,
    *,
    seed: int = DEFAULT_SEED,
    method: str = "fanova",
) -> pd.Series:
    """Importances computed from a snapshot of trials (only COMPLETE ones are read).

    This is the pure core of :func:`param_importances`; it works on a private in-memory copy, so
    a study that keeps running cannot change the trials halfway through the computation.
    """
    evaluator = _evaluator(method, seed)  # an unknown method fails even when there is no data
    complete = _finite_complete(trials)
    params, reason = _assessable(complete)
    if not params:
        return _empty(reason)
    try:
        raw = _evaluate(complete, direction, params, evaluator)
    except (ValueError, RuntimeError) as e:
        return _empty(f"Optuna could not assess importance: {e}")
    # Ties (common with few trials) are broken by name so the order never depends on dict order.
    ordered = sorted(raw.items(), key=lambda kv: (-kv[1], kv[0]))
    series = pd.Series(
        [v for _, v in ordered],
        index=pd.Index([k for k, _ in ordered], name="param"),
        dtype="float64",
        name="importance",
    )
    series.attrs["reason"] = ""
    series.attrs["method"] = METHODS[method]
    series.attrs["n_trials"] = len(complete)
    series.attrs["excluded"] = sorted(
        {n for t in complete for n in t.params} - set(params)
    )  # conditional, constant or re-ranged parameters
    return series


def importance_intervals(
    trials: Sequence[FrozenTrial],
    direction: optuna.study.StudyDirection,
    *,
    seed: int = DEFAULT_SEED,
    method: str = "fanova",
    n_resamples: int = N_RESAMPLES,
    level: float = LEVEL,
) -> pd.DataFrame:
    """Each parameter's importance with a percentile bootstrap interval (Efron & Tibshirani,
    "An Introduction to the Bootstrap", 1993, ch. 13).

    The COMPLETE trials are resampled with replacement ``n_resamples`` times (indices drawn from
    ``numpy.random.default_rng(seed)``, resample ``k``'s forest seeded ``seed + 1 + k``) and the
    importances recomputed on each; ``low`` and ``high`` are the ``(1 - level) / 2`` and
    ``(1 + level) / 2`` quantiles. fANOVA resamples use :data:`RESAMPLE_TREES`-tree forests to
    stay cheap, and PED-ANOVA resamples keep only their distinct trials; both widen the interval
    a little. A resample whose objective is constant (no
    variance to share out) or that Optuna cannot assess is skipped; ``attrs["n_resamples"]``
    counts those used.

    Args:
        trials: a snapshot of the study's trials; only COMPLETE ones with a finite value count.
        direction: the study's direction (PED-ANOVA's top trials depend on it).
        seed: seeds the resampling and every forest, so a snapshot always gives the same numbers.
        method: ``"fanova"`` or ``"ped_anova"``, as for :func:`param_importances`.
        n_resamples: bootstrap resamples; 0 gives NaN intervals.
        level: coverage of the interval, in (0, 1).

    Returns:
        A frame indexed by parameter (index name ``param``), most important first, with columns
        ``importance`` (the point estimate of :func:`importances_of`), ``low`` and ``high``.
        ``attrs`` carries ``reason``, ``method``, ``n_trials``, ``excluded`` as the Series does,
        plus ``n_resamples`` and ``level``. Empty, with the reason, when importance cannot be
        assessed.

    Example:
        >>> import optuna
        >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
        >>> study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
        >>> study.optimize(
        ...     lambda t: 10 * t.suggest_float("x", -1, 1) + t.suggest_float("y", -1, 1) / 10,
        ...     n_trials=30,
        ... )
        >>> ci = importance_intervals(study.trials, study.direction, n_resamples=20)
        >>> list(ci.columns), list(ci.index)
        (['importance', 'low', 'high'], ['x', 'y'])
        >>> bool(ci.loc["x", "low"] <= ci.loc["x", "importance"] <= ci.loc["x", "high"])
        True
        >>> ci.attrs["n_resamples"], ci.attrs["level"]
        (20, 0.9)
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be a coverage in (0, 1), such as 0.9; got {level!r}.")
    if n_resamples < 0:
        raise ValueError(f"n_resamples must be an integer >= 0; got {n_resamples!r}.")
    point = importances_of(trials, direction, seed=seed, method=method)
    frame = point.to_frame("importance").assign(low=math.nan, high=math.nan)
    frame.attrs = {**point.attrs, "n_resamples": 0, "level": level}
    if point.empty:
        return frame
    complete = _finite_complete(trials)
    names = list(point.index)
    rng = np.random.default_rng(seed)
    samples = []
    for k in range(n_resamples):
        # Indices are drawn even for a resample that is then skipped, so resample k is always
        # the same trials whatever happened to the ones before it.
        indices = rng.integers(0, len(complete), len(complete))
        if method == "ped_anova":
            # PED-ANOVA estimates the density of the top 10 % of trials; a top trial drawn three
            # times reads as a density sharply concentrated in every parameter at once, which
            # makes unimportant parameters look important. So its resamples keep their distinct
            # trials (about 63 % of them, Efron's .632): a smaller sample, whose spread errs wide.
            indices = np.unique(indices)
        picked = [complete[i] for i in indices]
        if len({t.value for t in picked}) < 2:
            continue
        evaluator = _evaluator(method, seed + 1 + k, n_trees=RESAMPLE_TREES)
        try:
            raw = _evaluate(picked, direction, names, evaluator)
        except (ValueError, RuntimeError, ZeroDivisionError):
            continue
        row = [raw.get(name, 0.0) for name in names]
        if all(math.isfinite(v) for v in row):
            samples.append(row)
    if samples:
        lows, highs = np.quantile(np.asarray(samples), [(1 - level) / 2, (1 + level) / 2], axis=0)
        frame["low"], frame["high"] = lows, highs
    frame.attrs["n_resamples"] = len(samples)
    return frame


def param_importances(
    study: optuna.Study, *, seed: int = DEFAULT_SEED, method: str = "fanova"
) -> pd.Series:
    """Seeded fANOVA (or PED-ANOVA) importance of each hyperparameter for the study's objective.

    Only COMPLETE trials with a finite objective are read. Parameters assessed are those present
    with the same distribution in all of them and taking at least two values; the others are
    listed in ``result.attrs["excluded"]``.

    Args:
        study: a single-objective Optuna study.
        seed: seed of the fANOVA random forest; the same trials and seed give the same numbers.
        method: ``"fanova"`` (Hutter et al. 2014: share of the objective's variance) or
            ``"ped_anova"`` (Watanabe et al. 2023: how much the top 10 % of trials concentrate
            in part of each parameter's range); ``attrs["method"]`` names it.

    Returns:
        A float Series named ``importance``, indexed by parameter name (index name ``param``),
        summing to 1, sorted from most to least important (ties by name). When importance cannot
        be assessed (fewer than 2 complete trials, trivial space, constant objective, an Optuna
        error) the Series is empty and ``result.attrs["reason"]`` says why.

    Example:
        >>> import optuna
        >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
        >>> study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
        >>> study.optimize(
        ...     lambda t: 10 * t.suggest_float("x", -1, 1) + t.suggest_float("y", -1, 1) / 10,
        ...     n_trials=30,
        ... )
        >>> imp = param_importances(study)
        >>> list(imp.index), bool(imp["x"] > 0.9)
        (['x', 'y'], True)
        >>> param_importances(optuna.create_study()).attrs["reason"]
        'importance needs at least 2 complete trials with a finite objective; the study has 0.'
    """
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return importances_of(trials, study_direction(study), seed=seed, method=method)
