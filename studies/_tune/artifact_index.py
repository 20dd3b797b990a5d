"""The driver's side of the trials' artifacts: the database's index of them, and retention.

Workers write checkpoints and weights into the study's artifact store and say so in their
reports (:mod:`~sweeplab.studies._tune.checkpoints`); here those reports become trial
attributes (:data:`~sweeplab.studies.records.CHECKPOINT`, :data:`~records.WEIGHTS`,
:data:`~records.RESUMED_AT`, :data:`~records.ARTIFACT_NOTE`), always written before the file
they replace is deleted, so the database never points at nothing a run still needs. What is
kept:

- the last checkpoint of a trial that has not finished, and of one queued to run again (it
  continues from it); a pruned, failed or complete trial's is deleted when it ends;
- the final weights of the ``keep_best`` best complete trials, ranked by their value (ties: the
  earlier trial); the study attribute :data:`~records.KEPT_WEIGHTS` lists them, and the files of
  trials that drop out of it are deleted. Several drivers of one study rank under the study's
  budget lock, so they agree.
"""

from __future__ import annotations

import json
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeplab.studies import records, storage
from sweeplab.studies._tune import messages


def kept_weights(study: optuna.Study | Any) -> list[int]:
    """The numbers of the trials whose weights the study keeps, best first (``study``: a study
    or its summary)."""
    kept = study.user_attrs.get(records.KEPT_WEIGHTS) or []
    return [int(n) for n in kept]


class ArtifactIndex:
    """The artifact records of one driver's live trials, kept in step with the database.

    Args:
        study: the study (RDB storage).
        location: its artifact folder.
        keep_best: complete trials whose weights are kept.
    """

    def __init__(self, study: optuna.Study, location: str, keep_best: int) -> None:
        self.study, self.keep_best, self.location = study, keep_best, location
        self.store = storage.open_artifact_store(location)
        self.checkpoints: dict[str, records.ArtifactRecord] = {}
        self.weights: dict[str, records.ArtifactRecord] = {}
        self.doomed: list[records.ArtifactRecord] = []  # deleted once the trial is told

    def started(self, key: str, resume_from: Any) -> None:
        """A re-run trial starts: the checkpoint it continues from is its own until it saves."""
        record = records.ArtifactRecord.from_attr(resume_from)
        if record is not None:
            self.checkpoints[key] = record

    def record(self, key: str, trial: optuna.Trial | FrozenTrial, report: dict) -> None:
        """Index what a report says about the trial's artifacts (idempotent: Tune may deliver
        a report twice)."""
        attrs: dict[str, Any] = {}
        replaced = None
        checkpoint = _record(report.get(messages.CHECKPOINT))
        if checkpoint is not None:
            previous = self.checkpoints.get(key)
            if previous is None or previous.artifact_id != checkpoint.artifact_id:
                attrs[records.CHECKPOINT] = checkpoint.to_attr()
                self.checkpoints[key] = checkpoint
                replaced = previous
        weights = _record(report.get(messages.WEIGHTS))
        if weights is not None:
            self.weights[key] = weights
        if report.get(messages.RESUMED_AT):
            attrs[records.RESUMED_AT] = json.loads(report[messages.RESUMED_AT])
        if report.get(messages.ARTIFACT_NOTE):
            attrs[records.ARTIFACT_NOTE] = str(report[messages.ARTIFACT_NOTE])
        if attrs:
            storage.write_user_attrs(self.study, trial, attrs)
        if replaced is not None:
            storage.remove_artifact(self.store, replaced)

    def finish(self, key: str, state: TrialState, *, keep_checkpoint: bool) -> dict[str, Any]:
        """The attributes a trial ending in ``state`` is told with; its checkpoint is deleted
        (after the tell, see :meth:`after_tell`) unless it is run again."""
        attrs: dict[str, Any] = {}
        weights = self.weights.pop(key, None)
        if weights is not None:
            if state == TrialState.COMPLETE and self.keep_best > 0:
                attrs[records.WEIGHTS] = weights.to_attr()
            else:
                self.doomed.append(weights)
        checkpoint = self.checkpoints.pop(key, None)
        if checkpoint is not None and not keep_checkpoint:
            attrs[records.CHECKPOINT] = None
            self.doomed.append(checkpoint)
        return attrs

    def after_tell(
        self, number: int, state: TrialState, attrs: dict[str, Any], maximize: bool, index: int = 0
    ) -> None:
        """Delete what trial ``number``, told ``state`` with ``attrs`` (those :meth:`finish`
        gave among them), no longer needs, and rank the kept weights (by the ``index``-th
        objective: of several, the one training tracks)."""
        doomed, self.doomed = self.doomed, []
        for record in doomed:
            storage.remove_artifact(self.store, record)
        if state == TrialState.COMPLETE and attrs.get(records.WEIGHTS):
            self.retain(number, maximize, index)

    def sweep(self) -> int:
        """At the end of a run: delete what finished trials left that no record needs (a
        checkpoint a killed run saved but never recorded). Returns the files deleted."""
        return storage.sweep_study_files(
            self.location,
            self.study.study_name,
            self.study.get_trials(deepcopy=False),
            kept_weights(self.study),
        )

    def retain(self, number: int, maximize: bool, index: int = 0) -> list[int]:
        """Rank trial ``number``'s new weights among the kept ones; delete what drops out.

        Returns the numbers kept, best first.
        """
        with storage.budget_lock(self.study):
            candidates = {*kept_weights(self.study), number}  # user_attrs: read afresh
            trials = [
                t
                for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.number in candidates and t.user_attrs.get(records.WEIGHTS)
            ]
            sign = -1.0 if maximize else 1.0
            trials.sort(key=lambda t: (sign * float(t.values[index]), t.number))
            kept, dropped = trials[: self.keep_best], trials[self.keep_best :]
            numbers = [t.number for t in kept]
            self.study.set_user_attr(records.KEPT_WEIGHTS, numbers)
        for trial in dropped:
            storage.remove_artifact(
                self.store, records.ArtifactRecord.from_attr(trial.user_attrs[records.WEIGHTS])
            )
        return numbers


def _record(text: Any) -> records.ArtifactRecord | None:
    if not text:
        return None
    try:
        return records.ArtifactRecord.from_attr(json.loads(text))
    except (TypeError, ValueError):
        return None
