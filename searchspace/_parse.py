"""Turn a ``[space]`` table (as read from TOML) into a validated :class:`SearchSpace`.

Every check names the key it is about (``space.lr.low``), what was expected and what was found,
so a user can fix a spec from the message alone.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping
from typing import Any

from sweeplab.searchspace._params import (
    CategoricalParam,
    Condition,
    FixedParam,
    FloatParam,
    IntParam,
    Param,
    SubsetParam,
)
from sweeplab.searchspace._space import SearchSpace

TYPES = ("float", "int", "categorical", "subset", "fixed")
_KEYS = {
    "float": {"type", "low", "high", "log", "step", "when", "default"},
    "int": {"type", "low", "high", "log", "step", "when", "default"},
    "categorical": {"type", "choices", "when", "default"},
    "subset": {"type", "choices", "when", "default"},
    "fixed": {"type", "value", "when"},
}


_MAX_GRID_POINTS = 1e9


class SpaceError(ValueError):
    """A search space entry is invalid. ``key`` is the dotted path of the offending key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


def closest(name: str, candidates: Any) -> str:
    """A ``; did you mean `x`?`` suffix for the candidate closest to ``name`` (or nothing)."""
    match = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=1, cutoff=0.6)
    return f"; did you mean `{match[0]}`?" if match else ""


def parse_space(table: Mapping[str, Any], *, section: str = "space") -> SearchSpace:
    """Validate a ``[space]`` table and return the space in dependency order.

    Example:
        >>> space = parse_space({
        ...     "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
        ...     "optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
        ...     "momentum": {"type": "float", "low": 0.5, "high": 0.99,
        ...                  "when": {"optimizer": "sgd"}},
        ... })
        >>> [p.name for p in space.params]
        ['lr', 'optimizer', 'momentum']

    Raises:
        SpaceError: the first problem found, naming its key.
    """
    if not isinstance(table, Mapping):
        raise SpaceError(section, f"must be a table of parameters; got {_show(table)}")
    params = [_parse_entry(f"{section}.{name}", name, entry) for name, entry in table.items()]
    by_name = {p.name: p for p in params}
    for param in params:
        for cond in param.when:
            _check_condition(f"{section}.{param.name}.when.{cond.parent}", param, cond, by_name)
    # Fixed entries alone are a study too: one configuration run once per seed (n_trials
    # trials, seeds seed + n), which is how a result is reproduced.
    if not params:
        raise SpaceError(
            section,
            "the search space is empty: add at least one entry, searched (e.g. "
            '`lr = { type = "float", low = 1e-4, high = 1e-1, log = true }`) or fixed '
            "(`lr = 0.01`: one configuration, run once per seed)",
        )
    return SearchSpace(params=_dependency_order(params, section))


def _parse_entry(key: str, name: str, entry: Any) -> Param:
    if not isinstance(entry, Mapping):
        _check_scalar_or_list(key, entry)
        return FixedParam(name=name, value=_freeze(entry))
    kind = entry.get("type", _infer_type(entry))
    if kind not in TYPES:
        raise SpaceError(f"{key}.type", f"must be one of {list(TYPES)}; got {_show(kind)}")
    unknown = sorted(set(entry) - _KEYS[kind])
    if unknown:
        raise SpaceError(
            f"{key}.{unknown[0]}",
            f"unknown key for a {kind} parameter (allowed: {sorted(_KEYS[kind])})"
            + closest(unknown[0], _KEYS[kind]),
        )
    when = _parse_when(f"{key}.when", entry.get("when", {}))
    if kind == "fixed":
        if "value" not in entry:
            raise SpaceError(f"{key}.value", "a fixed parameter needs `value`")
        _check_scalar_or_list(f"{key}.value", entry["value"])
        return FixedParam(name=name, value=_freeze(entry["value"]), when=when)
    if kind in ("categorical", "subset"):
        param = _parse_choices(key, name, kind, entry, when)
    else:
        param = _parse_range(key, name, kind, entry, when)
    if "default" in entry:
        default = _parse_default(f"{key}.default", param, entry["default"])
        param = dataclasses.replace(param, default=default)
    return param


def _parse_default(key: str, param: Param, value: Any) -> Any:
    """A declared default must be a value of the entry's kind; it need not be searched (an
    "off" value often lies outside the range: a depth of 0, no augmentation)."""
    if isinstance(param, SubsetParam):
        if not isinstance(value, list) or any(v not in param.choices for v in value):
            raise SpaceError(
                key, f"must be a list of the choices {list(param.choices)}; got {_show(value)}"
            )
        return tuple(value)
    if isinstance(param, CategoricalParam):
        if not isinstance(value, (str, int, float, bool)):
            raise SpaceError(key, f"must be a string, number or boolean; got {_show(value)}")
        return value
    number = (int,) if isinstance(param, IntParam) else (int, float)
    if isinstance(value, bool) or not isinstance(value, number) or not _finite(value):
        kind = "int" if isinstance(param, IntParam) else "float"
        raise SpaceError(key, f"must be a finite {kind}; got {_show(value)}")
    return value


def _infer_type(entry: Mapping[str, Any]) -> str:
    if "value" in entry:
        return "fixed"
    if "choices" in entry:
        return "categorical"
    if isinstance(entry.get("low"), float) or isinstance(entry.get("high"), float):
        return "float"
    if "low" in entry or "high" in entry:
        return "int"
    return "(missing: set `type`)"


def _parse_choices(
    key: str, name: str, kind: str, entry: Mapping[str, Any], when: tuple[Condition, ...]
) -> Param:
    choices = entry.get("choices")
    if not isinstance(choices, list) or not choices:
        raise SpaceError(
            f"{key}.choices", f"must be a non-empty list of values; got {_show(choices)}"
        )
    for i, choice in enumerate(choices):
        allowed = (str,) if kind == "subset" else (str, int, float, bool)
        if not isinstance(choice, allowed) or (
            isinstance(choice, float) and not math.isfinite(choice)
        ):
            what = "strings" if kind == "subset" else "strings, numbers or booleans"
            raise SpaceError(f"{key}.choices[{i}]", f"choices must be {what}; got {_show(choice)}")
    duplicates = sorted({str(c) for c in choices if choices.count(c) > 1})
    if duplicates:
        raise SpaceError(f"{key}.choices", f"lists {duplicates} more than once")
    if kind == "subset":
        return SubsetParam(name=name, choices=tuple(choices), when=when)
    return CategoricalParam(name=name, choices=tuple(choices), when=when)


def _parse_range(
    key: str, name: str, kind: str, entry: Mapping[str, Any], when: tuple[Condition, ...]
) -> Param:
    number = (int,) if kind == "int" else (int, float)
    bounds = {}
    for bound in ("low", "high"):
        value = entry.get(bound)
        if value is None:
            raise SpaceError(f"{key}.{bound}", f"a {kind} parameter needs `{bound}`")
        if isinstance(value, bool) or not isinstance(value, number) or not _finite(value):
            raise SpaceError(f"{key}.{bound}", f"must be a finite {kind}; got {_show(value)}")
        bounds[bound] = value
    low, high = bounds["low"], bounds["high"]
    if not _finite(high - low):
        raise SpaceError(key, f"the range [{low}, {high}] is too wide to sample")
    if low >= high:
        raise SpaceError(
            f"{key}.low",
            f"must be < high ({_show(high)}); got {_show(low)} (for a constant use `value = ...`)",
        )
    log = entry.get("log", False)
    if not isinstance(log, bool):
        raise SpaceError(f"{key}.log", f"must be true or false; got {_show(log)}")
    if log and low <= 0:
        raise SpaceError(f"{key}.low", f"must be > 0 when `log = true`; got {_show(low)}")
    step = entry.get("step")
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, number) or not _finite(step) or step <= 0:
            raise SpaceError(f"{key}.step", f"must be a finite {kind} > 0; got {_show(step)}")
        if (high - low) / step > _MAX_GRID_POINTS:
            raise SpaceError(
                f"{key}.step", f"gives more than {_MAX_GRID_POINTS:.0e} values; got {_show(step)}"
            )
        if log:
            raise SpaceError(f"{key}.step", "cannot be combined with `log = true`")
    if kind == "int":
        return IntParam(name=name, low=low, high=high, log=log, step=step or 1, when=when)
    return FloatParam(
        name=name, low=float(low), high=float(high), log=log,
        step=None if step is None else float(step), when=when,
    )  # fmt: skip


def _parse_when(key: str, when: Any) -> tuple[Condition, ...]:
    if not isinstance(when, Mapping):
        raise SpaceError(key, f'must be a table like {{ optimizer = "sgd" }}; got {_show(when)}')
    conditions = []
    for parent, values in when.items():
        values = values if isinstance(values, list) else [values]
        if not values:
            raise SpaceError(f"{key}.{parent}", "must name at least one value")
        conditions.append(Condition(parent=parent, values=tuple(values)))
    return tuple(conditions)


def _check_condition(key: str, param: Param, cond: Condition, by_name: Mapping[str, Param]) -> None:
    parent = by_name.get(cond.parent)
    if parent is None:
        raise SpaceError(
            key,
            f"the condition names `{cond.parent}`, which is not in the space"
            + closest(cond.parent, by_name),
        )
    if parent is param:
        raise SpaceError(key, "a parameter cannot depend on itself")
    if isinstance(parent, (CategoricalParam, SubsetParam)):
        possible: tuple[Any, ...] = parent.choices
    elif isinstance(parent, FixedParam):
        possible = parent.value if isinstance(parent.value, tuple) else (parent.value,)
    else:
        raise SpaceError(
            key, f"`{cond.parent}` is a continuous range; conditions need a categorical parent"
        )
    for value in cond.values:
        if not any(value == p and type(value) is type(p) for p in possible):
            raise SpaceError(
                key,
                f"{_show(value)} is never a value of `{cond.parent}` (it takes {list(possible)})",
            )


def _dependency_order(params: list[Param], section: str) -> tuple[Param, ...]:
    """Parents before children (stable otherwise); a cycle is an error."""
    ordered: list[Param] = []
    placed: set[str] = set()
    pending = list(params)
    while pending:
        ready = [p for p in pending if all(c.parent in placed for c in p.when)]
        if not ready:
            cycle = ", ".join(sorted(p.name for p in pending))
            raise SpaceError(section, f"the conditions of {cycle} depend on each other in a cycle")
        for p in ready:
            ordered.append(p)
            placed.add(p.name)
        pending = [p for p in pending if p.name not in placed]
    return tuple(ordered)


def _finite(x: float) -> bool:
    try:
        return math.isfinite(x)
    except OverflowError:  # an int beyond float range
        return False


def _check_scalar_or_list(key: str, value: Any) -> None:
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, (str, int, float, bool)):
            raise SpaceError(
                key, f"must be a value (string, number, boolean) or a table; got {_show(value)}"
            )


def _freeze(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "nothing"
    return repr(value)
