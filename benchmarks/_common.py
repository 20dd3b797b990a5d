"""What every benchmark script shares: the machine-readable last line and the run's header.

Each script in ``benchmarks/`` ends its output with one line of ``key=value`` pairs, the headline
ratio first, so figures can be collected over time with :func:`parse_pairs`.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
from collections.abc import Mapping, Sequence


def format_pairs(pairs: Mapping[str, object]) -> str:
    """``{"ratio": 3.14159, "ok": True}`` -> ``"ratio=3.142 ok=1"`` (4 significant digits)."""
    parts = []
    for key, value in pairs.items():
        if " " in key or "=" in key:
            raise ValueError(f"benchmark key {key!r} must not contain spaces or '='")
        if isinstance(value, bool):
            text = str(int(value))
        elif isinstance(value, float):
            text = "nan" if math.isnan(value) else f"{value:.4g}"
        else:
            text = str(value)
        if " " in text or text == "":
            raise ValueError(f"benchmark value of {key!r} must be one non-empty word; got {text!r}")
        parts.append(f"{key}={text}")
    return " ".join(parts)


def parse_pairs(output: str) -> dict[str, float | str]:
    """The last non-empty line of a benchmark's output as a dict; numbers become floats.

    Raises:
        ValueError: the last line is not ``key=value`` pairs.
    """
    lines = [line for line in output.splitlines() if line.strip()]
    if not lines:
        raise ValueError("the benchmark printed nothing")
    out: dict[str, float | str] = {}
    for word in lines[-1].split():
        key, sep, value = word.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"last line is not key=value pairs: {lines[-1]!r}")
        try:
            out[key] = float(value)
        except ValueError:
            out[key] = value
    return out


def machine() -> str:
    """One line naming the hardware and the libraries a figure was measured with."""
    import optuna
    import ray
    import torch

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{platform.machine()} {os.cpu_count()} CPUs (load average {load:.1f} at start), "
        f"Python {platform.python_version()}, torch {torch.__version__}, ray {ray.__version__}, "
        f"optuna {optuna.__version__}"
    )


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval of the mean: ``(mean, low, high)``."""
    from scipy import stats

    n = len(values)
    mean = statistics.fmean(values)
    if n < 2:
        return mean, float("nan"), float("nan")
    half = stats.t.ppf(0.5 + level / 2, n - 1) * statistics.stdev(values) / math.sqrt(n)
    return mean, mean - half, mean + half
