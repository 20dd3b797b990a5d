"""What an importance ranking rests on: which trials, measured at which epoch, and whether there
are enough of them to rank at all.

ASHA stops most trials early (the quickstart study: 7 complete, 13 pruned), so importances over
the COMPLETE trials alone rest on a handful of them. Every trial that reached a rung has the
objective measured there, the very number ASHA compared, so an importance measured at a rung
reads the pruned trials too. It answers a slightly different question (what mattered by epoch
``r``, not at the end), and the report says which one it answers.

fANOVA and PED-ANOVA both read one number per trial and nothing else about it, so both can be
measured at a rung.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial

__all__ = [
    "MIN_RELIABLE_TRIALS",
    "MIN_TRIALS_PER_DIMENSION",
    "MIN_TRIALS_TO_RANK",
    "ImportanceBasis",
    "Verdict",
    "format_share",
    "importance_basis",
    "needed_trials",
    "param_dimensions",
    "ranking_verdict",
]

# Below 5 trials a bootstrap resample repeats most of its trials, a random forest has nothing to
# split and PED-ANOVA's top 10 % is a single trial: a ranking would be noise, so none is shown.
MIN_TRIALS_TO_RANK = 5
# From 20 trials, and 2 per dimension of the search space (as a regression needs more
# observations than coefficients), importance rankings of small search spaces stop reordering
# from one bootstrap resample to the next; below that the report calls the ranking unreliable.
MIN_RELIABLE_TRIALS = 20
MIN_TRIALS_PER_DIMENSION = 2

# A trial counts at a rung once it is over: a running trial may still be retried from a checkpoint.
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


class Verdict(Enum):
    """How far an importance ranking over a number of trials can be trusted."""

    TOO_FEW = "too few trials to rank"
    UNRELIABLE = "ranking unreliable"
    RELIABLE = "ranking usable"

    def ranks(self) -> bool:
        """Whether a ranking is shown at all."""
        return self is not Verdict.TOO_FEW


def format_share(value: float, *, reliable: bool) -> str:
    """An importance share as the report prints it: 3 decimals when the ranking is reliable,
    else at most 2 significant digits (a third would be noise), small shares as ``<0.01``.

    Example:
        >>> [format_share(v, reliable=False) for v in (0.2731, 0.0457, 0.004, 0.0)]
        ['0.27', '0.046', '<0.01', '0']
        >>> format_share(0.2731, reliable=True)
        '0.273'
    """
    if math.isnan(value):
        return "n/a"
    if reliable:
        return f"{value:.3f}"
    return "0" if value == 0 else ("<0.01" if value < 0.01 else f"{value:.2g}")


def param_dimensions(trials: Sequence[FrozenTrial], names: Sequence[str]) -> int:
    """Degrees of freedom of the parameters ``names``: 1 per numeric one, ``k - 1`` per
    categorical one with ``k`` choices (the dummy columns a regression on it would have).

    Example:
        >>> import optuna
        >>> t = optuna.trial.create_trial(
        ...     params={"lr": 0.1, "opt": "sgd"}, value=1.0,
        ...     distributions={"lr": optuna.distributions.FloatDistribution(1e-3, 1.0),
        ...                    "opt": optuna.distributions.CategoricalDistribution(["sgd", "adam",
        ...                                                                         "adamw"])})
        >>> param_dimensions([t], ["lr", "opt"])
        3
    """
    latest = {}
    for trial in sorted(trials, key=lambda t: t.number):
        latest.update(trial.distributions)
    dims = 0
    for name in names:
        dist = latest.get(name)
        dims += max(1, len(dist.choices) - 1) if isinstance(dist, CategoricalDistribution) else 1
    return dims


def needed_trials(dimensions: int) -> int:
    """Trials a ranking over ``dimensions`` degrees of freedom needs to be called reliable.

    Example:
        >>> needed_trials(4), needed_trials(13)
        (20, 26)
    """
    return max(MIN_RELIABLE_TRIALS, MIN_TRIALS_PER_DIMENSION * dimensions)


def ranking_verdict(n_trials: int, dimensions: int) -> Verdict:
    """:class:`Verdict` of a ranking over ``n_trials`` trials and ``dimensions`` degrees of freedom.

    Example:
        >>> [ranking_verdict(n, 3).name for n in (4, 5, 19, 20)]
        ['TOO_FEW', 'UNRELIABLE', 'UNRELIABLE', 'RELIABLE']
    """
    if n_trials < MIN_TRIALS_TO_RANK:
        return Verdict.TOO_FEW
    if n_trials < needed_trials(dimensions):
        return Verdict.UNRELIABLE
    return Verdict.RELIABLE


@dataclass(frozen=True, kw_only=True)
class ImportanceBasis:
    """The trials an importance is computed from, as COMPLETE stand-ins whose value is the
    objective measured at ``epoch`` (``None``: each COMPLETE trial's final objective)."""

    trials: tuple[FrozenTrial, ...]
    epoch: int | None
    n_complete: int  # of ``trials``, those that completed; the others were pruned
    rungs: tuple[int, ...] = ()

    @property
    def n_pruned(self) -> int:
        return len(self.trials) - self.n_complete

    def describe(self) -> str:
        """One phrase for the report: what the importances are measured on.

        Example:
            >>> ImportanceBasis(trials=(), epoch=None, n_complete=0).describe()
            'the final objective of the 0 complete trials'
        """
        if self.epoch is None:
            return f"the final objective of the {self.n_complete} complete trials"
        return (
            f"the objective at epoch {self.epoch}, an ASHA rung, of the {len(self.trials)} "
            f"trials that reached it ({self.n_complete} that completed, {self.n_pruned} pruned "
            "there or later)"
        )


def _at_epoch(trials: Sequence[FrozenTrial], epoch: int) -> list[FrozenTrial]:
    """The finished trials that reported a finite objective at ``epoch``, by trial number."""
    return sorted(
        (
            t
            for t in trials
            if t.state in _FINISHED
            and t.intermediate_values.get(epoch) is not None
            and math.isfinite(t.intermediate_values[epoch])
        ),
        key=lambda t: t.number,
    )


def _stand_in(trial: FrozenTrial, epoch: int) -> FrozenTrial:
    # A fresh COMPLETE trial with the same parameters: the importance code reads COMPLETE trials.
    return create_trial(
        value=trial.intermediate_values[epoch],
        params=trial.params,
        distributions=trial.distributions,
    )


def importance_basis(
    trials: Sequence[FrozenTrial],
    rungs: Sequence[int] | None,
    *,
    min_trials: int = MIN_RELIABLE_TRIALS,
) -> ImportanceBasis:
    """Where to measure importance: the final objective when ``min_trials`` trials completed (or
    the study has no rungs), else the highest ASHA rung that ``min_trials`` finished trials
    reached, else the rung most of them reached (the higher one on a tie), whenever it holds
    more trials than completed.

    Args:
        trials: a snapshot of the study's trials; rung values are read from the intermediate
            values (sweeplab reports the objective once per epoch) of COMPLETE and PRUNED trials.
        rungs: ASHA's rung epochs (:func:`sweeplab.studies.asha.rungs_from_spec`), or ``None``.
        min_trials: trials that make a measurement worth preferring to a later one.

    Example:
        >>> import optuna
        >>> def trial(state, curve, value=None):
        ...     return optuna.trial.create_trial(
        ...         state=state, value=value, params={"x": curve[0]},
        ...         distributions={"x": optuna.distributions.FloatDistribution(0, 1)},
        ...         intermediate_values=dict(enumerate(curve, start=1)))
        >>> done = [trial(TrialState.COMPLETE, [0.1, 0.2, 0.3, 0.4], 0.4)] * 2
        >>> pruned = [trial(TrialState.PRUNED, [0.2, 0.1])] * 3
        >>> basis = importance_basis(done + pruned, [2, 4], min_trials=5)
        >>> basis.epoch, len(basis.trials), basis.n_complete, basis.n_pruned
        (2, 5, 2, 3)
        >>> importance_basis(done + pruned, None).epoch is None
        True
    """
    complete = [
        t
        for t in trials
        if t.state == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value)
    ]
    final = ImportanceBasis(
        trials=tuple(sorted(complete, key=lambda t: t.number)), epoch=None,
        n_complete=len(complete), rungs=tuple(rungs or ()),
    )  # fmt: skip
    if len(complete) >= min_trials or not rungs:
        return final
    at = {epoch: _at_epoch(trials, epoch) for epoch in rungs}
    enough = [e for e in rungs if len(at[e]) >= min_trials]
    epoch = max(enough) if enough else max(rungs, key=lambda e: (len(at[e]), e))
    if len(at[epoch]) <= len(complete):
        return final
    return ImportanceBasis(
        trials=tuple(_stand_in(t, epoch) for t in at[epoch]), epoch=epoch,
        n_complete=sum(t.state == TrialState.COMPLETE for t in at[epoch]), rungs=tuple(rungs),
    )  # fmt: skip
