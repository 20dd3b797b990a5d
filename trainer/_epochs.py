"""One run's epochs, kept once for :func:`~trainer.fit` and for each member of a pack.

After each epoch's training and validation an :class:`EpochTracker` picks the objective out of
the epoch's metrics, tracks the best epoch, applies the early-stopping rule and builds the
epoch's :class:`EpochReport`; :func:`fit_result` turns the reports into the run's
:class:`FitResult`. ``fit`` keeps one tracker, ``fit_packed`` one per member, so a member of a
pack stops, and reports, exactly as it would alone. :func:`batch_starts` cuts an epoch into
batches. This module is pure Python bookkeeping, run once per epoch, never per step.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sweeplab.trainer._settings import FitSettings

# Examples per forward pass when evaluating; no gradients are kept, so this can be large.
EVAL_BATCH_SIZE = 1024


@dataclass(frozen=True, kw_only=True)
class EpochReport:
    """What one epoch produced, as handed to ``on_epoch`` and kept in :attr:`FitResult.history`.

    Attributes:
        epoch: 1-based epoch number.
        train_loss: mean training loss over the epoch's batches as trained (augmented, with label
            smoothing; mixup-weighted), per example; without the ``l1`` penalty term, so runs
            with and without it compare.
        train_acc: share of training examples classified correctly during the epoch (mixup:
            ``lam``-weighted over both label sets).
        val_loss: mean cross entropy on the validation split (no smoothing), eval mode.
        val_acc: accuracy on the validation split.
        lr: learning rate of the epoch's first step (of the first parameter group; warm-up and
            one-cycle change it within the epoch).
        epoch_seconds: wall time of the epoch, training and evaluation.
        is_last: ``True`` on the final epoch, whether the budget ran out or early stopping fired.
        best_epoch: epoch with the best objective so far (earliest on ties).
        best_value: the objective at ``best_epoch``.
        stopped_early: ``True`` on the last report when early stopping ended the run.
        test_loss: cross entropy on the test split; only on the last report, else ``None``.
        test_acc: accuracy on the test split; only on the last report, else ``None``. Both are
            computed on the best epoch's weights when ``restore_best_weights``, else the final ones.
        final_train_acc: accuracy on the whole training split in eval mode (no dropout, no
            augmentation), with the weights ``test_acc`` used; only on the last report. This is
            the "train accuracy" of papers' tables: ``train_acc`` is measured while training, so
            dropout and augmentation pull it below the model's real fit to its training data.
        params: trainable parameters of the network (a cost objective, ``params``).
        train_time: seconds of the epochs run so far, this one included (``train_time``).

    Example:
        >>> report = EpochReport(epoch=1, train_loss=0.5, train_acc=0.8, val_loss=0.4,
        ...                      val_acc=0.9, lr=1e-3, epoch_seconds=0.1, is_last=False,
        ...                      best_epoch=1, best_value=0.9, stopped_early=False)
        >>> report.metrics()["val_acc"]
        0.9
    """

    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    lr: float
    epoch_seconds: float
    is_last: bool
    best_epoch: int
    best_value: float
    stopped_early: bool
    test_loss: float | None = None
    test_acc: float | None = None
    final_train_acc: float | None = None
    params: int = 0
    # A wall time, as epoch_seconds: two runs alike otherwise are equal reports.
    train_time: float = dataclasses.field(default=0.0, compare=False)

    def metrics(self) -> dict[str, float | int | bool | None]:
        """All fields as a flat dict keyed by field name (what ``ray.tune.report`` takes)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(frozen=True, kw_only=True)
class FitResult:
    """The outcome of :func:`~trainer.fit` (and of each member of :func:`~trainer.fit_packed`).

    Attributes:
        history: one report per epoch run, in order.
        epochs_run: ``len(history)``.
        best_epoch: epoch with the best objective (1-based).
        best_value: the objective at ``best_epoch``.
        test_acc: test accuracy (best-epoch weights when ``restore_best_weights``).
        test_loss: test cross entropy, same weights.
        device: the device trained on, e.g. ``"cpu"`` or ``"cuda:0"``.
        wall_time_s: wall time of the whole run, data loading included.
    """

    history: tuple[EpochReport, ...]
    epochs_run: int
    best_epoch: int
    best_value: float
    test_acc: float
    test_loss: float
    device: str
    wall_time_s: float


def batch_starts(n_train: int, batch_size: int) -> list[int]:
    """The first index of each of an epoch's training batches.

    A trailing batch of one example would make BatchNorm's batch variance undefined, so such an
    example is left out of the epoch (a different one each epoch, as the order is shuffled).

    Example:
        >>> batch_starts(10, 4), batch_starts(9, 4), batch_starts(1, 4)
        ([0, 4, 8], [0, 4], [0])
    """
    return [s for s in range(0, n_train, batch_size) if s == 0 or n_train - s >= 2]


def is_better(value: float, reference: float, maximize: bool, min_delta: float = 0.0) -> bool:
    """Whether ``value`` beats ``reference`` by more than ``min_delta`` in the given direction.

    A ``nan`` never beats anything and anything finite beats a ``nan`` reference.

    Example:
        >>> is_better(0.9, 0.8, maximize=True), is_better(0.9, 0.8, maximize=False)
        (True, False)
        >>> is_better(0.85, 0.8, maximize=True, min_delta=0.1), is_better(0.1, math.nan, True)
        (False, True)
    """
    if math.isnan(value):
        return False
    if math.isnan(reference):
        return True
    return value > reference + min_delta if maximize else value < reference - min_delta


class EpochTracker:
    """One run's best epoch and early-stopping state, updated once per epoch by :meth:`record`.

    After ``record(epoch, ...)``: :attr:`improved` says whether ``epoch`` became the best one
    (the caller then keeps its weights and tells the learning-rate schedule), :attr:`is_last`
    whether the run ends with it (the caller then measures the test split), and :meth:`report`
    builds its :class:`EpochReport`.

    Attributes:
        best_epoch: epoch with the best objective so far (earliest on ties); 0 before any.
        best_value: the objective at ``best_epoch``.
        improved: the last recorded epoch is ``best_epoch``.
        stopped_early: early stopping ends the run at the last recorded epoch.
        is_last: the run ends at the last recorded epoch (early stop or budget spent).

    Example:
        >>> from sweeplab.trainer import EarlyStopping, FitSettings
        >>> settings = FitSettings(max_epochs=9, early_stopping=EarlyStopping(patience=2))
        >>> tracker = EpochTracker(settings)
        >>> for epoch, acc in enumerate([0.5, 0.7, 0.6, 0.65], start=1):
        ...     tracker.record(epoch, train_loss=1.0, train_acc=0.5, val_loss=1.0, val_acc=acc)
        ...     print(epoch, tracker.best_epoch, tracker.improved, tracker.is_last)
        1 1 True False
        2 2 True False
        3 2 False False
        4 2 False True
        >>> report = tracker.report(lr=0.1, epoch_seconds=0.5, test_loss=0.9, test_acc=0.6)
        >>> report.epoch, report.best_value, report.stopped_early, report.test_acc
        (4, 0.7, True, 0.6)
    """

    def __init__(self, settings: FitSettings) -> None:
        self._objective = settings.objective
        self._maximize = settings.direction == "maximize"
        self._max_epochs = settings.max_epochs
        self._patience = settings.early_stopping.patience
        self._min_delta = settings.early_stopping.min_delta
        self.best_epoch, self.best_value = 0, math.nan
        self._reference, self._since_reference = math.nan, 0  # the last "real" improvement
        self.improved = self.stopped_early = self.is_last = False
        self._epoch = 0
        self._metrics: dict[str, float] = {}
        self._train_time = 0.0  # seconds of the epochs reported so far

    def record(
        self, epoch: int, *, train_loss: float, train_acc: float, val_loss: float, val_acc: float
    ) -> None:
        """Take in epoch ``epoch``'s metrics: update the best epoch and decide whether to stop."""
        self._epoch = epoch
        self._metrics = {
            "train_loss": train_loss,
            "train_acc": train_acc,
            "val_loss": val_loss,
            "val_acc": val_acc,
        }
        value = self._metrics[self._objective]
        self.improved = epoch == 1 or is_better(value, self.best_value, self._maximize)
        if self.improved:
            self.best_epoch, self.best_value = epoch, value
        # Patience counts from the last improvement of at least min_delta, which need not be
        # the best epoch: a run creeping up by less than min_delta per epoch should stop.
        if epoch == 1 or is_better(value, self._reference, self._maximize, self._min_delta):
            self._reference, self._since_reference = value, 0
        else:
            self._since_reference += 1
        # patience=0 stops at the first epoch without improvement, as patience=1 does.
        patience = self._patience
        out_of_patience = patience is not None and self._since_reference >= max(patience, 1)
        self.stopped_early = out_of_patience and epoch < self._max_epochs
        self.is_last = self.stopped_early or epoch == self._max_epochs

    def state_dict(self) -> dict[str, object]:
        """Everything :meth:`record` has accumulated (for a checkpoint)."""
        return {
            "best_epoch": self.best_epoch,
            "best_value": self.best_value,
            "reference": self._reference,
            "since_reference": self._since_reference,
            "improved": self.improved,
            "stopped_early": self.stopped_early,
            "is_last": self.is_last,
            "epoch": self._epoch,
            "metrics": dict(self._metrics),
            "train_time": self._train_time,
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from :meth:`state_dict`."""
        self.best_epoch, self.best_value = int(state["best_epoch"]), float(state["best_value"])
        self._reference = float(state["reference"])
        self._since_reference = int(state["since_reference"])
        self.improved = bool(state["improved"])
        self.stopped_early, self.is_last = bool(state["stopped_early"]), bool(state["is_last"])
        self._epoch = int(state["epoch"])
        self._metrics = {k: float(v) for k, v in state["metrics"].items()}
        self._train_time = float(state.get("train_time", 0.0))  # older checkpoints had none

    def report(
        self,
        *,
        lr: float,
        epoch_seconds: float,
        test_loss: float | None = None,
        test_acc: float | None = None,
        final_train_acc: float | None = None,
        params: int = 0,
    ) -> EpochReport:
        """The last recorded epoch's report; the test metrics belong on the last one only.
        ``params``: the network's trainable parameters."""
        self._train_time += epoch_seconds
        return EpochReport(
            epoch=self._epoch,
            **self._metrics,
            lr=lr,
            epoch_seconds=epoch_seconds,
            is_last=self.is_last,
            best_epoch=self.best_epoch,
            best_value=self.best_value,
            stopped_early=self.stopped_early,
            test_loss=test_loss,
            test_acc=test_acc,
            final_train_acc=final_train_acc,
            params=params,
            train_time=self._train_time,
        )


def fit_result(history: Sequence[EpochReport], *, device: str, started: float) -> FitResult:
    """The run's result from its reports; ``started`` is its ``time.perf_counter()`` at start.

    The test metrics are the last report's, ``nan`` when it has none (a pack's pruned member).

    Example:
        >>> tracker = EpochTracker(FitSettings(max_epochs=1))
        >>> tracker.record(1, train_loss=0.5, train_acc=0.8, val_loss=0.4, val_acc=0.9)
        >>> last = tracker.report(lr=1e-3, epoch_seconds=0.1, test_loss=0.5, test_acc=0.85)
        >>> result = fit_result([last], device="cpu", started=time.perf_counter())
        >>> result.epochs_run, result.best_epoch, result.test_acc
        (1, 1, 0.85)
    """
    last = history[-1]
    return FitResult(
        history=tuple(history),
        epochs_run=len(history),
        best_epoch=last.best_epoch,
        best_value=last.best_value,
        test_acc=last.test_acc if last.test_acc is not None else math.nan,
        test_loss=last.test_loss if last.test_loss is not None else math.nan,
        device=device,
        wall_time_s=time.perf_counter() - started,
    )
