"""Multi-objective ASHA as a Ray Tune scheduler: ASHA's rungs, judged by Pareto order.

Ray's ``ASHAScheduler`` ranks trials by one metric. With several objectives a trial is a vector,
and MOASHA (Schmucker et al., 2021, "Multi-objective Asynchronous Successive Halving"; Syne
Tune's ``MOASHA``) ranks the vectors recorded at a rung by non-dominated sorting, with NSGA-II's
crowding distance as the tie-break inside a front, and lets only the first ``1/eta`` go on
(:func:`sweeplab.studies.asha.moasha_stops`). The rungs are ASHA's own
(:func:`~sweeplab.studies.asha.asha_rungs`), so the trainables report at them as for ASHA.

A resumed study's rungs start from the vectors its earlier runs reached them with
(:func:`rung_history`, read from the finished trials' curves in the database), so a resumed run
judges against more evidence, never less, as a pack's members are
(:mod:`~sweeplab.studies._tune.member_asha`); Ray's own ASHA starts each run empty.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from optuna.trial import FrozenTrial, TrialState
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from sweeplab.studies._tune import messages
from sweeplab.studies.asha import moasha_stops

#: Objectives that sweeplab's loop reports with every epoch but are not among its built-in
#: curves: a multi-objective study keeps them as curves too, so a resumed run can rank the
#: vectors its earlier runs reached each rung with (``epochs`` is the rung itself).
COST_CURVES = ("params", "train_time")


def cost_curves(objectives: Sequence[str]) -> tuple[str, ...]:
    """Of a multi-objective study's objectives, the cost metrics to keep as curves.

    Example:
        >>> cost_curves(["val_acc", "params", "epochs"])
        ('params',)
    """
    return tuple(name for name in objectives if name in COST_CURVES)


def rung_history(
    trials: Sequence[FrozenTrial], objectives: Sequence[str], rungs: Sequence[int]
) -> dict[int, list[tuple[float, ...]]]:
    """The objective vectors the finished trials (complete or pruned) reached each rung with,
    read from their stored curves: ``rung -> [vector, ...]``.

    A trial whose curves lack an objective at a rung (a finite number) gives nothing there.

    Example:
        >>> from optuna.trial import create_trial
        >>> t = create_trial(values=[0.9, 10.0], user_attrs={"val_acc": [0.5, 0.8, 0.9],
        ...                  "params": [10, 10, 10]})
        >>> rung_history([t], ["val_acc", "params"], [1, 2])
        {1: [(0.5, 10.0)], 2: [(0.8, 10.0)]}
        >>> rung_history([t], ["val_acc", "epochs"], [2])
        {2: [(0.8, 2.0)]}
    """
    out: dict[int, list[tuple[float, ...]]] = {r: [] for r in rungs}
    for trial in trials:
        if trial.state not in (TrialState.COMPLETE, TrialState.PRUNED):
            continue
        for rung in rungs:
            vector = []
            for name in objectives:
                if name == "epochs":
                    vector.append(float(rung))
                    continue
                curve = trial.user_attrs.get(name)
                value = curve[rung - 1] if isinstance(curve, list) and len(curve) >= rung else None
                if not isinstance(value, int | float) or not math.isfinite(value):
                    break
                vector.append(float(value))
            else:
                out[rung].append(tuple(vector))
    return out


class MultiObjectiveASHA(FIFOScheduler):
    """Stops a trial at a rung when its objective vector is outside the rung's top ``1/eta``.

    Args:
        objectives: the metric names, as the trials report them.
        directions: ``maximize`` or ``minimize``, one per objective.
        rungs: the epochs at which trials are judged (ASHA's rungs).
        reduction_factor: η: a share ``1/eta`` of each rung goes on.
        max_epochs: a trial's budget; a rung there is not judged (the trial ends anyway).
        history: the vectors earlier runs reached each rung with (:func:`rung_history`); they
            count in every judgement at their rung.

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
        history: Mapping[int, Sequence[tuple[float, ...]]] | None = None,
    ) -> None:
        super().__init__()
        self.objectives, self.directions = list(objectives), list(directions)
        self.rf = reduction_factor
        self.rungs = [r for r in rungs if r < max_epochs]
        history = history or {}
        self.earlier = {r: list(history.get(r, ())) for r in self.rungs}
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
            others = [*self.earlier[rung], *at.values()]
            stop = moasha_stops(vector, others, self.rf, self.directions)
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
