"""The trainer's domain exceptions: one family for data, one for training.

Torch-free, and it must stay so: :mod:`sweeplab.trainer` imports it eagerly, so that callers can
catch these without importing torch (``tests/test_trainer.py`` checks).
"""

from __future__ import annotations

import math


class DataError(Exception):
    """A dataset cannot be loaded or split as the settings ask."""


class DatasetNotFound(DataError):
    """A dataset's files are not where the settings say (and downloading is off or failed)."""


class TrainingError(RuntimeError):
    """A training run cannot go on."""


class CheckpointError(TrainingError):
    """A checkpoint or a weights file cannot be used: truncated, not one of sweeplab's, of the
    other kind, or made for other hyperparameters or settings than the run resuming from it."""


class Diverged(TrainingError):
    """The training loss stopped being finite.

    Attributes:
        epoch: the 1-based epoch whose mean training loss was not finite.
        train_loss: that loss (``nan`` or ``±inf``).
    """

    def __init__(self, epoch: int, train_loss: float) -> None:
        self.epoch = epoch
        self.train_loss = train_loss
        shown = "nan" if math.isnan(train_loss) else str(train_loss)
        super().__init__(f"diverged at epoch {epoch} (train loss {shown})")

    def __reduce__(self):  # keep the attributes when Ray pickles the error across processes
        return (type(self), (self.epoch, self.train_loss))
