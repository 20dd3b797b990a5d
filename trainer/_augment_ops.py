"""Per-image random augmentations as batched tensor code on the training device.

Every function takes a whole batch ``(N, C, H, W)`` and an explicit generator on its device, and
draws each image's randomness (offset, angle, colour factors, box) at once: no per-sample loops
and no host synchronisation, so a training step never waits on them. The :class:`Augmenter` in
``_augment.py`` chains them.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

# Random erasing draws the erased area from [_ERASE_MIN_AREA, erase_max_area] of the image: the
# paper's lower bound s_l (Zhong et al., 2020), also torchvision's default.
_ERASE_MIN_AREA = 0.02

# ---- geometry ------------------------------------------------------------------------------------


def flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2.

    Args:
        x: images ``(N, C, H, W)``.
        generator: on ``x``'s device.
    """
    flipped = torch.rand(len(x), generator=generator, device=x.device) < 0.5
    return torch.where(flipped[:, None, None, None], x.flip(-1), x)


def vflip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image top-bottom with probability 1/2 (as :func:`flip`, on the other axis)."""
    flipped = torch.rand(len(x), generator=generator, device=x.device) < 0.5
    return torch.where(flipped[:, None, None, None], x.flip(-2), x)


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
    # Two gathers (rows, then columns) rather than one 4-d advanced index: 2-3x faster on CPU.
    rows = rows[:, None, :, None].expand(n, c, h, w + 2 * padding)
    return padded.gather(2, rows).gather(3, cols[:, None, None, :].expand(n, c, h, w))


def affine(
    x: torch.Tensor,
    generator: torch.Generator,
    *,
    degrees: float = 0.0,
    translate: float = 0.0,
    scale: float = 0.0,
    shear: float = 0.0,
) -> torch.Tensor:
    """Apply a random affine map to each image, about its centre (torchvision's RandomAffine).

    Per image: a rotation by an angle uniform in ``[-degrees, degrees]``, a zoom by a factor
    uniform in ``[1 - scale, 1 + scale]``, a horizontal shear by an angle uniform in
    ``[-shear, shear]`` degrees, and a shift uniform in ``[-translate, translate]`` times the
    image's width (height) on each axis. Resampled bilinearly; pixels mapped from outside the image
    repeat its edge, as :func:`pad` does.

    Args:
        x: images ``(N, C, H, W)``.
        generator: on ``x``'s device.
        degrees, translate, scale, shear: the magnitudes above; all zero is the identity.
    """
    n = len(x)
    u = 2 * torch.rand(5, n, generator=generator, device=x.device, dtype=x.dtype) - 1
    return warp(
        x,
        angle=degrees * u[0],
        zoom=1 + scale * u[1],
        shear=shear * u[2],
        shift_x=translate * x.shape[-1] * u[3],
        shift_y=translate * x.shape[-2] * u[4],
    )


def warp(
    x: torch.Tensor,
    *,
    angle: torch.Tensor,
    zoom: torch.Tensor,
    shear: torch.Tensor,
    shift_x: torch.Tensor,
    shift_y: torch.Tensor,
) -> torch.Tensor:
    """Map each image by its own affine transform about the centre, as one ``grid_sample``.

    The forward map in pixel units is ``p -> zoom * R(angle) @ [[1, tan(shear)], [0, 1]] @ p +
    (shift_x, shift_y)``, with ``p`` measured from the image centre, ``x`` to the right and ``y``
    down (so a positive angle turns the picture clockwise as displayed). Resampled bilinearly;
    points that fall outside the image take the nearest edge pixel.

    Args:
        x: images ``(N, C, H, W)``.
        angle, shear: ``(N,)`` in degrees.
        zoom: ``(N,)`` scale factors, ``> 0``.
        shift_x, shift_y: ``(N,)`` in pixels.
    """
    _, _, h, w = x.shape
    theta_, skew = torch.deg2rad(angle), torch.tan(torch.deg2rad(shear))
    cos, sin = torch.cos(theta_), torch.sin(theta_)
    a, b, c, d = zoom * cos, zoom * (cos * skew - sin), zoom * sin, zoom * (sin * skew + cos)
    # affine_grid wants the inverse map (output -> input) in coordinates normalised to [-1, 1]:
    # the closed-form 2x2 inverse, because torch.linalg.inv checks for errors with a host sync.
    det = a * d - b * c
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    theta = torch.stack(
        [
            torch.stack([ia, ib * h / w, -(ia * shift_x + ib * shift_y) * 2 / w], dim=1),
            torch.stack([ic * w / h, id_, -(ic * shift_x + id_ * shift_y) * 2 / h], dim=1),
        ],
        dim=1,
    ).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def rotate(x: torch.Tensor, degrees: float, generator: torch.Generator) -> torch.Tensor:
    """Rotate each image by an angle uniform in ``[-degrees, degrees]`` (see :func:`affine`)."""
    return affine(x, generator, degrees=degrees)


# ---- colour (in pixel space: intensities in [0, 1]) ---------------------------------------------


@functools.lru_cache(maxsize=8)
def _luma(device: torch.device) -> torch.Tensor:
    """ITU-R 601 luma weights (torchvision's) on ``device``.

    Cached: copying them to the GPU for every batch would synchronise it with the host.
    """
    return torch.tensor([0.299, 0.587, 0.114], device=device)


def _gray(pixels: torch.Tensor) -> torch.Tensor:
    """Luma ``(N, 1, H, W)``; 1-channel images are their own."""
    if pixels.shape[1] == 1:
        return pixels
    return torch.einsum("c,nchw->nhw", _luma(pixels.device).to(pixels.dtype), pixels)[:, None]


def shift_hue(pixels: torch.Tensor, turn: torch.Tensor) -> torch.Tensor:
    """Turn the HSV hue of each RGB image by its own ``turn`` (fractions of the circle).

    The HSV round trip of torchvision's ``adjust_hue``, with one shift per image: value and
    saturation are kept exactly, so the result never leaves [0, 1].

    Args:
        pixels: RGB images ``(N, 3, H, W)`` in [0, 1].
        turn: ``(N,)``; 0 (or any integer) leaves an image as it is.
    """
    r, g, b = pixels.unbind(1)
    high, low = pixels.amax(1), pixels.amin(1)
    chroma = high - low
    gray = chroma == 0  # hue undefined: any turn leaves the pixel alone
    safe = torch.where(gray, torch.ones_like(chroma), chroma)
    rc, gc, bc = (high - r) / safe, (high - g) / safe, (high - b) / safe
    hue = (
        torch.where(high == r, bc - gc, torch.where(high == g, 2.0 + rc - bc, 4.0 + gc - rc)) / 6.0
    )
    hue = torch.remainder(hue + turn[:, None, None], 1.0)
    saturation = torch.where(gray, torch.zeros_like(chroma), chroma / torch.where(gray, 1, high))
    # Back to RGB: each channel is v * (1 - s * clamp(min(k, 4 - k), 0, 1)), k = (n + 6 h) mod 6.
    # n = 5, 3, 1 for R, G, B; made on the device (a host tensor copied there would sync the GPU).
    n = torch.arange(5, 0, -2, device=pixels.device, dtype=pixels.dtype)[None, :, None, None]
    k = torch.remainder(n + 6.0 * hue[:, None], 6.0)
    ramp = torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)
    return high[:, None] * (1.0 - saturation[:, None] * ramp)


def jitter(
    pixels: torch.Tensor,
    generator: torch.Generator,
    *,
    brightness: float,
    contrast: float,
    saturation: float,
    hue: float,
) -> torch.Tensor:
    """Colour jitter (torchvision's ColorJitter), with its own factors for every image.

    In this order: intensities scaled by ``b``; blended with the image's mean luma by ``c``;
    blended with its own luma by ``s``; HSV hue turned by ``h`` of a full circle
    (:func:`shift_hue`). ``b, c, s`` are drawn uniformly from ``[1 - strength, 1 + strength]`` and
    ``h`` from ``[-hue, hue]``. Saturation and hue are no-ops on 1-channel images. The result is
    clipped to [0, 1] once, at the end.

    Args:
        pixels: images ``(N, C, H, W)`` in [0, 1], ``C`` = 1 or 3.
        generator: on ``pixels``' device.
        brightness, contrast, saturation: strengths in [0, 1]; 0 switches that part off.
        hue: largest turn, a fraction of the hue circle in [0, 0.5].
    """
    n = len(pixels)

    def factor(strength: float) -> torch.Tensor:
        u = torch.rand(n, 1, 1, 1, generator=generator, device=pixels.device, dtype=pixels.dtype)
        return 1 + strength * (2 * u - 1)

    if brightness > 0:
        pixels = pixels * factor(brightness)
    if contrast > 0:
        mean = _gray(pixels).mean(dim=(1, 2, 3), keepdim=True)
        pixels = mean + factor(contrast) * (pixels - mean)
    if pixels.shape[1] == 3 and saturation > 0:
        gray = _gray(pixels)
        pixels = gray + factor(saturation) * (pixels - gray)
    if pixels.shape[1] == 3 and hue > 0:
        pixels = shift_hue(pixels, hue * (factor(1.0).flatten() - 1))  # turn in [-hue, hue]
    return pixels.clamp(0.0, 1.0)


def grayscale(pixels: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Replace each image by its luma, repeated on every channel, with probability ``p``.

    A no-op on 1-channel images (they are gray already).
    """
    if pixels.shape[1] == 1:
        return pixels
    chosen = torch.rand(len(pixels), generator=generator, device=pixels.device) < p
    return torch.where(chosen[:, None, None, None], _gray(pixels).expand_as(pixels), pixels)


# ---- occlusion -----------------------------------------------------------------------------------


def _box_mask(
    top: torch.Tensor, left: torch.Tensor, height: torch.Tensor, width: torch.Tensor, h: int, w: int
) -> torch.Tensor:
    """``(N, H, W)`` bool, true inside each image's box; boxes may reach past the border."""
    rows = torch.arange(h, device=top.device, dtype=top.dtype)
    cols = torch.arange(w, device=top.device, dtype=top.dtype)
    in_rows = (rows >= top[:, None]) & (rows < (top + height)[:, None])
    in_cols = (cols >= left[:, None]) & (cols < (left + width)[:, None])
    return in_rows[:, :, None] & in_cols[:, None, :]


def erase(
    x: torch.Tensor, generator: torch.Generator, *, p: float, max_area: float, max_ratio: float
) -> torch.Tensor:
    """Random erasing (Zhong et al., 2020): blank one random rectangle per image, with prob. ``p``.

    The rectangle covers a share of the image uniform in ``[0.02, max_area]`` (the paper's
    ``[s_l, s_h]``) with an aspect ratio log-uniform in ``[1 / max_ratio, max_ratio]`` (``r_1``),
    shrunk to fit the image and placed uniformly inside it. It is filled with 0, the mean pixel of
    the normalised data (torchvision's default ``value=0``).

    Args:
        x: normalised images ``(N, C, H, W)``.
        generator: on ``x``'s device.
        p: probability of erasing, per image.
        max_area: largest erased share of the image, in (0, 1].
        max_ratio: largest height/width ratio, ``>= 1``.
    """
    n, _, h, w = x.shape
    u = torch.rand(5, n, generator=generator, device=x.device)
    low = min(_ERASE_MIN_AREA, max_area)
    area = h * w * (low + (max_area - low) * u[0])
    ratio = torch.exp(math.log(max_ratio) * (2 * u[1] - 1))
    height = (area * ratio).sqrt().round().clamp(1, h)
    width = (area / ratio).sqrt().round().clamp(1, w)
    top = (u[2] * (h - height + 1)).floor()
    left = (u[3] * (w - width + 1)).floor()
    mask = _box_mask(top, left, height, width, h, w) & (u[4] < p)[:, None, None]
    return x.masked_fill(mask[:, None], 0.0)


def cutout(x: torch.Tensor, generator: torch.Generator, *, size: float, p: float) -> torch.Tensor:
    """Cutout (DeVries & Taylor, 2017): zero a square centred anywhere in the image, prob. ``p``.

    The square's side is ``size`` times the image's shorter side (the paper's 16 px on CIFAR's
    32 px is ``size = 0.5``); its centre is uniform over the image, so it may be clipped by the
    border, as in the paper. Filled with 0, the mean pixel of the normalised data.
    """
    n, _, h, w = x.shape
    side = max(1, round(size * min(h, w)))
    u = torch.rand(3, n, generator=generator, device=x.device)
    top = (u[0] * h).floor() - side // 2
    left = (u[1] * w).floor() - side // 2
    sides = torch.full_like(top, side)
    mask = _box_mask(top, left, sides, sides, h, w) & (u[2] < p)[:, None, None]
    return x.masked_fill(mask[:, None], 0.0)


def noise(x: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    """Add Gaussian noise of standard deviation ``std`` (in units of the normalised input)."""
    return x + std * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
