"""A training run's state as bytes, and back: checkpoints to continue from, weights to keep.

:func:`~sweeplab.trainer.fit` takes a :class:`Checkpointing`: it hands ``save`` a checkpoint's
bytes at the end of an epoch once ``every_s`` seconds have passed since the last one (every
epoch for ``every_s = 0``), and within an epoch that runs longer, and ``save_weights`` the final
weights at the end. Given ``resume`` (:func:`read_checkpoint` of such bytes) it continues that
run exactly where it was saved. Where the bytes go is the caller's business.

A checkpoint holds everything the loop's future depends on: the network, the optimizer, the
learning-rate schedule's counts, the early-stopping tracker, the best epoch's weights, every
random generator (torch's global one, CUDA's, the augmenter's torch and numpy ones) and, in the
middle of an epoch, its batch order, position and running sums. Files are ``torch.save``
dicts of tensors and plain values, read back with ``weights_only=True``: loading one runs no
code. A digest of the hyperparameters and settings guards against resuming another run's.

Example:
    >>> from sweeplab.trainer import (Checkpointing, DataSettings, FitSettings, ModelSettings,
    ...                               fit, read_checkpoint)
    >>> saved = []
    >>> keep = Checkpointing(every_s=0, save=lambda data, info: saved.append((data, info)))
    >>> data, model = DataSettings(dataset="digits"), ModelSettings(hidden=(16,))
    >>> settings = FitSettings(max_epochs=3, device="cpu", num_threads=1, deterministic=True)
    >>> whole = fit(data, model, {"lr": 3e-3}, settings, checkpointing=keep)
    >>> [info.epoch for _, info in saved]  # after epochs 1 and 2; none after the last
    [1, 2]
    >>> again = Checkpointing(resume=read_checkpoint(saved[0][0]))
    >>> resumed = fit(data, model, {"lr": 3e-3}, settings, checkpointing=again)
    >>> [r.val_loss for r in resumed.history] == [r.val_loss for r in whole.history]
    True
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from sweeplab.trainer._catalog import MUTABLE_BETWEEN_EPOCHS, resolve_params
from sweeplab.trainer._epochs import EpochReport
from sweeplab.trainer._errors import CheckpointError
from sweeplab.trainer._models import build_model
from sweeplab.trainer._settings import DataSettings, FitSettings, ModelSettings

CHECKPOINT_FORMAT = "sweeplab-checkpoint-1"
WEIGHTS_FORMAT = "sweeplab-weights-1"


@dataclass(frozen=True)
class SaveInfo:
    """What one save is.

    Attributes:
        kind: ``checkpoint`` (to continue from) or ``weights`` (the finished network).
        epoch: epochs completed (weights: the epoch whose weights they are).
        step: optimizer steps done in the epoch after ``epoch`` (0 at an epoch's end).
    """

    kind: Literal["checkpoint", "weights"]
    epoch: int
    step: int = 0


@dataclass(frozen=True)
class Checkpoint:
    """A saved training state, as :func:`read_checkpoint` returns it.

    Attributes:
        epoch: epochs completed.
        step: optimizer steps into the next epoch (0: at an epoch's end).
        history: the reports of the completed epochs.
        state: the loop's state (opaque: only ``fit`` reads it).
    """

    epoch: int
    step: int
    history: tuple[EpochReport, ...]
    state: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class Checkpointing:
    """How :func:`~sweeplab.trainer.fit` saves and resumes.

    Attributes:
        every_s: a checkpoint at the end of an epoch once this many seconds have passed since
            the last save, and within an epoch after an optimizer step once they have; ``0``:
            after every epoch (never within one).
        save: takes each checkpoint's bytes and :class:`SaveInfo`; ``None``: none are made.
        save_weights: takes the final weights' bytes (:func:`read_weights`) once, at the end.
        resume: a checkpoint of this same run to continue from.
        at_epochs: epochs at whose end a checkpoint is made whatever ``every_s`` says (population
            based training copies trials' states at fixed epochs).
        exploit: ``resume`` is another run's, whose state this run takes over (population based
            training's "exploit"): it may differ from this one in the seed and in the
            hyperparameters of :data:`~sweeplab.trainer.MUTABLE_BETWEEN_EPOCHS`, which take
            this run's values from the next step on (the rest must be the same).
    """

    every_s: float = 10.0
    save: Callable[[bytes, SaveInfo], None] | None = None
    save_weights: Callable[[bytes, SaveInfo], None] | None = None
    resume: Checkpoint | None = None
    at_epochs: frozenset[int] = frozenset()
    exploit: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.every_s, int | float) or not self.every_s >= 0:
            raise ValueError(f"`every_s` must be a number >= 0; got {self.every_s!r}")


@dataclass(frozen=True)
class Weights:
    """A finished network's weights and what it takes to rebuild it (:func:`read_weights`).

    Attributes:
        state_dict: the network's ``state_dict()``, on the CPU.
        model: the network's settings (``factory`` is ``None``: see ``own_model``).
        params: the trial's hyperparameters, as given to ``fit``.
        input_shape, num_classes: the data's.
        epoch: the epoch whose weights these are (the best one with ``restore_best_weights``).
        own_model: built by a user's factory, which :func:`model_from_weights` then needs.
    """

    state_dict: dict[str, torch.Tensor]
    model: ModelSettings
    params: dict[str, Any]
    input_shape: tuple[int, ...]
    num_classes: int
    epoch: int
    own_model: bool = False


def run_digest(
    data: DataSettings,
    model: ModelSettings,
    params: Mapping[str, Any],
    settings: FitSettings,
    *,
    fixed_only: bool = False,
) -> str:
    """What a checkpoint may be resumed by: the same data, network, hyperparameters and
    settings that shape the run (not its device, threads or determinism). ``fixed_only``: what
    another run may take it over by (:attr:`Checkpointing.exploit`): the same, less the seed and
    the hyperparameters of :data:`MUTABLE_BETWEEN_EPOCHS`."""
    if fixed_only:
        params = {k: v for k, v in params.items() if k not in MUTABLE_BETWEEN_EPOCHS}
        settings = dataclasses.replace(settings, seed=0)
    facts = {
        "data": [data.dataset, data.val_fraction, data.subset, data.split_seed],
        "model": [model.kind, list(model.hidden), list(model.channels), model.activation],
        "own": [data.factory is not None, model.factory is not None],
        "params": {k: params[k] for k in sorted(params)},
        "fit": [
            settings.max_epochs,
            settings.objective,
            settings.direction,
            settings.early_stopping.patience,
            settings.early_stopping.min_delta,
            settings.early_stopping.restore_best_weights,
            settings.seed,
        ],
    }
    text = json.dumps(facts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def checkpoint_bytes(
    epoch: int,
    step: int,
    history: list[EpochReport],
    digest: str,
    state: dict[str, Any],
    fixed_digest: str | None = None,
) -> bytes:
    """A checkpoint as bytes (``torch.save``); ``fixed_digest``: :func:`run_digest`'s
    ``fixed_only`` one, which another run's exploit is checked against."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "epoch": epoch,
        "step": step,
        "history": [report.metrics() for report in history],
        "digest": digest,
        "fixed_digest": fixed_digest,
        "state": state,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def _load(data: bytes, expected: str) -> dict[str, Any]:
    try:
        payload = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as e:  # truncated, not a torch file, or holding more than tensors
        raise CheckpointError(f"not a readable {expected} file ({type(e).__name__}: {e})") from e
    if not isinstance(payload, dict) or payload.get("format") != expected:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"not a {expected} file (found {found!r})")
    return payload


def read_checkpoint(data: bytes) -> Checkpoint:
    """A checkpoint saved by :func:`~sweeplab.trainer.fit`, read back.

    Raises:
        CheckpointError: the bytes are not a whole checkpoint.

    Example:
        >>> from sweeplab.trainer import (CheckpointError, Checkpointing, DataSettings,
        ...                               FitSettings, ModelSettings, fit)
        >>> saved = []
        >>> keep = Checkpointing(every_s=0, save=lambda data, info: saved.append(data))
        >>> _ = fit(DataSettings(dataset="digits"), ModelSettings(hidden=(16,)), {"lr": 3e-3},
        ...         FitSettings(max_epochs=2, device="cpu"), checkpointing=keep)
        >>> checkpoint = read_checkpoint(saved[0])
        >>> checkpoint.epoch, checkpoint.step, [r.epoch for r in checkpoint.history]
        (1, 0, [1])
        >>> try:
        ...     read_checkpoint(saved[0][:100])
        ... except CheckpointError:
        ...     print("refused")
        refused
    """
    payload = _load(data, CHECKPOINT_FORMAT)
    try:
        history = tuple(EpochReport(**report) for report in payload["history"])
        checkpoint = Checkpoint(
            epoch=int(payload["epoch"]),
            step=int(payload["step"]),
            history=history,
            state={
                **payload["state"],
                "digest": str(payload["digest"]),
                "fixed_digest": payload.get("fixed_digest"),
            },
        )
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"an incomplete checkpoint ({type(e).__name__}: {e})") from e
    if len(checkpoint.history) != checkpoint.epoch:
        raise CheckpointError(
            f"an inconsistent checkpoint: epoch {checkpoint.epoch} with "
            f"{len(checkpoint.history)} epochs of history"
        )
    return checkpoint


def weights_bytes(
    module: nn.Module,
    model: ModelSettings,
    params: Mapping[str, Any],
    input_shape: tuple[int, ...],
    num_classes: int,
    epoch: int,
) -> bytes:
    """A finished network's weights as bytes (``torch.save``), with what rebuilds it."""
    payload = {
        "format": WEIGHTS_FORMAT,
        "state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()},
        "model": {
            "kind": model.kind,
            "hidden": list(model.hidden),
            "channels": list(model.channels),
            "activation": model.activation,
        },
        "own_model": model.factory is not None,
        "params": _plain(dict(params)),
        "input_shape": list(input_shape),
        "num_classes": int(num_classes),
        "epoch": int(epoch),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def _plain(value: Any) -> Any:
    """Params as values ``weights_only`` loading reads back (tuples become lists)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def read_weights(data: bytes) -> Weights:
    """Weights saved at the end of :func:`~sweeplab.trainer.fit`, read back.

    Raises:
        CheckpointError: the bytes are not a whole weights file.

    Example:
        >>> from sweeplab.trainer import (Checkpointing, DataSettings, FitSettings,
        ...                               ModelSettings, fit)
        >>> saved = []
        >>> keep = Checkpointing(save_weights=lambda data, info: saved.append((data, info)))
        >>> _ = fit(DataSettings(dataset="digits"), ModelSettings(hidden=(16,)), {"lr": 3e-3},
        ...         FitSettings(max_epochs=2, device="cpu"), checkpointing=keep)
        >>> [(info.kind, info.epoch) for _, info in saved]
        [('weights', 2)]
        >>> weights = read_weights(saved[0][0])
        >>> weights.input_shape, weights.num_classes, weights.params, weights.own_model
        ((1, 8, 8), 10, {'lr': 0.003}, False)
    """
    payload = _load(data, WEIGHTS_FORMAT)
    try:
        m = payload["model"]
        return Weights(
            state_dict=dict(payload["state_dict"]),
            model=ModelSettings(
                kind=m["kind"],
                hidden=tuple(m["hidden"]),
                channels=tuple(m["channels"]),
                activation=m["activation"],
            ),
            params=dict(payload["params"]),
            input_shape=tuple(int(n) for n in payload["input_shape"]),
            num_classes=int(payload["num_classes"]),
            epoch=int(payload["epoch"]),
            own_model=bool(payload["own_model"]),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"an incomplete weights file ({type(e).__name__}: {e})") from e


def model_from_weights(
    weights: Weights, factory: Callable[..., Any] | None = None, device: str = "cpu"
) -> nn.Module:
    """The network the weights belong to, built as ``fit`` built it, loaded, in eval mode.

    Args:
        weights: from :func:`read_weights`.
        factory: the user's network factory, for weights of one (``weights.own_model``).
        device: where the module goes.

    Raises:
        CheckpointError: a user's network without its ``factory``, or weights that do not fit
            the network built.

    Example:
        >>> import torch
        >>> from sweeplab.trainer import (Checkpointing, DataSettings, FitSettings,
        ...                               ModelSettings, fit, load_dataset)
        >>> from sweeplab.trainer._fit import evaluate
        >>> saved = []
        >>> keep = Checkpointing(save_weights=lambda data, info: saved.append(data))
        >>> data = DataSettings(dataset="digits")
        >>> result = fit(data, ModelSettings(hidden=(32,)), {"lr": 3e-3},
        ...              FitSettings(max_epochs=2, device="cpu"), checkpointing=keep)
        >>> net = model_from_weights(read_weights(saved[0]))
        >>> net(torch.zeros(5, 1, 8, 8)).shape
        torch.Size([5, 10])
        >>> _, test_acc = evaluate(net, load_dataset(data), "test")
        >>> test_acc == result.test_acc
        True
    """
    if weights.own_model and factory is None:
        raise CheckpointError(
            "these weights are of a network built by the study's own [model] factory: pass "
            "that factory to rebuild it"
        )
    params = weights.params
    if isinstance(params.get("augment"), list):
        params = {**params, "augment": tuple(params["augment"])}
    hp = resolve_params(dict(params), own=factory is not None)
    hp["activation"] = params.get("activation", weights.model.activation)
    settings = ModelSettings(
        kind=weights.model.kind,
        hidden=weights.model.hidden,
        channels=weights.model.channels,
        activation=weights.model.activation,
        factory=factory,
    )
    net = build_model(settings, hp, weights.input_shape, weights.num_classes)
    try:
        net.load_state_dict(weights.state_dict, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"the weights do not fit the network: {e}") from e
    return net.to(device).eval()
