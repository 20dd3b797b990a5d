"""Weight initialisation of linear and convolutional layers (the catalog's ``init`` choices).

References:
    Glorot & Bengio (2010), "Understanding the difficulty of training deep feedforward neural
    networks" (``xavier_*``); He et al. (2015), "Delving deep into rectifiers" (``kaiming_*``);
    Saxe et al. (2014), "Exact solutions to the nonlinear dynamics of learning in deep linear
    neural networks" (``orthogonal``).
"""

from __future__ import annotations

from torch import nn

from ._catalog import INIT_SCHEMES

# Layers whose weights an init scheme sets. Normalisation layers keep their (1, 0) start.
_INITIALISED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)

# He et al.'s gain assumes a rectifier; PyTorch knows the exact gain for these activations only.
# GELU, ELU and SiLU behave like a ReLU for large |x|, so they take its gain rather than none.
_KAIMING_NONLINEARITY = {
    "relu": "relu",
    "leaky_relu": "leaky_relu",
    "tanh": "tanh",
    "sigmoid": "sigmoid",
    "gelu": "relu",
    "elu": "relu",
    "silu": "relu",
}
# nn.LeakyReLU's default negative slope, which is what _models builds.
_LEAKY_SLOPE = 0.01


def apply_init(module: nn.Module, scheme: str, activation: str) -> None:
    """Re-initialise every linear and conv layer of ``module`` in place.

    Weights follow ``scheme``; biases start at zero. ``"default"`` leaves PyTorch's own init of
    weights and biases untouched. Only ``kaiming_*`` uses ``activation`` (its gain); ``xavier_*``
    and ``orthogonal`` use gain 1, as in their papers and in Keras/PyTorch defaults, so the
    search compares the schemes people know by these names.

    Args:
        module: the network (or a single layer).
        scheme: one of :data:`~trainer.INIT_SCHEMES`.
        activation: the hidden non-linearity (one of :data:`~trainer.ACTIVATIONS`).

    Raises:
        ValueError: an unknown scheme or activation.

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
        raise ValueError(
            f"`activation` must be one of {list(_KAIMING_NONLINEARITY)}; got {activation!r}"
        )
    if scheme == "default":
        return
    for layer in module.modules():
        if isinstance(layer, _INITIALISED):
            _init_weight(layer.weight, scheme, activation)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def _init_weight(weight: nn.Parameter, scheme: str, activation: str) -> None:
    nonlinearity = _KAIMING_NONLINEARITY[activation]
    slope = _LEAKY_SLOPE if nonlinearity == "leaky_relu" else 0.0
    if scheme == "xavier_uniform":
        nn.init.xavier_uniform_(weight)
    elif scheme == "xavier_normal":
        nn.init.xavier_normal_(weight)
    elif scheme == "kaiming_uniform":
        nn.init.kaiming_uniform_(weight, a=slope, nonlinearity=nonlinearity)
    elif scheme == "kaiming_normal":
        nn.init.kaiming_normal_(weight, a=slope, nonlinearity=nonlinearity)
    elif scheme == "orthogonal":
        # Conv kernels are flattened to (out, in*k*k) and made row-orthogonal.
        nn.init.orthogonal_(weight)
    else:  # pragma: no cover - apply_init checked the scheme against INIT_SCHEMES
        raise AssertionError(scheme)
