"""Batched data augmentation on the training device: whole-batch tensor code, no per-sample loops.

Each function draws its randomness from an explicit generator, so a trial's augmentation stream
is fixed by its seed and does not depend on what else consumed torch's global generator.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from ._catalog import AUGMENTATIONS


class Batch(NamedTuple):
    """An augmented batch. Without mixup ``y_a is y_b`` and ``lam == 1``.

    The loss of a mixup batch is ``lam * loss(y_a) + (1 - lam) * loss(y_b)``.
    """

    x: torch.Tensor
    y_a: torch.Tensor
    y_b: torch.Tensor
    lam: float


def flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2.

    Args:
        x: images ``(N, C, H, W)``.
        generator: on ``x``'s device.
    """
    flipped = torch.rand(len(x), generator=generator, device=x.device) < 0.5
    return torch.where(flipped[:, None, None, None], x.flip(-1), x)


def pad(x: torch.Tensor, padding: int) -> torch.Tensor:
    """Pad ``padding`` pixels on every side by repeating the edge pixels.

    Edge replication rather than zeros: after normalisation zero is the mean pixel, which would
    draw a grey frame around MNIST's black background; and unlike reflection it works for any
    padding, even one wider than the image.
    """
    return F.pad(x, (padding, padding, padding, padding), mode="replicate")


def crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ``padding`` pixels: pad, then crop a random window back.

    Every output image is the ``H x W`` window of :func:`pad`'s output at an offset drawn
    uniformly from ``[0, 2 * padding]`` on each axis, independently per image.

    Args:
        x: images ``(N, C, H, W)``.
        padding: the largest shift in pixels, ``>= 1``.
        generator: on ``x``'s device.
    """
    n, c, h, w = x.shape
    padded = pad(x, padding)
    dy, dx = torch.randint(0, 2 * padding + 1, (2, n), generator=generator, device=x.device)
    rows = dy[:, None] + torch.arange(h, device=x.device)  # (N, H)
    cols = dx[:, None] + torch.arange(w, device=x.device)  # (N, W)
    samples = torch.arange(n, device=x.device)[:, None, None, None]
    channels = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[samples, channels, rows[:, None, :, None], cols[:, None, None, :]]


def noise(x: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    """Add Gaussian noise of standard deviation ``std`` (in units of the normalised input)."""
    return x + std * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def mixup(
    x: torch.Tensor,
    y: torch.Tensor,
    alpha: float,
    generator: torch.Generator,
    rng: np.random.Generator,
) -> Batch:
    """Mix each example with another of the same batch (Zhang et al., 2018, "mixup").

    ``x' = lam * x + (1 - lam) * x[perm]`` with one ``lam ~ Beta(alpha, alpha)`` per batch (the
    paper's α) and a random pairing ``perm``.

    Args:
        x: inputs ``(N, ...)``.
        y: labels ``(N,)``.
        alpha: Beta concentration, ``> 0``; small values keep ``lam`` near 0 or 1.
        generator: on ``x``'s device, draws the pairing.
        rng: draws ``lam`` (torch has no Beta sampler that takes a generator).
    """
    lam = float(rng.beta(alpha, alpha))
    perm = torch.randperm(len(x), generator=generator, device=x.device)
    return Batch(lam * x + (1.0 - lam) * x[perm], y, y[perm], lam)


class Augmenter:
    """Applies a trial's augmentation mix to each training batch, reproducibly from one seed.

    The order is crop, flip, noise, mixup: geometric changes first, so noise is not shifted into
    the padding, and mixup last, so it blends two already-augmented images.

    Args:
        names: the switched-on augmentations, a subset of :data:`~trainer.AUGMENTATIONS`.
        crop_padding: ``crop``'s largest shift in pixels.
        noise_std: ``noise``'s standard deviation.
        mixup_alpha: ``mixup``'s Beta concentration.
        seed: seeds both random streams.
        device: where the batches live.

    Example:
        >>> import torch
        >>> aug = Augmenter(["flip", "mixup"], crop_padding=2, noise_std=0.1, mixup_alpha=0.2,
        ...                 seed=0, device="cpu")
        >>> batch = aug(torch.zeros(4, 1, 8, 8), torch.arange(4))
        >>> tuple(batch.x.shape), 0.0 <= batch.lam <= 1.0
        ((4, 1, 8, 8), True)
    """

    def __init__(
        self,
        names: Iterable[str],
        *,
        crop_padding: int,
        noise_std: float,
        mixup_alpha: float,
        seed: int,
        device: torch.device | str,
    ) -> None:
        self.names = frozenset(names)
        unknown = sorted(self.names - set(AUGMENTATIONS))
        if unknown:
            raise ValueError(f"`augment` must be a subset of {list(AUGMENTATIONS)}; got {unknown}")
        self.crop_padding = crop_padding
        self.noise_std = noise_std
        self.mixup_alpha = mixup_alpha
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.rng = np.random.default_rng(seed)

    @property
    def mixes(self) -> bool:
        """Whether batches carry two label sets (mixup is on)."""
        return "mixup" in self.names

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> Batch:
        """Augment one batch of images ``x`` ``(N, C, H, W)`` with labels ``y``."""
        if "crop" in self.names:
            x = crop(x, self.crop_padding, self.generator)
        if "flip" in self.names:
            x = flip(x, self.generator)
        if "noise" in self.names:
            x = noise(x, self.noise_std, self.generator)
        if self.mixes:
            return mixup(x, y, self.mixup_alpha, self.generator, self.rng)
        return Batch(x, y, y, 1.0)
