"""A trainer of known cost: each epoch does a fixed amount of work and reports a made-up metric.

:mod:`trial_overhead` runs it in place of the real training so that everything else — Ray Tune,
the searcher, the sampler, ASHA, the database writes — is measured on its own. sweeplab's Ray
workers get it through Ray's public ``worker_process_setup_hook`` (:func:`install`), which
replaces ``trainer.fit`` in each worker process before it runs a trial; sweeplab's own trial
function (``sweeplab.studies._tune.trainable.run_trial``) and everything around it run
unchanged. The stock Ray Tune reference calls :func:`stock_trainable`, which does the same work
and reports the same metrics.

Two kinds of work (``SWEEPLAB_BENCH_WORK``):

- ``cpu``: spin until the thread has used ``epoch_s`` seconds of CPU. Like real training on a
  CPU, the trial is slowed down by whatever else wants the cores (Ray's processes, the driver's
  searcher and database writes), so the overhead measured includes the CPU the orchestration
  takes from training, not only its latency. This is the figure a 2-core user sees.
- ``sleep``: ``time.sleep(epoch_s)``. The cores stay idle, so the orchestration runs for free
  beside the trials and the figure is its latency on the critical path only: a lower bound,
  much less sensitive to other load on the machine.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

WORK_ENV = "SWEEPLAB_BENCH_WORK"
EPOCH_S_ENV = "SWEEPLAB_BENCH_EPOCH_S"


def work(seconds: float, kind: str) -> None:
    """Do ``seconds`` of work of the given kind (``cpu`` or ``sleep``)."""
    if kind == "sleep":
        time.sleep(seconds)
        return
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def quality(params: Mapping[str, Any]) -> float:
    """A smooth, deterministic stand-in for the accuracy a configuration reaches (in (0, 1)).

    Best near lr = 1e-2, little dropout and weight decay; Adam-family optimizers and a
    non-default init help a little. It only has to give the sampler and ASHA something to rank.
    """
    lr = float(params.get("lr", 1e-2))
    q = 0.97 - 0.05 * (math.log10(lr) + 2.0) ** 2
    q -= 0.1 * float(params.get("dropout", 0.0)) ** 2
    q -= 0.01 * abs(math.log10(float(params.get("weight_decay", 1e-5))) + 5.0)
    q += 0.01 * (params.get("optimizer") in ("adam", "adamw"))
    q += 0.005 * (params.get("init", "default") != "default")
    return min(0.99, max(0.1, q))


def curve(params: Mapping[str, Any], epoch: int) -> float:
    """Validation accuracy after ``epoch`` epochs: rising towards :func:`quality`."""
    return 0.1 + (quality(params) - 0.1) * (1.0 - math.exp(-epoch / 2.0))


def fixed_cost_fit(
    data: Any,
    model: Any,
    params: Mapping[str, Any],
    settings: Any,
    on_epoch: Callable[[Any], None] | None = None,
    checkpointing: Any = None,
) -> Any:
    """Drop-in for ``trainer.fit``: ``settings.max_epochs`` epochs of fixed work each (it saves
    no checkpoint: ``checkpointing`` is taken and left unused)."""
    from sweeplab import trainer

    kind = os.environ.get(WORK_ENV, "cpu")
    epoch_s = float(os.environ[EPOCH_S_ENV])
    started = time.perf_counter()
    history = []
    best = (0, -math.inf)
    for epoch in range(1, settings.max_epochs + 1):
        tick = time.perf_counter()
        work(epoch_s, kind)
        acc = curve(params, epoch)
        if acc > best[1]:
            best = (epoch, acc)
        last = epoch == settings.max_epochs
        report = trainer.EpochReport(
            epoch=epoch, train_loss=1.0 - acc, train_acc=acc, val_loss=1.0 - acc, val_acc=acc,
            lr=float(params.get("lr", 1e-2)), epoch_seconds=time.perf_counter() - tick,
            is_last=last, best_epoch=best[0], best_value=best[1], stopped_early=False,
            test_loss=(1.0 - acc) if last else None, test_acc=acc if last else None,
        )  # fmt: skip
        history.append(report)
        if on_epoch is not None:
            on_epoch(report)
    return trainer.FitResult(
        history=tuple(history), epochs_run=len(history), best_epoch=best[0], best_value=best[1],
        test_acc=history[-1].val_acc, test_loss=history[-1].val_loss, device="cpu",
        wall_time_s=time.perf_counter() - started,
    )  # fmt: skip


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Swaps ``trainer.fit`` once ``trainer`` is imported, so a worker that never runs a trial
    (Ray starts idle ones) does not pay for importing torch."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != "sweeplab.trainer":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        loader = spec.loader
        execute = loader.exec_module

        def exec_module(module: Any) -> None:
            execute(module)
            module.fit = fixed_cost_fit

        loader.exec_module = exec_module
        return spec


def install() -> None:
    """Ray ``worker_process_setup_hook``: make this worker's ``trainer.fit`` the fixed-cost one."""
    if "sweeplab.trainer" in sys.modules:
        sys.modules["sweeplab.trainer"].fit = fixed_cost_fit
    else:
        sys.meta_path.insert(0, _PatchOnImport())


def stock_trainable(config: dict[str, Any]) -> None:
    """The same work and metrics as a plain Ray Tune function trainable (the reference)."""
    from ray import tune

    started = time.time()
    kind = os.environ.get(WORK_ENV, "cpu")
    epoch_s = float(os.environ[EPOCH_S_ENV])
    for epoch in range(1, int(config["max_epochs"]) + 1):
        work(epoch_s, kind)
        tune.report({"epoch": epoch, "val_acc": curve(config, epoch), "started_at": started})
