"""A line chart of the ablation path: the objective after each step, with its spread over seeds.

Built like the other figures (:mod:`sweeplab.analysis._figures`): a
:class:`matplotlib.figure.Figure`, no pyplot, seaborn's colour-blind palette for the
duration of the call. Written as PNG and SVG, both byte-identical for the same table (no
timestamps, fixed SVG ids).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sweeplab.analysis._figures import metric_label, one_panel, save_figure
from sweeplab.analysis.ablation.stats import is_fraction, metric_name

__all__ = ["ablation_path_chart"]


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
        ax.set_title(
            f"Ablation path from the default to the target{done}{where}\n"
            "under each step: cumulative share of the default→target gain",
            fontsize="medium",
        )
        ax.legend(frameon=False, fontsize="small", loc="lower right")
        png = save_figure(fig, path)
        return png, png.with_suffix(".svg")
