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

import trainer


@dataclass(frozen=True)
class TrialTemplate:
    """What every trial of a study shares; shipped once to the workers."""

    data: trainer.DataSettings
    model: trainer.ModelSettings
    fit: trainer.FitSettings
    cpus: float
    sweeplab_version: str


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
    """Train one configuration, reporting every epoch to Ray Tune."""
    from ray import tune

    facts = worker_facts(template.sweeplab_version)
    started = facts["run_started_at"]
    # As many torch threads as CPUs reserved, so concurrent trials do not oversubscribe cores.
    threads = max(1, math.floor(template.cpus))
    settings = dataclasses.replace(template.fit, seed=int(config["seed"]), num_threads=threads)
    last_epoch = 0

    def on_epoch(report: trainer.EpochReport) -> None:
        nonlocal last_epoch
        last_epoch = report.epoch
        metrics = report.metrics()
        if report.is_last:
            finished = time.time()
            metrics.update(run_finished_at=finished, wall_time_s=finished - started)
        tune.report({**metrics, **facts})

    try:
        result = trainer.fit(template.data, template.model, config["params"], settings, on_epoch)
        del result
    except Exception as e:
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
