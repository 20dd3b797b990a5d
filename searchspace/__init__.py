"""Declarative search spaces, sampled define-by-run through Optuna.

A space is a table of entries, one per hyperparameter: a ``float`` or ``int`` range (optionally
log-scaled or stepped), a ``categorical`` choice, a ``subset`` (any combination of elements, one
on/off dimension each), or a fixed value. Any entry may carry a ``when`` condition on a
categorical or subset parent, so conditional hyperparameters exist only where they mean something.

Example:
    >>> import optuna
    >>> from sweeplab.searchspace import parse_space, sample
    >>> space = parse_space({
    ...     "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    ...     "optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
    ...     "momentum": {"type": "float", "low": 0.5, "high": 0.99, "when": {"optimizer": "sgd"}},
    ...     "augment": {"type": "subset", "choices": ["flip", "mixup"]},
    ...     "mixup_alpha": {"type": "float", "low": 0.1, "high": 1.0, "when": {"augment": "mixup"}},
    ... })
    >>> config = sample(optuna.create_study(sampler=optuna.samplers.RandomSampler(0)).ask(), space)
    >>> ("momentum" in config) == (config["optimizer"] == "sgd")
    True
"""

from sweeplab.searchspace._params import (
    CategoricalParam,
    Condition,
    FixedParam,
    FloatParam,
    IntParam,
    Param,
    SubsetParam,
)
from sweeplab.searchspace._parse import TYPES, SpaceError, closest, parse_space
from sweeplab.searchspace._sample import NotGridError, grid, grid_size, sample
from sweeplab.searchspace._space import SearchSpace

__all__ = [
    "TYPES",
    "CategoricalParam",
    "Condition",
    "FixedParam",
    "FloatParam",
    "IntParam",
    "NotGridError",
    "Param",
    "SearchSpace",
    "SpaceError",
    "SubsetParam",
    "closest",
    "grid",
    "grid_size",
    "parse_space",
    "sample",
]
