"""Optimizers and learning-rate schedules from a trial's (resolved) hyperparameters."""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from sweeplab.trainer._catalog import HYPERPARAMETERS, LR_SCHEDULES, OPTIMIZERS
from sweeplab.trainer._penalties import decoupled_decay_, weight_tensors

# One-cycle's shape (Smith & Topin, 2019; PyTorch's OneCycleLR defaults): the share of the steps
# spent rising, the start as a fraction of the peak, and the end as a fraction of the start.
ONECYCLE_RISE = 0.3
ONECYCLE_DIV = 25.0
ONECYCLE_FINAL_DIV = 1e4

# Optimizers whose PyTorch class implements decoupled weight decay itself.
_NATIVE_DECOUPLED = ("adam", "adamw", "nadam", "radam")
# Optimizers with a fused kernel (one pass over memory per step for all tensors, instead of one
# pass per arithmetic term); on small models the step costs about a third of the loop's.
# Adagrad's is CPU-only in PyTorch.
_FUSED_DEVICES = {
    "sgd": ("cpu", "cuda"),
    "adam": ("cpu", "cuda"),
    "adamw": ("cpu", "cuda"),
    "adagrad": ("cpu",),
}


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Split parameters into a decayed group (weights) and an undecayed one (biases, norms).

    Decaying biases and normalisation scales only pulls them towards zero without regularising
    the function's complexity, so only :func:`~trainer._penalties.weight_tensors` (``ndim >= 2``:
    linear and conv weights) decay. Empty groups are left out. Both groups stay when nothing
    decays (one would save the step ~10 us of Python on a small network): an optimizer state saved
    with one ``weight_decay`` must load into a run with another (a resumed checkpoint, a PBT
    trial taking over a better trial's state), which needs the same groups.
    """
    weights = {id(p) for p in weight_tensors(model)}
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if id(p) in weights], "weight_decay": weight_decay},
        {"params": [p for p in params if id(p) not in weights], "weight_decay": 0.0},
    ]
    return [group for group in groups if group["params"]]


def decay_is_decoupled(params: Mapping[str, Any]) -> bool:
    """Whether ``weight_decay`` acts decoupled (``w -= lr*wd*w``) rather than as an L2 gradient.

    ``weight_decay_mode = "auto"`` keeps each optimizer's usual meaning: decoupled for ``adamw``,
    coupled for the rest.
    """
    mode = params["weight_decay_mode"]
    if mode == "auto":
        return params["optimizer"] == "adamw"
    return mode == "decoupled"


def build_optimizer(model: nn.Module, params: Mapping[str, Any]) -> torch.optim.Optimizer:
    """The optimizer named by ``params["optimizer"]``, weight decay on weights only.

    Args:
        model: the network whose parameters it updates.
        params: resolved hyperparameters (see :func:`~trainer.resolve_params`): ``optimizer``,
            ``lr``, ``weight_decay``, ``weight_decay_mode`` and the optimizer's own:
            ``momentum``/``nesterov`` (sgd), ``momentum``/``rho``/``eps`` (rmsprop, ``rho`` is
            PyTorch's ``alpha``), ``beta1``/``beta2``/``eps`` (adam, adamw, nadam, radam),
            ``initial_accumulator`` (adagrad), ``rho`` (adadelta).

    Returns:
        The optimizer. ``nesterov`` with ``momentum == 0`` is plain SGD: Nesterov momentum without
        momentum is undefined (PyTorch rejects it), and a search that samples both independently
        should not lose those trials. ``adam`` and ``adamw`` differ only in how weight decay
        acts, so ``adamw`` with coupled decay is Adam and ``adam`` with decoupled decay is AdamW.
        Decoupled decay for sgd, rmsprop, adagrad and adadelta is a step pre-hook
        (:func:`~trainer._penalties.decoupled_decay_`) reading the group's ``"decoupled_wd"``.

    Raises:
        ValueError: an unknown optimizer or weight-decay mode.

    Example:
        >>> from torch import nn
        >>> from sweeplab.trainer import resolve_params
        >>> opt = build_optimizer(nn.Linear(3, 2), resolve_params({"optimizer": "sgd"}))
        >>> type(opt).__name__, len(opt.param_groups)  # weights, and biases (never decayed)
        ('SGD', 2)
    """
    name = params["optimizer"]
    if name not in OPTIMIZERS:
        raise ValueError(f"`optimizer` must be one of {list(OPTIMIZERS)}; got {name!r}")
    modes = HYPERPARAMETERS["weight_decay_mode"].choices
    if params["weight_decay_mode"] not in modes:
        raise ValueError(
            f"`weight_decay_mode` must be one of {list(modes)}; got {params['weight_decay_mode']!r}"
        )
    decoupled = decay_is_decoupled(params)
    groups = parameter_groups(model, float(params["weight_decay"]))
    if decoupled and name not in _NATIVE_DECOUPLED:
        # PyTorch would add weight_decay to the gradient; move it to the pre-step hook instead.
        for group in groups:
            group["decoupled_wd"], group["weight_decay"] = group["weight_decay"], 0.0
    cls = _OPTIMIZER_CLASSES[name]
    if name in ("adam", "adamw"):  # one rule picks the class: AdamW when decay is decoupled
        cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    # An unset lr or rho is the optimizer's own PyTorch default, read from its signature.
    lr = _pytorch_default(cls, "lr") if params["lr"] is None else float(params["lr"])
    betas = (float(params["beta1"]), float(params["beta2"]))
    eps = float(params["eps"])
    rho_name = "alpha" if name == "rmsprop" else "rho"  # read by rmsprop and adadelta only
    if params["rho"] is not None:
        rho = float(params["rho"])
    elif name in ("rmsprop", "adadelta"):
        rho = _pytorch_default(cls, rho_name)
    tensors = [p for group in groups for p in group["params"]]
    fused = {"fused": True} if _fusable(tensors, _FUSED_DEVICES.get(name, ())) else {}

    optimizer: torch.optim.Optimizer
    if name == "sgd":
        momentum = float(params["momentum"])
        nesterov = bool(params["nesterov"]) and momentum > 0
        optimizer = torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov, **fused)
    elif name in ("adam", "adamw"):
        optimizer = cls(groups, lr=lr, betas=betas, eps=eps, **fused)
    elif name == "nadam":
        optimizer = torch.optim.NAdam(
            groups, lr=lr, betas=betas, eps=eps, decoupled_weight_decay=decoupled
        )
    elif name == "radam":
        optimizer = torch.optim.RAdam(
            groups, lr=lr, betas=betas, eps=eps, decoupled_weight_decay=decoupled
        )
    elif name == "rmsprop":
        momentum = float(params["momentum"])
        optimizer = torch.optim.RMSprop(groups, lr=lr, alpha=rho, eps=eps, momentum=momentum)
    elif name == "adagrad":
        init = float(params["initial_accumulator"])
        optimizer = torch.optim.Adagrad(groups, lr=lr, initial_accumulator_value=init, **fused)
    else:  # adadelta
        optimizer = torch.optim.Adadelta(groups, lr=lr, rho=rho)
    if any(group.get("decoupled_wd") for group in groups):
        optimizer.register_step_pre_hook(decoupled_decay_)
    return optimizer


_OPTIMIZER_CLASSES: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "nadam": torch.optim.NAdam,
    "radam": torch.optim.RAdam,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
    "adadelta": torch.optim.Adadelta,
}


def pytorch_lr(optimizer: str) -> float:
    """PyTorch's default learning rate of one of :data:`~trainer.OPTIMIZERS`.

    Example:
        >>> pytorch_lr("sgd"), pytorch_lr("adadelta")
        (0.001, 1.0)
    """
    return _pytorch_default(_OPTIMIZER_CLASSES[optimizer], "lr")


def _pytorch_default(cls: type[torch.optim.Optimizer], name: str) -> float:
    return float(inspect.signature(cls).parameters[name].default)


def _fusable(tensors: list[torch.Tensor], devices: tuple[str, ...]) -> bool:
    """Whether a fused kernel takes these tensors: floating point, on one of ``devices``."""
    return bool(tensors) and all(
        t.device.type in devices and t.is_floating_point() for t in tensors
    )


# ---- learning-rate schedules ---------------------------------------------------------------------


def lr_factor(
    schedule: str, epoch: float, max_epochs: int, params: Mapping[str, Any] | None = None
) -> float:
    """The multiple of the base learning rate after ``epoch`` epochs of training.

    ``epoch`` is 0-based and whole for the per-epoch schedules; ``onecycle`` is stepped per
    batch and takes the fractional epoch ``step / steps_per_epoch``. With ``E = max_epochs``:

    - ``constant``: 1.
    - ``cosine``: ``(1 + cos(pi * epoch / E)) / 2`` (Loshchilov & Hutter, 2017, no restarts).
    - ``step``: 1, then x0.1 from ``epoch >= E/2`` and x0.01 from ``epoch >= 3E/4``.
    - ``exponential``: ``lr_gamma ** epoch``.
    - ``plateau``: 1; its reductions depend on the run and are applied by :class:`LrSchedule`.
    - ``onecycle`` (Smith & Topin, 2019), with ``p = epoch / E``: a half cosine rising from
      ``1/25`` to 1 over ``p < 0.3``, then a half cosine falling from 1 to ``1/25/1e4`` at
      ``p = 1``. Momentum is not cycled: the searched ``momentum``/``beta1`` stays as sampled.
    - ``sgdr`` (Loshchilov & Hutter, 2017): cosine from 1 towards 0 over a cycle of
      ``T_0 = sgdr_period`` epochs, restarting at 1; each cycle ``sgdr_mult`` times longer
      than the one before. ``T_cur`` counts epochs since the last restart: ``(1 + cos(pi *
      T_cur / T_i)) / 2``.

    Args:
        schedule: one of :data:`~trainer.LR_SCHEDULES`.
        epoch: epochs completed before the step this factor is for.
        max_epochs: the epoch budget the schedule spans (early stopping does not shorten it).
        params: resolved hyperparameters for ``lr_gamma``, ``sgdr_period``, ``sgdr_mult``;
            ``None`` uses the catalog defaults.

    Raises:
        ValueError: an unknown schedule.
    """
    if params is None:
        params = {name: row.default for name, row in HYPERPARAMETERS.items()}
    if schedule in ("constant", "plateau"):
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * epoch / max_epochs))
    if schedule == "step":
        return 0.1 ** ((epoch >= 0.5 * max_epochs) + (epoch >= 0.75 * max_epochs))
    if schedule == "exponential":
        return float(params["lr_gamma"]) ** epoch
    if schedule == "onecycle":
        p, start = epoch / max_epochs, 1.0 / ONECYCLE_DIV
        if p < ONECYCLE_RISE:
            return start + (1.0 - start) * 0.5 * (1.0 - math.cos(math.pi * p / ONECYCLE_RISE))
        end = start / ONECYCLE_FINAL_DIV
        fall = (p - ONECYCLE_RISE) / (1.0 - ONECYCLE_RISE)
        return end + (1.0 - end) * 0.5 * (1.0 + math.cos(math.pi * fall))
    if schedule == "sgdr":
        t_cur, t_i, mult = int(epoch), int(params["sgdr_period"]), int(params["sgdr_mult"])
        if mult == 1:
            t_cur %= t_i
        while t_cur >= t_i:
            t_cur, t_i = t_cur - t_i, t_i * mult
        return 0.5 * (1.0 + math.cos(math.pi * t_cur / t_i))
    raise ValueError(f"`lr_schedule` must be one of {list(LR_SCHEDULES)}; got {schedule!r}")


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Linear warm-up: ``min(1, (step + 1) / warmup_steps)`` for the 0-based ``step``; 1 if off.

    The first step already moves (at ``lr / warmup_steps``) and step ``warmup_steps - 1`` is the
    first at the full scheduled rate (Goyal et al., 2017, gradual warm-up).
    """
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, (step + 1) / warmup_steps)


class LrSchedule:
    """Sets every parameter group's learning rate, per epoch and, where needed, per step.

    The learning rate of 0-based step ``s`` (counted over the run) in 0-based epoch ``e`` is::

        lr * lr_factor(lr_schedule, t, max_epochs) * plateau_scale * warmup_factor(s, W)

    where ``t = e`` for the per-epoch schedules and ``t = s / steps_per_epoch`` for
    ``onecycle``, ``W = round(warmup_epochs * steps_per_epoch)`` (at least 1 when warm-up is
    on), and ``plateau_scale`` is ``plateau_factor ** k`` after ``k`` reductions: a reduction
    follows every ``plateau_patience`` consecutive epochs without a new best objective
    (Keras's rule; the count restarts after each reduction, the best does not).

    Call :meth:`after_step` after each ``optimizer.step()`` and :meth:`after_epoch` after each
    epoch's evaluation; per-epoch schedules without warm-up do nothing per step.

    Example:
        >>> from sweeplab.trainer import resolve_params
        >>> opt = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=0.1)
        >>> hp = resolve_params({"lr": 0.1, "lr_schedule": "exponential", "lr_gamma": 0.5})
        >>> schedule = LrSchedule(opt, hp, max_epochs=3, steps_per_epoch=10)
        >>> schedule.after_epoch(improved=True)
        >>> opt.param_groups[0]["lr"]
        0.05
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        params: Mapping[str, Any],
        *,
        max_epochs: int,
        steps_per_epoch: int,
    ) -> None:
        self.optimizer = optimizer
        self.schedule = params["lr_schedule"]
        self.params = params
        self.max_epochs, self.steps_per_epoch = max_epochs, max(1, steps_per_epoch)
        warmup_epochs = float(params["warmup_epochs"])
        self.warmup_steps = (
            max(1, round(warmup_epochs * self.steps_per_epoch)) if warmup_epochs > 0 else 0
        )
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.step = self.epoch = 0
        self.plateau_scale, self.bad_epochs = 1.0, 0
        lr_factor(self.schedule, 0, max_epochs, params)  # fail here, not mid-run, on a bad name
        self._apply()

    def factor(self) -> float:
        """The multiple of the base learning rate for the coming step."""
        t = self.step / self.steps_per_epoch if self.schedule == "onecycle" else self.epoch
        return (
            lr_factor(self.schedule, t, self.max_epochs, self.params)
            * self.plateau_scale
            * warmup_factor(self.step, self.warmup_steps)
        )

    def after_step(self) -> None:
        """Count one optimizer step; set the next step's rate if it changes within an epoch."""
        self.step += 1
        if self.schedule == "onecycle" or self.step < self.warmup_steps:
            self._apply()

    def after_epoch(self, improved: bool) -> None:
        """Count one epoch; ``improved`` is whether it set a new best objective (for plateau)."""
        self.epoch += 1
        if self.schedule == "plateau":
            self.bad_epochs = 0 if improved else self.bad_epochs + 1
            if self.bad_epochs >= int(self.params["plateau_patience"]):
                self.plateau_scale *= float(self.params["plateau_factor"])
                self.bad_epochs = 0
        self._apply()

    def state_dict(self) -> dict[str, Any]:
        """What the schedule has counted (for a checkpoint); the settings come from ``params``."""
        return {
            "base_lrs": list(self.base_lrs),
            "step": self.step,
            "epoch": self.epoch,
            "plateau_scale": self.plateau_scale,
            "bad_epochs": self.bad_epochs,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state_dict`'s counts (the optimizer's rates are its own)."""
        self.base_lrs = [float(lr) for lr in state["base_lrs"]]
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        self.plateau_scale, self.bad_epochs = (
            float(state["plateau_scale"]),
            int(state["bad_epochs"]),
        )

    def rebase(self, base_lrs: list[float]) -> None:
        """New base rates (another run's state taken over with this run's ``lr``), applied to
        the coming step with the counted schedule's factor."""
        self.base_lrs = [float(lr) for lr in base_lrs]
        self._apply()

    def _apply(self) -> None:
        factor = self.factor()
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * factor
