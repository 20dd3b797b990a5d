"""The ablation path as Markdown, LaTeX, CSV and HTML, in the style of the ablation tables.

One row per step: the parameter flipped, its new value, the objective after the step as
mean ± std over the seeds, the change from the step before, and the share of the whole
default-to-target gain the step explains, with the running total. Accuracies print in percent,
their changes in percentage points. The text formats share :mod:`sweeplab.analysis.ablation.cells`'
dialects, so a minus sign, ± and the escapes read as in :func:`analysis.to_markdown`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from sweeplab.analysis._markdown import table as markdown_table
from sweeplab.analysis.ablation.cells import HTML, LATEX, MARKDOWN, Dialect, format_number
from sweeplab.analysis.ablation.stats import is_fraction, metric_name
from sweeplab.analysis.ablation.tables import to_csv, write_formats

__all__ = [
    "path_to_html",
    "path_to_latex",
    "path_to_markdown",
    "write_path_tables",
]


def _missing(x: Any) -> bool:
    return x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x))


class _PathCells:
    def __init__(self, table: pd.DataFrame, d: Dialect, digits: int) -> None:
        self.d, self.digits = d, digits
        self.objective = str(table.attrs.get("objective", "objective"))
        self.fraction = is_fraction(self.objective)

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
        points = " (pp)" if self.fraction else ""
        name = d.text(metric_name(self.objective).capitalize())
        return [
            "Step", "Parameter", "New value", d.var("n"), f"{name}{unit}", f"{d.delta}{points}",
            f"Share of gain ({d.percent})", f"Cumulative ({d.percent})",
            f"Test acc ({d.percent})",
        ]  # fmt: skip

    def row(self, r: pd.Series) -> list[str]:
        d = self.d
        default = int(r["step"]) == 0
        return [
            str(int(r["step"])),
            d.text("(default)") if default else d.name(str(r["parameter"])),
            d.missing if _missing(r["value"]) else d.text(str(r["value"])),
            str(int(r["n"])),
            self.mean_std(r["objective_mean"], r["objective_std"], fraction=self.fraction),
            d.missing if default else self.scaled(r["delta"], fraction=self.fraction, signed=True),
            d.missing if default else self.scaled(r["gain_share"], fraction=True, signed=True),
            self.scaled(r["cumulative_share"], fraction=True),
            self.mean_std(r["test_acc_mean"], r["test_acc_std"], fraction=True),
        ]

    def footnote(self, table: pd.DataFrame) -> str:
        d = self.d
        components = list(table.attrs.get("components", []))
        seeds = table.attrs.get("seeds")
        n = f"{d.var('n')} seeds" if seeds is None else f"{len(seeds)} seeds"
        goal = "raises" if table.attrs.get("direction", "maximize") == "maximize" else "lowers"
        name = d.text(metric_name(self.objective))
        text = (
            f"Greedy ablation path (Fawcett {d.text('&')} Hoos 2016) from the default "
            f"configuration to the target: each step flips, of the parameters still at their "
            f"default, the one whose target value most {goal} the mean {name}. Mean{d.pm}std "
            f"over {n} per configuration; {d.delta}: change from the step before"
            + (" in percentage points" if self.fraction else "")
            + f"; share: {d.delta} as a fraction of the total default{d.endash}target change."
        )
        done = len(table) - 1
        if not table.attrs.get("complete", True):
            text += (
                f" Path incomplete: {max(done, 0)} of {len(components)} step(s) decided; the "
                "shares need the target's result."
            )
        return text


def _cells(table: pd.DataFrame, d: Dialect, digits: int) -> tuple[list[str], list[list[str]], str]:
    c = _PathCells(table, d, digits)
    return c.headers(), [c.row(r) for _, r in table.iterrows()], c.footnote(table)


def path_to_markdown(table: pd.DataFrame, *, digits: int = 1) -> str:
    """The path as a pipe table and its footnote.

    Args:
        table: the frame from :func:`analysis.ablation_path` (or :func:`analysis.greedy_path`).
        digits: decimals of percentages.

    Example:
        >>> t = pd.DataFrame({"step": [0, 1], "parameter": [None, "lr"], "value": [None, "0.01"],
        ...     "n": [2, 2], "objective_mean": [0.5, 0.9], "objective_std": [0.1, 0.0],
        ...     "delta": [float("nan"), 0.4], "gain_share": [float("nan"), 1.0],
        ...     "cumulative_share": [0.0, 1.0], "test_acc_mean": [0.5, 0.88],
        ...     "test_acc_std": [0.1, 0.02]})
        >>> t.attrs.update(objective="val_acc", components=["lr"], seeds=[0, 1])
        >>> print(path_to_markdown(t).splitlines()[3])
        | 1 | `lr` | 0.01 | 2 | 90.0 ± 0.0 | +40.0 | +100.0 | 100.0 | 88.0 ± 2.0 |
    """
    headers, rows, note = _cells(table, MARKDOWN, digits)
    lines = markdown_table(headers, rows, [True, False, False, *([True] * 6)])
    return "\n".join([*lines, "", note, ""])


def path_to_latex(table: pd.DataFrame, *, digits: int = 1) -> str:
    r"""The path as a booktabs ``tabular`` and its footnote, ready to ``\input``."""
    headers, rows, note = _cells(table, LATEX, digits)
    lines = [
        "% Ablation path written by sweeplab (analysis.path_to_latex); "
        "needs \\usepackage{booktabs}.",
        "\\begin{tabular}{rllrrrrrr}",
        "\\toprule",
        " & ".join(headers) + " \\\\",
        "\\midrule",
        *(" & ".join(row) + " \\\\" for row in rows),
        "\\bottomrule",
        "\\end{tabular}",
        "",
        "\\smallskip",
        f"{{\\footnotesize {note}\\par}}",
        "",
    ]
    return "\n".join(lines)


def path_to_html(table: pd.DataFrame, *, digits: int = 1) -> str:
    """The path as one standalone ``<table class="sweeplab-ablation-path">``, styled inline."""
    headers, rows, note = _cells(table, HTML, digits)
    cell = "padding: 0.25em 0.7em; white-space: nowrap; text-align: {};"

    def tag(name: str, text: str, i: int, extra: str = "") -> str:
        align = "left" if i in (1, 2) else "right"
        return f'<{name} style="{cell.format(align)}{extra}">{text}</{name}>'

    rule = " border-bottom: 1px solid #000;"
    return "\n".join(
        [
            '<table class="sweeplab-ablation-path" style="border-collapse: collapse; '
            'border-top: 2px solid #000; border-bottom: 2px solid #000; font-size: 0.95em;">',
            "  <thead>",
            "    <tr>" + "".join(tag("th", h, i, rule) for i, h in enumerate(headers)) + "</tr>",
            "  </thead>",
            "  <tbody>",
            *(
                "    <tr>" + "".join(tag("td", c, i) for i, c in enumerate(row)) + "</tr>"
                for row in rows
            ),
            "  </tbody>",
            "  <tfoot>",
            f'    <tr><td colspan="{len(headers)}" style="padding: 0.4em 0.7em; '
            f'font-size: 0.85em; border-top: 1px solid #000; white-space: normal;">{note}'
            "</td></tr>",
            "  </tfoot>",
            "</table>",
            "",
        ]
    )


_WRITERS: dict[str, Callable[[pd.DataFrame], str]] = {
    "md": path_to_markdown,
    "tex": path_to_latex,
    "csv": to_csv,
    "html": path_to_html,
}


def write_path_tables(
    table: pd.DataFrame, out_dir: str | Path, stem: str = "path"
) -> dict[str, Path]:
    """Write the path as ``<stem>.md``, ``.tex``, ``.csv`` (raw numbers) and ``.html``.

    Returns:
        The written paths by format.

    Raises:
        ValueError: ``stem`` is empty or holds a path separator.
    """
    return write_formats(table, out_dir, stem, _WRITERS, example="path")
