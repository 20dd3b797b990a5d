"""The networks a trial can train: an MLP, a small CNN, a ResNet-9 and a ResNet-18.

Every architecture honours the trial's layer choices (:class:`~trainer._layers.LayerChoices`)
where they have a meaning:

=====================  =====  =====  =======  ========================================
choice                 mlp    cnn    resnet9  resnet18
=====================  =====  =====  =======  ========================================
activation, init       yes    yes    yes      yes
norm                   yes    yes    yes      yes
norm_position          yes    yes    yes      no (torchvision's conv, norm, act)
dropout (hidden)       yes    yes    yes      yes (before the classifier)
input_dropout          yes    yes    yes      yes
spatial_dropout        no     yes    yes      yes (after each stage)
dropconnect            yes    head   head     head (Linear layers only; convs keep theirs)
stochastic_depth       no     no     yes      yes (no residual branches in mlp/cnn)
hidden_noise_std       yes    yes    yes      yes
=====================  =====  =====  =======  ========================================

A choice that does not apply is ignored, so one search space can span several architectures.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from torch import nn

from sweeplab.trainer._catalog import HYPERPARAMETERS
from sweeplab.trainer._init import apply_init
from sweeplab.trainer._layers import (
    DropPath,
    GaussianNoise,
    LayerChoices,
    Residual,
    Scale,
    depth_rates,
    dropout,
    linear,
    make_activation,
    make_norm,
    spatial_dropout,
    unit,
)
from sweeplab.trainer._settings import MODELS, ModelSettings

# What ``norm = "default"`` means per architecture: what each was built with before norm was a
# choice (plain MLP/CNN; residual nets are designed around batch norm).
_DEFAULT_NORM = {"mlp": "none", "cnn": "none", "resnet9": "batch", "resnet18": "batch"}

# ResNet-9 divides its logits by 8 (Page 2018; airbench scales by 1/9 too): small initial logits
# keep the softmax soft while batch norm makes the features large.
_RESNET9_LOGIT_SCALE = 0.125


def build_model(
    model: ModelSettings,
    params: Mapping[str, Any],
    input_shape: tuple[int, int, int],
    num_classes: int,
) -> nn.Module:
    """Build and initialise the network a trial trains.

    Args:
        model: which network and its fixed shape (``hidden`` for the MLP, ``channels`` for the
            conv nets).
        params: the trial's hyperparameters (resolved or not: missing ones take their catalog
            default); reads ``activation`` (falling back to ``model.activation``), ``init``,
            ``init_std``, ``norm``, ``norm_position``, ``group_norm_groups``, ``dropout``,
            ``input_dropout``, ``spatial_dropout``, ``dropconnect``, ``stochastic_depth`` and
            ``hidden_noise_std``.
        input_shape: ``(C, H, W)`` of one input image.
        num_classes: outputs of the final layer (logits).

    Returns:
        The network on the CPU, in training mode, with ``init`` applied.

    Raises:
        ValueError: an unknown model kind, or a hyperparameter outside its catalog range.

    Example:
        >>> import torch
        >>> from sweeplab.trainer import ModelSettings, build_model
        >>> net = build_model(ModelSettings(kind="mlp", hidden=(32,)), {}, (1, 8, 8), 10)
        >>> tuple(net(torch.zeros(2, 1, 8, 8)).shape)
        (2, 10)
    """
    if model.factory is not None:
        return build_own_model(model.factory, params, input_shape, num_classes)
    choices = LayerChoices.from_params(params, model.activation)
    if model.kind not in MODELS:
        raise ValueError(f"`model.kind` must be one of {list(MODELS)}; got {model.kind!r}")
    choices = choices.with_norm_default(_DEFAULT_NORM[model.kind])
    if model.kind == "mlp":
        net = _mlp(model.hidden, choices, input_shape, num_classes)
    elif model.kind == "cnn":
        net = _cnn(model.channels, choices, input_shape, num_classes)
    elif model.kind == "resnet9":
        net = _resnet9(model.channels, choices, input_shape, num_classes)
    else:
        net = _resnet18(choices, input_shape, num_classes)
    init_std = params.get("init_std", HYPERPARAMETERS["init_std"].default)
    apply_init(net, params.get("init", "default"), choices.activation, std=init_std)
    return net


def build_own_model(
    factory: Any, params: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int
) -> nn.Module:
    """A user's own network, ``factory(input_shape, n_classes, hp)``, with the trial's ``init``
    scheme applied to its Linear and Conv layers (``"default"``: the network's own init).

    Raises:
        TypeError: the factory did not return a ``torch.nn.Module``.
    """
    net = factory(tuple(input_shape), num_classes, dict(params))
    if not isinstance(net, nn.Module):
        raise TypeError(
            f"the model factory {getattr(factory, '__qualname__', factory)!r} returned "
            f"{type(net).__name__}, not a torch.nn.Module"
        )
    activation = params.get("activation", HYPERPARAMETERS["activation"].default)
    init_std = params.get("init_std", HYPERPARAMETERS["init_std"].default)
    apply_init(net, params.get("init", "default"), activation, std=init_std)
    return net


def check_own_model(
    factory: Any, params: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int
) -> None:
    """Build a user's network once and run two examples through it, before any trial does.

    Raises:
        TypeError: the factory does not return a ``torch.nn.Module``.
        ValueError: its output on a batch of 2 is not ``(2, num_classes)`` logits, or the forward
            pass raised (the message names the input shape it was given).
    """
    import torch

    net = build_own_model(factory, params, input_shape, num_classes)
    try:
        with torch.no_grad():
            out = net.eval()(torch.zeros(2, *input_shape))
    except Exception as e:
        raise ValueError(
            f"the network it built raised on a batch of shape {(2, *input_shape)}: "
            f"{type(e).__name__}: {e}"
        ) from e
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, num_classes):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"the network it built maps a batch of shape {(2, *input_shape)} to {shape}; "
            f"expected logits of shape (2, {num_classes}): (batch, n_classes)"
        )


def _mlp(
    hidden: tuple[int, ...],
    choices: LayerChoices,
    input_shape: tuple[int, int, int],
    num_classes: int,
) -> nn.Sequential:
    """Flatten, input dropout, then per hidden width: Linear, norm/act, noise, dropout."""
    layers: list[nn.Module] = [nn.Flatten(), *dropout(choices.input_dropout)]
    width = math.prod(input_shape)
    for out in hidden:
        layers += [
            linear(width, out, choices, bias=choices.layer_bias),
            *unit(choices, out, spatial=False),
            *dropout(choices.dropout),
        ]
        width = out
    layers.append(linear(width, num_classes, choices))
    return nn.Sequential(*layers)


def _cnn(
    channels: tuple[int, ...],
    choices: LayerChoices,
    input_shape: tuple[int, int, int],
    num_classes: int,
) -> nn.Sequential:
    """Per channel count: 3x3 conv, norm/act, noise, 2x2 max-pool, spatial dropout; then a
    Linear classifier on the flattened maps (hidden dropout before it)."""
    layers: list[nn.Module] = [*dropout(choices.input_dropout)]
    in_channels, height, width = input_shape
    for out in channels:
        layers += [
            nn.Conv2d(in_channels, out, 3, padding=1, bias=choices.layer_bias),
            *unit(choices, out, spatial=True),
        ]
        # Stop halving at one pixel, so that long channel lists still fit 8x8 digits.
        if min(height, width) >= 2:
            layers.append(nn.MaxPool2d(2))
            height, width = height // 2, width // 2
        layers += spatial_dropout(choices.spatial_dropout)
        in_channels = out
    layers += [
        nn.Flatten(),
        *dropout(choices.dropout),
        linear(in_channels * height * width, num_classes, choices),
    ]
    return nn.Sequential(*layers)


def _resnet9(
    channels: tuple[int, ...],
    choices: LayerChoices,
    input_shape: tuple[int, int, int],
    num_classes: int,
) -> nn.Sequential:
    """ResNet-9 (Page 2018, "How to train your ResNet"; the base of airbench), for any width list.

    ``channels[0]`` is the stem's width, every later entry a stage: 3x3 conv, 2x2 max-pool,
    norm/act; the first and the last stage then add a residual block of two 3x3 conv, norm/act
    units. A global max-pool and a Linear layer (logits scaled by 1/8) make the head. With
    ``channels = (64, 128, 256, 512)`` this is Page's ResNet-9 (8 conv layers + 1 linear); the
    default ``(32, 64)`` gives a one-stage miniature. Pooling stops at one pixel so 8x8 digits fit.
    """
    stem, *stages = channels
    in_channels, height, width = input_shape
    layers: list[nn.Module] = [
        *dropout(choices.input_dropout),
        nn.Conv2d(in_channels, stem, 3, padding=1, bias=choices.layer_bias),
        *unit(choices, stem, spatial=True),
        *spatial_dropout(choices.spatial_dropout),
    ]
    residual_stages = {0, len(stages) - 1} if stages else set()
    drops = iter(depth_rates(choices.stochastic_depth, len(residual_stages)))
    in_channels = stem
    for i, out in enumerate(stages):
        layers.append(nn.Conv2d(in_channels, out, 3, padding=1, bias=choices.layer_bias))
        # Pooling before the norm and activation (as airbench does) runs them on a quarter of
        # the pixels; max-pool commutes with a monotone activation, so little is lost.
        if min(height, width) >= 2:
            layers.append(nn.MaxPool2d(2))
            height, width = height // 2, width // 2
        layers += unit(choices, out, spatial=True)
        if i in residual_stages:
            layers.append(Residual(_conv_branch(out, choices), drop=next(drops)))
        layers += spatial_dropout(choices.spatial_dropout)
        in_channels = out
    layers += [
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
        *dropout(choices.dropout),
        linear(in_channels, num_classes, choices),
        Scale(_RESNET9_LOGIT_SCALE),
    ]
    return nn.Sequential(*layers)


def _conv_branch(width: int, choices: LayerChoices) -> nn.Sequential:
    conv = [nn.Conv2d(width, width, 3, padding=1, bias=choices.layer_bias) for _ in range(2)]
    return nn.Sequential(
        conv[0], *unit(choices, width, spatial=True), conv[1], *unit(choices, width, spatial=True)
    )


def _resnet18(
    choices: LayerChoices, input_shape: tuple[int, int, int], num_classes: int
) -> nn.Module:
    """torchvision's ResNet-18 with a small-image stem, then the trial's layer choices patched in.

    torchvision fixes the order conv, norm, act, so ``norm_position`` does not apply; ``norm``
    replaces every BatchNorm through torchvision's ``norm_layer`` hook.
    """
    import torchvision

    def norm_layer(width: int) -> nn.Module:
        norm = make_norm(choices.norm, width, spatial=True, groups=choices.group_norm_groups)
        return norm if norm is not None else nn.Identity()

    net = torchvision.models.resnet18(weights=None, num_classes=num_classes, norm_layer=norm_layer)
    # The ImageNet stem (7x7 stride-2 conv, then max-pool) shrinks a 32x32 image to 8x8 before the
    # first block; a 3x3 stride-1 stem without pooling keeps the resolution small images need.
    net.conv1 = nn.Conv2d(input_shape[0], 64, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
    net.maxpool = nn.Identity()
    if choices.activation != "relu" or choices.hidden_noise_std > 0:
        _replace_relu(net, choices)
    stages = [net.layer1, net.layer2, net.layer3, net.layer4]
    blocks = [block for stage in stages for block in stage]
    for block, rate in zip(blocks, depth_rates(choices.stochastic_depth, len(blocks)), strict=True):
        if rate > 0:
            # bn2's output is exactly the residual branch, just before ``out += identity``.
            block.bn2 = nn.Sequential(block.bn2, DropPath(rate))
    if choices.spatial_dropout > 0:
        for name in ("layer1", "layer2", "layer3", "layer4"):
            stage = getattr(net, name)
            setattr(net, name, nn.Sequential(*stage, *spatial_dropout(choices.spatial_dropout)))
    if choices.input_dropout > 0:
        net.conv1 = nn.Sequential(*dropout(choices.input_dropout), net.conv1)
    if choices.dropconnect > 0:
        net.fc = linear(net.fc.in_features, num_classes, choices)
    if choices.dropout > 0:
        net.fc = nn.Sequential(*dropout(choices.dropout), net.fc)
    return net


def _replace_relu(module: nn.Module, choices: LayerChoices) -> None:
    # torchvision's blocks call one ``self.relu`` twice (after bn1 and after the sum), so the
    # swap covers every activation of the network.
    for name, child in module.named_children():
        if isinstance(child, nn.ReLU):
            act = make_activation(choices.activation)
            if choices.hidden_noise_std > 0:
                act = nn.Sequential(act, GaussianNoise(choices.hidden_noise_std))
            setattr(module, name, act)
        else:
            _replace_relu(child, choices)
