"""The cells of the ablation table and of the ablation path, in the dialect of one output format.

Markdown, LaTeX and HTML share every number and word of a table; a :class:`Dialect` says only
how its format writes what is not plain ASCII text (a minus sign, ±, Δ, bold, the escapes).
:class:`Cells` (the ablation table) and :class:`PathCells` (the path) give a table's headers, rows
and footnote in one dialect; :mod:`sweeplab.analysis.ablation.tables` lays them out, and
:mod:`sweeplab.analysis.ablation.seeds` prints its numbers with :func:`format_number` too.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from sweeplab.analysis._markdown import MISSING, code, escape
from sweeplab.analysis.ablation.stats import N_RESAMPLES, SUMMARISED, is_fraction, metric_name

__all__ = ["HTML", "LATEX", "MARKDOWN", "Cells", "Dialect", "PathCells", "format_number"]

_SHORT = {"train_acc": "Train acc", "val_acc": "Val acc", "test_acc": "Test acc", "gap": "Gap"}


@dataclass(frozen=True, kw_only=True)
class Dialect:
    """How one output format writes the few things that are not plain ASCII text."""

    text: Callable[[str], str]  # escape free text
    var: Callable[[str], str]  # a statistic's symbol (n, p)
    name: Callable[[str], str]  # a variant's name
    bold: Callable[[str], str]
    star: str  # the significance marker, after the bold cell
    minus: str
    pm: str  # " ± " with its spaces
    delta: str
    endash: str
    lt: str
    percent: str
    missing: str


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    **{ch: "\\" + ch for ch in "&%$#_{}"},
}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def _latex_name(text: str) -> str:
    # A row that starts with "[" would be read as the optional argument of the "\\" before it.
    return ("{}" if text.startswith("[") else "") + _latex_escape(text)


def _html_escape(text: str) -> str:
    # ASCII only (entities for the rest), so the fragment reads right whatever charset the page
    # it is pasted into declares.
    return html.escape(text).encode("ascii", "xmlcharrefreplace").decode("ascii")


MARKDOWN = Dialect(
    text=escape,
    var=lambda s: s,
    name=lambda s: escape(code(s)),
    bold=lambda s: f"**{s}**",
    star="\\*",
    minus="−",
    pm=" ± ",
    delta="Δ",
    endash="–",
    lt="<",
    percent="%",
    missing=MISSING,
)
LATEX = Dialect(
    text=_latex_escape,
    var=lambda s: f"${s}$",
    name=_latex_name,
    bold=lambda s: f"\\textbf{{{s}}}",
    star="$^{*}$",
    minus="$-$",
    pm=r" $\pm$ ",
    delta=r"$\Delta$",
    endash="--",
    lt="$<$",
    percent=r"\%",
    missing="--",
)
HTML = Dialect(
    text=_html_escape,
    var=lambda s: f"<i>{s}</i>",
    name=_html_escape,
    bold=lambda s: f"<strong>{s}</strong>",
    star="*",
    minus="&minus;",
    pm=" &plusmn; ",
    delta="&Delta;",
    endash="&ndash;",
    lt="&lt;",
    percent="%",
    missing="&ndash;",
)


# ---------------------------------------------------------------------------------------------
# Cells
# ---------------------------------------------------------------------------------------------


def _missing(x: Any) -> bool:
    return x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x))


def _whole(x: Any) -> bool:
    return not _missing(x) and float(x).is_integer()


def format_number(x: float, decimals: int, d: Dialect, *, signed: bool = False) -> str:
    """``x`` to ``decimals`` places with the dialect's minus sign (and ``+`` when ``signed``).

    Example:
        >>> format_number(-0.04, 1, MARKDOWN, signed=True), format_number(-1.25, 1, LATEX)
        ('+0.0', '$-$1.2')
    """
    # The sign follows the rounded value, so -0.04 prints "+0.0" rather than "−0.0".
    rounded = round(float(x), decimals)
    sign = d.minus if rounded < 0 else ("+" if signed else "")
    return f"{sign}{abs(rounded):.{decimals}f}"


class Cells:
    """Formats one table's cells in one dialect."""

    def __init__(self, table: pd.DataFrame, d: Dialect, digits: int) -> None:
        self.d = d
        self.digits = digits
        self.metric = str(table.attrs.get("metric", "test_acc"))
        self.baseline = str(table.attrs.get("baseline", table["variant"].iloc[0]))
        self.confidence = float(table.attrs.get("confidence", 0.95))
        self.method = str(table.attrs.get("method", "welch"))
        self.seed = int(table.attrs.get("seed", 0))
        self.n_resamples = int(table.attrs.get("n_resamples", N_RESAMPLES))
        # The accuracy columns that any variant has: a training function of the user's records
        # none of them, and its table then shows its own metric alone.
        self.shown = [m for m in SUMMARISED if table[f"{m}_mean"].notna().any()]

    def scaled(self, x: Any, metric: str, *, signed: bool = False) -> str:
        """A value of ``metric``: percent for fractions (points for differences)."""
        if _missing(x):
            return self.d.missing
        if is_fraction(metric):
            return format_number(100.0 * x, self.digits, self.d, signed=signed)
        return format_number(x, self.digits + 2, self.d, signed=signed)

    def mean_std(self, row: pd.Series, metric: str) -> str:
        mean, std = row[f"{metric}_mean"], row[f"{metric}_std"]
        if _missing(mean) or _missing(std):
            return self.scaled(mean, metric)
        return self.scaled(mean, metric) + self.d.pm + self.scaled(std, metric)

    def delta(self, row: pd.Series) -> str:
        if row["variant"] == self.baseline or _missing(row["delta"]):
            return self.d.missing
        # A plain signed number: to readers of papers and accounts, parentheses mean negative.
        text = self.scaled(row["delta"], self.metric, signed=True)
        significant = not _missing(row["significant"]) and bool(row["significant"])
        return self.d.bold(text) + self.d.star if significant else text

    def ci(self, row: pd.Series) -> str:
        if _missing(row["ci_low"]) or _missing(row["ci_high"]):
            return self.d.missing
        low = self.scaled(row["ci_low"], self.metric, signed=True)
        return f"[{low}, {self.scaled(row['ci_high'], self.metric, signed=True)}]"

    def p(self, x: Any) -> str:
        return self.d.missing if _missing(x) else _p(x, self.d)

    def plain(self, x: Any, decimals: int = 1) -> str:
        return self.d.missing if _missing(x) else format_number(x, decimals, self.d)

    def headers(self) -> list[str]:
        d, units = self.d, " (pp)" if is_fraction(self.metric) else ""
        pct = f" ({d.percent})"
        out = ["Variant", d.var("n")]
        out += [f"{_SHORT[m]}{pct}" if m != "gap" else "Gap (pp)" for m in self.shown]
        if self.metric not in SUMMARISED:
            out.append(d.text(metric_name(self.metric).capitalize()))
        short = _SHORT[self.metric].lower() if self.metric in _SHORT else metric_name(self.metric)
        ci = f"{round(100 * self.confidence, 1):g}{d.percent} CI{units}"
        delta = f"{d.delta} {d.text(short)}{units}"
        return [*out, delta, ci, d.var("p"), "Epochs", "Time (s)"]

    def rows(self, table: pd.DataFrame) -> list[list[str]]:
        """The body of the table, one list of cells per variant."""
        return [self.row(row) for _, row in table.iterrows()]

    def row(self, row: pd.Series) -> list[str]:
        out = [self.d.name(str(row["variant"])), str(int(row["n"]))]
        out += [self.mean_std(row, m) for m in self.shown]
        if self.metric not in SUMMARISED:
            out.append(self.mean_std(row, self.metric))
        return [
            *out,
            self.delta(row),
            self.ci(row),
            self.p(row["p_value"]),
            self.plain(row["epochs_run_mean"], 0 if _whole(row["epochs_run_mean"]) else 1),
            self.plain(row["wall_time_s_mean"]),
        ]

    def footnote(self, table: pd.DataFrame) -> str:
        d = self.d
        low, high = int(table["n"].min()), int(table["n"].max())
        seeds = f"{d.var('n')} = {low}" + ("" if low == high else f"{d.endash}{high}")
        level = f"{1.0 - self.confidence:.3g}"
        if self.method == "bootstrap":
            how = f"percentile bootstrap ({self.n_resamples:,} resamples, seed {self.seed})"
        else:
            how = f"Welch's t interval (Welch{d.endash}Satterthwaite degrees of freedom)"
        units = ", in percentage points" if is_fraction(self.metric) else ""
        p = d.var("p")
        accuracies = (
            f"; accuracies in {d.percent}, gap = training {d.minus} test accuracy"
            if self.shown
            else ""
        )
        return (
            f"Mean{d.pm}std over {seeds} seeds per variant{accuracies}. {d.delta}: difference "
            "of the mean "
            f"{d.text(metric_name(self.metric))}"
            + (" (held-out test split)" if self.metric.startswith("test_") else "")
            + f" from that of {d.name(self.baseline)}{units}; "
            f"{round(100 * self.confidence, 1):g}{d.percent} CI of {d.delta}: {how}; "
            f"{p}: Welch's two-sided t test; {d.bold('bold')}{d.star}: {p} {d.lt} {level}."
        )


# ---------------------------------------------------------------------------------------------
# Cells of the ablation path
# ---------------------------------------------------------------------------------------------


class PathCells:
    """Formats one ablation path's cells (:func:`analysis.ablation_path`) in one dialect."""

    def __init__(self, table: pd.DataFrame, d: Dialect, digits: int) -> None:
        self.d, self.digits = d, digits
        self.objective = str(table.attrs.get("objective", "objective"))
        self.fraction = is_fraction(self.objective)
        # What Δ and the shares are measured on (greedy_path): the held-out metric, else the
        # objective.
        self.metric = str(table.attrs.get("metric") or self.objective)
        self.metric_fraction = is_fraction(self.metric)

    def scaled(self, x: Any, *, fraction: bool, signed: bool = False) -> str:
        if _missing(x):
            return self.d.missing
        if fraction:
            return format_number(100.0 * x, self.digits, self.d, signed=signed)
        return format_number(x, self.digits + 2, self.d, signed=signed)

    def mean_std(self, mean: Any, std: Any, *, fraction: bool) -> str:
        text = self.scaled(mean, fraction=fraction)
        if _missing(mean) or _missing(std):
            return text
        return text + self.d.pm + self.scaled(std, fraction=fraction)

    def headers(self) -> list[str]:
        d = self.d
        unit = f" ({d.percent})" if self.fraction else ""
        points = " (pp)" if self.metric_fraction else ""
        name = d.text(metric_name(self.objective).capitalize())
        short = _SHORT[self.metric].lower() if self.metric in _SHORT else metric_name(self.metric)
        return [
            "Step", "Parameter", "New value", d.var("n"), f"{name}{unit}",
            f"{d.delta} {d.text(short)}{points}", f"Share of gain ({d.percent})",
            f"Cumulative ({d.percent})", f"Test acc ({d.percent})",
        ]  # fmt: skip

    def rows(self, table: pd.DataFrame) -> list[list[str]]:
        """The body of the table, one list of cells per step."""
        return [self.row(r) for _, r in table.iterrows()]

    def row(self, r: pd.Series) -> list[str]:
        d = self.d
        default = int(r["step"]) == 0
        delta = self.scaled(r["delta"], fraction=self.metric_fraction, signed=True)
        return [
            str(int(r["step"])),
            d.text("(default)") if default else d.name(str(r["parameter"])),
            d.missing if _missing(r["value"]) else d.text(str(r["value"])),
            str(int(r["n"])),
            self.mean_std(r["objective_mean"], r["objective_std"], fraction=self.fraction),
            d.missing if default else delta,
            d.missing if default else self.scaled(r["gain_share"], fraction=True, signed=True),
            self.scaled(r["cumulative_share"], fraction=True),
            self.mean_std(r["test_acc_mean"], r["test_acc_std"], fraction=True),
        ]

    def total(self, table: pd.DataFrame) -> str:
        """The total default-to-target change with its interval and p, in words."""
        d, total = self.d, table.attrs.get("total") or {}
        delta, low, high = (total.get(k, math.nan) for k in ("delta", "ci_low", "ci_high"))
        p = total.get("p_value", math.nan)
        points = " pp" if self.metric_fraction else ""
        text = self.scaled(delta, fraction=self.metric_fraction, signed=True) + points
        if not (_missing(low) or _missing(high)):
            confidence = float(table.attrs.get("confidence", 0.95))
            text += (
                f" ({round(100 * confidence, 1):g}{d.percent} CI "
                f"[{self.scaled(low, fraction=self.metric_fraction, signed=True)}, "
                f"{self.scaled(high, fraction=self.metric_fraction, signed=True)}]"
                + ("" if _missing(p) else f", {d.var('p')} = {_p(p, d)}")
                + ")"
            )
        return text

    def footnote(self, table: pd.DataFrame) -> str:
        d = self.d
        components = list(table.attrs.get("components", []))
        seeds = table.attrs.get("seeds")
        n = f"{d.var('n')} seeds" if seeds is None else f"{len(seeds)} seeds"
        goal = "raises" if table.attrs.get("direction", "maximize") == "maximize" else "lowers"
        name = d.text(metric_name(self.objective))
        measured = d.text(metric_name(self.metric))
        held_out = self.metric != self.objective
        text = (
            f"Greedy ablation path (Fawcett {d.text('&')} Hoos 2016) from the default "
            f"configuration to the target: each step flips, of the parameters still at their "
            f"default, the one whose target value most {goal} the mean {name}"
            + (" (the validation split the search chose on)" if held_out else "")
            + f". Mean{d.pm}std over {n} per configuration; {d.delta}: change of the mean "
            f"{measured}"
            + (" (the held-out test split)" if held_out else "")
            + " from the step before"
            + (" in percentage points" if self.metric_fraction else "")
            + f"; share: {d.delta} as a fraction of the total default{d.endash}target change."
        )
        done = len(table) - 1
        if not table.attrs.get("complete", True):
            return text + (
                f" Path incomplete: {max(done, 0)} of {len(components)} step(s) decided; the "
                "shares need the target's result."
            )
        total = table.attrs.get("total") or {}
        level = f"{1.0 - float(table.attrs.get('confidence', 0.95)):.3g}"
        test = "Welch's two-sided t test over the seeds"
        if total.get("significant"):
            text += f" Total change: {self.total(table)}, {test}."
        else:
            text += (
                f" {d.bold('The total change, ' + self.total(table) + ', is not significant')}"
                f" ({test}, level {level}): the shares are not shown, since a share of a "
                "change within the seed noise is noise too."
            )
        if seeds is not None and len(seeds) < 3:
            text += f" With {len(seeds)} seed(s) per configuration the test has little power."
        return text


def _p(x: float, d: Dialect) -> str:
    return f"{d.lt}0.001" if x < 0.001 else f"{x:.3f}"
