"""The parameter kinds of a declarative search space, each a small frozen object.

A space entry is active only when its ``when`` condition holds: ``when = {optimizer = "sgd"}``
makes ``momentum`` exist for SGD trials only, ``when = {augment = "mixup"}`` makes
``mixup_alpha`` exist only when mixup is in the augmentation mix. Inactive parameters are never
sampled, so the sampler and the analysis never see meaningless values.

A searched entry may carry a ``default``: the value it takes where it is not searched, and its
"off" value in an ablation. The trainer's own hyperparameters have theirs in its catalog; a
user's own (``depth``, ``width``...) declare it here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Condition:
    """``parent`` must take one of ``values`` (for a subset parent: contain one of them)."""

    parent: str
    values: tuple[Any, ...]

    def holds(self, config: Mapping[str, Any]) -> bool:
        if self.parent not in config:
            return False  # the parent is itself inactive
        value = config[self.parent]
        if isinstance(value, (list, tuple)):
            return any(v in value for v in self.values)
        return value in self.values


@dataclass(frozen=True, kw_only=True)
class _Param:
    name: str
    when: tuple[Condition, ...] = ()
    #: The value where it is not searched (an ablation's "off"); ``None``: none declared.
    default: Any = None

    def is_active(self, config: Mapping[str, Any]) -> bool:
        """All conditions hold for the values sampled so far."""
        return all(c.holds(config) for c in self.when)


@dataclass(frozen=True, kw_only=True)
class FloatParam(_Param):
    """A real number in [low, high], log-uniform when ``log``, on a grid of ``step`` if given."""

    low: float
    high: float
    log: bool = False
    step: float | None = None


@dataclass(frozen=True, kw_only=True)
class IntParam(_Param):
    """An integer in [low, high], log-uniform when ``log``, every ``step``-th value."""

    low: int
    high: int
    log: bool = False
    step: int = 1


@dataclass(frozen=True, kw_only=True)
class CategoricalParam(_Param):
    """One of ``choices`` (strings, numbers or booleans)."""

    choices: tuple[Any, ...]


@dataclass(frozen=True, kw_only=True)
class SubsetParam(_Param):
    """Any combination of ``choices``: one on/off dimension ``NAME.CHOICE`` per element.

    This is how "which augmentations are on" is searched: the sampler sees one boolean per
    augmentation (so the analysis can rank each one), the trial sees the list of those switched on.
    """

    choices: tuple[str, ...]

    def flag(self, choice: str) -> str:
        """The Optuna parameter name of one element's on/off switch."""
        return f"{self.name}.{choice}"


@dataclass(frozen=True, kw_only=True)
class FixedParam(_Param):
    """A constant: part of every (active) trial's configuration, never sampled."""

    value: Any


Param = FloatParam | IntParam | CategoricalParam | SubsetParam | FixedParam
