"""The two ablation figures: the bar chart of an ablation table and the line chart of a path.

- :func:`ablation_bar_chart`: each variant's difference from the baseline, with its interval.
  Significance is shown by hatching and by the bar label's star as well as by colour.
- :func:`ablation_path_chart`: the objective after each step of the greedy path, with its spread
  over seeds, and under each step the share of the default-to-target gain explained so far.

Built like every figure of the package (:mod:`sweeplab.analysis._figures`): a
:class:`matplotlib.figure.Figure`, no pyplot, seaborn's colour-blind palette for the duration of
the call, written by the one saver as PNG and SVG, both byte-identical for the same table.
Accuracies are drawn in percent (differences in percentage points), any other metric in its own
units.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sweeplab.analysis._figures import metric_label, one_panel, save_figure
from sweeplab.analysis.ablation.stats import is_fraction, metric_name

__all__ = ["ablation_bar_chart", "ablation_path_chart"]


def _signed(x: float, percent: bool) -> str:
    text = f"{x:+.1f} pp" if percent else f"{x:+.3g}"
    return text.replace("-", "−")  # a minus sign, not a hyphen


# Index into seaborn's "colorblind" palette: blue for better, orange for worse, grey for neither.
_BETTER, _WORSE, _NEITHER = 0, 1, 7


def ablation_bar_chart(
    table: pd.DataFrame, path: str | Path, metric: str | None = None, *, svg: bool = False
) -> Path:
    """Horizontal bars of Δ = variant mean − baseline mean, with the interval as error bars.

    Bars run in table order, top to bottom, the baseline being the zero line. Accuracies are
    drawn in percentage points; any other metric in its own units. A bar is blue when the variant
    is significantly above the baseline, orange when significantly below (whichever way is better
    for the metric), and hatched grey otherwise; a variant without an interval (n < 2) has no
    error bar.

    Args:
        table: the frame from :func:`analysis.ablation_table`.
        path: where to write the PNG (parent folders are created).
        metric: the metric the table's deltas are of; must match the table's own
            (``table.attrs["metric"]``), which ``None`` takes.
        svg: ignored, kept so that existing calls still work: the SVG (same name, ``.svg``) is
            always written beside the PNG, as for every figure.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: the table compares another metric, or has no variant besides the baseline.

    Example:
        >>> import tempfile
        >>> from sweeplab.analysis.ablation.stats import ablation_table
        >>> trials = pd.DataFrame({
        ...     "state": ["COMPLETE"] * 6, "variant": ["baseline"] * 3 + ["+mixup"] * 3,
        ...     "train_acc": [0.99] * 6, "val_acc": [0.9] * 6,
        ...     "test_acc": [0.90, 0.92, 0.91, 0.95, 0.96, 0.97]})
        >>> with tempfile.TemporaryDirectory() as d:
        ...     ablation_bar_chart(ablation_table(trials), f"{d}/ablation.png").name
        'ablation.png'
    """
    import seaborn as sns
    from matplotlib.patches import Patch

    compared = table.attrs.get("metric", metric or "test_acc")
    metric = metric or compared
    if compared != metric:
        raise ValueError(
            f"the table's deltas are of {compared!r}, not {metric!r}; pass metric={compared!r} "
            f"or rebuild the table with ablation_table(trials, metric={metric!r})."
        )
    baseline = str(table.attrs.get("baseline", table["variant"].iloc[0]))
    rows = table[table["variant"] != baseline]
    if rows.empty:
        raise ValueError(
            f"the table has no variant besides the baseline {baseline!r}; nothing to plot."
        )

    scale, digits = (100.0, 1) if is_fraction(metric) else (1.0, 3)
    delta = rows["delta"].to_numpy(dtype="float64", na_value=np.nan) * scale
    low = rows["ci_low"].to_numpy(dtype="float64", na_value=np.nan) * scale
    high = rows["ci_high"].to_numpy(dtype="float64", na_value=np.nan) * scale
    significant = rows["significant"].fillna(False).to_numpy(dtype=bool)
    palette = sns.color_palette("colorblind")
    kind = np.where(significant, np.where(delta > 0, _BETTER, _WORSE), _NEITHER)
    y = np.arange(len(rows))
    confidence = float(table.attrs.get("confidence", 0.95))
    method = str(table.attrs.get("method", "welch"))

    with one_panel(8.0, 1.8 + 0.5 * len(rows)) as (fig, ax):
        ax.barh(
            y, np.nan_to_num(delta), color=[palette[k] for k in kind], edgecolor="black",
            linewidth=0.6, hatch=["" if s else "//" for s in significant], height=0.6,
        )  # fmt: skip
        has_ci = ~np.isnan(low) & ~np.isnan(high)
        if has_ci.any():
            ax.errorbar(
                delta[has_ci], y[has_ci], fmt="none", ecolor="black", elinewidth=1.2, capsize=4,
                xerr=[delta[has_ci] - low[has_ci], high[has_ci] - delta[has_ci]],
            )  # fmt: skip
        ends = np.where(has_ci, np.where(delta >= 0, high, low), delta)
        for yi, d, end, sig in zip(y, delta, ends, significant, strict=True):
            if np.isnan(d):
                continue
            right = d >= 0
            ax.annotate(
                _signed(d, is_fraction(metric)) + ("*" if sig else ""),
                (end, yi), xytext=(5 if right else -5, 0), textcoords="offset points",
                ha="left" if right else "right", va="center", fontsize="small",
            )  # fmt: skip
        ax.axvline(0.0, color="black", lw=1.0)
        ax.margins(x=0.2)
        ax.set_yticks(y, [str(v) for v in rows["variant"]])
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
        if is_fraction(metric):
            ax.set_xlabel(f"Δ {metric_name(metric)} vs baseline (percentage points)")
        else:
            ax.set_xlabel(f"Δ {metric_label(metric)} vs baseline")
        ax.set_ylabel("Variant")
        n_low, n_high = int(table["n"].min()), int(table["n"].max())
        seeds = f"{n_low}" if n_low == n_high else f"{n_low}–{n_high}"
        base = table[table["variant"] == baseline].iloc[0]
        mean, std = base.get(f"{metric}_mean", np.nan), base.get(f"{metric}_std", np.nan)
        level = "" if pd.isna(mean) else f": {metric_name(metric)} {mean * scale:.{digits}f}"
        level += "" if pd.isna(std) else f" ± {std * scale:.{digits}f}"
        level += " %" if is_fraction(metric) and level else ""
        how = "Welch's t" if method == "welch" else "bootstrap"
        ax.set_title(
            f"Ablation vs baseline {baseline!r}{level}\n"
            f"n = {seeds} seeds per variant; {round(100 * confidence, 1):g} % CI ({how})",
            fontsize="medium",
        )
        legend = [
            (_BETTER, "", "above baseline (significant)"),
            (_WORSE, "", "below baseline (significant)"),
            (_NEITHER, "//", "not significant or n < 2"),
        ]
        fig.legend(
            handles=[
                Patch(facecolor=palette[k], edgecolor="black", hatch=h, label=label)
                for k, h, label in legend
                if (kind == k).any()
            ],
            loc="outside lower center", ncols=3, frameon=False, fontsize="small",
        )  # fmt: skip
        return save_figure(fig, path)


def ablation_path_chart(table: pd.DataFrame, path: str | Path) -> tuple[Path, Path]:
    """Objective against step, mean ± std over seeds; under each tick the parameter flipped and
    the cumulative share of the default-to-target gain.

    Accuracies are drawn in percent. The test accuracy (when recorded) is drawn as a second,
    dashed line, so a step that helps the objective but not held-out accuracy stands out.

    Args:
        table: the frame from :func:`analysis.ablation_path`.
        path: where to write the PNG; the SVG goes beside it (parent folders are created).

    Returns:
        The PNG's and the SVG's paths.

    Raises:
        ValueError: the table has no step (not even the default has finished).

    Example:
        >>> import tempfile
        >>> t = pd.DataFrame({"step": [0, 1], "parameter": [None, "lr"],
        ...     "objective_mean": [0.5, 0.9], "objective_std": [0.1, 0.0],
        ...     "cumulative_share": [0.0, 1.0], "test_acc_mean": [0.5, 0.88],
        ...     "test_acc_std": [0.1, 0.02]})
        >>> t.attrs.update(objective="val_acc")
        >>> with tempfile.TemporaryDirectory() as d:
        ...     [p.name for p in ablation_path_chart(t, f"{d}/path.png")]
        ['path.png', 'path.svg']
    """
    import seaborn as sns

    if table.empty:
        raise ValueError("the path has no step yet (the default configuration has not finished).")
    objective = str(table.attrs.get("objective", "objective"))
    fraction = is_fraction(objective)
    scale = 100.0 if fraction else 1.0
    steps = table["step"].to_numpy(dtype="int64")
    mean = table["objective_mean"].to_numpy(dtype="float64", na_value=np.nan) * scale
    std = table["objective_std"].to_numpy(dtype="float64", na_value=np.nan) * scale
    shares = table["cumulative_share"].to_numpy(dtype="float64", na_value=np.nan)
    # The cumulative share of the gain goes under each step's name, out of the data's way.
    ticks = [
        "default" if s == 0 else f"+{p}" + ("" if np.isnan(c) else f"\n{100 * c:.0f} %")
        for s, p, c in zip(steps, table["parameter"], shares, strict=True)
    ]
    palette = sns.color_palette("colorblind")

    with one_panel(max(6.0, 1.1 * len(table) + 2.5), 4.8) as (fig, ax):
        ax.errorbar(
            steps, mean, yerr=np.nan_to_num(std), color=palette[0], marker="o", capsize=4,
            linewidth=1.8, label=metric_name(objective),
        )  # fmt: skip
        test = table.get("test_acc_mean")
        both = (
            fraction and test is not None and objective != "test_acc" and test.notna().any()
        )  # the test accuracy shares the objective's axis only when that is an accuracy too
        if both:
            t_mean = test.to_numpy(dtype="float64", na_value=np.nan) * 100.0
            t_std = table["test_acc_std"].to_numpy(dtype="float64", na_value=np.nan) * 100.0
            ax.errorbar(
                steps + 0.06, t_mean, yerr=np.nan_to_num(t_std), color=palette[1], marker="s",
                linestyle="--", capsize=4, linewidth=1.4, label=metric_name("test_acc"),
            )  # fmt: skip
        ax.set_xticks(steps, ticks, rotation=30 if len(steps) > 4 else 0, ha="right")
        if len(steps) <= 4:
            for label in ax.get_xticklabels():
                label.set_horizontalalignment("center")
        ax.margins(x=0.08, y=0.15)
        ax.set_xlabel("Step of the ablation path (parameter set to its target value)")
        if both:
            ax.set_ylabel("Accuracy (%)")
        elif fraction:
            ax.set_ylabel(f"{metric_name(objective).capitalize()} (%)")
        else:
            ax.set_ylabel(metric_label(objective))
        seeds = table["n"].min() if "n" in table else None
        where = f"; mean ± std over {int(seeds)} seeds" if seeds is not None else ""
        done = "" if table.attrs.get("complete", True) else " (incomplete)"
        total = table.attrs.get("total") or {}
        noise = table.attrs.get("complete", True) and total and not total.get("significant")
        ax.set_title(
            f"Ablation path from the default to the target{done}{where}\n"
            + (
                "no shares: the total default→target change is not significant"
                if noise
                else "under each step: cumulative share of the default→target gain"
            ),
            fontsize="medium",
        )
        ax.legend(frameon=False, fontsize="small", loc="lower right")
        png = save_figure(fig, path)
        return png, png.with_suffix(".svg")
