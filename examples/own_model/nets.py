"""Your own network, trained by sweeplab's loop: a small CNN for 8x8 digits whose depth and
width are hyperparameters of yours.

sweeplab calls ``build(input_shape, n_classes, hp)`` once per trial and trains what it returns
with the trial's catalog choices (optimizer, learning rate, init scheme on the Linear/Conv
layers, weight decay, augmentation, ...); ``hp`` carries those and your own (``depth``,
``width``) alike.
"""

from __future__ import annotations

from torch import nn


def build(input_shape: tuple[int, ...], n_classes: int, hp: dict) -> nn.Module:
    channels = input_shape[0]
    layers: list[nn.Module] = []
    for _ in range(int(hp["depth"])):
        layers += [nn.Conv2d(channels, int(hp["width"]), 3, padding=1), nn.ReLU()]
        channels = int(hp["width"])
    layers += [nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Dropout(hp["dropout"])]
    return nn.Sequential(*layers, nn.Linear(channels * 4, n_classes))
