"""One trial's checkpoints and final weights, from the worker's side.

The trainer hands over bytes (:class:`sweeplab.trainer.Checkpointing`); this writes them into
the study's artifact store and tells the driver, in the trial's reports, where they are
(:data:`~messages.CHECKPOINT`, :data:`~messages.WEIGHTS`): the driver's searcher writes the
trial attributes that index them and deletes what is no longer needed, so the database stays
the one record. A re-run trial (its worker died, or its driver) gets the checkpoint it continues
from in its config (:data:`~messages.RESUME_FROM`); one that cannot be read (missing, damaged,
made for other settings) is noted and the trial starts from scratch instead: a bad file never
fails a trial. Saving is best effort too: a full disk is noted once and the trial trains on.
"""

from __future__ import annotations

import json
from typing import Any

from sweeplab import trainer
from sweeplab.studies import records, storage
from sweeplab.studies._tune import messages
from sweeplab.studies._tune.worker import ArtifactSettings, Reporter


class TrialArtifacts:
    """The artifact store as one trial in a worker uses it.

    Args:
        settings: where the study keeps artifacts and how often a trial saves.
        number: the trial's Optuna number (it names the trial's files).
        reporter: the trial's reporter, which carries the records to the driver.
    """

    def __init__(self, settings: ArtifactSettings, number: int, reporter: Reporter) -> None:
        self.settings, self.number, self.reporter = settings, number, reporter
        self.store = storage.open_artifact_store(settings.location)
        self.noted = False

    # ---- resuming ---------------------------------------------------------------------------
    def resume_bytes(self, config: dict[str, Any]) -> tuple[bytes, records.ArtifactRecord] | None:
        """The bytes of the checkpoint this trial continues from, if it has a usable one; a
        missing or damaged file is noted (the trial then starts from scratch)."""
        record = records.ArtifactRecord.from_attr(config.get(messages.RESUME_FROM))
        if record is None:
            return None
        try:
            return storage.get_artifact(self.store, record), record
        except storage.ArtifactUnusable as e:
            self.restarted(str(e))
            return None

    def resumed(self, epoch: int, step: int) -> None:
        """Tell the driver where the trial continued from."""
        self.reporter.attach(**{messages.RESUMED_AT: json.dumps({"epoch": epoch, "step": step})})

    def restarted(self, why: str) -> None:
        """Tell the driver the trial started from scratch, and why."""
        at = {"epoch": 0, "step": 0, "why": f"{why}; trained from scratch"}
        self.reporter.attach(**{messages.RESUMED_AT: json.dumps(at)})

    # ---- saving -----------------------------------------------------------------------------
    def save(self, data: bytes, kind: str, epoch: int, step: int = 0, *, now: bool = False) -> bool:
        """Write one checkpoint (or the weights) and queue its record for the driver: with the
        epoch's report at an epoch's end, at once in the middle of one (or when ``now``). False
        when it could not be written (noted once; training goes on)."""
        where = storage.artifact_id(self.settings.study_name, self.number, kind, epoch, step)
        try:
            record = storage.put_artifact(
                self.store, where, data, kind=kind, epoch=epoch, step=step
            )
        except OSError as e:
            self.note(f"{kind} of epoch {epoch} not saved: {e.strerror or e}")
            return False
        key = messages.WEIGHTS if kind == "weights" else messages.CHECKPOINT
        text = json.dumps(record.to_attr())
        if step > 0 or now:
            self.reporter.send_now(**{key: text})
        else:
            self.reporter.attach(**{key: text})
        return True

    def note(self, text: str) -> None:
        """Record what went wrong with the artifacts, once per trial."""
        if not self.noted:
            self.noted = True
            self.reporter.attach(**{messages.ARTIFACT_NOTE: text})

    def checkpointing(self, resume: trainer.Checkpoint | None) -> trainer.Checkpointing:
        """The trainer's checkpointing settings for this trial."""

        def save(data: bytes, info: trainer.SaveInfo) -> None:
            self.save(data, info.kind, info.epoch, info.step)

        return trainer.Checkpointing(
            every_s=self.settings.every_s,
            save=save,
            save_weights=save if self.settings.keep_weights else None,
            resume=resume,
        )


def load_resume(
    artifacts: TrialArtifacts | None, config: dict[str, Any]
) -> trainer.Checkpoint | None:
    """The checkpoint a built-in trial continues from, read and checked; ``None`` to start
    from scratch (none recorded, or one that cannot be used: noted)."""
    if artifacts is None:
        return None
    found = artifacts.resume_bytes(config)
    if found is None:
        return None
    data, record = found
    try:
        checkpoint = trainer.read_checkpoint(data)
    except trainer.CheckpointError as e:
        artifacts.restarted(f"checkpoint {record.artifact_id!r} cannot be used: {e}")
        return None
    return checkpoint
