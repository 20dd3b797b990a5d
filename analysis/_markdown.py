"""Deterministic Markdown formatting: cells, tables, code spans.

Every number goes through :func:`cell` (four significant digits) or, for a fraction correct,
:func:`percent`, so the same value always prints the same way and a report never depends on
pandas' display options.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["MISSING", "cell", "code", "metric_cell", "percent", "table"]

#: What an absent value (NA, NaN, None) prints as.
MISSING = "–"


def _is_missing(x: Any) -> bool:
    if x is None or x is pd.NA or x is pd.NaT:
        return True
    return isinstance(x, float) and math.isnan(x)


def escape(text: str) -> str:
    """Make text safe inside a table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def cell(x: Any, digits: int = 4) -> str:
    """Format one value for a table cell.

    Example:
        >>> [cell(v) for v in (0.123456, 3, True, None, float("nan"), "a|b", 1e-5)]
        ['0.1235', '3', 'true', '–', '–', 'a\\\\|b', '1e-05']
    """
    if _is_missing(x):
        return MISSING
    if isinstance(x, (bool, np.bool_)):
        return "true" if x else "false"
    if isinstance(x, Integral):
        return str(int(x))
    if isinstance(x, Real):
        return f"{float(x):.{digits}g}"
    return escape(str(x))


def percent(x: Any, decimals: int = 2, *, unit: str = " %") -> str:
    """A fraction (0.97216) as a percentage to ``decimals`` places (``97.22 %``); pass
    ``unit=" pp"`` for a difference of two fractions (percentage points).

    Example:
        >>> percent(0.97216), percent(0.0213, unit=" pp"), percent(None), percent(True)
        ('97.22 %', '2.13 pp', '–', 'true')
    """
    if _is_missing(x) or isinstance(x, (bool, np.bool_, str)):
        return cell(x)
    return f"{100 * float(x):.{decimals}f}{unit}"


def metric_cell(metric: str, x: Any) -> str:
    """A metric's value: an accuracy (a fraction correct) in percent, anything else to four
    significant digits. Which metrics are fractions is the ablation tables' rule, so the whole
    report agrees.

    Example:
        >>> metric_cell("val_acc", 0.972154), metric_cell("val_loss", 0.0812345)
        ('97.22 %', '0.08123')
    """
    # Imported here: the ablation package formats its cells with this module.
    from sweeplab.analysis.ablation.stats import is_fraction

    return percent(x) if is_fraction(metric) else cell(x)


def code(text: str) -> str:
    """Wrap text in a Markdown code span that survives backticks inside it.

    Example:
        >>> code("lr")
        '`lr`'
    """
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]
) -> list[str]:
    """A pipe table as a list of lines; ``right[i]`` right-aligns column ``i`` (numbers).

    Example:
        >>> print("\\n".join(table(["name", "n"], [["a", "1"]], [False, True])))
        | name | n |
        | :--- | ---: |
        | a | 1 |
    """
    lines = [
        "| " + " | ".join(headers) + " |",
        "| " + " | ".join("---:" if r else ":---" for r in right) + " |",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines
