"""A trial's augmentation mix: label mixing, torchvision's policies, and the chain of them all.

Everything draws its randomness from explicit generators seeded by the trial's seed, so a trial's
augmentation stream is reproducible and independent of what else consumed torch's global
generator. Each image of a batch gets its own draw (see ``_augment_ops``); only the label-mixing
augmentations (mixup, cutmix) draw one mixing weight per batch, as their papers do, so the loss
stays ``lam * loss(y_a) + (1 - lam) * loss(y_b)`` with a scalar ``lam``.

Inputs are the dataset's normalised float images. Colour operations and the policy augmenters need
pixel values, so they map back with the per-channel ``mean``/``std`` the dataset was normalised
with (pixel intensities in [0, 1]) and forward again afterwards.

The one exception to "batched on the device" is the policy augmenters (AutoAugment, RandAugment,
TrivialAugmentWide): torchvision draws one operation per call, so per-image randomness takes one
call per image, on uint8 CPU tensors. That costs a device-to-host copy (a synchronisation on GPU)
and roughly 0.1-0.2 ms of one CPU core per image (~10 s per MNIST epoch); use them knowing that.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch

from sweeplab.trainer._augment_ops import (
    affine,
    crop,
    cutout,
    erase,
    flip,
    grayscale,
    jitter,
    noise,
    pad,
    rotate,
    vflip,
    warp,
)
from sweeplab.trainer._catalog import AUGMENTATIONS, HYPERPARAMETERS

# The per-image operations live in _augment_ops; re-exported here for callers and tests.
__all__ = [
    "Augmenter",
    "Batch",
    "affine",
    "apply_policy",
    "build_policy",
    "crop",
    "cutmix",
    "cutout",
    "erase",
    "flip",
    "grayscale",
    "jitter",
    "mixup",
    "noise",
    "pad",
    "rotate",
    "vflip",
    "warp",
]

# The catalog rows the Augmenter reads; anything a trial does not set takes the catalog default.
_MAGNITUDES = (
    "crop_padding", "noise_std", "mixup_alpha", "cutmix_alpha", "rotate_degrees",
    "affine_degrees", "affine_translate", "affine_scale", "affine_shear", "jitter_brightness",
    "jitter_contrast", "jitter_saturation", "jitter_hue", "grayscale_p", "erase_p",
    "erase_max_area", "erase_max_ratio", "cutout_size", "cutout_p", "randaugment_n",
    "randaugment_m", "autoaugment_policy",
)  # fmt: skip
_POLICIES = ("autoaugment", "randaugment", "trivialaugment")


class Batch(NamedTuple):
    """An augmented batch. Without mixup or cutmix ``y_a is y_b`` and ``lam == 1``.

    The loss of a mixed batch is ``lam * loss(y_a) + (1 - lam) * loss(y_b)``.
    """

    x: torch.Tensor
    y_a: torch.Tensor
    y_b: torch.Tensor
    lam: float


# ---- label mixing (one mixing weight per batch) -------------------------------------------------


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


def cutmix(
    x: torch.Tensor,
    y: torch.Tensor,
    alpha: float,
    generator: torch.Generator,
    rng: np.random.Generator,
) -> Batch:
    """Paste a box of another example of the batch into each one (Yun et al., 2019, "CutMix").

    One box per batch, as in the paper's code: side ``sqrt(1 - lam0)`` times the image's on each
    axis with ``lam0 ~ Beta(alpha, alpha)``, centre uniform over the image, clipped by the border.
    The returned ``lam`` is recomputed from the clipped box, so it is exactly the share of each
    image that is still its own (``1 - pasted area / image area``) and ``y_b`` owns the rest.

    Args:
        x: images ``(N, C, H, W)``.
        y: labels ``(N,)``.
        alpha: Beta concentration, ``> 0`` (the paper uses 1: ``lam0`` uniform).
        generator: on ``x``'s device, draws the pairing.
        rng: draws ``lam0`` and the box on the host, so slicing needs no device sync.
    """
    n, _, h, w = x.shape
    cut = math.sqrt(1.0 - float(rng.beta(alpha, alpha)))
    box_h, box_w = int(h * cut), int(w * cut)
    cy, cx = int(rng.integers(h)), int(rng.integers(w))
    top, bottom = max(cy - box_h // 2, 0), min(cy - box_h // 2 + box_h, h)
    left, right = max(cx - box_w // 2, 0), min(cx - box_w // 2 + box_w, w)
    perm = torch.randperm(n, generator=generator, device=x.device)
    mixed = x.clone()
    mixed[:, :, top:bottom, left:right] = x[:, :, top:bottom, left:right][perm]
    lam = 1.0 - (bottom - top) * (right - left) / (h * w)
    return Batch(mixed, y, y[perm], lam)


# ---- torchvision's policy augmenters (uint8, CPU, one call per image) ---------------------------


def build_policy(name: str, params: Mapping[str, Any]) -> Callable[[torch.Tensor], torch.Tensor]:
    """The torchvision v2 transform for ``autoaugment``, ``randaugment`` or ``trivialaugment``.

    Args:
        name: one of the three.
        params: reads ``autoaugment_policy``, ``randaugment_n`` and ``randaugment_m``.
    """
    from torchvision.transforms import v2  # imported here: ~1 s, and only these need it

    if name == "autoaugment":
        return v2.AutoAugment(v2.AutoAugmentPolicy(params["autoaugment_policy"]))
    if name == "randaugment":
        return v2.RandAugment(
            num_ops=int(params["randaugment_n"]), magnitude=int(params["randaugment_m"])
        )
    if name == "trivialaugment":
        return v2.TrivialAugmentWide()
    raise ValueError(f"unknown policy augmenter {name!r}; known: {list(_POLICIES)}")


def apply_policy(
    pixels: torch.Tensor, transform: Callable[[torch.Tensor], torch.Tensor], seed: int
) -> torch.Tensor:
    """Run a torchvision policy augmenter on every image of a batch, each with its own draw.

    The images go to the CPU as uint8 (what the policies are defined on; MNIST and CIFAR are 8-bit
    anyway) and come back as float in [0, 1] on their device. torchvision draws from torch's
    global generator, so it runs inside a forked generator seeded from the trial's stream: the
    result is reproducible and the caller's global random state is left untouched.

    Args:
        pixels: images ``(N, C, H, W)`` in [0, 1], ``C`` = 1 or 3.
        transform: from :func:`build_policy`.
        seed: seeds this batch's draws.
    """
    images = (pixels.clamp(0.0, 1.0) * 255).round().to(torch.uint8).cpu()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        out = torch.stack([transform(image) for image in images])  # see the module docstring
    return out.to(pixels.device).to(pixels.dtype) / 255


class Augmenter:
    """Applies a trial's augmentation mix to each training batch, reproducibly from one seed.

    The order is fixed, whatever order ``names`` lists: geometry (crop, flip, vflip, rotate,
    affine), the policy augmenters (autoaugment, randaugment, trivialaugment), colour (jitter,
    grayscale), occlusion (erase, cutout), noise, and label mixing last, so that it blends two
    already-augmented images and noise is never shifted into the padding. With both mixup and
    cutmix on, each batch uses one of them, chosen 50/50 (timm's ``switch_prob=0.5``).

    Args:
        names: the switched-on augmentations, a subset of :data:`~trainer.AUGMENTATIONS`.
        seed: seeds all random streams.
        device: where the batches live.
        params: magnitudes by catalog name (``rotate_degrees``, ``erase_p``, ...); missing ones
            take their catalog defaults and other keys are ignored.
        mean, std: per-channel pixel mean and std (intensities in [0, 1]) the inputs were
            normalised with; colour operations and policy augmenters use them to recover pixels.
            ``None`` means the inputs are pixels already (mean 0, std 1).
        crop_padding, noise_std, mixup_alpha: override ``params`` (the original signature).

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
        seed: int,
        device: torch.device | str,
        params: Mapping[str, Any] | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        crop_padding: int | None = None,
        noise_std: float | None = None,
        mixup_alpha: float | None = None,
    ) -> None:
        self.names = frozenset(names)
        unknown = sorted(self.names - set(AUGMENTATIONS))
        if unknown:
            raise ValueError(f"`augment` must be a subset of {list(AUGMENTATIONS)}; got {unknown}")
        given = dict(params or {})
        overrides = {
            "crop_padding": crop_padding,
            "noise_std": noise_std,
            "mixup_alpha": mixup_alpha,
        }
        given.update({k: v for k, v in overrides.items() if v is not None})
        self.params = {k: given.get(k, HYPERPARAMETERS[k].default) for k in _MAGNITUDES}
        self.crop_padding = int(self.params["crop_padding"])
        self.noise_std = float(self.params["noise_std"])
        self.mixup_alpha = float(self.params["mixup_alpha"])
        device = torch.device(device)
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        # Moved to the device once: a per-batch host-to-device copy would synchronise the GPU.
        self.mean = torch.tensor(mean if mean is not None else [0.0], device=device)[:, None, None]
        self.std = torch.tensor(std if std is not None else [1.0], device=device)[:, None, None]
        self.policies = [(n, build_policy(n, self.params)) for n in _POLICIES if n in self.names]

    @classmethod
    def from_params(
        cls,
        params: Mapping[str, Any],
        *,
        seed: int,
        device: torch.device | str,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> Augmenter:
        """The augmenter of a trial's resolved hyperparameters (``augment`` and its magnitudes).

        Example:
            >>> aug = Augmenter.from_params({"augment": ("rotate",), "rotate_degrees": 30.0},
            ...                             seed=0, device="cpu")
            >>> aug.params["rotate_degrees"], aug.mixes
            (30.0, False)
        """
        names = params.get("augment", ())
        return cls(names, params=params, seed=seed, device=device, mean=mean, std=std)

    @property
    def mixes(self) -> bool:
        """Whether batches carry two label sets (mixup or cutmix is on)."""
        return "mixup" in self.names or "cutmix" in self.names

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> Batch:
        """Augment one batch of normalised images ``x`` ``(N, C, H, W)`` with labels ``y``."""
        on, hp, g = self.names, self.params, self.generator
        # ---- geometry ----------------------------------------------------------------------------
        if "crop" in on:
            x = crop(x, self.crop_padding, g)
        if "flip" in on:
            x = flip(x, g)
        if "vflip" in on:
            x = vflip(x, g)
        if "rotate" in on:
            x = rotate(x, hp["rotate_degrees"], g)
        if "affine" in on:
            x = affine(
                x,
                g,
                degrees=hp["affine_degrees"],
                translate=hp["affine_translate"],
                scale=hp["affine_scale"],
                shear=hp["affine_shear"],
            )
        # ---- pixel-space operations: policies and colour -----------------------------------------
        # Grayscale is a no-op on 1-channel data: skip the pixel round trip's rounding error too.
        grays = "grayscale" in on and x.shape[1] == 3
        if self.policies or "jitter" in on or grays:
            pixels = x * self.std + self.mean
            for _, transform in self.policies:
                pixels = apply_policy(pixels, transform, seed=int(self.rng.integers(2**62)))
            if "jitter" in on:
                pixels = jitter(
                    pixels,
                    g,
                    brightness=hp["jitter_brightness"],
                    contrast=hp["jitter_contrast"],
                    saturation=hp["jitter_saturation"],
                    hue=hp["jitter_hue"],
                )
            if grays:
                pixels = grayscale(pixels, hp["grayscale_p"], g)
            x = (pixels - self.mean) / self.std
        # ---- occlusion and noise -----------------------------------------------------------------
        if "erase" in on:
            x = erase(
                x,
                g,
                p=hp["erase_p"],
                max_area=hp["erase_max_area"],
                max_ratio=hp["erase_max_ratio"],
            )
        if "cutout" in on:
            x = cutout(x, g, size=hp["cutout_size"], p=hp["cutout_p"])
        if "noise" in on:
            x = noise(x, self.noise_std, g)
        # ---- label mixing ------------------------------------------------------------------------
        use_mixup, use_cutmix = "mixup" in on, "cutmix" in on
        if use_mixup and use_cutmix:  # drawn on the host: no device sync
            use_mixup = bool(self.rng.random() < 0.5)
            use_cutmix = not use_mixup
        if use_mixup:
            return mixup(x, y, self.mixup_alpha, g, self.rng)
        if use_cutmix:
            return cutmix(x, y, float(hp["cutmix_alpha"]), g, self.rng)
        return Batch(x, y, y, 1.0)
