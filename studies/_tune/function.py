"""A user's whole training loop as a trial: ``train(hp, trial)`` run in a Ray worker.

The user's function builds its own model and data, trains, and calls
``trial.report(epoch, **metrics)`` after each epoch; it returns its final metrics (or ``None``).
:class:`Trial` is all it needs of sweeplab: the trial's number, seed, device and resources, and
``report``, which raises :class:`TrialPruned` once the scheduler (ASHA) has stopped the trial,
as ``optuna.TrialPruned`` does. Epochs reach the study exactly as the built-in loop's do (the
same :class:`~sweeplab.studies._tune.worker.Reporter`), under the function's own metric names.
"""

from __future__ import annotations

import math
import numbers
import random
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sweeplab.studies import records
from sweeplab.studies._tune import messages
from sweeplab.studies._tune.checkpoints import TrialArtifacts
from sweeplab.studies._tune.worker import (
    ArtifactSettings,
    Reporter,
    ReportError,
    failure_message,
    worker_facts,
)

#: Seconds between two reports of short epochs (see :class:`Reporter`).
REPORT_INTERVAL_S = 0.5
# How much of the user's traceback a failed trial keeps.
_TRACEBACK_CHARS = 8000


class TrialPruned(Exception):
    """Raised by :meth:`Trial.report` when the scheduler has stopped the trial.

    Let it propagate out of the training function (catch it only to clean up): the trial is then
    stored PRUNED with the epochs it reported. Raising it yourself prunes the trial too.
    """


@dataclass(frozen=True, kw_only=True)
class FunctionTemplate:
    """What every trial of a function study shares; shipped once to the workers."""

    function: Callable[..., Any]
    objective: str
    direction: str
    max_epochs: int
    cpus: float
    gpus: float
    sweeplab_version: str
    rungs: frozenset[int] = frozenset()
    artifacts: ArtifactSettings | None = None  # where trial.save writes (None: it saves nothing)


# What trial.save writes around the user's state.
_FUNCTION_CHECKPOINT = "sweeplab-function-checkpoint-1"


class Trial:
    """The handle a training function gets: who the trial is, and where its epochs go.

    Attributes:
        number: the Optuna trial number.
        params: the trial's configuration (the same mapping the function gets as ``hp``).
        seed: its training seed (``random``, ``numpy`` and ``torch`` are seeded with it before the
            function starts; seed your own generators from it).
        device: ``"cuda"`` when the trial was given a GPU (``[search.resources] gpus``), else
            ``"cpu"``.
        cpus, gpus: the resources Ray reserved for the trial (torch is set to ``floor(cpus)``
            threads).
        max_epochs: ``[budget] max_epochs``: report epochs 1 to this.
        objective: the metric the study optimises; every report must carry it.

    A function that calls :meth:`save` after its epochs, and :meth:`restore` when it starts,
    continues where it stopped when its trial is run again (its worker or its driver died).

    Example (a training function)::

        def train(hp, trial):
            model = make_model(hp["width"]).to(trial.device)
            for epoch in range(1, trial.max_epochs + 1):
                loss = train_one_epoch(model, lr=hp["lr"])
                trial.report(epoch, val_f1=evaluate(model), train_loss=loss)
            return {"test_f1": evaluate(model, test=True)}

    The same function, resumable::

        def train(hp, trial):
            model = make_model(hp["width"]).to(trial.device)
            state = trial.restore()  # None on a first run
            if state is not None:
                model.load_state_dict(state["model"])
            for epoch in range(len(trial.epochs) + 1, trial.max_epochs + 1):
                loss = train_one_epoch(model, lr=hp["lr"])
                trial.report(epoch, val_f1=evaluate(model), train_loss=loss)
                trial.save({"model": model.state_dict()})
    """

    def __init__(
        self,
        *,
        number: int,
        params: Mapping[str, Any],
        seed: int,
        template: FunctionTemplate,
        reporter: Reporter,
        artifacts: TrialArtifacts | None = None,
        resume: tuple[bytes, records.ArtifactRecord] | None = None,
    ) -> None:
        self.number = number
        self.params = dict(params)
        self.seed = seed
        self.cpus, self.gpus = template.cpus, template.gpus
        self.device = "cuda" if template.gpus > 0 and _cuda() else "cpu"
        self.max_epochs = template.max_epochs
        self.objective = template.objective
        self._maximize = template.direction == "maximize"
        self._reporter = reporter
        self.stopped = False  # the scheduler stopped the trial
        self.epochs: list[dict[str, float]] = []
        self.best: tuple[int, float] | None = None  # (epoch, objective)
        self._started = time.perf_counter()
        self._artifacts, self._resume = artifacts, resume

    def save(self, state: Any) -> bool:
        """Save ``state`` as the trial's checkpoint, as of the epoch last reported.

        ``state`` holds what training needs to go on: tensors, ``state_dict()`` s of the model,
        optimizer and scheduler, numbers, strings, and lists and dicts of them (what
        ``torch.load(weights_only=True)`` reads back). A re-run of this trial gets it from
        :meth:`restore`. Each save replaces the previous one; after the last epoch nothing is
        saved (the trial is finished).

        Returns:
            Whether it was saved (``False``: the study keeps no artifacts, no epoch was
            reported yet, the budget's last epoch was, or the disk refused: noted on the trial).

        Raises:
            TrialPruned: the scheduler stopped the trial: return (let it propagate).
        """
        import io

        import torch

        if self._artifacts is None or not self.epochs:
            return False
        epoch = int(self.epochs[-1][messages.EPOCH])
        if epoch >= self.max_epochs:
            return False
        payload = {"format": _FUNCTION_CHECKPOINT, "user": state, "epochs": self.epochs}
        payload["best"] = list(self.best) if self.best is not None else None
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        try:
            return self._artifacts.save(buffer.getvalue(), "checkpoint", epoch, now=True)
        except SystemExit:  # the scheduler stopped the trial while its report went out
            self.stopped = True
            raise TrialPruned(
                f"the scheduler stopped trial {self.number} at epoch {epoch}"
            ) from None

    def restore(self) -> Any | None:
        """The state the previous run of this trial saved (:meth:`save`), or ``None``: a first
        run, or a checkpoint that cannot be read (the trial then starts from scratch, and says
        why in its ``resumed_at`` attribute).

        The epochs that run reported are this trial's too (:attr:`epochs`): report from the
        next one, ``len(trial.epochs) + 1``.
        """
        import io

        import torch

        if self._resume is None or self._artifacts is None:
            return None
        (data, record), self._resume = self._resume, None
        try:
            payload = torch.load(
                io.BytesIO(data),
                weights_only=True,
                map_location="cpu" if self.device == "cpu" else None,
            )
            if not isinstance(payload, dict) or payload.get("format") != _FUNCTION_CHECKPOINT:
                raise ValueError("not a checkpoint of trial.save")
            epochs = [dict(e) for e in payload["epochs"]]
        except Exception as e:
            self._artifacts.restarted(
                f"checkpoint {record.artifact_id!r} cannot be read ({type(e).__name__}: {e})"
            )
            return None
        self.epochs = epochs
        best = payload.get("best")
        self.best = (int(best[0]), float(best[1])) if best else None
        for entry in epochs:  # they go out with the first new epoch
            self._reporter.epoch(entry, hold=True)
        self._artifacts.resumed(int(epochs[-1][messages.EPOCH]) if epochs else 0, 0)
        return payload["user"]

    def report(self, epoch: int, **metrics: float) -> None:
        """Record one epoch's metrics (any names; the study's objective among them).

        Raises:
            TrialPruned: the scheduler stopped the trial: return (let it propagate).
            ReportError: an epoch out of order or past ``max_epochs``, a metric that is not a
                number, or no value of the objective.
        """
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral):
            raise ReportError(f"trial.report: epoch must be an int; got {epoch!r}")
        epoch = int(epoch)
        last = self.epochs[-1][messages.EPOCH] if self.epochs else 0
        if not last < epoch <= self.max_epochs:
            raise ReportError(
                f"trial.report: epoch must be in [{last + 1}, {self.max_epochs}] "
                f"(after epoch {last}; budget.max_epochs = {self.max_epochs}); got {epoch}"
            )
        if self.objective not in metrics:
            raise ReportError(
                f"trial.report: the study's objective {self.objective!r} ([study] objective) is "
                f"not among the reported metrics ({', '.join(sorted(metrics)) or 'none'}); "
                f"report it: trial.report(epoch, {self.objective}=...)"
            )
        values = {name: _number(name, value) for name, value in metrics.items()}
        now = time.perf_counter()
        seconds = now - self._started
        self._started = now
        value = values[self.objective]
        if math.isfinite(value) and (self.best is None or self._better(value, self.best[1])):
            self.best = (epoch, value)
        entry = {**values, messages.EPOCH: epoch, records.EPOCH_SECONDS: seconds}
        entry[messages.CURVE_NAMES] = sorted(values)
        self.epochs.append(entry)
        try:
            # The budget's last epoch goes out with the function's final metrics, as one last
            # report: ASHA ends a trial at max_epochs, so nothing sent after it would arrive.
            self._reporter.epoch(entry, hold=epoch == self.max_epochs)
        except SystemExit:  # Ray's way of ending a trial its scheduler stopped
            self.stopped = True
            raise TrialPruned(
                f"the scheduler stopped trial {self.number} at epoch {epoch}"
            ) from None

    def _better(self, value: float, than: float) -> bool:
        return value > than if self._maximize else value < than


def _number(name: str, value: Any) -> float:
    try:
        return float(value)  # ints, floats, numpy scalars, one-element tensors
    except (TypeError, ValueError):
        raise ReportError(
            f"trial.report: metric {name!r} must be a number; got {type(value).__name__} "
            f"{value!r:.60}"
        ) from None


def _cuda() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - sweeplab depends on torch
        return False
    return torch.cuda.is_available()


def _seed_everything(seed: int, cpus: float) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.set_num_threads(max(1, math.floor(cpus)))


def run_function(config: dict[str, Any], template: FunctionTemplate) -> None:
    """Run the user's training function for one trial, reporting its epochs to Ray Tune."""
    from ray import tune

    facts = worker_facts(template.sweeplab_version)
    reporter = Reporter(facts, template.rungs, REPORT_INTERVAL_S)
    seed = int(config[messages.SEED])
    number = int(config[messages.NUMBER])
    artifacts = None
    if template.artifacts is not None:
        artifacts = TrialArtifacts(template.artifacts, number, reporter)
    trial = Trial(
        number=number,
        params=config[messages.PARAMS],
        seed=seed,
        template=template,
        reporter=reporter,
        artifacts=artifacts,
        resume=None if artifacts is None else artifacts.resume_bytes(config),
    )
    _seed_everything(seed, template.cpus)
    try:
        final = template.function(dict(config[messages.PARAMS]), trial)
        final = _final_metrics(final)
    except TrialPruned:
        if trial.stopped:  # let Ray end the thread as it asked to
            raise SystemExit(0) from None
        reporter.flush()  # the function pruned itself: its epochs are kept, not is_last
        return
    except Exception as e:
        reporter.flush()
        failure = failure_message(e, reporter.last_epoch, facts)
        failure[messages.TRACEBACK] = traceback.format_exc()[-_TRACEBACK_CHARS:]
        tune.report(failure)
        return
    if not trial.epochs:
        error = ReportError(
            "the training function returned without reporting an epoch; call "
            f"trial.report(epoch, {template.objective}=...) after each epoch"
        )
        tune.report(failure_message(error, 0, facts))
        return
    tune_final(reporter, trial, final, template.objective, facts)


def tune_final(
    reporter: Reporter,
    trial: Trial,
    final: dict[str, float],
    objective: str,
    facts: dict[str, Any],
) -> None:
    """The trial's last report: its last epoch, its final metrics and the value to tell (the
    returned objective where the function returns one, else the last epoch's)."""
    value = final.get(objective, trial.epochs[-1][objective])
    finished = time.time()
    extra = {
        messages.IS_LAST: True,
        messages.BEST_VALUE: value,
        records.BEST_EPOCH: trial.best[0] if trial.best else trial.epochs[-1][messages.EPOCH],
        # As (name, value) pairs: Tune flattens a dict in a result into "a/b" keys.
        messages.FINAL_METRICS: sorted(final.items()),
        records.RUN_FINISHED_AT: finished,
        records.WALL_TIME_S: finished - facts[records.RUN_STARTED_AT],
    }
    if not reporter.unsent:  # the last epoch went out already: send it again, finished
        reporter.unsent.append(trial.epochs[-1])
    reporter.flush(**extra)


def _final_metrics(final: Any) -> dict[str, float]:
    if final is None:
        return {}
    if not isinstance(final, Mapping):
        raise ReportError(
            "the training function must return a dict of final metrics (or None); got "
            f"{type(final).__name__}"
        )
    return {str(name): _number(str(name), value) for name, value in final.items()}
