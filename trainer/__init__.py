"""Training for sweeplab: one function, :func:`fit`, runs one trial of a study.

The trainer knows nothing of specs, Optuna or Ray. ``studies`` builds the typed settings
(:class:`DataSettings`, :class:`ModelSettings`, :class:`FitSettings`) from a spec, hands
:func:`fit` a trial's sampled hyperparameters (names from :data:`HYPERPARAMETERS`; the rest take
their defaults), and forwards each :class:`EpochReport` to Ray Tune from ``on_epoch``.

The catalog, the settings and the errors are imported with this module and need no torch, so
the spec validator and ``sweeplab --help`` / ``sweeplab init`` read :data:`HYPERPARAMETERS`
without paying for it; the names that train (:func:`fit`, :func:`fit_packed`, the data and the
models) are imported on first use (PEP 562).

Example:
    Train an MLP on scikit-learn's bundled digits for three epochs (no files needed)::

        from sweeplab.trainer import DataSettings, FitSettings, ModelSettings, fit

        result = fit(
            DataSettings(dataset="digits"),
            ModelSettings(kind="mlp", hidden=(64,)),
            {"optimizer": "adam", "lr": 3e-3},
            FitSettings(max_epochs=3, seed=0, device="cpu"),
            on_epoch=lambda r: print(r.epoch, f"{r.val_acc:.3f}"),
        )
        print(result.best_epoch, result.test_acc)

    Reading the catalog imports no torch:

    >>> from sweeplab.trainer import HYPERPARAMETERS
    >>> HYPERPARAMETERS["momentum"].kind, HYPERPARAMETERS["momentum"].default
    ('float', 0.0)
"""

from __future__ import annotations

import importlib
from typing import Any

# Torch-free: imported with the face.
from sweeplab.trainer._catalog import (
    ACTIVATIONS,
    AUGMENTATIONS,
    AUTOAUGMENT_POLICIES,
    HYPERPARAMETERS,
    INIT_SCHEMES,
    LR_SCHEDULES,
    MUTABLE_ABOVE_ZERO,
    MUTABLE_BETWEEN_EPOCHS,
    NORM_POSITIONS,
    NORMS,
    OPTIMIZERS,
    Hyperparameter,
    Kind,
    resolve_params,
)
from sweeplab.trainer._errors import (
    CheckpointError,
    DataError,
    DatasetNotFound,
    Diverged,
    TrainingError,
)
from sweeplab.trainer._settings import (
    COST_METRICS,
    DATASETS,
    METRICS,
    MODELS,
    DataSettings,
    EarlyStopping,
    FitSettings,
    ModelSettings,
)

# Public name -> the module that defines it, imported when the name is first used (they train,
# or come with what trains, and all but _epochs import torch).
_HOMES = {
    "Checkpoint": "sweeplab.trainer._checkpoint",
    "Checkpointing": "sweeplab.trainer._checkpoint",
    "SaveInfo": "sweeplab.trainer._checkpoint",
    "Weights": "sweeplab.trainer._checkpoint",
    "model_from_weights": "sweeplab.trainer._checkpoint",
    "read_checkpoint": "sweeplab.trainer._checkpoint",
    "read_weights": "sweeplab.trainer._checkpoint",
    "Data": "sweeplab.trainer._own_data",
    "Dataset": "sweeplab.trainer._data",
    "check_data": "sweeplab.trainer._own_data",
    "load_own_data": "sweeplab.trainer._data",
    "EpochReport": "sweeplab.trainer._epochs",
    "FitResult": "sweeplab.trainer._epochs",
    "build_model": "sweeplab.trainer._models",
    "check_own_model": "sweeplab.trainer._models",
    "dataset_shape": "sweeplab.trainer._data",
    "check_dataset": "sweeplab.trainer._data",
    "corrupt_dataset": "sweeplab.trainer._data",
    "fit": "sweeplab.trainer._fit",
    "fit_packed": "sweeplab.trainer._packed",
    "load_dataset": "sweeplab.trainer._data",
    "pack_key": "sweeplab.trainer._packed",
}

__all__ = [
    "ACTIVATIONS",
    "AUGMENTATIONS",
    "AUTOAUGMENT_POLICIES",
    "COST_METRICS",
    "DATASETS",
    "HYPERPARAMETERS",
    "INIT_SCHEMES",
    "LR_SCHEDULES",
    "METRICS",
    "MODELS",
    "MUTABLE_ABOVE_ZERO",
    "MUTABLE_BETWEEN_EPOCHS",
    "NORMS",
    "NORM_POSITIONS",
    "OPTIMIZERS",
    "Checkpoint",
    "CheckpointError",
    "Checkpointing",
    "Data",
    "DataError",
    "DataSettings",
    "Dataset",
    "DatasetNotFound",
    "Diverged",
    "EarlyStopping",
    "EpochReport",
    "FitResult",
    "FitSettings",
    "Hyperparameter",
    "Kind",
    "ModelSettings",
    "SaveInfo",
    "TrainingError",
    "Weights",
    "build_model",
    "check_data",
    "check_dataset",
    "check_own_model",
    "corrupt_dataset",
    "dataset_shape",
    "fit",
    "fit_packed",
    "load_dataset",
    "load_own_data",
    "model_from_weights",
    "pack_key",
    "read_checkpoint",
    "read_weights",
    "resolve_params",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'sweeplab.trainer' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
