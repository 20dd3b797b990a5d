"""Tests of the augmentation mix: every augmentation on real tensors, and one trial end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sweeplab.trainer import (
    AUGMENTATIONS,
    HYPERPARAMETERS,
    DataSettings,
    FitSettings,
    ModelSettings,
    fit,
)
from sweeplab.trainer._augment import (
    _MAGNITUDES,
    Augmenter,
    apply_policy,
    build_policy,
    cutmix,
    cutout,
    erase,
    grayscale,
    jitter,
    mixup,
    rotate,
    vflip,
    warp,
)
from sweeplab.trainer._augment_ops import shift_hue

# Augmentations with one draw per image; mixup and cutmix draw one mixing weight per batch.
PER_IMAGE = [name for name in AUGMENTATIONS if name not in ("mixup", "cutmix")]
POLICIES = ["autoaugment", "randaugment", "trivialaugment"]


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(n: int = 32, c: int = 3, size: int = 16, seed: int = 0) -> torch.Tensor:
    """Normalised-looking images whose pixels, mapped back with MEAN/STD, lie inside (0, 1)."""
    return torch.rand(n, c, size, size, generator=generator(seed)) * 1.6 - 0.8


MEAN, STD = 0.5, 0.5  # pixels = x * STD + MEAN lie in (0.1, 0.9) for images() above


def augmenter(names, seed=0, c=3, **params) -> Augmenter:
    return Augmenter(names, params=params, seed=seed, device="cpu", mean=[MEAN] * c, std=[STD] * c)


def ones(n: int, value: float = 0.0) -> torch.Tensor:
    return torch.full((n,), value)


# ---- every augmentation: not a no-op, shape/dtype/device kept, one draw per image ---------------


@pytest.mark.parametrize("name", AUGMENTATIONS)
@pytest.mark.parametrize("channels", [1, 3])
def test_each_augmentation_changes_its_input_and_keeps_shape_dtype_device(name, channels):
    x, y = images(c=channels), torch.arange(32) % 10
    batch = augmenter([name], c=channels)(x, y)
    assert batch.x.shape == x.shape and batch.x.dtype == x.dtype and batch.x.device == x.device
    if name == "grayscale" and channels == 1:
        assert torch.equal(batch.x, x)  # documented no-op: already gray
    else:
        assert not torch.allclose(batch.x, x, atol=1e-3), f"{name} left the batch unchanged"
    assert torch.equal(batch.y_a, y)


@pytest.mark.parametrize("name", [n for n in PER_IMAGE if n != "noise"])
def test_per_image_augmentations_draw_separately_for_each_image(name):
    # One image repeated: any difference between the outputs comes from per-image randomness.
    x = images(n=1).expand(48, -1, -1, -1).contiguous()
    out = augmenter([name])(x, torch.zeros(48, dtype=torch.int64)).x
    distinct = {tuple(img.flatten().round(decimals=4).tolist()) for img in out}
    assert len(distinct) >= 2 and (len(distinct) >= 8 or name in ("flip", "vflip", "grayscale"))


def test_noise_differs_per_image():
    x = torch.zeros(2, 1, 8, 8)
    out = augmenter(["noise"], c=1)(x, torch.zeros(2, dtype=torch.int64)).x
    assert not torch.equal(out[0], out[1])


def test_augmenter_is_reproducible_and_independent_of_the_global_generator():
    x, y = images(), torch.arange(32) % 10
    a = augmenter(PER_IMAGE, seed=3)(x, y).x
    torch.manual_seed(123)  # must not matter, policies included
    state = torch.get_rng_state()
    b = augmenter(list(reversed(PER_IMAGE)), seed=3)(x, y).x  # order of names does not matter
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a, b)
    assert not torch.equal(a, augmenter(PER_IMAGE, seed=4)(x, y).x)


# ---- geometry --------------------------------------------------------------------------------------


def test_vflip_mirrors_some_images_top_bottom_and_leaves_the_rest():
    x = torch.randn(64, 3, 5, 7)
    out = vflip(x, generator())
    mirrored = [torch.equal(out[i], x[i].flip(-2)) for i in range(len(x))]
    unchanged = [torch.equal(out[i], x[i]) for i in range(len(x))]
    assert all(m != u for m, u in zip(mirrored, unchanged, strict=True))
    assert 10 < sum(mirrored) < 54


def test_rotation_by_zero_is_the_identity_and_by_ninety_a_quarter_turn():
    x = torch.randn(8, 3, 7, 7)
    assert torch.allclose(rotate(x, 0.0, generator()), x, atol=1e-5)
    quarter = warp(x, angle=ones(8, 90.0), zoom=ones(8, 1.0), shear=ones(8),
                   shift_x=ones(8), shift_y=ones(8))  # fmt: skip
    assert torch.allclose(quarter, torch.rot90(x, k=-1, dims=(-2, -1)), atol=1e-5)  # clockwise


def test_warp_shifts_zooms_and_shears_in_pixel_units():
    x = torch.randn(2, 1, 6, 9)
    kw = {"angle": ones(2), "zoom": ones(2, 1.0), "shear": ones(2)}
    shifted = warp(x, **kw, shift_x=ones(2, 2.0), shift_y=ones(2, -1.0))
    assert torch.allclose(shifted[..., :-1, 2:], x[..., 1:, :-2], atol=1e-5)  # right 2, up 1
    ramp = torch.arange(9.0).expand(1, 1, 6, 9)  # value = column index
    zoomed = warp(ramp, angle=ones(1), zoom=ones(1, 2.0), shear=ones(1),
                  shift_x=ones(1), shift_y=ones(1))  # fmt: skip
    assert torch.allclose(zoomed[0, 0, 0, 3:6].diff(), torch.full((2,), 0.5), atol=1e-5)
    sheared = warp(ramp, angle=ones(1), zoom=ones(1, 1.0), shear=ones(1, 45.0),
                   shift_x=ones(1), shift_y=ones(1))  # fmt: skip
    # A 45-degree horizontal shear moves each row right by its distance below the centre
    # (row r's centre lies r + 0.5 - 3 pixels below the image's): column c now shows c minus that.
    offset = torch.arange(6.0)[:, None] - 2.5
    assert torch.allclose(sheared[0, 0, :, 3:6], ramp[0, 0, :, 3:6] - offset, atol=1e-4)


@pytest.mark.parametrize(
    "knob, value",
    [("affine_degrees", 30.0), ("affine_translate", 0.2), ("affine_scale", 0.3),
     ("affine_shear", 20.0)],
)  # fmt: skip
def test_each_affine_magnitude_acts_alone_and_all_zero_is_the_identity(knob, value):
    x = images()
    zero = {"affine_degrees": 0.0, "affine_translate": 0.0, "affine_scale": 0.0,
            "affine_shear": 0.0}  # fmt: skip
    y = torch.zeros(32, dtype=torch.int64)
    assert torch.allclose(augmenter(["affine"], **zero)(x, y).x, x, atol=1e-5)
    assert not torch.allclose(augmenter(["affine"], **{**zero, knob: value})(x, y).x, x, atol=1e-2)


# ---- colour --------------------------------------------------------------------------------------


def pixels(n=64, c=3, seed=0) -> torch.Tensor:
    return torch.rand(n, c, 6, 6, generator=generator(seed)) * 0.4 + 0.3  # no clipping below


def test_brightness_scales_each_image_by_one_factor_within_its_range():
    x = pixels()
    out = jitter(x, generator(), brightness=0.3, contrast=0.0, saturation=0.0, hue=0.0)
    ratio = out / x
    per_image = ratio.flatten(1)
    assert torch.allclose(per_image, per_image[:, :1].expand_as(per_image), atol=1e-5)
    factors = per_image[:, 0]
    assert factors.min() >= 0.7 - 1e-6 and factors.max() <= 1.3 + 1e-6
    assert factors.max() - factors.min() > 0.3  # spread over the range, per image


def luma(x: torch.Tensor) -> torch.Tensor:
    return (x * torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(1)


def test_contrast_keeps_mean_luma_and_saturation_keeps_luma():
    x = pixels()
    none = {"brightness": 0.0, "contrast": 0.0, "saturation": 0.0, "hue": 0.0}
    contrast = jitter(x, generator(), **{**none, "contrast": 0.4})
    assert torch.allclose(luma(contrast).mean((1, 2)), luma(x).mean((1, 2)), atol=1e-5)
    assert not torch.allclose(contrast, x, atol=1e-3)
    saturation = jitter(x, generator(), **{**none, "saturation": 0.4})
    assert torch.allclose(luma(saturation), luma(x), atol=1e-5)
    assert not torch.allclose(saturation, x, atol=1e-3)


def test_hue_keeps_hsv_value_and_saturation_and_a_full_turn_is_the_identity():
    x = pixels()
    none = {"brightness": 0.0, "contrast": 0.0, "saturation": 0.0}
    out = jitter(x, generator(), **none, hue=0.3)
    assert torch.allclose(out.amax(1), x.amax(1), atol=1e-5)  # V
    assert torch.allclose(out.amin(1), x.amin(1), atol=1e-5)  # with V, S = 1 - min / max
    assert not torch.allclose(out, x, atol=1e-2)
    for turn in (0.0, 1.0, -1.0):
        assert torch.allclose(shift_hue(x, torch.full((64,), turn)), x, atol=1e-5)
    # A third of a turn takes red to green and green to blue.
    primaries = torch.eye(3)[:, :, None, None]  # red, green, blue
    assert torch.allclose(shift_hue(primaries, torch.full((3,), 1 / 3)),
                          primaries.roll(1, dims=1), atol=1e-5)  # fmt: skip


def test_saturation_and_hue_are_no_ops_on_gray_and_one_channel_images():
    gray = pixels(c=1)
    for x in (gray, gray.expand(-1, 3, -1, -1)):
        out = jitter(x, generator(), brightness=0.0, contrast=0.0, saturation=0.8, hue=0.4)
        assert torch.allclose(out, x, atol=1e-5)


def test_grayscale_replaces_a_share_p_of_images_by_their_luma():
    x = pixels(n=400)
    out = grayscale(x, 0.3, generator())
    grays = luma(x)[:, None].expand(-1, 3, -1, -1)
    gray = (out - grays).abs().flatten(1).amax(1) < 1e-5
    kept = (out == x).flatten(1).all(1)
    assert torch.all(gray ^ kept)
    assert gray.float().mean().item() == pytest.approx(0.3, abs=0.07)


# ---- occlusion -----------------------------------------------------------------------------------


def box_of(mask: torch.Tensor) -> tuple[int, int] | None:
    """(height, width) of the true region of a 2-d mask, asserting it is one axis-aligned box."""
    if not mask.any():
        return None
    rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    assert mask[r0:r1, c0:c1].all() and mask.sum() == (r1 - r0) * (c1 - c0), "not one box"
    return int(r1 - r0), int(c1 - c0)


def zeroed_boxes(out: torch.Tensor) -> list[tuple[int, int] | None]:
    """The zeroed box of each image (all channels 0), or None."""
    return [box_of((img == 0).all(0)) for img in out]


def test_erase_blanks_one_rectangle_of_bounded_area_with_probability_p():
    x = images(n=400, size=20) + 2.0  # no pixel is 0 before erasing
    boxes = zeroed_boxes(erase(x, generator(), p=0.5, max_area=0.25, max_ratio=2.0))
    hit = [b for b in boxes if b is not None]
    assert len(hit) / len(boxes) == pytest.approx(0.5, abs=0.08)
    areas = [h * w / 400 for h, w in hit]
    assert min(areas) < 0.06 and 0.17 < max(areas) <= 0.25 + 0.05  # rounding of the sides
    assert all(1 / 2.6 <= h / w <= 2.6 for h, w in hit)
    assert len(set(hit)) > 10  # a different box per image


def test_cutout_zeroes_a_square_that_may_be_clipped_by_the_border():
    x = images(n=300, size=20) + 2.0
    boxes = zeroed_boxes(cutout(x, generator(), size=0.4, p=1.0))
    assert all(b is not None and b[0] <= 8 and b[1] <= 8 for b in boxes)
    assert (8, 8) in boxes and any(b != (8, 8) for b in boxes)  # whole and clipped squares
    assert zeroed_boxes(cutout(x, generator(), size=0.4, p=0.0)) == [None] * 300


@pytest.mark.parametrize("knob", ["grayscale_p", "erase_p", "cutout_p"])
def test_probability_zero_switches_an_augmentation_off(knob):
    name = knob.removesuffix("_p")
    x, y = images(), torch.zeros(32, dtype=torch.int64)
    assert torch.allclose(augmenter([name], **{knob: 0.0})(x, y).x, x, atol=1e-5)
    assert not torch.allclose(augmenter([name], **{knob: 1.0})(x, y).x, x, atol=1e-3)


# ---- label mixing --------------------------------------------------------------------------------


def soft_targets(batch, k: int) -> torch.Tensor:
    eye = torch.eye(k)
    return batch.lam * eye[batch.y_a] + (1 - batch.lam) * eye[batch.y_b]


def test_mixup_targets_sum_to_one():
    x, y = images(), torch.arange(32)
    for seed in range(5):
        batch = mixup(x, y, 0.4, generator(seed), np.random.default_rng(seed))
        assert 0.0 <= batch.lam <= 1.0
        assert torch.allclose(soft_targets(batch, 32).sum(1), torch.ones(32))


def test_cutmix_lambda_is_the_share_not_pasted_even_when_clipped():
    x, y = images(n=16, size=12), torch.arange(16)  # y = arange: y_b is the pairing itself
    clipped = 0
    for seed in range(40):
        batch = cutmix(x, y, 1.0, generator(seed), np.random.default_rng(seed))
        assert torch.allclose(soft_targets(batch, 16).sum(1), torch.ones(16))
        pasted = (batch.x != x).any(1)  # (N, H, W); images are distinct everywhere
        own = batch.y_b == y
        assert not pasted[own].any()
        if (~own).any():
            share = pasted[~own].float().mean((1, 2))
            assert torch.allclose(share, torch.full_like(share, 1 - batch.lam), atol=1e-6)
            assert torch.equal(batch.x[pasted[:, None].expand_as(x)],
                               x[batch.y_b][pasted[:, None].expand_as(x)])  # fmt: skip
            corner = pasted[~own][0]
            if box_of(corner) is None:  # a box of zero area: nothing pasted, lam = 1
                assert batch.lam == 1.0
                continue
            clipped += bool(corner[0].any() or corner[-1].any() or corner[:, 0].any()
                            or corner[:, -1].any())  # fmt: skip
    assert clipped > 5  # the border case really was exercised


def test_mixup_and_cutmix_together_use_one_of_them_per_batch():
    x, y = images(n=16), torch.arange(16)
    aug = augmenter(["mixup", "cutmix"])
    kinds = []
    for _ in range(60):
        batch = aug(x, y)
        blended = (
            not torch.equal(batch.x, x) and not ((batch.x == x) | (batch.x == x[batch.y_b])).all()
        )
        kinds.append("mixup" if blended else "cutmix")
        assert torch.allclose(soft_targets(batch, 16).sum(1), torch.ones(16))
    assert aug.mixes and 15 < kinds.count("mixup") < 45


# ---- torchvision policies ------------------------------------------------------------------------


@pytest.mark.parametrize("name", POLICIES)
@pytest.mark.parametrize("channels", [1, 3])
def test_policy_augmenters_run_on_one_and_three_channel_batches(name, channels):
    params = {k: HYPERPARAMETERS[k].default for k in _MAGNITUDES}
    x = pixels(n=24, c=channels)
    state = torch.get_rng_state()
    out = apply_policy(x, build_policy(name, params), seed=7)
    assert torch.equal(torch.get_rng_state(), state)  # global generator untouched
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert torch.equal(out, apply_policy(x, build_policy(name, params), seed=7))
    changed = ((out - x).abs().flatten(1).max(1).values > 1 / 255 + 1e-6).float().mean()
    assert changed > 0.3


def test_randaugment_magnitude_and_count_are_used():
    x = pixels(n=24)
    outs = [apply_policy(x, build_policy("randaugment", {"randaugment_n": n, "randaugment_m": m}),
                         seed=0) for n, m in ((1, 0), (1, 30), (4, 30))]  # fmt: skip
    assert not torch.equal(outs[0], outs[1]) and not torch.equal(outs[1], outs[2])


def test_autoaugment_policy_is_used():
    x = pixels(n=24)
    outs = [apply_policy(x, build_policy("autoaugment", {"autoaugment_policy": p}), seed=0)
            for p in ("imagenet", "cifar10", "svhn")]  # fmt: skip
    assert not torch.equal(outs[0], outs[1]) and not torch.equal(outs[1], outs[2])


# ---- the Augmenter's parameters ------------------------------------------------------------------


def test_every_magnitude_is_a_catalog_row_and_its_default_is_legal():
    for name in _MAGNITUDES:
        row = HYPERPARAMETERS[name]
        assert row.accepts(row.default), name


@pytest.mark.parametrize(
    "name, knob, a, b",
    [("crop", "crop_padding", 1, 3), ("rotate", "rotate_degrees", 5.0, 60.0),
     ("jitter", "jitter_brightness", 0.1, 0.9), ("jitter", "jitter_contrast", 0.1, 0.9),
     ("jitter", "jitter_saturation", 0.1, 0.9), ("jitter", "jitter_hue", 0.05, 0.4),
     ("erase", "erase_max_area", 0.05, 0.6), ("erase", "erase_max_ratio", 1.0, 4.0),
     ("cutout", "cutout_size", 0.2, 0.7), ("noise", "noise_std", 0.1, 0.5),
     ("mixup", "mixup_alpha", 0.1, 5.0), ("cutmix", "cutmix_alpha", 0.1, 5.0),
     ("randaugment", "randaugment_m", 0, 30), ("randaugment", "randaugment_n", 1, 3),
     ("autoaugment", "autoaugment_policy", "imagenet", "svhn")],
)  # fmt: skip
def test_every_magnitude_reaches_its_augmentation(name, knob, a, b):
    x, y = images(), torch.arange(32) % 10
    out_a = Augmenter.from_params({"augment": (name,), knob: a}, seed=1, device="cpu")(x, y)
    out_b = Augmenter.from_params({"augment": (name,), knob: b}, seed=1, device="cpu")(x, y)
    assert not torch.allclose(out_a.x, out_b.x)


def test_from_params_and_the_original_signature_agree():
    x, y = images(), torch.arange(32) % 10
    old = Augmenter(["crop", "noise", "mixup"], crop_padding=3, noise_std=0.2, mixup_alpha=0.5,
                    seed=0, device="cpu")  # fmt: skip
    new = Augmenter.from_params(
        {"augment": ("crop", "mixup", "noise"), "crop_padding": 3, "noise_std": 0.2,
         "mixup_alpha": 0.5, "lr": 1.0}, seed=0, device="cpu",
    )  # fmt: skip
    a, b = old(x, y), new(x, y)
    assert torch.equal(a.x, b.x) and a.lam == b.lam and torch.equal(a.y_b, b.y_b)
    assert new.params["rotate_degrees"] == HYPERPARAMETERS["rotate_degrees"].default
    with pytest.raises(ValueError, match="subset of"):
        Augmenter(["spin"], seed=0, device="cpu")


def test_mean_and_std_map_colour_operations_to_pixels():
    # Grayscale of normalised images equals grayscale of their pixels, normalised back.
    mean, std = [0.2, 0.4, 0.6], [0.5, 0.25, 0.1]
    x = images()
    out = Augmenter(["grayscale"], params={"grayscale_p": 1.0}, mean=mean, std=std, seed=0,
                    device="cpu")(x, torch.zeros(32, dtype=torch.int64)).x  # fmt: skip
    m, s = torch.tensor(mean)[:, None, None], torch.tensor(std)[:, None, None]
    expected = (luma(x * s + m)[:, None] - m) / s
    assert torch.allclose(out, expected, atol=1e-5)


# ---- end to end ----------------------------------------------------------------------------------


def test_a_trial_reads_augmentation_magnitudes_from_its_parameters():
    # Erasing with probability 0 must train exactly like no augmentation (the first epoch's batch
    # order is drawn before any augmentation); the default erase_p = 0.5 would not.
    data, model = DataSettings(dataset="digits", subset=300), ModelSettings(hidden=(32,))
    settings = FitSettings(max_epochs=1, device="cpu", seed=0)
    plain = fit(data, model, {"lr": 3e-3}, settings)
    off = fit(data, model, {"lr": 3e-3, "augment": ["erase"], "erase_p": 0.0}, settings)
    on = fit(data, model, {"lr": 3e-3, "augment": ["erase"], "erase_p": 1.0}, settings)
    assert off.history[0].train_loss == plain.history[0].train_loss
    assert on.history[0].train_loss != plain.history[0].train_loss
    assert math.isfinite(on.history[0].val_loss)
