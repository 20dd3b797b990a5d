"""The hyperparameters the trainer understands: names, kinds, allowed values, defaults and units.

This catalog is data, not code: the spec validator checks every ``[space.*]`` entry against it
(unknown name, wrong kind, a choice the trainer cannot build, a bound outside the legal range), and
the training loop fills every hyperparameter a trial did not sample with the default given here.
Widening the toolbox means adding a row here and the code that reads it in the trainer.
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
        default: the value a trial gets when the space does not mention it.
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


OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
INIT_SCHEMES = (
    "default",
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "orthogonal",
)
ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "leaky_relu", "elu", "silu")
AUGMENTATIONS = ("flip", "crop", "noise", "mixup")
LR_SCHEDULES = ("constant", "cosine", "step")

# One row per hyperparameter, kept as a compact table rather than one argument per line.
# fmt: off
_ROWS: tuple[Hyperparameter, ...] = (
    # --- optimisation -------------------------------------------------------------------------
    Hyperparameter(
        name="lr", kind="float", default=1e-3, low=0.0, low_open=True,
        doc="learning rate: step size per optimizer update (not scaled by batch size)",
    ),
    Hyperparameter(
        name="batch_size", kind="int", default=64, low=1,
        doc="examples per optimizer update",
    ),
    Hyperparameter(
        name="optimizer", kind="categorical", default="adam", choices=OPTIMIZERS,
        doc="update rule",
    ),
    Hyperparameter(
        name="momentum", kind="float", default=0.9, low=0.0, high=1.0, high_open=True,
        doc="heavy-ball momentum of sgd/rmsprop (dimensionless)",
    ),
    Hyperparameter(
        name="nesterov", kind="bool", default=False,
        doc="Nesterov momentum for sgd (needs momentum > 0)",
    ),
    Hyperparameter(
        name="beta1", kind="float", default=0.9, low=0.0, high=1.0, high_open=True,
        doc="Adam-family first-moment decay",
    ),
    Hyperparameter(
        name="beta2", kind="float", default=0.999, low=0.0, high=1.0, high_open=True,
        doc="Adam-family second-moment decay",
    ),
    Hyperparameter(
        name="lr_schedule", kind="categorical", default="constant", choices=LR_SCHEDULES,
        doc="learning-rate schedule over the epochs: constant, cosine to 0, "
        "or step (x0.1 at 50%/75%)",
    ),
    # --- initialisation and architecture --------------------------------------------------------
    Hyperparameter(
        name="init", kind="categorical", default="default", choices=INIT_SCHEMES,
        doc="weight init of linear/conv layers (biases start at zero); default = PyTorch's own",
    ),
    Hyperparameter(
        name="activation", kind="categorical", default="relu", choices=ACTIVATIONS,
        doc="hidden-layer non-linearity (overrides [model] activation when searched)",
    ),
    # --- regularisation -------------------------------------------------------------------------
    Hyperparameter(
        name="dropout", kind="float", default=0.0, low=0.0, high=1.0, high_open=True,
        doc="dropout rate of hidden layers (probability of zeroing a unit)",
    ),
    Hyperparameter(
        name="weight_decay", kind="float", default=0.0, low=0.0,
        doc="L2 weight decay on weights, not biases "
        "(coupled for sgd/adam/rmsprop, decoupled for adamw)",
    ),
    Hyperparameter(
        name="label_smoothing", kind="float", default=0.0, low=0.0, high=1.0, high_open=True,
        doc="cross-entropy label smoothing (share of target mass spread over all classes)",
    ),
    # --- augmentation mix -----------------------------------------------------------------------
    Hyperparameter(
        name="augment", kind="subset", default=(), choices=AUGMENTATIONS,
        doc="augmentations switched on: flip (horizontal), crop (random translation), "
        "noise (Gaussian input noise), mixup",
    ),
    Hyperparameter(
        name="crop_padding", kind="int", default=2, low=1,
        doc="crop: maximum shift in pixels (pad then random crop back to size)",
    ),
    Hyperparameter(
        name="noise_std", kind="float", default=0.1, low=0.0,
        doc="noise: standard deviation of Gaussian input noise, in units of the normalised input",
    ),
    Hyperparameter(
        name="mixup_alpha", kind="float", default=0.2, low=0.0, low_open=True,
        doc="mixup: Beta(alpha, alpha) concentration of the mixing weight",
    ),
)
# fmt: on

HYPERPARAMETERS: dict[str, Hyperparameter] = {row.name: row for row in _ROWS}


def resolve_params(params: dict[str, Any]) -> dict[str, Any]:
    """Fill every catalog hyperparameter a trial did not sample with its default.

    ``augment`` is normalised to a sorted tuple so two orderings of the same mix compare equal.

    Raises:
        KeyError: a name the catalog does not know (the spec validator rejects these earlier).
    """
    unknown = sorted(set(params) - set(HYPERPARAMETERS))
    if unknown:
        raise KeyError(f"unknown hyperparameters {unknown}; known: {sorted(HYPERPARAMETERS)}")
    resolved = {name: row.default for name, row in HYPERPARAMETERS.items()}
    resolved.update(params)
    resolved["augment"] = tuple(sorted(resolved["augment"]))
    return resolved
