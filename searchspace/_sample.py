"""Define-by-run sampling of a :class:`SearchSpace` through an Optuna trial."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from sweeplab.searchspace._params import (
    CategoricalParam,
    FixedParam,
    FloatParam,
    IntParam,
    Param,
    SubsetParam,
)
from sweeplab.searchspace._space import SearchSpace

if TYPE_CHECKING:  # the trial is handed in: validating a spec needs no Optuna import
    import optuna


def sample(trial: optuna.Trial, space: SearchSpace) -> dict[str, Any]:
    """Sample one configuration, asking Optuna only for the parameters that are active.

    The walk follows the dependency order, so a child's condition is decided by values already
    sampled in this trial. An enqueued trial (a retry, a baseline) replays its fixed values
    through the same calls.

    Example:
        >>> import optuna
        >>> from sweeplab.searchspace import parse_space, sample
        >>> space = parse_space({"optimizer": {"type": "categorical", "choices": ["sgd"]},
        ...                      "momentum": {"type": "float", "low": 0.5, "high": 0.9,
        ...                                   "when": {"optimizer": "sgd"}}})
        >>> config = sample(optuna.create_study().ask(), space)
        >>> sorted(config)
        ['momentum', 'optimizer']

    Returns:
        The configuration: parameter name -> value, subset parameters as a list of the elements
        switched on, fixed values included, inactive parameters absent.
    """
    config: dict[str, Any] = {}
    for param in space:
        if param.is_active(config):
            config[param.name] = _suggest(trial, param)
    return config


def _suggest(trial: optuna.Trial, p: Param) -> Any:
    if isinstance(p, FloatParam):
        return trial.suggest_float(p.name, p.low, p.high, log=p.log, step=p.step)
    if isinstance(p, IntParam):
        return trial.suggest_int(p.name, p.low, p.high, log=p.log, step=p.step)
    if isinstance(p, CategoricalParam):
        return trial.suggest_categorical(p.name, list(p.choices))
    if isinstance(p, SubsetParam):
        return [c for c in p.choices if trial.suggest_categorical(p.flag(c), [False, True])]
    assert isinstance(p, FixedParam)
    return list(p.value) if isinstance(p.value, tuple) else p.value


class NotGridError(ValueError):
    """The space has a continuous dimension, so it has no finite grid."""


def grid(space: SearchSpace) -> dict[str, list[Any]]:
    """The values of every sampled dimension, for Optuna's ``GridSampler``.

    Floats need a ``step``; every other kind is finite already.

    Raises:
        NotGridError: naming the first continuous parameter.
    """
    values: dict[str, list[Any]] = {}
    for p in space.searched:
        if isinstance(p, FloatParam):
            if p.step is None:
                raise NotGridError(
                    f"space.{p.name}: the grid sampler needs a finite grid; "
                    "give this float a `step`, or make it categorical"
                )
            n = math.floor((p.high - p.low) / p.step + 1e-9)
            values[p.name] = [round(p.low + i * p.step, 12) for i in range(n + 1)]
        elif isinstance(p, IntParam):
            values[p.name] = list(range(p.low, p.high + 1, p.step))
        elif isinstance(p, CategoricalParam):
            values[p.name] = list(p.choices)
        elif isinstance(p, SubsetParam):
            for c in p.choices:
                values[p.flag(c)] = [False, True]
    return values


def grid_size(space: SearchSpace) -> int:
    """How many distinct configurations the grid has (conditional entries counted once each)."""
    return math.prod(len(v) for v in grid(space).values())
