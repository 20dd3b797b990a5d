"""Each running trial's epochs as its reports arrive: the learning curve a finished trial keeps.

A report carries the latest epoch and, when the worker batched short epochs, the earlier ones
not sent yet (:data:`~sweeplab.studies._tune.messages.EARLIER_EPOCHS`). Ray Tune hands a trial's
last report to ``on_trial_complete`` only when the scheduler stopped it, and to both callbacks
when it finished, so an epoch can arrive twice: each is taken once, in order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from sweeplab.studies import records
from sweeplab.studies._tune import messages


class Curves:
    """Per-trial curves (one list per :data:`~sweeplab.studies.records.CURVE_KEYS` metric).

    Args:
        objective: the metric whose per-epoch values become Optuna's intermediate values.

    Example:
        >>> curves = Curves("val_acc")
        >>> report = {"epoch": 2, "val_acc": 0.9, "earlier_epochs": [{"epoch": 1, "val_acc": 0.8}]}
        >>> curves.add("t1", report)
        [(1, 0.8), (2, 0.9)]
        >>> curves.add("t1", report)  # delivered again: nothing new
        []
        >>> attrs = curves.pop("t1")
        >>> attrs["val_acc"], attrs["epochs_run"]
        ([0.8, 0.9], 2)
    """

    def __init__(self, objective: str, extra: tuple[str, ...] = ()) -> None:
        self.objective = objective
        self.builtin = (*records.CURVE_KEYS, *extra)  # the curves of sweeplab's own loop
        self._curves: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
        self._epochs: dict[str, int] = defaultdict(int)
        self._own_names: set[str] = set()  # keys whose curves a training function named

    def epochs(self, key: str) -> int:
        """Epochs recorded for the trial so far."""
        return self._epochs.get(key, 0)

    def add(self, key: str, report: Mapping[str, Any]) -> list[tuple[int, float | None]]:
        """Take a report's new epochs; return each one's objective value as reported."""
        curve = self._curves[key]
        new: list[tuple[int, float | None]] = []
        for epoch_report in (*report.get(messages.EARLIER_EPOCHS, ()), report):
            epoch = int(epoch_report[messages.EPOCH])
            if epoch <= self._epochs[key]:
                continue
            names = epoch_report.get(messages.CURVE_NAMES)
            if names is None:
                names = self.builtin
            else:  # a training function's own metrics, and how long its epochs took
                names = [*names, records.EPOCH_SECONDS]
                self._own_names.add(key)
            for name in dict.fromkeys([*curve, *names]):  # a metric missing this epoch: None
                values = curve[name]
                values.extend([None] * (self._epochs[key] - len(values)))
                values.append(epoch_report.get(name))
            self._epochs[key] = epoch
            new.append((epoch, epoch_report.get(self.objective)))
        return new

    def pop(self, key: str) -> dict[str, Any]:
        """The trial's curves as user attributes (and :data:`~records.EPOCHS_RUN`); forgotten."""
        curve = self._curves.pop(key, {})
        attrs: dict[str, Any] = {name: list(values) for name, values in curve.items()}
        attrs[records.EPOCHS_RUN] = self._epochs.pop(key, 0)
        if key in self._own_names:
            self._own_names.discard(key)
            attrs[records.CURVE_NAMES] = [n for n in curve if n != records.EPOCH_SECONDS]
        return attrs
