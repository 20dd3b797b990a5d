"""The function Ray Tune runs for each trial, in a (reused) worker process.

It only translates: Tune's config -> :func:`sweeplab.trainer.fit`, each epoch ->
``ray.tune.report``. Errors are reported in-band as a last report carrying
:data:`~sweeplab.studies._tune.messages.ERROR`, so a failing configuration costs no worker
restart and its message reaches the study database.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

from sweeplab import trainer
from sweeplab.studies._tune import messages, pbt
from sweeplab.studies._tune.checkpoints import TrialArtifacts, load_resume
from sweeplab.studies._tune.worker import (
    Reporter,
    TrialTemplate,
    epoch_message,
    failure_message,
    worker_facts,
)

#: Seconds between two reports of short epochs (see :class:`Reporter`).
REPORT_INTERVAL_S = 0.5


def run_trial(config: dict[str, Any], template: TrialTemplate) -> None:
    """Train one configuration, reporting its epochs to Ray Tune (see :class:`Reporter`).

    With the study's artifacts on, the trial saves checkpoints and its final weights
    (:mod:`~sweeplab.studies._tune.checkpoints`), and a re-run trial continues from the
    checkpoint in its config: the epochs that checkpoint holds go out with its first report, so
    the new trial's curve is whole.
    """
    from ray import tune

    facts = worker_facts(template.sweeplab_version)
    settings = template.fit_settings(seed=int(config[messages.SEED]))
    if settings.deterministic:
        # cuBLAS is deterministic only with a fixed workspace; read when CUDA starts.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    reporter = Reporter(facts, template.rungs, REPORT_INTERVAL_S)
    # The trial's Optuna number: what its artifacts and PBT checkpoints are named by (only they
    # need it; a bare config, as the reporting tests pass, trains without).
    number = int(config.get(messages.NUMBER, -1))
    artifacts = None
    if template.artifacts is not None:
        artifacts = TrialArtifacts(template.artifacts, number, reporter)
    # Population based training restarts a trial from a Ray checkpoint: its own after a pause,
    # another trial's after an exploit; either comes before the artifact store's.
    from_tune = pbt.take_checkpoint(number) if template.pbt else None
    exploit = from_tune is not None and from_tune[1]
    if from_tune is not None:
        try:
            resume = trainer.read_checkpoint(from_tune[0])
        except trainer.CheckpointError as e:  # the copy is the run's state: no starting over
            tune.report(failure_message(e, 0, facts))
            return
    else:
        resume = load_resume(artifacts, config)

    def on_epoch(report: trainer.EpochReport) -> None:
        reporter.epoch(epoch_message(report, facts), last=report.is_last)

    def train(resume: trainer.Checkpoint | None) -> None:
        checkpointing = None if artifacts is None else artifacts.checkpointing(resume)
        if template.pbt:
            checkpointing = for_pbt(checkpointing, resume, exploit, template, reporter, number)
        if resume is not None:
            for earlier in resume.history:  # they go out with the first new epoch
                reporter.epoch(epoch_message(earlier, facts), hold=True)
        trainer.fit(
            template.data,
            template.model,
            config[messages.PARAMS],
            settings,
            on_epoch,
            checkpointing=checkpointing,
        )

    try:
        try:
            if resume is not None and artifacts is not None and from_tune is None:
                artifacts.resumed(resume.epoch, resume.step)
            train(resume)
        except trainer.CheckpointError as e:
            if resume is None or artifacts is None or from_tune is not None:
                raise
            # Made for other settings (read before any epoch ran): start over, and say why.
            reporter.unsent = []
            artifacts.restarted(str(e))
            train(None)
    except Exception as e:
        reporter.flush()  # the epochs before the failure are kept, as they would have been
        tune.report(failure_message(e, reporter.last_epoch, facts))


def for_pbt(
    checkpointing: trainer.Checkpointing | None,
    resume: trainer.Checkpoint | None,
    exploit: bool,
    template: TrialTemplate,
    reporter: Reporter,
    number: int,
) -> trainer.Checkpointing:
    """The trial's checkpointing under population based training: a checkpoint at every rung
    (PBT's intervals) that also goes to Ray with that epoch's report, for PBT to copy; and, after
    an exploit, the donor's state taken over with this trial's perturbed hyperparameters."""
    base = checkpointing or trainer.Checkpointing(every_s=math.inf, resume=resume)
    keep = base.save

    def save(data: bytes, info: trainer.SaveInfo) -> None:
        if keep is not None:
            keep(data, info)
        if info.step == 0 and info.epoch in template.rungs:
            reporter.for_tune = pbt.checkpoint_for_tune(data, number)

    return dataclasses.replace(
        base, save=save, at_epochs=template.rungs, resume=resume, exploit=exploit
    )
