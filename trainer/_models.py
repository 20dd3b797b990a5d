"""The networks a trial can train: an MLP, a small CNN and a ResNet-18 adapted to small images."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from ._catalog import ACTIVATIONS
from ._init import apply_init
from ._settings import MODELS, ModelSettings

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "silu": nn.SiLU,
}


def build_model(
    model: ModelSettings,
    params: Mapping[str, Any],
    input_shape: tuple[int, int, int],
    num_classes: int,
) -> nn.Module:
    """Build and initialise the network a trial trains.

    Args:
        model: which network and its fixed shape (``hidden`` for the MLP, ``channels`` for the CNN).
        params: the trial's hyperparameters; reads ``activation`` (falling back to
            ``model.activation``), ``dropout`` (default 0) and ``init`` (default ``"default"``).
        input_shape: ``(C, H, W)`` of one input image.
        num_classes: outputs of the final layer (logits).

    Returns:
        The network on the CPU, in training mode, with ``init`` applied.

    Raises:
        ValueError: an unknown model kind, activation or init scheme.

    Example:
        >>> import torch
        >>> from trainer import ModelSettings, build_model
        >>> net = build_model(ModelSettings(kind="mlp", hidden=(32,)), {}, (1, 8, 8), 10)
        >>> tuple(net(torch.zeros(2, 1, 8, 8)).shape)
        (2, 10)
    """
    activation = params.get("activation", model.activation)
    if activation not in _ACTIVATIONS:
        raise ValueError(f"`activation` must be one of {list(ACTIVATIONS)}; got {activation!r}")
    dropout = float(params.get("dropout", 0.0))
    if model.kind == "mlp":
        net = _mlp(model.hidden, activation, dropout, input_shape, num_classes)
    elif model.kind == "cnn":
        net = _cnn(model.channels, activation, dropout, input_shape, num_classes)
    elif model.kind == "resnet18":
        net = _resnet18(activation, dropout, input_shape, num_classes)
    else:
        raise ValueError(f"`model.kind` must be one of {list(MODELS)}; got {model.kind!r}")
    apply_init(net, params.get("init", "default"), activation)
    return net


def make_activation(name: str) -> nn.Module:
    """A fresh module for the named activation (one of :data:`~trainer.ACTIVATIONS`)."""
    return _ACTIVATIONS[name]()


def _mlp(
    hidden: tuple[int, ...],
    activation: str,
    dropout: float,
    input_shape: tuple[int, int, int],
    num_classes: int,
) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()]
    width = input_shape[0] * input_shape[1] * input_shape[2]
    for out in hidden:
        layers += [nn.Linear(width, out), make_activation(activation), *_dropout(dropout)]
        width = out
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def _cnn(
    channels: tuple[int, ...],
    activation: str,
    dropout: float,
    input_shape: tuple[int, int, int],
    num_classes: int,
) -> nn.Sequential:
    layers: list[nn.Module] = []
    in_channels, height, width = input_shape
    for out in channels:
        layers += [
            nn.Conv2d(in_channels, out, kernel_size=3, padding=1),
            make_activation(activation),
        ]
        # Stop halving at one pixel, so that long channel lists still fit 8x8 digits.
        if min(height, width) >= 2:
            layers.append(nn.MaxPool2d(2))
            height, width = height // 2, width // 2
        in_channels = out
    layers += [
        nn.Flatten(),
        *_dropout(dropout),
        nn.Linear(in_channels * height * width, num_classes),
    ]
    return nn.Sequential(*layers)


def _resnet18(
    activation: str, dropout: float, input_shape: tuple[int, int, int], num_classes: int
) -> nn.Module:
    import torchvision

    net = torchvision.models.resnet18(weights=None, num_classes=num_classes)
    # The ImageNet stem (7x7 stride-2 conv, then max-pool) shrinks a 32x32 image to 8x8 before the
    # first block; a 3x3 stride-1 stem without pooling keeps the resolution small images need.
    net.conv1 = nn.Conv2d(input_shape[0], 64, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
    net.maxpool = nn.Identity()
    if activation != "relu":
        _replace_relu(net, activation)
    if dropout > 0:
        net.fc = nn.Sequential(nn.Dropout(dropout), net.fc)
    return net


def _replace_relu(module: nn.Module, activation: str) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.ReLU):
            setattr(module, name, make_activation(activation))
        else:
            _replace_relu(child, activation)


def _dropout(rate: float) -> list[nn.Module]:
    # A zero-rate Dropout is a no-op; leaving it out keeps printed architectures honest.
    return [nn.Dropout(rate)] if rate > 0 else []
