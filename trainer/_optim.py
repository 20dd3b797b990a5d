"""Optimizers and learning-rate schedules from a trial's (resolved) hyperparameters."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ._catalog import LR_SCHEDULES, OPTIMIZERS


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Split parameters into a decayed group (weights) and an undecayed one (biases, norms).

    Decaying biases and normalisation scales only pulls them towards zero without regularising
    the function's complexity, so only tensors with ``ndim >= 2`` (linear and conv weights) decay.
    Empty groups are left out.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return [group for group in groups if group["params"]]


def build_optimizer(model: nn.Module, params: Mapping[str, Any]) -> torch.optim.Optimizer:
    """The optimizer named by ``params["optimizer"]``, weight decay on weights only.

    Args:
        model: the network whose parameters it updates.
        params: resolved hyperparameters (see :func:`~trainer.resolve_params`): ``optimizer``,
            ``lr``, ``weight_decay``, and ``momentum``/``nesterov`` (sgd), ``momentum`` (rmsprop)
            or ``beta1``/``beta2`` (adam, adamw).

    Returns:
        The optimizer. ``nesterov`` with ``momentum == 0`` is plain SGD: Nesterov momentum without
        momentum is undefined (PyTorch rejects it), and a search that samples both independently
        should not lose those trials.

    Raises:
        ValueError: an unknown optimizer.

    Example:
        >>> from torch import nn
        >>> from trainer import resolve_params
        >>> opt = build_optimizer(nn.Linear(3, 2), resolve_params({"optimizer": "sgd"}))
        >>> type(opt).__name__, len(opt.param_groups)
        ('SGD', 2)
    """
    name = params["optimizer"]
    groups = parameter_groups(model, float(params["weight_decay"]))
    lr = float(params["lr"])
    if name == "sgd":
        momentum = float(params["momentum"])
        nesterov = bool(params["nesterov"]) and momentum > 0
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=(params["beta1"], params["beta2"]))
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=(params["beta1"], params["beta2"]))
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr, momentum=float(params["momentum"]))
    raise ValueError(f"`optimizer` must be one of {list(OPTIMIZERS)}; got {name!r}")


def lr_factor(schedule: str, epoch: int, max_epochs: int) -> float:
    """The multiple of the base learning rate used during the 0-based ``epoch``.

    ``constant`` is 1; ``cosine`` falls from 1 along half a cosine towards 0 at ``max_epochs``
    (Loshchilov & Hutter, 2017, without restarts); ``step`` is x0.1 from 50 % of the epochs on and
    x0.01 from 75 %.
    """
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * epoch / max_epochs))
    if schedule == "step":
        return 0.1 ** ((epoch >= 0.5 * max_epochs) + (epoch >= 0.75 * max_epochs))
    raise ValueError(f"`lr_schedule` must be one of {list(LR_SCHEDULES)}; got {schedule!r}")


def build_schedule(
    optimizer: torch.optim.Optimizer, params: Mapping[str, Any], max_epochs: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """The learning-rate schedule ``params["lr_schedule"]``, to be stepped once after each epoch.

    Args:
        optimizer: the optimizer whose learning rates it scales.
        params: resolved hyperparameters; reads ``lr_schedule``.
        max_epochs: the epoch budget the schedule spans (early stopping does not shorten it).

    Raises:
        ValueError: an unknown schedule.
    """
    schedule = params["lr_schedule"]
    lr_factor(schedule, 0, max_epochs)  # fail here, not inside the scheduler, on a bad name
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda epoch: lr_factor(schedule, epoch, max_epochs)
    )
