"""Weight penalties and constraints that act around the optimizer step.

Which tensors count as *weights* is decided in one place, :func:`weight_tensors`: linear and conv
weights (``ndim >= 2``). Biases and normalisation scales/shifts are never penalised: shrinking them
does not limit the function's complexity, it only shifts or rescales activations.

Each function here is called by the training loop only when its hyperparameter is switched on, so
an option that is off costs nothing per step.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def weight_tensors(model: nn.Module) -> list[torch.Tensor]:
    """The trainable tensors that weight penalties apply to: those with ``ndim >= 2``.

    Example:
        >>> net = nn.Sequential(nn.Linear(3, 2), nn.LayerNorm(2))
        >>> [tuple(w.shape) for w in weight_tensors(net)]
        [(2, 3)]
    """
    return [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]


def l1_penalty(weights: list[torch.Tensor]) -> torch.Tensor:
    """``sum |w|`` over every entry of ``weights``, differentiable (to be scaled, added to a loss).

    Its gradient is ``sign(w)`` (0 at exactly 0), so with step size ``lr`` each weight moves
    ``lr * l1`` towards zero per step on top of the data gradient: weights that the data does
    not need end up oscillating within about ``lr * l1`` of zero (Tibshirani, 1996, for the
    penalty; a subgradient method rather than a proximal one, so they are small, not exactly 0).
    """
    return torch.stack([w.abs().sum() for w in weights]).sum()


@torch.no_grad()
def max_norm_(weights: list[torch.Tensor], max_norm: float) -> None:
    """Project each unit's incoming weight vector onto the L2 ball of radius ``max_norm``, in place.

    The unit is the output dimension (dim 0): a row of a linear weight ``(out, in)`` or one
    filter ``(in, kh, kw)`` of a conv weight ``(out, in, kh, kw)``. Vectors already inside the
    ball are left alone; longer ones are rescaled to norm ``max_norm`` (to within 1e-7 relative,
    from below). This is the constraint Srivastava et al. (2014) pair with dropout: ``c`` in
    their section 5.1 is ``max_norm``.
    """
    for w in weights:
        w.renorm_(2, 0, max_norm)


def decoupled_decay_(optimizer: torch.optim.Optimizer, *_: Any) -> None:
    """Shrink weights by ``lr * wd`` for groups carrying a ``"decoupled_wd"`` coefficient.

    Decoupled weight decay (Loshchilov & Hutter, 2019): ``w <- w - lr * wd * w`` applied
    directly to the parameters, not through the gradient, so momentum and adaptive denominators
    never see it. PyTorch implements it for the Adam family only (``AdamW``,
    ``decoupled_weight_decay=True``); this is the same rule for SGD, RMSprop, Adagrad and
    Adadelta, registered with ``optimizer.register_step_pre_hook``. Like ``AdamW`` it uses the
    group's current (scheduled) ``lr`` and runs before the update, and skips parameters
    without a gradient.
    """
    with torch.no_grad():
        for group in optimizer.param_groups:
            wd = group.get("decoupled_wd", 0.0)
            if wd:
                params = [p for p in group["params"] if p.grad is not None]
                # One fused kernel for the whole group rather than one per tensor.
                torch._foreach_mul_(params, 1.0 - group["lr"] * wd)
