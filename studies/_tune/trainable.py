"""The function Ray Tune runs for each trial, in a (reused) worker process.

It only translates: Tune's config -> :func:`sweeplab.trainer.fit`, each epoch ->
``ray.tune.report``. Errors are reported in-band as a last report carrying
:data:`~sweeplab.studies._tune.messages.ERROR`, so a failing configuration costs no worker
restart and its message reaches the study database.
"""

from __future__ import annotations

import math
import time
from typing import Any

from sweeplab import trainer
from sweeplab.studies._tune import messages
from sweeplab.studies._tune.worker import (
    TrialTemplate,
    epoch_message,
    failure_message,
    worker_facts,
)

# A report costs the driver a few milliseconds (Tune's result processing, a database commit),
# CPU that on a small machine is taken from the trials themselves. Short epochs are therefore
# sent in batches: a report goes out at the first epoch (the driver learns where the trial
# runs), at every rung (where ASHA judges: exactly the epochs it would judge anyway), at the
# last epoch, and otherwise once this many seconds have passed since the previous one, carrying
# the epochs in between. Every epoch still reaches the database, in order.
REPORT_INTERVAL_S = 0.5


def run_trial(config: dict[str, Any], template: TrialTemplate) -> None:
    """Train one configuration, reporting its epochs to Ray Tune (see :data:`REPORT_INTERVAL_S`)."""
    from ray import tune

    facts = worker_facts(template.sweeplab_version)
    settings = template.fit_settings(seed=int(config[messages.SEED]))
    last_epoch = 0
    unsent: list[dict[str, Any]] = []  # epochs not reported yet, oldest first
    last_sent = -math.inf

    def send() -> None:
        nonlocal last_sent
        *earlier, latest = unsent
        batch = {messages.EARLIER_EPOCHS: earlier} if earlier else {}
        tune.report({**latest, **facts, **batch})
        unsent.clear()
        last_sent = time.monotonic()

    def on_epoch(report: trainer.EpochReport) -> None:
        nonlocal last_epoch
        last_epoch = report.epoch
        unsent.append(epoch_message(report, facts))
        due = time.monotonic() - last_sent >= REPORT_INTERVAL_S
        if due or report.is_last or report.epoch in template.rungs:
            send()

    try:
        trainer.fit(template.data, template.model, config[messages.PARAMS], settings, on_epoch)
    except Exception as e:
        if unsent:  # the epochs before the failure are kept, as they would have been one by one
            send()
        tune.report(failure_message(e, last_epoch, facts))
