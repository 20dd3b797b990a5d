"""A small TOML writer, for showing a stored spec the way its author wrote it.

The study keeps its spec as the JSON-shaped dict that was validated (``records.SPEC``), not the
TOML text it came from; the report turns it back into TOML so that it reads like the file the
user edits (and can be pasted into one). Only what such a dict holds is supported: tables,
lists, strings, integers, floats, booleans. TOML has no null, so an unset value (``None``)
becomes a comment naming the key, which :mod:`tomllib` reads back as absent.

Layout: each top-level key is a ``[table]``; a dict nested in a table is a ``[sub.table]`` too
when it holds further dicts or is long, else an inline table (``when = { optimizer = ["sgd"] }``,
``resources = { cpus = 1.0, gpus = 0.0 }``); scalars come before sub-tables, as TOML requires.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["to_toml"]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
# An inline table longer than this reads better as a table of its own.
_INLINE_CHARS = 60


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def _value(v: Any) -> str:
    """One value as inline TOML."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)  # shortest round-tripping form: 0.0001, 1e-06, 3.0
    if isinstance(v, str):
        # JSON's string escapes are a subset of TOML's basic-string escapes.
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, Mapping):
        items = [f"{_key(str(k))} = {_value(x)}" for k, x in v.items() if x is not None]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    if isinstance(v, Sequence):
        return "[" + ", ".join(_value(x) for x in v if x is not None) + "]"
    raise TypeError(f"cannot write a {type(v).__name__} as TOML: {v!r}")


def _inline(v: Any) -> bool:
    """Whether a nested dict is written inline rather than as a table of its own."""
    if any(isinstance(x, Mapping) for x in v.values()):
        return False
    return len(_value(v)) <= _INLINE_CHARS


def _table(path: list[str], table: Mapping[str, Any], lines: list[str]) -> None:
    tables = []
    for k, v in table.items():
        if isinstance(v, Mapping) and v and not _inline(v):
            tables.append((k, v))
        elif v is None:
            lines.append(f"# {_key(str(k))}: not set")
        else:
            lines.append(f"{_key(str(k))} = {_value(v)}")
    for k, v in tables:
        lines += ["", f"[{'.'.join(_key(p) for p in [*path, str(k)])}]"]
        _table([*path, str(k)], v, lines)


def to_toml(data: Mapping[str, Any]) -> str:
    """``data`` as TOML text that :func:`tomllib.loads` reads back as ``data`` less its
    ``None`` values.

    Args:
        data: a dict of tables, lists, strings, numbers and booleans (``None`` allowed).

    Raises:
        TypeError: a value of another type.

    Example:
        >>> text = to_toml({"study": {"name": "q", "seed": None},
        ...                 "space": {"lr": {"low": 1e-4, "log": True, "when": {}}}})
        >>> print(text, end="")
        [study]
        name = "q"
        # seed: not set
        <BLANKLINE>
        [space]
        <BLANKLINE>
        [space.lr]
        low = 0.0001
        log = true
        when = {}
        >>> import tomllib
        >>> tomllib.loads(text)["space"]["lr"]["low"]
        0.0001
    """
    lines: list[str] = []
    scalars = {k: v for k, v in data.items() if not isinstance(v, Mapping)}
    _table([], scalars, lines)
    for k, v in data.items():
        if isinstance(v, Mapping):
            if lines:
                lines.append("")
            lines.append(f"[{_key(str(k))}]")
            _table([str(k)], v, lines)
    return "\n".join(lines) + "\n"
