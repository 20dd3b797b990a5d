"""Multi-objective ASHA as a Ray Tune scheduler: ASHA's rungs, judged by Pareto order.

Ray's ``ASHAScheduler`` ranks trials by one metric. With several objectives a trial is a vector,
and MOASHA (Schmucker et al., 2021, "Multi-objective Asynchronous Successive Halving"; Syne
Tune's ``MOASHA``) ranks the vectors recorded at a rung by non-dominated sorting, with NSGA-II's
crowding distance as the tie-break inside a front, and lets only the first ``1/eta`` go on
(:func:`sweeplab.studies.asha.moasha_stops`). The rungs are ASHA's own
(:func:`~sweeplab.studies.asha.asha_rungs`), so the trainables report at them as for ASHA. Like
Ray's ASHA, a run judges by the vectors it recorded itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from sweeplab.studies._tune import messages
from sweeplab.studies.asha import moasha_stops


class MultiObjectiveASHA(FIFOScheduler):
    """Stops a trial at a rung when its objective vector is outside the rung's top ``1/eta``.

    Args:
        objectives: the metric names, as the trials report them.
        directions: ``maximize`` or ``minimize``, one per objective.
        rungs: the epochs at which trials are judged (ASHA's rungs).
        reduction_factor: η: a share ``1/eta`` of each rung goes on.
        max_epochs: a trial's budget; a rung there is not judged (the trial ends anyway).

    Example:
        >>> moasha = MultiObjectiveASHA(objectives=["val_acc", "params"],
        ...     directions=["maximize", "minimize"], rungs=[1, 2, 4], reduction_factor=2,
        ...     max_epochs=4)
        >>> moasha.judge("a", {"epoch": 1, "val_acc": 0.9, "params": 10})
        'CONTINUE'
        >>> moasha.judge("b", {"epoch": 1, "val_acc": 0.8, "params": 20})  # dominated by a
        'STOP'
    """

    def __init__(
        self,
        *,
        objectives: Sequence[str],
        directions: Sequence[str],
        rungs: Sequence[int],
        reduction_factor: float,
        max_epochs: int,
    ) -> None:
        super().__init__()
        self.objectives, self.directions = list(objectives), list(directions)
        self.rf = reduction_factor
        self.rungs = [r for r in rungs if r < max_epochs]
        # rung -> trial id -> the vector it reached the rung with
        self.recorded: dict[int, dict[str, tuple[float, ...]]] = {r: {} for r in self.rungs}

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        return self.judge(trial.trial_id, result)

    def judge(self, trial_id: str, result: dict) -> str:
        """``CONTINUE`` or ``STOP`` for one report of trial ``trial_id``."""
        if messages.ERROR in result or messages.EPOCH not in result:
            return TrialScheduler.CONTINUE
        vector = self._vector(result)
        if vector is None:  # an objective missing (a function's report): nothing to rank
            return TrialScheduler.CONTINUE
        epoch = int(result[messages.EPOCH])
        for rung in self.rungs:
            at = self.recorded[rung]
            if epoch < rung or trial_id in at:
                continue
            # The first report at or past the rung is where ASHA judges (the trainables
            # report at every rung at once, so this is the rung's own epoch).
            stop = moasha_stops(vector, list(at.values()), self.rf, self.directions)
            at[trial_id] = vector
            if stop:
                return TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def _vector(self, result: dict) -> tuple[float, ...] | None:
        out = []
        for name in self.objectives:
            value = result.get(name)
            if value is None and name == "epochs":
                value = result.get(messages.EPOCH)
            if not isinstance(value, int | float) or not math.isfinite(value):
                return None
            out.append(float(value))
        return tuple(out)

    def debug_string(self) -> str:
        return f"Multi-objective ASHA over {self.objectives} at rungs {self.rungs}."
