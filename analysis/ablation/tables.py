"""The ablation table and the ablation path as Markdown, LaTeX, CSV and HTML, the way papers
print them.

Ablation table (:func:`analysis.ablation_table`): accuracies print in percent as mean ± std over
seeds ("97.8 ± 0.2"), the difference from the baseline in percentage points as a plain signed
number ("+1.1", "−0.4"), never in parentheses (which readers take for negative), with its
interval ("[+0.3, +1.9]"); a significant difference is bold and starred. A footnote
states the seeds, the interval's method and the significance level. The writers read the
settings :func:`analysis.ablation_table` leaves in ``table.attrs`` (baseline, metric,
confidence, method); a table without them (read back from CSV, say) is taken to compare
``test_acc`` against its first row with Welch's 95 % interval.

Ablation path (:func:`analysis.ablation_path`): one row per step, the parameter flipped, its new
value, the objective after the step as mean ± std over the seeds, the change from the step
before, and the share of the whole default-to-target gain the step explains, with the running
total.

What each cell says lives in :mod:`sweeplab.analysis.ablation.cells`, once for all three text
formats, which differ only in how they write a minus sign, ±, bold, and which characters they
escape; this module lays the cells out per format and writes the files. CSV holds the raw
numbers instead (fractions, full precision).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from sweeplab.analysis._markdown import table as markdown_table
from sweeplab.analysis.ablation.cells import HTML, LATEX, MARKDOWN, Cells, Dialect, PathCells

__all__ = [
    "path_to_html",
    "path_to_latex",
    "path_to_markdown",
    "to_csv",
    "to_html",
    "to_latex",
    "to_markdown",
    "write_ablation_tables",
    "write_formats",
    "write_path_tables",
]


def to_markdown(table: pd.DataFrame, *, digits: int = 1) -> str:
    r"""The table as a GitHub-flavoured Markdown pipe table followed by its footnote.

    Args:
        table: the frame from :func:`analysis.ablation_table`.
        digits: decimals of percentages (of raw values, for a metric that is not an accuracy,
            ``digits + 2``).

    Returns:
        Markdown text ending in a newline.

    Example:
        >>> from sweeplab.analysis.ablation.stats import ablation_table
        >>> trials = pd.DataFrame({
        ...     "state": ["COMPLETE"] * 6, "variant": ["baseline"] * 3 + ["+mixup"] * 3,
        ...     "train_acc": [0.99] * 6, "val_acc": [0.9] * 6,
        ...     "test_acc": [0.90, 0.92, 0.91, 0.95, 0.96, 0.97]})
        >>> row = to_markdown(ablation_table(trials)).splitlines()[3]
        >>> row.split(" | ")[:2], row.split(" | ")[4:9]
        (['| `+mixup`', '3'], ['96.0 ± 1.0', '3.0 ± 1.0', '**+5.0**\\*', '[+2.7, +7.3]', '0.004'])
    """
    cells = Cells(table, MARKDOWN, digits)
    headers = cells.headers()
    right = [False, *([True] * (len(headers) - 1))]
    lines = markdown_table(headers, cells.rows(table), right)
    return "\n".join([*lines, "", cells.footnote(table), ""])


def to_latex(table: pd.DataFrame, *, digits: int = 1) -> str:
    r"""The table as a booktabs ``tabular`` and its footnote, ready to ``\input``.

    Needs ``\usepackage{booktabs}``; the text is ASCII and compiles with pdfLaTeX as well as
    LuaLaTeX. Put it inside a ``table`` float for a caption.

    Args:
        table: the frame from :func:`analysis.ablation_table`.
        digits: decimals of percentages.

    Returns:
        LaTeX source ending in a newline.

    Example:
        >>> from sweeplab.analysis.ablation.stats import ablation_table
        >>> trials = pd.DataFrame({
        ...     "state": ["COMPLETE"] * 4, "variant": ["baseline", "baseline", "-aug", "-aug"],
        ...     "train_acc": [0.99] * 4, "val_acc": [0.9] * 4, "test_acc": [0.9, 0.92, 0.8, 0.84]})
        >>> cells = to_latex(ablation_table(trials)).splitlines()[6].split(" & ")
        >>> print(cells[0], "|", cells[4], "|", cells[6], "|", cells[7], "|", cells[-1])
        -aug | 82.0 $\pm$ 2.8 | $-$9.0 | [$-$22.8, +4.8] | -- \\
    """
    cells = Cells(table, LATEX, digits)
    headers = cells.headers()
    spec = "l" + "r" * (len(headers) - 1)
    lines = [
        "% Ablation table written by sweeplab (analysis.to_latex); needs \\usepackage{booktabs}.",
        f"\\begin{{tabular}}{{{spec}}}",
        "\\toprule",
        " & ".join(headers) + " \\\\",
        "\\midrule",
        *(" & ".join(row) + " \\\\" for row in cells.rows(table)),
        "\\bottomrule",
        "\\end{tabular}",
        "",
        "\\smallskip",
        f"{{\\footnotesize {cells.footnote(table)}\\par}}",
        "",
    ]
    return "\n".join(lines)


def to_csv(table: pd.DataFrame) -> str:
    """The table's raw numbers as CSV (fractions, not percent; full precision).

    Example:
        >>> print(to_csv(pd.DataFrame({"variant": ["baseline"], "n": [3], "delta": [0.0]})), end="")
        variant,n,delta
        baseline,3,0.0
    """
    return table.to_csv(index=False, lineterminator="\n")


_CELL = "padding: 0.25em 0.7em; text-align: {align}; white-space: nowrap; "


def to_html(table: pd.DataFrame, *, digits: int = 1) -> str:
    """The table as one standalone ``<table class="sweeplab-ablation">``, styled inline.

    Inline styles draw booktabs-like rules, so the table needs no stylesheet; the class is there
    for a page that wants to restyle it. The text is ASCII (entities for ±, −, Δ).

    Args:
        table: the frame from :func:`analysis.ablation_table`.
        digits: decimals of percentages.

    Returns:
        An HTML fragment ending in a newline.

    Example:
        >>> from sweeplab.analysis.ablation.stats import ablation_table
        >>> trials = pd.DataFrame({"state": ["COMPLETE"], "variant": ["baseline"],
        ...                        "train_acc": [1.0], "val_acc": [0.9], "test_acc": [0.9]})
        >>> to_html(ablation_table(trials)).startswith('<table class="sweeplab-ablation"')
        True
    """
    cells = Cells(table, HTML, digits)
    headers = cells.headers()

    def tag(name: str, text: str, i: int, extra: str = "") -> str:
        style = (_CELL.format(align="left" if i == 0 else "right") + extra).strip()
        return f'<{name} style="{style}">{text}</{name}>'

    rule = "border-bottom: 1px solid #000;"
    lines = [
        '<table class="sweeplab-ablation" style="border-collapse: collapse; '
        'border-top: 2px solid #000; border-bottom: 2px solid #000; font-size: 0.95em;">',
        "  <thead>",
        "    <tr>" + "".join(tag("th", h, i, rule) for i, h in enumerate(headers)) + "</tr>",
        "  </thead>",
        "  <tbody>",
        *(
            "    <tr>" + "".join(tag("td", c, i) for i, c in enumerate(row)) + "</tr>"
            for row in cells.rows(table)
        ),
        "  </tbody>",
        "  <tfoot>",
        f'    <tr><td colspan="{len(headers)}" style="padding: 0.4em 0.7em; font-size: 0.85em; '
        f'border-top: 1px solid #000; white-space: normal;">{cells.footnote(table)}</td></tr>',
        "  </tfoot>",
        "</table>",
        "",
    ]
    return "\n".join(lines)


_WRITERS: dict[str, Callable[[pd.DataFrame], str]] = {
    "md": to_markdown,
    "tex": to_latex,
    "csv": to_csv,
    "html": to_html,
}


def write_ablation_tables(
    table: pd.DataFrame, out_dir: str | Path, stem: str = "ablation"
) -> dict[str, Path]:
    """Write the table as ``<stem>.md``, ``.tex``, ``.csv`` and ``.html`` in ``out_dir``.

    Args:
        table: the frame from :func:`analysis.ablation_table`.
        out_dir: the folder to write to (created if missing).
        stem: the files' name without extension.

    Returns:
        The written paths by format: ``{"md": ..., "tex": ..., "csv": ..., "html": ...}``.

    Raises:
        ValueError: ``stem`` is empty or holds a path separator.

    Example:
        >>> import tempfile
        >>> from sweeplab.analysis.ablation.stats import ablation_table
        >>> trials = pd.DataFrame({"state": ["COMPLETE"], "variant": ["baseline"],
        ...                        "train_acc": [1.0], "val_acc": [0.9], "test_acc": [0.9]})
        >>> with tempfile.TemporaryDirectory() as d:
        ...     paths = write_ablation_tables(ablation_table(trials), d)
        ...     sorted(p.name for p in paths.values())
        ['ablation.csv', 'ablation.html', 'ablation.md', 'ablation.tex']
    """
    return write_formats(table, out_dir, stem, _WRITERS, example="ablation")


# ---------------------------------------------------------------------------------------------
# The ablation path
# ---------------------------------------------------------------------------------------------


def _path_cells(
    table: pd.DataFrame, d: Dialect, digits: int
) -> tuple[list[str], list[list[str]], str]:
    c = PathCells(table, d, digits)
    return c.headers(), c.rows(table), c.footnote(table)


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
    headers, rows, note = _path_cells(table, MARKDOWN, digits)
    lines = markdown_table(headers, rows, [True, False, False, *([True] * 6)])
    return "\n".join([*lines, "", note, ""])


def path_to_latex(table: pd.DataFrame, *, digits: int = 1) -> str:
    r"""The path as a booktabs ``tabular`` and its footnote, ready to ``\input``."""
    headers, rows, note = _path_cells(table, LATEX, digits)
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
    headers, rows, note = _path_cells(table, HTML, digits)
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


_PATH_WRITERS: dict[str, Callable[[pd.DataFrame], str]] = {
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
    return write_formats(table, out_dir, stem, _PATH_WRITERS, example="path")


def write_formats(
    table: pd.DataFrame,
    out_dir: str | Path,
    stem: str,
    writers: dict[str, Callable[[pd.DataFrame], str]],
    *,
    example: str,
) -> dict[str, Path]:
    """Write ``table`` once per format, as ``<stem>.<ext>`` with ``writers[ext]``, in ``out_dir``
    (created if missing), with ``\\n`` line ends whatever the platform, so files are stable."""
    if not stem or "/" in stem or "\\" in stem:
        raise ValueError(
            f"stem must be a file name without folders, e.g. {example!r}; got {stem!r}."
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for ext, write in writers.items():
        path = out / f"{stem}.{ext}"
        path.write_text(write(table), encoding="utf-8", newline="\n")
        paths[ext] = path
    return paths
