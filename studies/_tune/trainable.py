"""The function Ray Tune runs for each trial, in a (reused) worker process.

It only translates: Tune's config -> :func:`sweeplab.trainer.fit`, each epoch ->
``ray.tune.report``. Errors are reported in-band as a last report carrying
:data:`~sweeplab.studies._tune.messages.ERROR`, so a failing configuration costs no worker
restart and its message reaches the study database.
"""

from __future__ import annotations

import os
from typing import Any

from sweeplab import trainer
from sweeplab.studies._tune import messages
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
    artifacts = None
    if template.artifacts is not None:
        artifacts = TrialArtifacts(template.artifacts, int(config[messages.NUMBER]), reporter)
    resume = load_resume(artifacts, config)

    def on_epoch(report: trainer.EpochReport) -> None:
        reporter.epoch(epoch_message(report, facts), last=report.is_last)

    def train(resume: trainer.Checkpoint | None) -> None:
        checkpointing = None if artifacts is None else artifacts.checkpointing(resume)
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
            if resume is not None and artifacts is not None:
                artifacts.resumed(resume.epoch, resume.step)
            train(resume)
        except trainer.CheckpointError as e:
            if resume is None or artifacts is None:
                raise
            # Made for other settings (read before any epoch ran): start over, and say why.
            reporter.unsent = []
            artifacts.restarted(str(e))
            train(None)
    except Exception as e:
        reporter.flush()  # the epochs before the failure are kept, as they would have been
        tune.report(failure_message(e, reporter.last_epoch, facts))
