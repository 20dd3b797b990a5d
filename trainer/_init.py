"""Weight initialisation of linear and convolutional layers (the catalog's ``init`` choices).

Every scheme is a zero-mean distribution whose variance is a formula in the layer's fans
(``fan_in = in_channels * kernel area``, ``fan_out = out_channels * kernel area``):

==================  ========================  ==============================================
scheme              distribution              variance
==================  ========================  ==============================================
``uniform_fan_in``  uniform ±1/√fan_in        ``1 / (3 fan_in)``
``xavier_uniform``  uniform                   ``2 / (fan_in + fan_out)``
``xavier_normal``   normal                    ``2 / (fan_in + fan_out)``
``kaiming_uniform`` uniform                   ``gain² / fan_in``
``kaiming_normal``  normal                    ``gain² / fan_in``
``lecun_normal``    normal                    ``1 / fan_in``
``orthogonal``      (semi-)orthogonal matrix  ``1 / max(out, fan_in)`` (rows or columns unit)
``normal``          normal                    ``init_std²``
==================  ========================  ==============================================

``gain`` is the activation's (He et al.): √2 for ReLU, √(2 / (1 + a²)) for a leaky slope ``a``
(0.01 for LeakyReLU, PReLU's starting 0.25), 5/3 for tanh, 1 for sigmoid and SELU.

References:
    LeCun et al. (1998), "Efficient BackProp" (``lecun_normal``, ``uniform_fan_in``); Glorot &
    Bengio (2010), "Understanding the difficulty of training deep feedforward neural networks"
    (``xavier_*``); He et al. (2015), "Delving deep into rectifiers" (``kaiming_*``); Saxe et al.
    (2014), "Exact solutions to the nonlinear dynamics of learning in deep linear neural
    networks" (``orthogonal``); Klambauer et al. (2017), "Self-normalizing neural networks".
"""

from __future__ import annotations

import math

from torch import nn

from sweeplab.trainer._catalog import ACTIVATIONS, INIT_SCHEMES
from sweeplab.trainer._layers import LEAKY_SLOPE, PRELU_INIT

# Layers whose weights an init scheme sets. Normalisation layers keep their (1, 0) start and
# PReLU its 0.25 slope: those are not weights that carry signal variance.
_INITIALISED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)

# (nonlinearity, negative slope) for PyTorch's gain. GELU, ELU and SiLU behave like a ReLU for
# large |x|, so they take its gain rather than none. SELU is self-normalising only with variance
# 1/fan_in (Klambauer et al.; PyTorch's own docs say to use "linear" for it), so gain 1.
_KAIMING_NONLINEARITY: dict[str, tuple[str, float]] = {
    "relu": ("relu", 0.0),
    "leaky_relu": ("leaky_relu", LEAKY_SLOPE),
    "prelu": ("leaky_relu", PRELU_INIT),
    "tanh": ("tanh", 0.0),
    "sigmoid": ("sigmoid", 0.0),
    "gelu": ("relu", 0.0),
    "elu": ("relu", 0.0),
    "selu": ("linear", 0.0),
    "silu": ("relu", 0.0),
}


def apply_init(module: nn.Module, scheme: str, activation: str, *, std: float = 0.01) -> None:
    """Re-initialise every linear and conv layer of ``module`` in place.

    Weights follow ``scheme`` (see the module docstring for each variance); biases start at zero.
    ``"default"`` leaves PyTorch's own init of weights and biases untouched (and torchvision's, for
    ResNet-18). Only ``kaiming_*`` uses ``activation`` (its gain); ``xavier_*`` and ``orthogonal``
    use gain 1, as in their papers and in Keras/PyTorch defaults, so the search compares the
    schemes people know by these names.

    Args:
        module: the network (or a single layer).
        scheme: one of :data:`~trainer.INIT_SCHEMES`.
        activation: the hidden non-linearity (one of :data:`~trainer.ACTIVATIONS`).
        std: the standard deviation of ``"normal"`` (the catalog's ``init_std``); unused otherwise.

    Raises:
        ValueError: an unknown scheme or activation, or ``std <= 0``.

    Example:
        >>> from torch import nn
        >>> layer = nn.Linear(4, 4)
        >>> apply_init(layer, "orthogonal", "relu")
        >>> int(layer.bias.count_nonzero())
        0
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"`init` must be one of {list(INIT_SCHEMES)}; got {scheme!r}")
    if activation not in _KAIMING_NONLINEARITY:
        raise ValueError(f"`activation` must be one of {list(ACTIVATIONS)}; got {activation!r}")
    if not std > 0:
        raise ValueError(f"`init_std` must be a float > 0; got {std}")
    if scheme == "default":
        return
    for layer in module.modules():
        if isinstance(layer, _INITIALISED):
            _init_weight(layer.weight, scheme, activation, std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def _init_weight(weight: nn.Parameter, scheme: str, activation: str, std: float) -> None:
    fan_in = weight.shape[1] * math.prod(weight.shape[2:])
    nonlinearity, slope = _KAIMING_NONLINEARITY[activation]
    if scheme == "uniform_fan_in":
        # PyTorch's own Linear/Conv weight init (kaiming_uniform with a=√5 works out to this).
        bound = 1 / math.sqrt(fan_in)
        nn.init.uniform_(weight, -bound, bound)
    elif scheme == "xavier_uniform":
        nn.init.xavier_uniform_(weight)
    elif scheme == "xavier_normal":
        nn.init.xavier_normal_(weight)
    elif scheme == "kaiming_uniform":
        nn.init.kaiming_uniform_(weight, a=slope, nonlinearity=nonlinearity)
    elif scheme == "kaiming_normal":
        nn.init.kaiming_normal_(weight, a=slope, nonlinearity=nonlinearity)
    elif scheme == "lecun_normal":
        # Plain, not truncated, normal: the variance 1/fan_in is what SELU's fixed point needs.
        nn.init.normal_(weight, 0.0, 1 / math.sqrt(fan_in))
    elif scheme == "orthogonal":
        # Conv kernels are flattened to (out, in*k*k) and made row-orthogonal.
        nn.init.orthogonal_(weight)
    elif scheme == "normal":
        nn.init.normal_(weight, 0.0, std)
    else:  # pragma: no cover - apply_init checked the scheme against INIT_SCHEMES
        raise AssertionError(scheme)
