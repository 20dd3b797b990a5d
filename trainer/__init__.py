"""Training for sweeplab: one function, :func:`fit`, runs one trial of a study.

The trainer knows nothing of specs, Optuna or Ray. ``studies`` builds the typed settings
(:class:`DataSettings`, :class:`ModelSettings`, :class:`FitSettings`) from a spec, hands
:func:`fit` a trial's sampled hyperparameters (names from :data:`HYPERPARAMETERS`; the rest take
their defaults), and forwards each :class:`EpochReport` to Ray Tune from ``on_epoch``.

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
"""

from sweeplab.trainer._catalog import (
    ACTIVATIONS,
    AUGMENTATIONS,
    AUTOAUGMENT_POLICIES,
    HYPERPARAMETERS,
    INIT_SCHEMES,
    LR_SCHEDULES,
    NORM_POSITIONS,
    NORMS,
    OPTIMIZERS,
    Hyperparameter,
    Kind,
    resolve_params,
)
from sweeplab.trainer._data import Dataset, check_dataset, corrupt_dataset, load_dataset
from sweeplab.trainer._epochs import EpochReport, FitResult
from sweeplab.trainer._errors import DataError, DatasetNotFound, Diverged, TrainingError
from sweeplab.trainer._fit import fit
from sweeplab.trainer._models import build_model
from sweeplab.trainer._packed import fit_packed, pack_key
from sweeplab.trainer._settings import (
    DATASETS,
    METRICS,
    MODELS,
    DataSettings,
    EarlyStopping,
    FitSettings,
    ModelSettings,
)

__all__ = [
    "ACTIVATIONS",
    "AUGMENTATIONS",
    "AUTOAUGMENT_POLICIES",
    "DATASETS",
    "HYPERPARAMETERS",
    "INIT_SCHEMES",
    "LR_SCHEDULES",
    "METRICS",
    "MODELS",
    "NORMS",
    "NORM_POSITIONS",
    "OPTIMIZERS",
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
    "TrainingError",
    "build_model",
    "check_dataset",
    "corrupt_dataset",
    "fit",
    "fit_packed",
    "load_dataset",
    "pack_key",
    "resolve_params",
]
