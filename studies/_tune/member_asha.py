"""ASHA for one member of a pack: Ray Tune's rule, applied inside the packed trainable.

A pack is one Ray Tune trial that trains several Optuna trials, so Ray's ``ASHAScheduler``
could only stop the pack as a whole. Each member is instead judged by the same rule
(:mod:`sweeplab.studies.asha`: the same rungs, the same cutoff), with the spec's
``grace_period`` (r, the first rung) and ``reduction_factor`` (eta):

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

import optuna

from sweeplab.studies.asha import asha_rungs, asha_stops


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
        # Largest first: a member reporting past several rungs at once is judged at the highest.
        self.rungs = sorted(asha_rungs(grace_period, reduction_factor, max_epochs), reverse=True)
        self.pack = set(pack)
        self.recorded: dict[int, dict[int, float]] = {r: {} for r in self.rungs}
        self._stored: dict[int, list[float]] = {}

    def should_stop(self, number: int, epoch: int, value: float | None) -> bool:
        """Judge member ``number``'s objective ``value`` after ``epoch`` epochs."""
        if value is None or not math.isfinite(value):
            return False
        for step in self.rungs:
            rung = self.recorded[step]
            if epoch < step or number in rung:
                continue
            others = self._stored_values(step) + list(rung.values())
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
