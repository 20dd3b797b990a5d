"""ASHA for one member of a pack: Ray Tune's rule, applied inside the packed trainable.

A pack is one Ray Tune trial that trains several Optuna trials, so Ray's ``ASHAScheduler``
could only stop the pack as a whole. Each member is instead judged by the same rule
(asynchronous successive halving, Li et al., 2020, "A System for Massively Parallel
Hyperparameter Tuning"), with the repo's ``grace_period`` (r, the first rung) and
``reduction_factor`` (eta):

- rungs (milestones) at ``r * eta**k`` epochs for ``k = 0, 1, ...`` while ``<= max_epochs``
  (Ray's ``_Bracket`` with one bracket);
- when a member first reaches a rung, the cutoff is the ``(1 - 1/eta)`` quantile of the values
  recorded at that rung so far; the member stops if its value is worse, then its value is
  recorded (an empty rung stops nobody);
- "recorded so far" is every trial of the study with an intermediate value at that rung's
  epoch in the database (this run's, earlier runs', other drivers') plus the pack's members
  already judged at that rung. Ray's scheduler only knows the trials of its own run, so on a
  resumed study this judges against more evidence, never less.

Members of one pack reach a rung together and are judged one after another in pack order, as
Ray judges results in the order they arrive.
"""

from __future__ import annotations

import math
from collections.abc import Collection

import numpy as np
import optuna


def asha_milestones(grace_period: int, reduction_factor: float, max_t: int) -> list[float]:
    """Ray's rung epochs, largest first.

    Example:
        >>> asha_milestones(1, 2.0, 8)
        [8.0, 4.0, 2.0, 1.0]
    """
    n = int(np.log(max_t / grace_period) / np.log(reduction_factor) + 1)
    return [grace_period * reduction_factor**k for k in reversed(range(n))]


def asha_rungs(grace_period: int, reduction_factor: float, max_t: int) -> frozenset[int]:
    """The epochs at which Ray's ASHA judges a trial that reports every epoch.

    Ray judges a rung at the first report at or past it, so a fractional rung (reduction factor
    2.5: 12.5) is judged at the epoch after it.

    Example:
        >>> sorted(asha_rungs(2, 2.5, 20))
        [2, 5, 13]
    """
    return frozenset(math.ceil(m) for m in asha_milestones(grace_period, reduction_factor, max_t))


def asha_stops(
    value: float, recorded: list[float], reduction_factor: float, maximize: bool
) -> bool:
    """Whether a value reaching a rung is below the rung's cutoff (Ray's ``_Bracket.on_result``).

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


class MemberAsha:
    """Decides, per member and epoch, whether ASHA stops it.

    Args:
        study: the study (read for other trials' values at each rung), or ``None`` to judge
            against the pack alone.
        grace_period, reduction_factor, max_epochs: the scheduler's settings.
        maximize: the objective's direction.
        pack: the Optuna numbers of the pack's members (their database values are not used:
            the pack records its own).
    """

    def __init__(
        self,
        study: optuna.Study | None,
        *,
        grace_period: int,
        reduction_factor: float,
        max_epochs: int,
        maximize: bool,
        pack: Collection[int],
    ) -> None:
        self.study = study
        self.rf, self.maximize = reduction_factor, maximize
        self.milestones = asha_milestones(grace_period, reduction_factor, max_epochs)
        self.pack = set(pack)
        self.recorded: dict[float, dict[int, float]] = {m: {} for m in self.milestones}
        self._stored: dict[int, list[float]] = {}

    def should_stop(self, number: int, epoch: int, value: float | None) -> bool:
        """Judge member ``number``'s objective ``value`` after ``epoch`` epochs."""
        if value is None or not math.isfinite(value):
            return False
        for milestone in self.milestones:
            rung = self.recorded[milestone]
            if epoch < milestone or number in rung:
                continue
            others = self._stored_values(math.ceil(milestone)) + list(rung.values())
            stop = asha_stops(value, others, self.rf, self.maximize)
            rung[number] = value
            return stop
        return False

    def _stored_values(self, step: int) -> list[float]:
        if self.study is None:
            return []
        if step not in self._stored:  # read once per rung: every member of the pack shares it
            try:
                trials = self.study.get_trials(deepcopy=False)
            except Exception:  # a busy database must not kill the pack: judge on what it has
                return []
            self._stored[step] = [
                t.intermediate_values[step]
                for t in trials
                if t.number not in self.pack and step in t.intermediate_values
            ]
        return self._stored[step]
