"""The building blocks every network shares: activation, norm, the dropout family, noise.

Each architecture in :mod:`trainer._models` is written as "layer, then :func:`unit`, then the
dropouts that apply"; the choices a trial made (activation, norm and its position, rates) travel
in one :class:`LayerChoices` so an architecture reads them by name instead of taking ten arguments.
A choice that is off adds no module at all, so a default network prints (and seeds) as it always
did.

References:
    Srivastava et al. (2014), "Dropout" (``dropout``, ``input_dropout``); Tompson et al. (2015),
    "Efficient object localization using convolutional networks" (``spatial_dropout``); Wan et al.
    (2013), "Regularization of neural networks using DropConnect" (``dropconnect``); Huang et al.
    (2016), "Deep networks with stochastic depth" (``stochastic_depth``); Ioffe & Szegedy (2015),
    Ba et al. (2016), Wu & He (2018) (batch, layer and group norm); He et al. (2015) (PReLU);
    Klambauer et al. (2017) (SELU).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sweeplab.trainer._catalog import HYPERPARAMETERS

# nn.LeakyReLU's default negative slope, and PReLU's starting slope (He et al. 2015); the init
# module reads both for the Kaiming gain.
LEAKY_SLOPE = 0.01
PRELU_INIT = 0.25

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "prelu": nn.PReLU,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "silu": nn.SiLU,
}


@dataclass(frozen=True, kw_only=True)
class LayerChoices:
    """What a trial chose for the layers of its network (catalog names, checked).

    Attributes:
        activation: hidden non-linearity (one of :data:`~trainer.ACTIVATIONS`).
        norm: ``none``, ``batch``, ``layer`` or ``group`` (``default`` is resolved per
            architecture by :meth:`with_norm_default` before a network is built).
        norm_position: ``before`` or ``after`` the activation.
        group_norm_groups: groups of a group norm (at most; see :func:`make_norm`).
        dropout: hidden-unit dropout rate.
        input_dropout: input-feature (pixel) dropout rate.
        spatial_dropout: whole-feature-map dropout rate of conv nets.
        dropconnect: weight dropout rate of Linear layers.
        stochastic_depth: drop rate of the deepest residual branch.
        hidden_noise_std: standard deviation of Gaussian noise on hidden activations.
    """

    activation: str
    norm: str = "none"
    norm_position: str = "before"
    group_norm_groups: int = 8
    dropout: float = 0.0
    input_dropout: float = 0.0
    spatial_dropout: float = 0.0
    dropconnect: float = 0.0
    stochastic_depth: float = 0.0
    hidden_noise_std: float = 0.0

    @classmethod
    def from_params(cls, params: Mapping[str, Any], activation: str) -> LayerChoices:
        """Read the choices from a trial's params (missing ones take their catalog default).

        Args:
            params: the trial's hyperparameters, resolved or not.
            activation: the activation to use when ``params`` has none (``[model] activation``).

        Raises:
            ValueError: a value outside its catalog range, e.g. an unknown activation.
        """
        values: dict[str, Any] = {"activation": params.get("activation", activation)}
        for field in dataclasses.fields(cls):
            if field.name != "activation":
                values[field.name] = params.get(field.name, HYPERPARAMETERS[field.name].default)
        for name, value in values.items():
            row = HYPERPARAMETERS[name]
            if not row.accepts(value):
                raise ValueError(f"`{name}` must be {row.describe_range()}; got {value!r}")
            # A sampler may hand an int as 8.0 and a float as 0 (both legal); layers want types.
            if row.kind in ("int", "float"):
                values[name] = int(value) if row.kind == "int" else float(value)
        return cls(**values)

    def with_norm_default(self, norm: str) -> LayerChoices:
        """These choices with ``norm="default"`` replaced by the architecture's own ``norm``."""
        return dataclasses.replace(self, norm=norm) if self.norm == "default" else self

    @property
    def layer_bias(self) -> bool:
        """Whether a linear/conv layer needs its bias.

        A batch norm right after the layer subtracts each channel's mean, bias included, so the
        bias would be a parameter without effect. Layer and group norm subtract a mean over
        several channels, which does not remove per-channel biases, so those keep theirs.
        """
        return not (self.norm == "batch" and self.norm_position == "before")


def make_activation(name: str) -> nn.Module:
    """A fresh module for the named activation (one of :data:`~trainer.ACTIVATIONS`).

    ``prelu`` learns one negative slope per layer, starting at 0.25 (He et al.'s channel-shared
    variant, which they found as good as one slope per channel).
    """
    return _ACTIVATIONS[name]()


def make_norm(kind: str, width: int, *, spatial: bool, groups: int = 8) -> nn.Module | None:
    """The normalisation layer for ``width`` features or channels, or ``None`` for ``"none"``.

    Args:
        kind: ``none``, ``batch``, ``layer`` or ``group``.
        width: features (MLP) or channels (conv net) of the normalised tensor.
        spatial: ``True`` for ``(N, C, H, W)`` feature maps, ``False`` for ``(N, C)`` features.
        groups: group norm's number of groups, at most. A width it does not divide gets the
            largest divisor of the width below it (a 120-wide layer with 16 groups gets 15), so
            a search over widths and groups never builds an illegal layer.

    Layer norm of a feature map is ``GroupNorm(1, C)``: statistics over all of ``(C, H, W)``
    (Ba et al.'s definition), one scale and shift per channel rather than per pixel so the layer
    does not depend on the image size (Wu & He 2018, Fig. 2).

    Example:
        >>> make_norm("group", 120, spatial=False, groups=16).num_groups
        15
    """
    if kind == "none":
        return None
    if kind == "batch":
        return nn.BatchNorm2d(width) if spatial else nn.BatchNorm1d(width)
    if kind == "layer":
        return nn.GroupNorm(1, width) if spatial else nn.LayerNorm(width)
    if kind == "group":
        return nn.GroupNorm(_largest_divisor(width, groups), width)
    raise ValueError(f"`norm` must be one of ['none', 'batch', 'layer', 'group']; got {kind!r}")


def _largest_divisor(width: int, at_most: int) -> int:
    return next(g for g in range(min(width, at_most), 0, -1) if width % g == 0)


def unit(choices: LayerChoices, width: int, *, spatial: bool) -> list[nn.Module]:
    """What follows a hidden linear/conv layer: norm and activation (in the chosen order), noise.

    Args:
        choices: the trial's layer choices (``norm`` already resolved).
        width: the layer's output features or channels.
        spatial: ``True`` after a conv layer.
    """
    norm = make_norm(choices.norm, width, spatial=spatial, groups=choices.group_norm_groups)
    norms = [norm] if norm is not None else []
    act = make_activation(choices.activation)
    layers = [*norms, act] if choices.norm_position == "before" else [act, *norms]
    if choices.hidden_noise_std > 0:
        layers.append(GaussianNoise(choices.hidden_noise_std))
    return layers


def linear(
    in_features: int, out_features: int, choices: LayerChoices, *, bias: bool = True
) -> nn.Linear:
    """A Linear layer, or a :class:`DropConnectLinear` when the trial drops weights."""
    if choices.dropconnect > 0:
        return DropConnectLinear(in_features, out_features, p=choices.dropconnect, bias=bias)
    return nn.Linear(in_features, out_features, bias=bias)


def dropout(rate: float) -> list[nn.Module]:
    """``[nn.Dropout(rate)]``, or nothing at rate 0 (a zero-rate Dropout would only clutter)."""
    return [nn.Dropout(rate)] if rate > 0 else []


def spatial_dropout(rate: float) -> list[nn.Module]:
    """``[nn.Dropout2d(rate)]`` (whole feature maps), or nothing at rate 0.

    Neighbouring pixels of a feature map are strongly correlated, so zeroing single pixels barely
    regularises a conv net: the next layer reads the value from the neighbours (Tompson et al.).
    """
    return [nn.Dropout2d(rate)] if rate > 0 else []


def depth_rates(rate: float, blocks: int) -> list[float]:
    """Stochastic depth's linear decay: block ``l`` of ``L`` drops with ``l / L * rate``.

    Early blocks compute low-level features every later block uses, so they are kept more often
    (Huang et al. 2016, section 3); the deepest block drops with ``rate`` itself.

    Example:
        >>> depth_rates(0.3, 3)
        [0.1, 0.2, 0.3]
    """
    return [round(rate * (i + 1) / blocks, 12) for i in range(blocks)]


class DropConnectLinear(nn.Linear):
    """A Linear layer whose weights, not units, are dropped in training (Wan et al. 2013).

    In training each weight is zeroed with probability ``p`` and the survivors are scaled by
    ``1 / (1 - p)``, so the expected weight matrix is the real one; in eval the exact weights are
    used (the "inverted" form: no moment-matching at test time). Biases are never dropped. One
    mask is drawn per forward pass (per mini-batch), not per example: a per-example mask needs a
    ``batch x out x in`` tensor, which costs more memory than the rest of an MLP's training step.

    Args:
        in_features, out_features: as :class:`torch.nn.Linear`.
        p: probability of dropping each weight, in [0, 1).

    Example:
        >>> layer = DropConnectLinear(4, 3, p=0.5).eval()
        >>> x = torch.randn(2, 4)
        >>> torch.equal(layer(x), F.linear(x, layer.weight, layer.bias))
        True
    """

    def __init__(self, in_features: int, out_features: int, *, p: float, bias: bool = True):
        super().__init__(in_features, out_features, bias=bias)
        if not 0 <= p < 1:
            raise ValueError(f"`dropconnect` must be a float in [0, 1); got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return F.linear(x, self.weight, self.bias)
        keep = torch.rand_like(self.weight) >= self.p
        return F.linear(x, self.weight * keep / (1 - self.p), self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p}"


class DropPath(nn.Module):
    """Stochastic depth's per-example switch on a residual branch (Huang et al. 2016).

    In training each example's branch output is zeroed with probability ``p`` (so that example's
    block computes the identity) and kept branches are scaled by ``1 / (1 - p)``, so the expected
    block output is ``x + f(x)``; in eval this is the identity, i.e. the full network.

    Example:
        >>> torch.equal(DropPath(0.5).eval()(torch.ones(2, 3)), torch.ones(2, 3))
        True
    """

    def __init__(self, p: float):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"`stochastic_depth` must be a float in [0, 1); got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)  # one draw per example, broadcast over it
        keep = torch.rand(shape, device=x.device, dtype=x.dtype) >= self.p
        return x * keep / (1 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Residual(nn.Module):
    """``x + drop_path(branch(x))``: a residual block whose branch stochastic depth may skip.

    Args:
        branch: the residual function ``f``; must keep the shape of its input.
        drop: probability of skipping the branch for an example in training (0 = never).
    """

    def __init__(self, branch: nn.Module, drop: float = 0.0):
        super().__init__()
        self.branch = branch
        self.drop_path = DropPath(drop) if drop > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop_path(self.branch(x))


class GaussianNoise(nn.Module):
    """Adds ``N(0, std²)`` noise to its input in training; the identity in eval.

    Noise on hidden units is a regulariser in the family of dropout (Srivastava et al. 2014,
    section 10: Gaussian multiplicative/additive noise); it needs no rescaling, being zero-mean.

    Example:
        >>> torch.equal(GaussianNoise(1.0).eval()(torch.zeros(3)), torch.zeros(3))
        True
    """

    def __init__(self, std: float):
        super().__init__()
        if std < 0:
            raise ValueError(f"`hidden_noise_std` must be a float >= 0; got {std}")
        self.std = std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.std == 0:
            return x
        return x + self.std * torch.randn_like(x)

    def extra_repr(self) -> str:
        return f"std={self.std}"


class Scale(nn.Module):
    """Multiplies by a fixed constant (ResNet-9's logit scaling)."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor

    def extra_repr(self) -> str:
        return f"factor={self.factor}"
