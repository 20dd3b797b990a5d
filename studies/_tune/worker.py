"""What both trainables share in a Ray worker: the study's template, the worker's facts, the
fit settings of one trial, and how an epoch or a failure becomes a report.

:func:`~sweeplab.studies._tune.trainable.run_trial` trains one trial per Ray trial and
:func:`~sweeplab.studies._tune.packed.run_pack` several; both set up the same way and speak the
same messages (:mod:`sweeplab.studies._tune.messages`), so the searcher reads them alike.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass
from typing import Any

from sweeplab import trainer
from sweeplab.studies import records
from sweeplab.studies._tune import messages


@dataclass(frozen=True)
class ArtifactSettings:
    """Where a study's trials save checkpoints and weights, and how often."""

    location: str  # the artifact store's folder, absolute
    study_name: str
    every_s: float = 10.0  # [budget] checkpoint_every_s
    keep_weights: bool = True  # [study] keep_best > 0


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
    # Checkpoints and final weights (None: the study keeps none).
    artifacts: ArtifactSettings | None = None
    # Population based training: at every rung the trial hands Ray a checkpoint to copy.
    pbt: bool = False

    def fit_settings(self, seed: int | None = None) -> trainer.FitSettings:
        """The fit settings of one trial in this worker: its seed, and as many torch threads as
        CPUs reserved, so concurrent trials do not oversubscribe the cores."""
        threads = max(1, math.floor(self.cpus))
        settings = dataclasses.replace(self.fit, num_threads=threads)
        return settings if seed is None else dataclasses.replace(settings, seed=seed)


def worker_facts(sweeplab_version: str) -> dict[str, Any]:
    """What every report of a trial run in this worker carries: when it started, the versions,
    and where it ran (node and process, so a fault or an overhead can be traced to a worker)."""
    import ray
    import torch

    return {
        records.RUN_STARTED_AT: time.time(),
        "torch_version": torch.__version__,
        records.SWEEPLAB_VERSION: sweeplab_version,
        messages.NODE_IP: ray.util.get_node_ip_address(),
        "node_id": ray.get_runtime_context().get_node_id(),
        messages.PID: os.getpid(),
    }


def epoch_message(report: trainer.EpochReport, facts: dict[str, Any]) -> dict[str, Any]:
    """An epoch's metrics as sent to the driver; the last one also says when the run finished."""
    metrics = report.metrics()
    # The epochs trained, one of the loop's costs (trainer.COST_METRICS) an objective can name.
    metrics["epochs"] = report.epoch
    if report.is_last:
        finished = time.time()
        metrics[records.RUN_FINISHED_AT] = finished
        metrics[records.WALL_TIME_S] = finished - facts[records.RUN_STARTED_AT]
    return metrics


class Reporter:
    """Sends a trial's epochs to Ray Tune, short ones in batches.

    A report costs the driver a few milliseconds (Tune's result processing, a database commit),
    CPU that on a small machine is taken from the trials themselves. So a report goes out at the
    first epoch (the driver learns where the trial runs), at every rung (where ASHA judges:
    exactly the epochs it would judge anyway), at the last epoch, and otherwise once
    ``interval_s`` has passed since the previous one, carrying the epochs in between
    (:data:`~messages.EARLIER_EPOCHS`). Every epoch still reaches the database, in order.

    ``ray.tune.report`` raises ``SystemExit`` in the trial's thread once the scheduler has stopped
    the trial; it passes through here untouched.
    """

    def __init__(self, facts: dict[str, Any], rungs: frozenset[int], interval_s: float) -> None:
        self.facts, self.rungs, self.interval_s = facts, rungs, interval_s
        self.unsent: list[dict[str, Any]] = []  # epochs not reported yet, oldest first
        self.last_sent = -math.inf
        self.last_epoch = 0
        # What joins the next report (a checkpoint's record...); it makes that report due.
        self.pending: dict[str, Any] = {}
        # A Ray checkpoint for the next report (population based training), and what tidies
        # its folder once Tune has copied it.
        self.for_tune: tuple[Any, Any] | None = None

    def epoch(self, metrics: dict[str, Any], *, last: bool = False, hold: bool = False) -> None:
        """Queue one epoch's metrics (with its :data:`~messages.EPOCH`); send when due, unless
        ``hold`` (the caller will :meth:`flush` it with more)."""
        self.last_epoch = int(metrics[messages.EPOCH])
        self.unsent.append(metrics)
        due = time.monotonic() - self.last_sent >= self.interval_s
        if not hold and (due or last or self.pending or self.last_epoch in self.rungs):
            self.flush()

    def attach(self, **extra: Any) -> None:
        """Send ``extra`` with the next epoch's report, which then goes out at once."""
        self.pending.update(extra)

    def send_now(self, **extra: Any) -> None:
        """Send ``extra`` now: with the queued epochs, or alone (a report without an epoch,
        which the scheduler and the curves ignore) when none are queued."""
        if self.unsent:
            self.flush(**extra)
            return
        from ray import tune

        tune.report({**self.pending, **extra})
        self.pending = {}

    def flush(self, **extra: Any) -> None:
        """Send what is queued (``extra`` joins the latest epoch), if anything is."""
        if not self.unsent:
            return
        from ray import tune

        *earlier, latest = self.unsent
        batch = {messages.EARLIER_EPOCHS: earlier} if earlier else {}
        extra = {**self.pending, **extra}
        self.unsent, self.pending = [], {}
        self.last_sent = time.monotonic()
        report = {**latest, **self.facts, **extra, **batch}
        if self.for_tune is None:
            tune.report(report)
            return
        (checkpoint, tidy), self.for_tune = self.for_tune, None
        try:
            tune.report(report, checkpoint=checkpoint)
        finally:
            tidy()


class ReportError(TypeError):
    """A training function used ``trial.report`` (or returned) in a way sweeplab cannot record."""


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
        return records.FailReason.DIVERGED.value, str(error)
    if isinstance(error, ReportError):
        return records.FailReason.USAGE.value, str(error)
    text = f"{type(error).__name__}: {error}"
    # torch.OutOfMemoryError covers CUDA; older or other backends raise a RuntimeError that
    # says so in words.
    if isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower():
        return records.FailReason.OUT_OF_MEMORY.value, f"{text} ({OOM_HINT})"
    return records.FailReason.ERROR.value, text


def failure_message(error: BaseException, last_epoch: int, facts: dict[str, Any]) -> dict[str, Any]:
    """The report of a trial that failed: its message, its reason and the epoch it reached."""
    fail_reason, message = classify_error(error)
    epoch = error.epoch if isinstance(error, trainer.Diverged) else last_epoch
    return {
        messages.ERROR: message,
        messages.FAIL_REASON: fail_reason,
        messages.EPOCH: epoch,
        **facts,
    }
