"""The function Ray Tune runs for each trial, in a (reused) worker process.

It only translates: Tune's config -> :func:`trainer.fit`, each epoch -> ``ray.tune.report``.
Errors are reported in-band as a last result carrying ``error``, so a failing configuration
costs no worker restart and its message reaches the study database.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass
from typing import Any

from sweeplab import trainer


@dataclass(frozen=True)
class TrialTemplate:
    """What every trial of a study shares; shipped once to the workers."""

    data: trainer.DataSettings
    model: trainer.ModelSettings
    fit: trainer.FitSettings
    cpus: float
    sweeplab_version: str
    # Epochs at which the scheduler judges a trial (ASHA's rungs); each is reported at once.
    rungs: frozenset[int] = frozenset()


# A report costs the driver a few milliseconds (Tune's result processing, a database commit),
# CPU that on a small machine is taken from the trials themselves. Short epochs are therefore
# sent in batches: a report goes out at the first epoch (the driver learns where the trial
# runs), at every rung (where ASHA judges: exactly the epochs it would judge anyway), at the
# last epoch, and otherwise once this many seconds have passed since the previous one, carrying
# the epochs in between. Every epoch still reaches the database, in order.
REPORT_INTERVAL_S = 0.5
# The key of a report's list of earlier, not yet reported epochs (each a metrics dict).
EARLIER_EPOCHS = "earlier_epochs"


def worker_facts(sweeplab_version: str) -> dict[str, Any]:
    """What every report of a trial run in this worker carries: when it started, the versions,
    and where it ran (node and process, so a fault or an overhead can be traced to a worker)."""
    import ray
    import torch

    return {
        "run_started_at": time.time(),
        "torch_version": torch.__version__,
        "sweeplab_version": sweeplab_version,
        "node_ip": ray.util.get_node_ip_address(),
        "node_id": ray.get_runtime_context().get_node_id(),
        "pid": os.getpid(),
    }


def run_trial(config: dict[str, Any], template: TrialTemplate) -> None:
    """Train one configuration, reporting its epochs to Ray Tune (see :data:`REPORT_INTERVAL_S`)."""
    from ray import tune

    facts = worker_facts(template.sweeplab_version)
    started = facts["run_started_at"]
    # As many torch threads as CPUs reserved, so concurrent trials do not oversubscribe cores.
    threads = max(1, math.floor(template.cpus))
    settings = dataclasses.replace(template.fit, seed=int(config["seed"]), num_threads=threads)
    last_epoch = 0
    unsent: list[dict[str, Any]] = []  # epochs not reported yet, oldest first
    last_sent = -math.inf

    def send() -> None:
        nonlocal last_sent
        *earlier, latest = unsent
        tune.report({**latest, **facts, **({EARLIER_EPOCHS: earlier} if earlier else {})})
        unsent.clear()
        last_sent = time.monotonic()

    def on_epoch(report: trainer.EpochReport) -> None:
        nonlocal last_epoch
        last_epoch = report.epoch
        metrics = report.metrics()
        if report.is_last:
            finished = time.time()
            metrics.update(run_finished_at=finished, wall_time_s=finished - started)
        unsent.append(metrics)
        due = time.monotonic() - last_sent >= REPORT_INTERVAL_S
        if due or report.is_last or report.epoch in template.rungs:
            send()

    try:
        result = trainer.fit(template.data, template.model, config["params"], settings, on_epoch)
        del result
    except Exception as e:
        if unsent:  # the epochs before the failure are kept, as they would have been one by one
            send()
        fail_reason, message = classify_error(e)
        epoch = e.epoch if isinstance(e, trainer.Diverged) else last_epoch
        tune.report({"error": message, "fail_reason": fail_reason, "epoch": epoch, **facts})


OOM_HINT = (
    "hint: lower batch_size or the model width, or give each trial more GPU "
    "([search.resources] gpus)"
)


def classify_error(error: BaseException) -> tuple[str, str]:
    """The ``fail_reason`` and the message a failed trial is stored with.

    Each one is a FAIL that the study goes on from:

    - ``"diverged"``: the training loss stopped being finite ("diverged at epoch k (...)").
    - ``"out_of_memory"``: CUDA (or any torch device) ran out of memory; the message carries a
      hint, since a smaller batch or model usually fits.
    - ``"error"``: anything else the trial raised, as ``"TypeName: message"``.

    Example:
        >>> classify_error(ValueError("bad shape"))
        ('error', 'ValueError: bad shape')
    """
    import torch

    if isinstance(error, trainer.Diverged):
        return "diverged", str(error)
    text = f"{type(error).__name__}: {error}"
    # torch.OutOfMemoryError covers CUDA; older or other backends raise a RuntimeError that
    # says so in words.
    if isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower():
        return "out_of_memory", f"{text} ({OOM_HINT})"
    return "error", text
