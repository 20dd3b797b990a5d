"""The hyperparameters the trainer understands: names, kinds, allowed values, defaults and units.

This catalog is data, not code: the spec validator checks every ``[space.*]`` entry against it
(unknown name, wrong kind, a choice the trainer cannot build, a bound outside the legal range), and
the training loop fills every hyperparameter a trial did not sample with the default given here.
Widening the toolbox means adding a row here and the code that reads it in the trainer.

Torch-free, and it must stay so: :mod:`sweeplab.trainer` imports it eagerly, and the spec
validator, ``sweeplab --help`` and ``sweeplab init`` read it without importing torch
(``tests/test_trainer.py`` checks). It imports nothing from the rest of the trainer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["float", "int", "categorical", "bool", "subset"]


@dataclass(frozen=True, kw_only=True)
class Hyperparameter:
    """One searchable training choice.

    Attributes:
        name: the key used in ``[space.NAME]`` and in the trial's parameters.
        kind: ``float``/``int`` (numeric ranges), ``categorical`` (one of ``choices``), ``bool``,
            or ``subset`` (any combination of ``choices``, e.g. the augmentation mix).
        default: the value a trial gets when the space does not mention it: "off" or PyTorch's
            own value; ``None`` where PyTorch's value depends on the optimizer (``lr``, ``rho``),
            which then gets its own.
        choices: the legal values of a ``categorical`` or ``subset`` hyperparameter.
        low, high: the legal closed range of a numeric hyperparameter (``None`` = unbounded).
        high_open: ``True`` when ``high`` itself is not allowed (e.g. a dropout rate of 1).
        doc: what it means, with its unit.
    """

    name: str
    kind: Kind
    default: Any
    doc: str
    choices: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    high_open: bool = False
    low_open: bool = False

    def describe_range(self) -> str:
        """The legal range in words, for error messages ("a float in (0, 1)")."""
        if self.kind == "categorical":
            return f"one of {list(self.choices)}"
        if self.kind == "subset":
            return f"a subset of {list(self.choices)}"
        if self.kind == "bool":
            return "true or false"
        left = "(" if self.low_open else "["
        right = ")" if self.high_open else "]"
        low = "-inf" if self.low is None else _fmt(self.low)
        high = "inf" if self.high is None else _fmt(self.high)
        if self.low is not None and self.high is None:
            op = ">" if self.low_open else ">="
            return f"an {self.kind} {op} {low}" if self.kind == "int" else f"a float {op} {low}"
        article = "an" if self.kind == "int" else "a"
        return f"{article} {self.kind} in {left}{low}, {high}{right}"

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` is a legal value of this hyperparameter."""
        if value is None:  # "unset": legal where the default is PyTorch's own (lr, rho)
            return self.default is None
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "categorical":
            return not isinstance(value, (list, tuple, dict)) and value in self.choices
        if self.kind == "subset":
            return isinstance(value, (list, tuple)) and all(v in self.choices for v in value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind == "int" and not float(value).is_integer():
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (
            self.high is not None and (value > self.high or (self.high_open and value == self.high))
        )


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta", "nadam", "radam")
INIT_SCHEMES = (
    "default",
    "uniform_fan_in",
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "lecun_normal",
    "orthogonal",
    "normal",
)
ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "leaky_relu", "elu", "silu", "prelu", "selu")
NORMS = ("default", "none", "batch", "layer", "group")
NORM_POSITIONS = ("before", "after")
# Appended in order, never reordered: each element is its own stored on/off parameter.
AUGMENTATIONS = (
    "flip", "crop", "noise", "mixup", "vflip", "rotate", "affine", "jitter", "grayscale",
    "erase", "cutout", "cutmix", "autoaugment", "randaugment", "trivialaugment",
)  # fmt: skip
AUTOAUGMENT_POLICIES = ("imagenet", "cifar10", "svhn")
LR_SCHEDULES = (
    "constant", "cosine", "step", "exponential", "plateau", "onecycle", "sgdr",
)  # fmt: skip

# One row per hyperparameter, kept as a compact table rather than one argument per line.
# Three tables by area, each owned by the module that reads its rows.
# fmt: off
# --- optimisation, penalties and schedules (read by _optim.py and _fit.py) ----------------------
_OPTIMISATION_ROWS: tuple[Hyperparameter, ...] = (
    Hyperparameter(
        name="lr", kind="float", default=None, low=0.0, low_open=True,
        doc="learning rate: step size per optimizer update (not scaled by batch size); unset, "
        "the optimizer's PyTorch default (1e-3 sgd/adam/adamw/radam, 2e-3 nadam, 1e-2 "
        "rmsprop/adagrad, 1 adadelta)",
    ),
    Hyperparameter(
        name="batch_size", kind="int", default=64, low=1,
        doc="examples per optimizer update",
    ),
    Hyperparameter(
        name="optimizer", kind="categorical", default="adam", choices=OPTIMIZERS,
        doc="update rule: sgd (plain with momentum=0, heavy-ball, or Nesterov with nesterov=true), "
        "adam, adamw (Adam with decoupled weight decay), rmsprop, adagrad, adadelta (lr is a "
        "dimensionless multiplier, 1 = Zeiler's method), nadam, radam",
    ),
    Hyperparameter(
        name="momentum", kind="float", default=0.0, low=0.0, high=1.0, high_open=True,
        doc="heavy-ball momentum of sgd/rmsprop (dimensionless; 0 = none)",
    ),
    Hyperparameter(
        name="nesterov", kind="bool", default=False,
        doc="Nesterov momentum for sgd (needs momentum > 0)",
    ),
    Hyperparameter(
        name="beta1", kind="float", default=0.9, low=0.0, high=1.0, high_open=True,
        doc="first-moment (gradient mean) decay of adam/adamw/nadam/radam (dimensionless)",
    ),
    Hyperparameter(
        name="beta2", kind="float", default=0.999, low=0.0, high=1.0, high_open=True,
        doc="second-moment (squared-gradient mean) decay of adam/adamw/nadam/radam "
        "(dimensionless)",
    ),
    Hyperparameter(
        name="eps", kind="float", default=1e-8, low=0.0, low_open=True, high=1.0,
        doc="term added to the root-mean-square denominator of adam/adamw/nadam/radam/rmsprop, "
        "in gradient units (search it on a log scale)",
    ),
    Hyperparameter(
        name="rho", kind="float", default=None, low=0.0, high=1.0, high_open=True,
        doc="decay of the running mean of squared gradients: rmsprop's alpha, adadelta's rho "
        "(dimensionless); unset, PyTorch's default (rmsprop 0.99, adadelta 0.9)",
    ),
    Hyperparameter(
        name="initial_accumulator", kind="float", default=0.0, low=0.0,
        doc="adagrad: starting value of each parameter's sum of squared gradients "
        "(squared gradient units)",
    ),
    Hyperparameter(
        name="lr_schedule", kind="categorical", default="constant", choices=LR_SCHEDULES,
        doc="learning-rate multiplier over training: constant; cosine (half cosine to 0 over "
        "the epochs); step (x0.1 at 50%, x0.01 at 75% of the epochs); exponential "
        "(lr_gamma^epoch); plateau (x plateau_factor after plateau_patience epochs without a "
        "better objective); onecycle (per step: cosine up from lr/25 to lr over 30% of the "
        "steps, then down to lr/2.5e5); sgdr (cosine restarted every sgdr_period epochs, "
        "periods x sgdr_mult)",
    ),
    Hyperparameter(
        name="lr_gamma", kind="float", default=0.9, low=0.0, low_open=True, high=1.0,
        doc="exponential schedule: lr multiplier per epoch (dimensionless)",
    ),
    Hyperparameter(
        name="plateau_factor", kind="float", default=0.1, low=0.0, low_open=True, high=1.0,
        high_open=True,
        doc="plateau schedule: lr multiplier applied at each reduction (dimensionless)",
    ),
    Hyperparameter(
        name="plateau_patience", kind="int", default=10, low=1,
        doc="plateau schedule: epochs without a new best objective before the lr is reduced",
    ),
    Hyperparameter(
        name="sgdr_period", kind="int", default=10, low=1,
        doc="sgdr schedule: length of the first cosine cycle, in epochs (T_0)",
    ),
    Hyperparameter(
        name="sgdr_mult", kind="int", default=1, low=1,
        doc="sgdr schedule: each cycle is this many times longer than the previous (T_mult)",
    ),
    Hyperparameter(
        name="warmup_epochs", kind="float", default=0.0, low=0.0,
        doc="linear warm-up length in epochs (fractions allowed; 0 = off): the lr of step s "
        "(0-based, per batch) is multiplied by min(1, (s+1)/W), W = warmup_epochs x steps per "
        "epoch, on top of any schedule",
    ),
    Hyperparameter(
        name="weight_decay", kind="float", default=0.0, low=0.0,
        doc="L2 weight decay coefficient on weights, not biases or norms (per step: coupled "
        "adds wd*w to the gradient, decoupled shrinks w by lr*wd*w)",
    ),
    Hyperparameter(
        name="weight_decay_mode", kind="categorical", default="auto",
        choices=("auto", "coupled", "decoupled"),
        doc="how weight_decay acts: coupled (L2 term in the gradient, rescaled by adaptive "
        "optimizers), decoupled (AdamW/SGDW: w <- w - lr*wd*w), or auto (decoupled for adamw, "
        "coupled for the rest)",
    ),
    Hyperparameter(
        name="l1", kind="float", default=0.0, low=0.0,
        doc="L1 penalty l1*sum|w| over weights (not biases or norms) added to each batch's loss, "
        "in loss units per unit |w| (0 = off; not included in the reported train_loss)",
    ),
    Hyperparameter(
        name="max_norm", kind="float", default=0.0, low=0.0,
        doc="max-norm constraint: after every step each unit's incoming weight vector (row of a "
        "linear weight, filter of a conv) is scaled back to L2 norm <= max_norm (0 = off)",
    ),
    Hyperparameter(
        name="grad_clip", kind="float", default=0.0, low=0.0,
        doc="clip the gradient's global L2 norm over all parameters to at most this, in "
        "gradient units (0 = off)",
    ),
    Hyperparameter(
        name="label_smoothing", kind="float", default=0.0, low=0.0, high=1.0, high_open=True,
        doc="cross-entropy label smoothing (share of target mass spread over all classes)",
    ),
)

# --- initialisation, architecture and the dropout family (read by _init.py and _models.py) -----
_ARCHITECTURE_ROWS: tuple[Hyperparameter, ...] = (
    Hyperparameter(
        name="init", kind="categorical", default="default", choices=INIT_SCHEMES,
        doc="weight init of linear/conv layers, biases at zero: uniform_fan_in U(±1/√fan_in), "
        "xavier_* var 2/(fan_in+fan_out), kaiming_* var gain²/fan_in (the activation's gain), "
        "lecun_normal var 1/fan_in, orthogonal (gain 1), normal N(0, init_std²); "
        "default = PyTorch's own weights and biases",
    ),
    Hyperparameter(
        name="init_std", kind="float", default=0.01, low=0.0, low_open=True,
        doc="normal init: standard deviation of every weight, absolute (not scaled by fan-in)",
    ),
    Hyperparameter(
        name="activation", kind="categorical", default="relu", choices=ACTIVATIONS,
        doc="hidden-layer non-linearity (overrides [model] activation when searched); "
        "leaky_relu slope 0.01, prelu learns one slope per layer from 0.25",
    ),
    Hyperparameter(
        name="norm", kind="categorical", default="default", choices=NORMS,
        doc="normalisation after every hidden linear/conv layer: none, batch, layer "
        "(conv nets: GroupNorm(1, C)), group; default = the architecture's own "
        "(none for mlp/cnn, batch for resnet9/resnet18)",
    ),
    Hyperparameter(
        name="norm_position", kind="categorical", default="before", choices=NORM_POSITIONS,
        doc="norm before the activation (layer, norm, act) or after it (layer, act, norm); "
        "resnet18 always has torchvision's before",
    ),
    Hyperparameter(
        name="group_norm_groups", kind="int", default=8, low=1,
        doc="group norm: number of channel (feature) groups per layer; a width it does not "
        "divide gets its largest divisor below this",
    ),
    Hyperparameter(
        name="dropout", kind="float", default=0.0, low=0.0, high=1.0, high_open=True,
        doc="hidden dropout: probability of zeroing a hidden unit in training, survivors x1/(1-p) "
        "(mlp: after every hidden layer; conv nets: the features entering the classifier)",
    ),
    Hyperparameter(
        name="input_dropout", kind="float", default=0.0, low=0.0, high=1.0, high_open=True,
        doc="probability of zeroing an input feature (pixel value) in training, survivors x1/(1-p)",
    ),
    Hyperparameter(
        name="spatial_dropout", kind="float", default=0.0, low=0.0, high=1.0, high_open=True,
        doc="conv nets: probability of zeroing a whole feature map (channel) after every conv "
        "block/stage in training (Dropout2d); no effect on mlp",
    ),
    Hyperparameter(
        name="dropconnect", kind="float", default=0.0, low=0.0, high=1.0, high_open=True,
        doc="probability of zeroing each weight of every Linear layer in training (one mask per "
        "batch, survivors x1/(1-p)); exact weights in eval; conv layers are not affected",
    ),
    Hyperparameter(
        name="stochastic_depth", kind="float", default=0.0, low=0.0, high=1.0, high_open=True,
        doc="resnet9/resnet18: probability of skipping the deepest residual branch per example in "
        "training (block l of L: l/L of it), kept branches x1/(1-p); full net in eval",
    ),
    Hyperparameter(
        name="hidden_noise_std", kind="float", default=0.0, low=0.0,
        doc="standard deviation of Gaussian noise added to every hidden activation in training, "
        "in activation units; none in eval",
    ),
)

# --- augmentation mix and data corruption (read by _augment.py and _data.py) ---------------------
_DATA_ROWS: tuple[Hyperparameter, ...] = (
    Hyperparameter(
        name="augment", kind="subset", default=(), choices=AUGMENTATIONS,
        doc="augmentations switched on: flip/vflip (mirror left-right/top-bottom, p = 0.5), "
        "crop (random translation), rotate, affine, jitter (colour), grayscale, erase (random "
        "erasing), cutout, noise (Gaussian input noise), mixup, cutmix (one of the two per batch "
        "when both are on), autoaugment/randaugment/trivialaugment (torchvision policies, "
        "run per image on the CPU)",
    ),
    Hyperparameter(
        name="crop_padding", kind="int", default=2, low=1,
        doc="crop: maximum shift in pixels (pad then random crop back to size)",
    ),
    Hyperparameter(
        name="rotate_degrees", kind="float", default=15.0, low=0.0, high=180.0,
        doc="rotate: largest rotation in degrees; each image turns by U(-d, d)",
    ),
    Hyperparameter(
        name="affine_degrees", kind="float", default=10.0, low=0.0, high=180.0,
        doc="affine: largest rotation in degrees, U(-d, d) per image",
    ),
    Hyperparameter(
        name="affine_translate", kind="float", default=0.1, low=0.0, high=1.0, high_open=True,
        doc="affine: largest shift as a fraction of the image width/height, per axis",
    ),
    Hyperparameter(
        name="affine_scale", kind="float", default=0.1, low=0.0, high=1.0, high_open=True,
        doc="affine: zoom factor drawn from U(1 - s, 1 + s) (dimensionless)",
    ),
    Hyperparameter(
        name="affine_shear", kind="float", default=10.0, low=0.0, high=90.0, high_open=True,
        doc="affine: largest horizontal shear angle in degrees, U(-d, d) per image",
    ),
    Hyperparameter(
        name="jitter_brightness", kind="float", default=0.4, low=0.0, high=1.0,
        doc="jitter: pixel intensities scaled by a factor from U(1 - b, 1 + b) (dimensionless)",
    ),
    Hyperparameter(
        name="jitter_contrast", kind="float", default=0.4, low=0.0, high=1.0,
        doc="jitter: contrast factor from U(1 - c, 1 + c) (blend with the image's mean grey)",
    ),
    Hyperparameter(
        name="jitter_saturation", kind="float", default=0.4, low=0.0, high=1.0,
        doc="jitter: saturation factor from U(1 - s, 1 + s); no effect on 1-channel data",
    ),
    Hyperparameter(
        name="jitter_hue", kind="float", default=0.1, low=0.0, high=0.5,
        doc="jitter: largest hue turn as a fraction of the colour circle; none on 1-channel data",
    ),
    Hyperparameter(
        name="grayscale_p", kind="float", default=0.1, low=0.0, high=1.0,
        doc="grayscale: probability per image of replacing it by its luma (none on 1-channel data)",
    ),
    Hyperparameter(
        name="erase_p", kind="float", default=0.5, low=0.0, high=1.0,
        doc="erase: probability per image of blanking one random rectangle (Zhong et al. 2020)",
    ),
    Hyperparameter(
        name="erase_max_area", kind="float", default=0.33, low=0.0, high=1.0, low_open=True,
        doc="erase: largest erased share of the image area; the share is U(0.02, max)",
    ),
    Hyperparameter(
        name="erase_max_ratio", kind="float", default=3.3, low=1.0,
        doc="erase: largest height/width ratio of the rectangle; log-uniform in [1/r, r]",
    ),
    Hyperparameter(
        name="cutout_size", kind="float", default=0.5, low=0.0, high=1.0, low_open=True,
        doc="cutout: side of the zeroed square as a fraction of the image's shorter side",
    ),
    Hyperparameter(
        name="cutout_p", kind="float", default=1.0, low=0.0, high=1.0,
        doc="cutout: probability per image of applying it (the paper: always)",
    ),
    Hyperparameter(
        name="noise_std", kind="float", default=0.1, low=0.0,
        doc="noise: standard deviation of Gaussian input noise, in units of the normalised input",
    ),
    Hyperparameter(
        name="mixup_alpha", kind="float", default=1.0, low=0.0, low_open=True,
        doc="mixup: Beta(alpha, alpha) concentration of the mixing weight",
    ),
    Hyperparameter(
        name="cutmix_alpha", kind="float", default=1.0, low=0.0, low_open=True,
        doc="cutmix: Beta(alpha, alpha) concentration of the kept share; the loss weight is "
        "1 - pasted area after clipping at the border",
    ),
    Hyperparameter(
        name="autoaugment_policy", kind="categorical", default="imagenet",
        choices=AUTOAUGMENT_POLICIES,
        doc="autoaugment: which learned policy of Cubuk et al. 2019 (torchvision's)",
    ),
    Hyperparameter(
        name="randaugment_n", kind="int", default=2, low=1,
        doc="randaugment: operations applied per image (the paper's N)",
    ),
    Hyperparameter(
        name="randaugment_m", kind="int", default=9, low=0, high=30,
        doc="randaugment: magnitude of every operation, 0..30 (the paper's M; torchvision's bins)",
    ),
    # --- data corruption ("rethinking generalization", Zhang et al. 2017), read by _data.py ---
    Hyperparameter(
        name="label_noise", kind="float", default=0.0, low=0.0, high=1.0,
        doc="share of training labels replaced by a uniformly random class (which may be the "
        "true one); validation and test labels stay clean",
    ),
    Hyperparameter(
        name="shuffle_pixels", kind="bool", default=False,
        doc="permute pixel positions by one fixed random permutation, the same for every image "
        "of every split",
    ),
    Hyperparameter(
        name="random_pixels", kind="bool", default=False,
        doc="replace every image of every split by Gaussian noise with the training data's "
        "per-channel mean and std",
    ),
)
# fmt: on

HYPERPARAMETERS: dict[str, Hyperparameter] = {
    row.name: row for row in (*_OPTIMISATION_ROWS, *_ARCHITECTURE_ROWS, *_DATA_ROWS)
}


def resolve_params(params: dict[str, Any], *, own: bool = False) -> dict[str, Any]:
    """Fill every catalog hyperparameter a trial did not sample with its default.

    ``augment`` is normalised to a sorted tuple so two orderings of the same mix compare equal.
    With ``own``, names the catalog does not know are the user's own hyperparameters (for their
    own model) and pass through as they are.

    Raises:
        KeyError: a name the catalog does not know, without ``own`` (the spec validator rejects
            these earlier).
    """
    unknown = sorted(set(params) - set(HYPERPARAMETERS))
    if unknown and not own:
        raise KeyError(f"unknown hyperparameters {unknown}; known: {sorted(HYPERPARAMETERS)}")
    resolved = {name: row.default for name, row in HYPERPARAMETERS.items()}
    resolved.update(params)
    resolved["augment"] = tuple(sorted(resolved["augment"]))
    return resolved


# --- what may change while a run trains ------------------------------------------------------
#: Hyperparameters a run can take new values of between two epochs without rebuilding its
#: network or optimizer (population based training's "explore"): the optimizer's rates and
#: decay (written into its parameter groups; ``lr`` is the schedule's base rate), the loss's and
#: the step's penalties (read by the loop), the dropout rates (the network is built again with
#: the new rates and takes the saved weights: dropout has none) and the augmentations'
#: strengths (the augmenter is built again; its random generators keep their state).
MUTABLE_BETWEEN_EPOCHS: frozenset[str] = frozenset({
    "lr", "weight_decay", "momentum", "beta1", "beta2", "eps",
    "l1", "max_norm", "grad_clip", "label_smoothing",
    "dropout", "input_dropout", "spatial_dropout",
    "crop_padding", "rotate_degrees", "affine_degrees", "affine_translate", "affine_scale",
    "affine_shear", "jitter_brightness", "jitter_contrast", "jitter_saturation", "jitter_hue",
    "grayscale_p", "erase_p", "cutout_p", "noise_std", "mixup_alpha", "cutmix_alpha",
    "randaugment_m",
})  # fmt: skip
#: Of :data:`MUTABLE_BETWEEN_EPOCHS`, the rates whose 0 means "no such layer": a rate above 0
#: adds a layer that shifts the network's other layers, so these change between epochs only
#: while they stay above 0.
MUTABLE_ABOVE_ZERO: frozenset[str] = frozenset({"dropout", "input_dropout", "spatial_dropout"})
