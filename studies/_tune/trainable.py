"""The function Ray Tune runs for each trial, in a (reused) worker process.

It only translates: Tune's config -> :func:`sweeplab.trainer.fit`, each epoch ->
``ray.tune.report``. Errors are reported in-band as a last report carrying
:data:`~sweeplab.studies._tune.messages.ERROR`, so a failing configuration costs no worker
restart and its message reaches the study database.
"""

from __future__ import annotations

from typing import Any

from sweeplab import trainer
from sweeplab.studies._tune import messages
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
    """Train one configuration, reporting its epochs to Ray Tune (see :class:`Reporter`)."""
    from ray import tune

    facts = worker_facts(template.sweeplab_version)
    settings = template.fit_settings(seed=int(config[messages.SEED]))
    reporter = Reporter(facts, template.rungs, REPORT_INTERVAL_S)

    def on_epoch(report: trainer.EpochReport) -> None:
        reporter.epoch(epoch_message(report, facts), last=report.is_last)

    try:
        trainer.fit(template.data, template.model, config[messages.PARAMS], settings, on_epoch)
    except Exception as e:
        reporter.flush()  # the epochs before the failure are kept, as they would have been
        tune.report(failure_message(e, reporter.last_epoch, facts))
