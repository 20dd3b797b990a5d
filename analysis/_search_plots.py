"""Figures of the search itself: importance by two methods, marginal effects, interactions and
parallel coordinates.

All read the COMPLETE trials of a trials frame (:func:`analysis.trials_frame`); each writes a PNG
at the path given and an SVG next to it, through :class:`matplotlib.figure.Figure` objects only
(style, panel grid and saver from :mod:`sweeplab.analysis._figures`). Colours come from
seaborn's "colorblind" palette and the "cividis" colour map, both readable with the common
colour-vision deficiencies.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from sweeplab.analysis._figures import (
    metric_label,
    one_panel,
    panel_grid,
    save_figure,
    state_colour,
    style,
)
from sweeplab.analysis._frames import PARAM_PREFIX
from sweeplab.analysis._params import Scale, bucket, param_scales

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "complete_trials",
    "plot_importance_comparison",
    "plot_interactions",
    "plot_marginal_effects",
    "plot_parallel_coordinates",
    "require_complete",
]

_CMAP = "cividis"
#: Parameter pairs shown in the interaction heatmaps (of the three most important parameters).
TOP_PAIRS = 3


def complete_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """COMPLETE trials with a finite objective, by trial number."""
    done = trials[(trials["state"] == "COMPLETE") & trials["value"].notna()]
    return done[np.isfinite(done["value"].astype(float))].sort_values("number")


def _varying(trials: pd.DataFrame, names: Sequence[str]) -> list[str]:
    return [n for n in names if trials[PARAM_PREFIX + n].dropna().nunique() > 1]


def require_complete(trials: pd.DataFrame, what: str) -> pd.DataFrame:
    """:func:`complete_trials`, refusing fewer than 2: ``what`` (the figure, "a marginal-effect
    plot") needs two points to show anything.

    Raises:
        ValueError: fewer than 2 COMPLETE trials with a finite objective.

    Example:
        >>> t = pd.DataFrame({"number": [0, 1], "state": ["COMPLETE", "FAIL"],
        ...                   "value": [0.5, None]})
        >>> require_complete(t, "a plot")
        Traceback (most recent call last):
        ...
        ValueError: a plot needs at least 2 COMPLETE trials; got 1.
    """
    done = complete_trials(trials)
    if len(done) < 2:
        raise ValueError(f"{what} needs at least 2 COMPLETE trials; got {len(done)}.")
    return done


def _need_varying(
    trials: pd.DataFrame,
    what: str,
    scales: Mapping[str, Scale] | None,
    params: Sequence[str] | None,
) -> tuple[pd.DataFrame, dict[str, Scale], list[str]]:
    """The COMPLETE trials (at least 2), every parameter's scale, and the parameters to show:
    ``params`` (default: all, by name) that take two different values."""
    done = require_complete(trials, what)
    kinds = param_scales(done, scales)
    names = _varying(done, params if params is not None else sorted(kinds))
    if not names:
        raise ValueError("no parameter takes two different values over the COMPLETE trials.")
    return done, kinds, names


def _log_axis(ax: Axes, lo: float, hi: float) -> None:
    """A log x axis whose labels never collide: within two decades, three plain ticks."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # matplotlib labels minor ticks on short spans
    if hi / lo < 100:
        ax.xaxis.set_major_locator(FixedLocator(np.geomspace(lo, hi, 3)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.2g}"))


def plot_importance_comparison(importances: Mapping[str, pd.Series], path: str | Path) -> Path:
    """Importances by several methods side by side, one panel each, parameters in one order.

    Args:
        importances: method label (``"fANOVA"``, ``"PED-ANOVA"``) -> the Series from
            :func:`analysis.param_importances`; empty Series are shown with their reason.
        path: where to write the PNG; the SVG goes next to it.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: every Series is empty.

    Example:
        >>> import tempfile
        >>> imp = {"fANOVA": pd.Series({"lr": 0.8, "dropout": 0.2}),
        ...        "PED-ANOVA": pd.Series({"lr": 0.6, "dropout": 0.4})}
        >>> with tempfile.TemporaryDirectory() as d:
        ...     plot_importance_comparison(imp, f"{d}/imp.png").name
        'imp.png'
    """
    if all(s.empty for s in importances.values()):
        reasons = "; ".join(
            f"{k}: {s.attrs.get('reason', 'empty')}" for k, s in importances.items()
        )
        raise ValueError(f"no importances to plot: {reasons}")
    first = next(s for s in importances.values() if not s.empty)
    order = [
        *first.index,
        *sorted(set().union(*(s.index for s in importances.values())) - set(first.index)),
    ]
    colour = state_colour("COMPLETE")
    with style():
        fig, axes = panel_grid(len(importances), len(importances), (5.0, 1.4 + 0.42 * len(order)))
        for ax, (method, series) in zip(axes, importances.items(), strict=False):
            values = [float(series.get(p, np.nan)) for p in reversed(order)]
            bars = ax.barh(list(reversed(order)), np.nan_to_num(values), color=colour)
            ax.bar_label(
                bars, labels=["n/a" if math.isnan(v) else f"{v:.3f}" for v in values],
                padding=3, fontsize="small",
            )  # fmt: skip
            ax.set_xlim(0, 1.18 * max(0.05, float(np.nanmax(values)) if not series.empty else 1))
            ax.set_xlabel("Importance (share; sums to 1)")
            n = series.attrs.get("n_trials")
            ax.set_title(f"{method}" + (f" ({n} complete trials)" if n else ""))
            if series.empty:
                ax.text(0.5, 0.5, "not assessed", transform=ax.transAxes, ha="center")
            ax.grid(axis="y", visible=False)
        axes[0].set_ylabel("Hyperparameter")
        return save_figure(fig, path)


def plot_marginal_effects(
    trials: pd.DataFrame,
    path: str | Path,
    *,
    objective: str = "objective",
    scales: Mapping[str, Scale] | None = None,
    params: Sequence[str] | None = None,
) -> Path:
    """The objective against each parameter over the COMPLETE trials, one panel per parameter.

    Numeric parameters: a scatter with the mean objective per bucket as a trend line (log x axis
    for log-scale parameters). Categorical ones: a box plot with every trial as a dot.

    Args:
        trials: the trials frame; reads ``state``, ``value`` and ``param.<name>``.
        path: where to write the PNG; the SVG goes next to it.
        objective: the objective's metric name, for the axis label.
        scales: parameter -> ``"categorical"``/``"log"``/``"linear"``; inferred where missing.
        params: parameters to show, in order (default: every one that varies, by name).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: fewer than 2 COMPLETE trials, or no parameter varies.
    """
    done, kinds, names = _need_varying(trials, "a marginal-effect plot", scales, params)
    colour = state_colour("COMPLETE")
    with style():
        fig, axes = panel_grid(len(names), 3, (4.2, 3.3))
        for i, (ax, name) in enumerate(zip(axes, names, strict=False)):
            x = done[PARAM_PREFIX + name]
            present = done[x.notna()]
            y = present["value"].astype(float)
            if kinds[name] == "categorical":
                labels = bucket(present[PARAM_PREFIX + name], "categorical")
                order = [str(c) for c in labels.cat.categories]
                groups = [y[(labels == c).to_numpy()].to_numpy() for c in labels.cat.categories]
                ax.boxplot(groups, positions=range(len(order)), widths=0.5, showfliers=False,
                           medianprops={"color": "black"})  # fmt: skip
                for k, g in enumerate(groups):
                    # Fixed, even spread instead of random jitter: the figure stays byte-stable.
                    offsets = np.linspace(-0.15, 0.15, len(g)) if len(g) > 1 else [0.0]
                    ax.scatter(k + np.asarray(offsets), g, s=22, color=colour, zorder=3)
                ax.set_xticks(range(len(order)), order, rotation=20 if len(order) > 3 else 0)
                ax.set_xlabel(f"{name} (category)")
            else:
                xs = present[PARAM_PREFIX + name].astype(float)
                ax.scatter(xs, y, s=22, color=colour, alpha=0.8)
                groups = pd.DataFrame({"b": bucket(xs, kinds[name]), "x": xs, "y": y})
                trend = groups.groupby("b", observed=True)[["x", "y"]].mean()
                ax.plot(trend["x"], trend["y"], "-", color="black", lw=1.6, label="bucket mean")
                if kinds[name] == "log":
                    _log_axis(ax, float(xs.min()), float(xs.max()))
                ax.set_xlabel(f"{name} ({'log scale' if kinds[name] == 'log' else 'value'})")
            # The long objective label once per row: repeated, it runs into the next panel.
            ax.set_ylabel(metric_label(objective) if i % 3 == 0 else "")
            ax.set_title(f"{name} (n = {len(present)})", fontsize="medium")
        fig.suptitle(f"Marginal effect of each hyperparameter ({len(done)} complete trials)")
        return save_figure(fig, path)


def _top_pairs(done: pd.DataFrame, ranking: Sequence[str]) -> list[tuple[str, str]]:
    names = [n for n in ranking if PARAM_PREFIX + n in done.columns]
    names = _varying(done, names)[:3]
    pairs = list(itertools.combinations(names, 2))
    return pairs[:TOP_PAIRS]


def plot_interactions(
    trials: pd.DataFrame,
    path: str | Path,
    *,
    ranking: Sequence[str],
    objective: str = "objective",
    scales: Mapping[str, Scale] | None = None,
) -> Path:
    """Heatmaps of the mean objective over buckets of two parameters, for the top pairs.

    The pairs are those among the three first parameters of ``ranking`` (e.g. the fANOVA
    order); each cell shows the mean objective of the COMPLETE trials in it and their count.

    Args:
        trials: the trials frame.
        path: where to write the PNG; the SVG goes next to it.
        ranking: parameter names, most important first.
        objective: the objective's metric name, for the colour bar.
        scales: parameter scales, inferred where missing.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: fewer than 2 COMPLETE trials, or fewer than two varying parameters.
    """
    done = require_complete(trials, "an interaction heatmap")
    kinds = param_scales(done, scales)
    pairs = _top_pairs(done, ranking)
    if not pairs:
        raise ValueError("an interaction heatmap needs two parameters that vary.")
    y = done["value"].astype(float)
    lo, hi = float(y.min()), float(y.max())
    with style():
        fig, axes = panel_grid(len(pairs), len(pairs), (4.8, 4.2))
        image = None
        for ax, (a, b) in zip(axes, pairs, strict=False):
            cells = pd.DataFrame(
                {"a": bucket(done[PARAM_PREFIX + a], kinds[a]),
                 "b": bucket(done[PARAM_PREFIX + b], kinds[b]), "y": y}
            )  # fmt: skip
            grouped = cells.groupby(["a", "b"], observed=False)["y"]
            mean = grouped.mean().unstack("b")
            count = grouped.count().unstack("b")
            image = ax.imshow(mean.to_numpy(dtype=float), cmap=_CMAP, vmin=lo, vmax=hi,
                              aspect="auto", origin="lower")  # fmt: skip
            for (i, j), v in np.ndenumerate(mean.to_numpy(dtype=float)):
                if not math.isnan(v):
                    dark = (v - lo) / ((hi - lo) or 1) < 0.5
                    label = f"{v:.3f}\nn={int(count.iat[i, j])}"
                    ax.text(j, i, label, ha="center", va="center", fontsize="x-small",
                            color="white" if dark else "black")  # fmt: skip
            ax.set_xticks(range(mean.shape[1]), [str(c) for c in mean.columns], rotation=30,
                          ha="right", fontsize="small")  # fmt: skip
            ax.set_yticks(range(mean.shape[0]), [str(c) for c in mean.index], fontsize="small")
            ax.set_xlabel(b)
            ax.set_ylabel(a)
            ax.grid(False)
            ax.set_title(f"{a} × {b}", fontsize="medium")
        fig.colorbar(image, ax=list(axes[: len(pairs)]), label=f"Mean {metric_label(objective)}")
        fig.suptitle("Interactions of the most important hyperparameters (empty: no trial)")
        return save_figure(fig, path)


def _normalised(values: pd.Series, scale: Scale) -> tuple[np.ndarray, list[tuple[float, str]]]:
    """Positions in [0, 1] (NA at -0.1, "absent") and the axis' tick labels."""
    out = np.full(len(values), -0.1)
    present = values.notna().to_numpy()
    if scale == "categorical":
        labels = bucket(values, "categorical")
        k = len(labels.cat.categories)
        codes = labels.cat.codes.to_numpy().astype(float)
        out[present] = codes[present] / max(1, k - 1) if k > 1 else 0.5
        ticks = [
            (i / max(1, k - 1) if k > 1 else 0.5, str(c))
            for i, c in enumerate(labels.cat.categories)
        ]
    else:
        x = values[present].astype(float).to_numpy()
        if scale == "log":
            x = np.log10(x)
        lo, hi = float(x.min()), float(x.max())
        out[present] = (x - lo) / (hi - lo) if hi > lo else 0.5
        raw = values[present].astype(float)
        ticks = [(0.0, f"{raw.min():.3g}"), (1.0, f"{raw.max():.3g}")]
    if not present.all():
        ticks.append((-0.1, "absent"))
    return out, ticks


def plot_parallel_coordinates(
    trials: pd.DataFrame,
    path: str | Path,
    *,
    objective: str = "objective",
    scales: Mapping[str, Scale] | None = None,
    params: Sequence[str] | None = None,
    maximize: bool = True,
) -> Path:
    """One line per COMPLETE trial across an axis per parameter and a last axis for the
    objective, coloured by the objective (best trials drawn on top).

    Args:
        trials: the trials frame.
        path: where to write the PNG; the SVG goes next to it.
        objective: the objective's metric name, for the colour bar and last axis.
        scales: parameter scales (log axes are spaced logarithmically), inferred where missing.
        params: parameters in axis order (default: every varying one, by name).
        maximize: whether larger objectives are better (the best lines are drawn last).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: fewer than 2 COMPLETE trials, or no parameter varies.
    """
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    done, kinds, names = _need_varying(trials, "a parallel-coordinates plot", scales, params)
    y = done["value"].astype(float)
    columns, ticks = [], []
    for name in names:
        pos, tk = _normalised(done[PARAM_PREFIX + name], kinds[name])
        columns.append(pos)
        ticks.append(tk)
    obj_pos, obj_ticks = _normalised(y, "linear")
    columns.append(obj_pos)
    ticks.append(obj_ticks)
    matrix = np.column_stack(columns)
    norm = Normalize(float(y.min()), float(y.max()))
    cmap = colormaps[_CMAP]
    order = np.argsort(y.to_numpy(), kind="stable")  # worst first: the best lines sit on top
    if not maximize:
        order = order[::-1]
    width = min(16.0, max(7.0, 1.25 * len(columns) + 2))  # beyond 16 in, text gets tiny
    with one_panel(width, 5.0) as (fig, ax):
        xs = np.arange(len(columns))
        for i in order:
            ax.plot(xs, matrix[i], color=cmap(norm(y.iat[i])), lw=1.3, alpha=0.85)
        for x, tk in zip(xs, ticks, strict=True):
            ax.axvline(x, color="0.4", lw=0.8)
            for pos, label in tk:
                ax.text(x + 0.04, pos, label, fontsize="x-small", va="center")
        ax.set_xticks(xs, [*names, objective], rotation=30, ha="right")
        ax.set_yticks([])
        ax.set_ylim(-0.18, 1.08)
        ax.set_xlim(-0.2, len(columns) - 0.5)
        ax.grid(False)
        ax.set_xlabel("Hyperparameter (each axis scaled to its own range)")
        fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=metric_label(objective))
        ax.set_title(f"Parallel coordinates of {len(done)} complete trials")
        return save_figure(fig, path)
