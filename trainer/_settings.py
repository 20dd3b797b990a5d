"""Typed settings of one training run: what data, what network, how long, how to stop.

These are the fixed parts of a study spec (``[data]``, ``[model]``, ``[budget]``,
``[early_stopping]``); the searched parts arrive as a plain ``params`` mapping checked against
:mod:`trainer._catalog`. The trainer never imports the spec layer: ``studies`` builds these objects.

Torch-free, and it must stay so: :mod:`sweeplab.trainer` imports it eagerly, so that building
settings from a spec costs no torch import (``tests/test_trainer.py`` checks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "cifar100")
MODELS = ("mlp", "cnn", "resnet9", "resnet18")
METRICS = ("val_acc", "val_loss", "train_acc", "train_loss")
#: What a run costs, reported with every epoch beside :data:`METRICS` so a study can minimise
#: it as one of several objectives: epochs trained, trainable parameters, seconds of training
#: (the epochs' wall time, evaluation included, data loading not).
COST_METRICS = ("epochs", "params", "train_time")


@dataclass(frozen=True, kw_only=True)
class DataSettings:
    """Which dataset and how it is split.

    Attributes:
        dataset: ``digits`` (scikit-learn's bundled 8x8 digits, needs no files), or ``mnist``,
            ``fashion_mnist``, ``cifar10``, ``cifar100`` through torchvision.
        root: torchvision dataset root (the folder that holds ``MNIST/raw`` etc.).
        download: let torchvision download missing files (needs network).
        val_fraction: share of the training set held out for validation, in (0, 1).
        subset: keep only this many training examples (stratified by class), ``None`` = all.
        split_seed: seed of the train/val(/test for digits) split and of the subset.
        factory: a data set of the user's own, ``factory() -> sweeplab.trainer.Data``, in place
            of ``dataset`` (which, with ``root``, ``download``, ``val_fraction`` and ``subset``,
            then does not apply): loaded once per process.
        num_workers: ``DataLoader`` worker processes for a user's splits given as Datasets.
    """

    dataset: Literal["digits", "mnist", "fashion_mnist", "cifar10", "cifar100"] = "digits"
    root: str = "data"
    download: bool = False
    val_fraction: float = 0.2
    subset: int | None = None
    split_seed: int = 0
    factory: Callable[..., Any] | None = None
    num_workers: int = 0


@dataclass(frozen=True, kw_only=True)
class ModelSettings:
    """Which network.

    Attributes:
        kind: ``mlp``, ``cnn`` (small conv net) or ``resnet18`` (torchvision, adapted to small
            images).
        hidden: widths of the MLP's hidden layers, input to output.
        channels: output channels of the CNN's conv blocks.
        activation: hidden non-linearity, unless the trial samples ``activation``.
        factory: a network of the user's own, ``factory(input_shape, n_classes, hp) ->
            torch.nn.Module``, in place of ``kind`` (``hp``: the trial's hyperparameters, the
            catalog's resolved and the user's own as sampled). The loop trains it as it trains
            its own: init scheme, optimizer, schedule, penalties, augmentation, early stopping.
    """

    kind: Literal["mlp", "cnn", "resnet9", "resnet18"] = "mlp"
    hidden: tuple[int, ...] = (128, 64)
    channels: tuple[int, ...] = (32, 64)
    activation: str = "relu"
    factory: Callable[..., Any] | None = None


@dataclass(frozen=True, kw_only=True)
class EarlyStopping:
    """Stop when the objective has not improved by ``min_delta`` for ``patience`` epochs.

    ``patience=None`` switches early stopping off. With ``restore_best_weights`` the test metrics
    are computed on the weights of the best epoch (by the objective), not the last.
    """

    patience: int | None = None
    min_delta: float = 0.0
    restore_best_weights: bool = True


@dataclass(frozen=True, kw_only=True)
class FitSettings:
    """How long and towards what one trial trains.

    Attributes:
        max_epochs: epochs at most (one epoch = one pass over the training split).
        objective: the metric that defines "best epoch" and early stopping.
        direction: ``maximize`` or ``minimize`` the objective.
        early_stopping: see :class:`EarlyStopping`.
        seed: seeds torch (init, shuffling, augmentation, dropout) for this trial.
        device: ``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda``, ``cuda:1``...
        num_threads: torch CPU threads for this trial (``None`` = leave torch's setting).
        compile: compile the network with ``torch.compile`` (pays off on GPUs for runs of many
            steps; on a CPU the first compile costs tens of seconds).
        deterministic: torch's deterministic algorithms for the run
            (``torch.use_deterministic_algorithms``, cuDNN without benchmarking), restored
            afterwards. On a CPU, with the same threads, two runs (or a run resumed from a
            checkpoint and one that was not) are then bit-identical; on a GPU the caller sets
            ``CUBLAS_WORKSPACE_CONFIG`` before CUDA starts, as PyTorch asks.
    """

    max_epochs: int
    objective: Literal["val_acc", "val_loss", "train_acc", "train_loss"] = "val_acc"
    direction: Literal["maximize", "minimize"] = "maximize"
    early_stopping: EarlyStopping = field(default_factory=EarlyStopping)
    seed: int = 0
    device: str = "auto"
    num_threads: int | None = None
    compile: bool = False
    deterministic: bool = False
