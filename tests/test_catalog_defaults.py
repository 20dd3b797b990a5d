"""Every catalog default is "off" or PyTorch's own value, checked against PyTorch itself.

The README promises that a hyperparameter a space does not name trains as PyTorch would: a user
who writes "SGD, lr 0.1" as a course does gets PyTorch's SGD (momentum 0), not heavy ball. Each
catalog row is in exactly one group below; a new row must be put in one, so nothing escapes.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.transforms import v2

from sweeplab.trainer import HYPERPARAMETERS, OPTIMIZERS, resolve_params
from sweeplab.trainer._optim import build_optimizer


def _signature_default(cls: type, name: str) -> object:
    return inspect.signature(cls).parameters[name].default


# Rows whose default must equal a PyTorch/torchvision signature default: (class, argument).
PYTORCH_DEFAULTS: dict[str, tuple[type, str]] = {
    "momentum": (torch.optim.SGD, "momentum"),  # also RMSprop's: both 0
    "nesterov": (torch.optim.SGD, "nesterov"),
    "initial_accumulator": (torch.optim.Adagrad, "initial_accumulator_value"),
    "eps": (torch.optim.Adam, "eps"),  # also RMSprop/NAdam/RAdam's: all 1e-8
    "plateau_factor": (torch.optim.lr_scheduler.ReduceLROnPlateau, "factor"),
    "plateau_patience": (torch.optim.lr_scheduler.ReduceLROnPlateau, "patience"),
    "sgdr_mult": (torch.optim.lr_scheduler.CosineAnnealingWarmRestarts, "T_mult"),
    "label_smoothing": (nn.CrossEntropyLoss, "label_smoothing"),
    "grayscale_p": (v2.RandomGrayscale, "p"),
    "erase_p": (v2.RandomErasing, "p"),
    "mixup_alpha": (v2.MixUp, "alpha"),
    "cutmix_alpha": (v2.CutMix, "alpha"),
    "randaugment_n": (v2.RandAugment, "num_ops"),
    "randaugment_m": (v2.RandAugment, "magnitude"),
}
# Rows that are PyTorch's value per optimizer (checked on the built optimizers below).
PER_OPTIMIZER = {"lr", "rho", "beta1", "beta2"}
# Switches and penalties whose default is "off".
OFF: dict[str, object] = {
    "weight_decay": 0.0, "l1": 0.0, "max_norm": 0.0, "grad_clip": 0.0, "warmup_epochs": 0.0,
    "lr_schedule": "constant", "dropout": 0.0, "input_dropout": 0.0, "spatial_dropout": 0.0,
    "dropconnect": 0.0, "stochastic_depth": 0.0, "hidden_noise_std": 0.0, "augment": (),
    "label_noise": 0.0, "shuffle_pixels": False, "random_pixels": False,
    "init": "default", "norm": "default",  # the model's own layers, PyTorch's own init
}  # fmt: skip
# Rows PyTorch gives no default for (a required argument, or no PyTorch counterpart): each says
# where its value comes from. They only act once their parent switch is on.
NO_PYTORCH_DEFAULT: dict[str, str] = {
    "batch_size": "PyTorch's MNIST example (DataLoader's 1 is not a training batch size)",
    "optimizer": "torch has no default optimizer; Adam at its defaults",
    "activation": "PyTorch's tutorials' ReLU",
    "weight_decay_mode": "auto: coupled, decoupled for adamw, as PyTorch's classes do",
    "lr_gamma": "ExponentialLR's gamma is required",
    "sgdr_period": "CosineAnnealingWarmRestarts' T_0 is required",
    "norm_position": "layer, norm, activation: torchvision's order",
    "group_norm_groups": "GroupNorm's num_groups is required",
    "init_std": "normal init's std: nn.init.normal_'s 1 is no weight init",
    "crop_padding": "RandomCrop's padding is required for a shift",
    "rotate_degrees": "RandomRotation's degrees is required",
    "affine_degrees": "RandomAffine's degrees is required",
    "affine_translate": "RandomAffine's None would be no shift",
    "affine_scale": "RandomAffine's None would be no zoom",
    "affine_shear": "RandomAffine's None would be no shear",
    "jitter_brightness": "ColorJitter's 0 would make the switch a no-op",
    "jitter_contrast": "ColorJitter's 0 would make the switch a no-op",
    "jitter_saturation": "ColorJitter's 0 would make the switch a no-op",
    "jitter_hue": "ColorJitter's 0 would make the switch a no-op",
    "erase_max_area": "RandomErasing's scale upper end, 0.33 (checked below)",
    "erase_max_ratio": "RandomErasing's ratio upper end, 3.3 (checked below)",
    "cutout_size": "no torchvision cutout; DeVries & Taylor's half side",
    "cutout_p": "no torchvision cutout; the paper applies it always",
    "noise_std": "no torchvision counterpart",
    "autoaugment_policy": "AutoAugment's policy (checked below)",
}


def test_every_catalog_row_is_audited_once() -> None:
    groups = [set(PYTORCH_DEFAULTS), PER_OPTIMIZER, set(OFF), set(NO_PYTORCH_DEFAULT)]
    assert set().union(*groups) == set(HYPERPARAMETERS)
    assert sum(len(g) for g in groups) == len(HYPERPARAMETERS)


@pytest.mark.parametrize("name", sorted(PYTORCH_DEFAULTS))
def test_default_is_pytorchs_own(name: str) -> None:
    cls, argument = PYTORCH_DEFAULTS[name]
    expected = _signature_default(cls, argument)
    assert HYPERPARAMETERS[name].default == expected, (name, cls.__name__, argument)


@pytest.mark.parametrize("name", sorted(OFF))
def test_switch_defaults_to_off(name: str) -> None:
    assert HYPERPARAMETERS[name].default == OFF[name]


def test_torchvisions_erasing_and_autoaugment_defaults() -> None:
    assert (HYPERPARAMETERS["erase_max_area"].default,) == _signature_default(
        v2.RandomErasing, "scale"
    )[1:]
    assert (HYPERPARAMETERS["erase_max_ratio"].default,) == _signature_default(
        v2.RandomErasing, "ratio"
    )[1:]
    policy = _signature_default(v2.AutoAugment, "policy")
    assert HYPERPARAMETERS["autoaugment_policy"].default == policy.value


# The hyperparameters a param group holds that sweeplab must leave at PyTorch's value. AdamW's
# weight_decay (0.01) is left out: weight decay is "off" unless searched, for every optimizer.
_GROUP_KEYS = (
    "lr", "momentum", "dampening", "nesterov", "betas", "eps", "alpha", "rho", "centered",
    "initial_accumulator_value", "lr_decay", "amsgrad", "momentum_decay", "maximize",
)  # fmt: skip
_CLASSES = {
    "sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop, "adagrad": torch.optim.Adagrad,
    "adadelta": torch.optim.Adadelta, "nadam": torch.optim.NAdam, "radam": torch.optim.RAdam,
}  # fmt: skip


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_an_unsearched_optimizer_is_pytorchs_at_its_defaults(optimizer: str) -> None:
    layer = nn.Linear(3, 2)
    ours = build_optimizer(layer, resolve_params({"optimizer": optimizer}))
    theirs = _CLASSES[optimizer](layer.parameters())
    assert type(ours) is type(theirs)
    for key in _GROUP_KEYS:
        if key in theirs.defaults:
            assert ours.param_groups[0][key] == theirs.defaults[key], (optimizer, key)
    assert all(g["weight_decay"] == 0.0 for g in ours.param_groups)


def test_course_sgd_is_plain_sgd_step_for_step() -> None:
    """ "SGD, lr 0.1" trains exactly PyTorch's ``SGD(lr=0.1)``: the same weights after 5 steps."""
    torch.manual_seed(0)
    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    ours, theirs = nn.Linear(4, 3), nn.Linear(4, 3)
    theirs.load_state_dict(ours.state_dict())
    opt_ours = build_optimizer(ours, resolve_params({"optimizer": "sgd", "lr": 0.1}))
    opt_theirs = torch.optim.SGD(theirs.parameters(), lr=0.1)
    for model, opt in ((ours, opt_ours), (theirs, opt_theirs)):
        for _ in range(5):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def readme_row(name: str) -> str:
    """The README's spec-reference table row of one catalog entry."""
    row = HYPERPARAMETERS[name]
    if row.kind == "categorical":
        values = "one of " + ", ".join(f"`{c}`" for c in row.choices)
    elif row.kind == "subset":
        values = "any of " + ", ".join(f"`{c}`" for c in row.choices)
    else:
        values = row.describe_range()
    default = row.default
    if default is None:
        shown = "PyTorch's"
    elif isinstance(default, bool):
        shown = str(default).lower()
    elif isinstance(default, str):
        shown = f"`{default}`"
    elif isinstance(default, tuple):
        shown = "none" if not default else ", ".join(f"`{d}`" for d in default)
    else:
        shown = str(int(default)) if float(default).is_integer() else repr(default)
    doc = row.doc.replace("|", "/")  # a bare | would end the table cell
    return f"| `{name}` | {values} | {shown} | {doc} |"


def test_the_readme_table_shows_the_catalog_as_it_is() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    lines = set(readme.splitlines())
    stale = [readme_row(name) for name in HYPERPARAMETERS if readme_row(name) not in lines]
    assert not stale, "README rows out of date with the catalog:\n" + "\n".join(stale)
