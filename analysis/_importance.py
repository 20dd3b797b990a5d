"""Hyperparameter importance: fANOVA over the COMPLETE trials, seeded so a database always gives
the same numbers.

fANOVA (Hutter, Hoos & Leyton-Brown, "An Efficient Approach for Assessing Hyperparameter
Importance", ICML 2014) fits a random forest from parameters to objective and attributes the
forest's variance to each parameter; Optuna's :class:`~optuna.importance.FanovaImportanceEvaluator`
implements it, and its ``seed`` fixes the forest. Importances are normalised to sum to 1.

fANOVA needs every assessed parameter present in every trial it reads, so conditional parameters
(``momentum`` exists on sgd trials only) are left out rather than dropping the trials without them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import optuna
import pandas as pd
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from sweeplab.analysis._frames import study_direction

__all__ = ["DEFAULT_SEED", "METHODS", "param_importances"]

#: Seed of the fANOVA forest unless the caller picks another.
DEFAULT_SEED = 0
#: Importance methods and what the report calls them.
METHODS = {"fanova": "fANOVA", "ped_anova": "PED-ANOVA"}


def _evaluator(method: str, seed: int) -> optuna.importance.BaseImportanceEvaluator:
    if method == "fanova":
        return optuna.importance.FanovaImportanceEvaluator(seed=seed)
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
    complete = sorted(
        (
            t
            for t in trials
            if t.state == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value)
        ),
        key=lambda t: t.number,
    )
    if len(complete) < 2:
        return _empty(
            f"importance needs at least 2 complete trials with a finite objective; "
            f"the study has {len(complete)}."
        )
    shared = _shared_params(complete)
    if not shared:
        return _empty("no parameter is present in every complete trial.")
    params = _varying(complete, shared)
    if not params:
        return _empty(
            f"the search space is trivial: none of {shared} took two different values "
            "across the complete trials."
        )
    if len({t.value for t in complete}) < 2:
        return _empty("the objective has the same value in every complete trial.")

    storage = optuna.storages.InMemoryStorage()
    # Creating a study logs an INFO line; this private copy is an implementation detail.
    with _quiet_optuna():
        storage.create_new_study(directions=[direction], study_name="analysis-importance")
    copy = optuna.Study(study_name="analysis-importance", storage=storage)
    copy.add_trials(complete)
    try:
        raw = optuna.importance.get_param_importances(
            copy,
            evaluator=evaluator,
            params=params,
        )
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
