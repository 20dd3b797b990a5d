"""How a trial ended, read off its last report, and whether a worker death runs it again.

Pure functions and a small policy object: the searcher applies them when Ray Tune says a trial
is over. The states:

- the trainable reported a failure (:data:`~sweeplab.studies._tune.messages.ERROR`): FAIL with
  its message and reason (diverged, out of memory, an exception); not retried, it would fail the
  same way;
- Ray lost the trial (no last report, or Tune's error flag): its worker process died; FAIL
  ``worker_died``, run again with the same parameters and seed up to ``retries`` times;
- the last report is the trial's last epoch: COMPLETE, valued at the best epoch (restore-best-
  weights) or the last one; FAIL if that value is not finite;
- otherwise the scheduler stopped it before its budget: PRUNED, never COMPLETE.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeplab.studies import records
from sweeplab.studies._tune import messages

WORKER_DIED = "the trial's worker process died or was killed before the trial finished"


@dataclass(frozen=True)
class Outcome:
    """A finished trial as the study will store it.

    Attributes:
        state: COMPLETE, PRUNED or FAIL.
        value: the objective told to Optuna (``None`` unless COMPLETE); a list of the values
            in a multi-objective study.
        attrs: user attributes: final facts of the report, and ``error``/``fail_reason``.
        worker_died: Ray lost the trial's worker (the only failure that is retried).
    """

    state: TrialState
    value: float | list[float] | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    worker_died: bool = False


def trial_outcome(
    report: Mapping[str, Any] | None,
    *,
    lost: bool,
    objective: str,
    use_best_value: bool,
    epochs_run: int,
    objectives: Sequence[str] = (),
) -> Outcome:
    """How a trial ended, from its last report (see the module docstring).

    Args:
        report: the trial's last report (``None`` or empty when Ray had none).
        lost: Ray Tune flagged the trial as errored (its worker died).
        objective: the objective's metric name.
        use_best_value: value a COMPLETE trial at its best epoch rather than its last.
        epochs_run: epochs the trial recorded (for the worker-death message).
        objectives: 2 or more metrics of a multi-objective study: a COMPLETE trial is valued
            by all of them, each as the trial ended (see :func:`objective_values`).

    Example:
        >>> trial_outcome({"epoch": 4, "is_last": True, "best_value": 0.9, "val_acc": 0.8,
        ...                "test_acc": 0.85}, lost=False, objective="val_acc",
        ...               use_best_value=True, epochs_run=4)
        Outcome(state=<TrialState.COMPLETE: 1>, value=0.9, attrs={'best_value': 0.9, \
'test_acc': 0.85}, worker_died=False)
        >>> trial_outcome({"epoch": 2, "is_last": False, "val_acc": 0.5}, lost=False,
        ...               objective="val_acc", use_best_value=True, epochs_run=2).state.name
        'PRUNED'
        >>> trial_outcome(None, lost=True, objective="val_acc", use_best_value=True,
        ...               epochs_run=3).attrs["fail_reason"]
        'worker_died'
    """
    report = report or {}
    attrs = {key: report[key] for key in records.FINAL_KEYS if report.get(key) is not None}
    if report.get(messages.FINAL_METRICS):
        attrs[records.FINAL_METRICS] = {str(k): v for k, v in report[messages.FINAL_METRICS]}
    if messages.ERROR in report:  # the trial raised or diverged, and said so
        reason = report.get(messages.FAIL_REASON, records.FailReason.ERROR.value)
        attrs.update({records.ERROR: report[messages.ERROR], records.FAIL_REASON: reason})
        if report.get(messages.TRACEBACK):
            attrs[records.TRACEBACK] = report[messages.TRACEBACK]
        return Outcome(TrialState.FAIL, attrs=attrs)
    if lost or not report:  # Tune lost the trial: its worker process is gone
        attrs[records.ERROR] = f"{WORKER_DIED} (after {epochs_run} epochs)"
        attrs[records.FAIL_REASON] = records.FailReason.WORKER_DIED.value
        return Outcome(TrialState.FAIL, attrs=attrs, worker_died=True)
    if not report.get(messages.IS_LAST):
        return Outcome(TrialState.PRUNED, attrs=attrs)  # stopped by the scheduler
    if len(objectives) > 1:
        values = objective_values(report, objectives)
        missing = [m for m, v in zip(objectives, values, strict=True) if v is None]
        if missing:
            attrs[records.ERROR] = f"no finite {', '.join(missing)} at the end of the trial"
            attrs[records.FAIL_REASON] = records.FailReason.ERROR.value
            return Outcome(TrialState.FAIL, attrs=attrs)
        return Outcome(TrialState.COMPLETE, value=values, attrs=attrs)  # type: ignore[arg-type]
    value = report.get(messages.BEST_VALUE) if use_best_value else report.get(objective)
    if value is None or not math.isfinite(value):
        attrs[records.ERROR] = f"no finite {objective} at the end of the trial"
        attrs[records.FAIL_REASON] = records.FailReason.ERROR.value
        return Outcome(TrialState.FAIL, attrs=attrs)
    return Outcome(TrialState.COMPLETE, value=float(value), attrs=attrs)


def objective_values(report: Mapping[str, Any], objectives: Sequence[str]) -> list[float | None]:
    """A multi-objective trial's values from its last report: a training function's returned
    metric where it returned one, else the last epoch's (``epochs``: the epochs it ran).

    All are read at the same, last, epoch (not the best epoch of one of them: the vector must be
    one model's); ``None`` for a value that is missing or not finite.

    Example:
        >>> objective_values({"epoch": 3, "val_acc": 0.9, "params": 120}, ["val_acc", "epochs",
        ...                   "params"])
        [0.9, 3.0, 120.0]
    """
    final = dict(report.get(messages.FINAL_METRICS) or ())
    out: list[float | None] = []
    for name in objectives:
        value = final.get(name, report.get(name))
        if value is None and name == "epochs":
            value = report.get(messages.EPOCH)
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        out.append(float(value) if ok and math.isfinite(value) else None)
    return out


@dataclass(frozen=True)
class RetryPolicy:
    """How many times a trial whose worker died is run again (``[budget] retries``).

    A retry is a new trial with the same parameters and seed, queued to run first; it carries
    :data:`~records.RETRY_OF` (the trial it re-runs), :data:`~records.ATTEMPT` (how many
    worker deaths these parameters have had) and :data:`~records.RESUME_FROM` (the checkpoint it
    continues from).

    Example:
        >>> policy = RetryPolicy(retries=1)
        >>> policy.retries_after(0), policy.retries_after(1)
        (True, False)
        >>> policy.note(0)
        '; run again with the same parameters and seed (retry 1 of 1)'
    """

    retries: int

    def retries_after(self, attempt: int) -> bool:
        """Whether a worker death on attempt ``attempt`` (0 = the first run) is run again."""
        return attempt < self.retries

    def note(self, attempt: int) -> str:
        """What the failed trial's message says about its retry."""
        if self.retries_after(attempt):
            return (
                f"; run again with the same parameters and seed (retry {attempt + 1} of "
                f"{self.retries})"
            )
        return f"; not retried ({self.retries} retries used)"

    def requeue(self, study: optuna.Study, failed: FrozenTrial, attempt: int) -> None:
        """Queue the failed trial's parameters and seed to run again, first.

        A trial that population based training copied into trained on with the donor's
        hyperparameters, perturbed (the last :data:`~records.PBT_SCHEDULE` step's
        ``all_params``): its retry continues from its checkpoint with those, and keeps the
        schedule so far, rather than starting over from its own first ones.
        """
        params = dict(failed.params)
        attrs = {
            records.RETRY_OF: failed.number,
            records.SEED: failed.user_attrs.get(records.SEED),
            records.ATTEMPT: attempt + 1,
            # It continues from the failed run's last checkpoint, when it saved one.
            records.RESUME_FROM: failed.user_attrs.get(records.CHECKPOINT),
        }
        schedule = failed.user_attrs.get(records.PBT_SCHEDULE)
        if schedule:
            params.update(schedule[-1].get("all_params") or schedule[-1].get("params") or {})
            attrs[records.PBT_SCHEDULE] = schedule
        study.enqueue_trial(params, user_attrs=attrs)
