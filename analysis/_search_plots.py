"""Figures of the search itself: importance by two methods, marginal effects, interactions and
parallel coordinates.

All read the COMPLETE trials of a trials frame (:func:`analysis.trials_frame`); each writes a PNG
at the path given and (unless :func:`~sweeplab.analysis._figures.svg_copies` is off) an SVG next
to it, through :class:`matplotlib.figure.Figure` objects only
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
from sweeplab.analysis._importance_basis import format_share
from sweeplab.analysis._params import (
    MIN_BINS,
    MIN_POINTS_PER_BIN,
    Scale,
    binned_summary,
    bucket,
    param_scales,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "complete_trials",
    "draw_importance_comparison",
    "draw_marginal_effects",
    "draw_parallel_coordinates",
    "parallel_axes",
    "plot_importance_comparison",
    "plot_interactions",
    "plot_marginal_effects",
    "plot_parallel_coordinates",
    "require_complete",
]

_CMAP = "cividis"
#: Parameter pairs shown in the interaction heatmaps (of the three most important parameters).
TOP_PAIRS = 3
#: Parameter axes of the report's parallel-coordinates plot: beyond six the lines are a tangle.
PARALLEL_AXES = 6


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


def _importance_values(importance: pd.Series | pd.DataFrame) -> pd.Series:
    return importance["importance"] if isinstance(importance, pd.DataFrame) else importance


def _whiskers(importance: pd.Series | pd.DataFrame, order: Sequence[str]) -> np.ndarray | None:
    """``xerr`` for ``barh``: distances from each point estimate down to ``low`` and up to
    ``high`` (0 where there is no interval), or ``None`` when there is no interval at all."""
    if not isinstance(importance, pd.DataFrame) or not {"low", "high"} <= set(importance.columns):
        return None
    frame = importance.reindex(order)
    if frame[["low", "high"]].isna().all().all():
        return None
    point = frame["importance"].to_numpy(dtype=float)
    # A percentile interval need not contain its point estimate; the whisker then starts at it.
    down = np.clip(point - frame["low"].to_numpy(dtype=float), 0, None)
    up = np.clip(frame["high"].to_numpy(dtype=float) - point, 0, None)
    return np.nan_to_num(np.vstack([down, up]))


def _panel_title(method: str, importance: pd.Series | pd.DataFrame) -> str:
    n, at = importance.attrs.get("n_trials"), importance.attrs.get("measured_at")
    return method + (f" ({n} trials" + (f" at {at})" if at else ")") if n else "")


def _caption(importances: Mapping[str, pd.Series | pd.DataFrame]) -> str:
    with_ci = [s for s in importances.values() if s.attrs.get("n_resamples")]
    lines = []
    if with_ci:
        level = with_ci[0].attrs.get("level", 0.9)
        lines.append(
            f"Bars: importance; whiskers: {level:.0%} percentile bootstrap interval over "
            f"{with_ci[0].attrs['n_resamples']} resamples of the trials"
        )
    caveats = {s.attrs["caveat"] for s in importances.values() if s.attrs.get("caveat")}
    return "\n".join([*lines, *sorted(caveats)])


def draw_importance_comparison(importances: Mapping[str, pd.Series | pd.DataFrame]) -> Figure:
    """The figure of :func:`plot_importance_comparison`, not yet saved.

    Raises:
        ValueError: every entry is empty.
    """
    if all(s.empty for s in importances.values()):
        reasons = "; ".join(
            f"{k}: {s.attrs.get('reason', 'empty')}" for k, s in importances.items()
        )
        raise ValueError(f"no importances to plot: {reasons}")
    first = next(_importance_values(s) for s in importances.values() if not s.empty)
    order = [
        *first.index,
        *sorted(set().union(*(s.index for s in importances.values())) - set(first.index)),
    ]
    rows = list(reversed(order))  # barh draws bottom-up: the most important on top
    colour = state_colour("COMPLETE")
    with style():
        fig, axes = panel_grid(len(importances), len(importances), (5.0, 1.6 + 0.42 * len(order)))
        for ax, (method, entry) in zip(axes, importances.items(), strict=False):
            series = _importance_values(entry)
            values = np.array([float(series.get(p, np.nan)) for p in rows])
            xerr = _whiskers(entry, rows)
            ax.barh(rows, np.nan_to_num(values), color=colour, xerr=xerr,
                    error_kw={"ecolor": "black", "capsize": 3, "lw": 1.1})  # fmt: skip
            ends = np.nan_to_num(values) + (xerr[1] if xerr is not None else 0)
            reliable = not entry.attrs.get("caveat")  # then 2 significant digits at most
            for y, (v, end) in enumerate(zip(values, ends, strict=True)):
                label = format_share(v, reliable=reliable)
                ax.text(end + 0.015, y, label, va="center", fontsize="small")
            top = float(np.nanmax(ends)) if not series.empty else 1.0
            ax.set_xlim(0, 1.25 * max(0.05, top))
            ax.set_xlabel("Importance (share; sums to 1)")
            ax.set_title(_panel_title(method, entry), fontsize="medium")
            if series.empty:
                ax.text(0.5, 0.5, "not assessed", transform=ax.transAxes, ha="center")
            ax.grid(axis="y", visible=False)
        axes[0].set_ylabel("Hyperparameter")
        caption = _caption(importances)
        if caption:
            fig.suptitle(caption, fontsize="small")
    return fig


def plot_importance_comparison(
    importances: Mapping[str, pd.Series | pd.DataFrame], path: str | Path
) -> Path:
    """Importances by several methods side by side, one panel each, parameters in one order, with
    bootstrap intervals as error bars where given.

    Args:
        importances: method label (``"fANOVA"``, ``"PED-ANOVA"``) -> the Series from
            :func:`analysis.param_importances`, or the frame of
            :func:`~sweeplab.analysis._importance.importance_intervals` (its ``low`` and
            ``high`` are drawn as whiskers). Empty entries are shown with their reason. Read
            from ``attrs``: ``n_trials`` and ``measured_at`` (``"epoch 2"``) for the panel
            title, ``n_resamples`` and ``level`` for the caption, and ``caveat``, a warning
            printed under it (labels then show 2 significant digits).
        path: where to write the PNG; the SVG goes next to it.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: every entry is empty.

    Example:
        >>> import tempfile
        >>> imp = {"fANOVA": pd.Series({"lr": 0.8, "dropout": 0.2}),
        ...        "PED-ANOVA": pd.DataFrame({"importance": [0.6, 0.4], "low": [0.3, 0.1],
        ...                                   "high": [0.9, 0.7]}, index=["lr", "dropout"])}
        >>> with tempfile.TemporaryDirectory() as d:
        ...     plot_importance_comparison(imp, f"{d}/imp.png").name
        'imp.png'
    """
    with style():
        return save_figure(draw_importance_comparison(importances), path)


def _numeric_panel(ax: Axes, xs: pd.Series, y: pd.Series, scale: Scale, colour: tuple) -> bool:
    """Scatter, plus the median per bin in its interquartile band when the bins are full enough;
    whether the summary was drawn."""
    ax.scatter(xs, y, s=22, color=colour, alpha=0.8, zorder=3)
    summary = binned_summary(xs, y)
    if scale == "log":
        _log_axis(ax, float(xs.min()), float(xs.max()))
    if len(summary) < MIN_BINS:
        return False
    ax.fill_between(summary["x"], summary["q1"], summary["q3"], color="0.5", alpha=0.25, lw=0,
                    label="interquartile range")  # fmt: skip
    ax.plot(summary["x"], summary["median"], "-", color="black", lw=1.6, label="median per bin")
    return True


def _categorical_panel(ax: Axes, values: pd.Series, y: pd.Series, colour: tuple) -> bool:
    """Every trial as a dot; a box (median, quartiles) only over categories with enough trials;
    whether every category had its box."""
    labels = bucket(values, "categorical")
    order = [str(c) for c in labels.cat.categories]
    groups = [y[(labels == c).to_numpy()].to_numpy() for c in labels.cat.categories]
    boxed = [k for k, g in enumerate(groups) if len(g) >= MIN_POINTS_PER_BIN]
    if boxed:
        ax.boxplot([groups[k] for k in boxed], positions=boxed, widths=0.5, showfliers=False,
                   medianprops={"color": "black"})  # fmt: skip
    for k, g in enumerate(groups):
        # Fixed, even spread instead of random jitter: the figure stays byte-stable.
        offsets = np.linspace(-0.15, 0.15, len(g)) if len(g) > 1 else [0.0]
        ax.scatter(k + np.asarray(offsets), g, s=22, color=colour, zorder=3)
    ax.set_xticks(range(len(order)), order, rotation=20 if len(order) > 3 else 0)
    ax.set_xlim(-0.6, len(order) - 0.4)
    return len(boxed) == len(groups)


def draw_marginal_effects(
    trials: pd.DataFrame,
    *,
    objective: str = "objective",
    scales: Mapping[str, Scale] | None = None,
    params: Sequence[str] | None = None,
) -> Figure:
    """The figure of :func:`plot_marginal_effects`, not yet saved.

    Raises:
        ValueError: fewer than 2 COMPLETE trials, or no parameter varies.
    """
    done, kinds, names = _need_varying(trials, "a marginal-effect plot", scales, params)
    colour = state_colour("COMPLETE")
    with style():
        fig, axes = panel_grid(len(names), 3, (4.2, 3.3))
        for i, (ax, name) in enumerate(zip(axes, names, strict=False)):
            present = done[done[PARAM_PREFIX + name].notna()]
            y = present["value"].astype(float)
            if kinds[name] == "categorical":
                full = _categorical_panel(ax, present[PARAM_PREFIX + name], y, colour)
                note = f"box only where ≥ {MIN_POINTS_PER_BIN} trials"
                ax.set_xlabel(f"{name} (category)")
            else:
                full = _numeric_panel(ax, present[PARAM_PREFIX + name].astype(float), y,
                                      kinds[name], colour)  # fmt: skip
                note = (
                    f"points only: a trend needs ≥ {MIN_POINTS_PER_BIN} trials in ≥ {MIN_BINS} bins"
                )
                ax.set_xlabel(f"{name} ({'log scale' if kinds[name] == 'log' else 'value'})")
            if not full:
                ax.text(0.02, 0.98, note, transform=ax.transAxes, va="top", fontsize="x-small",
                        color="0.3", bbox={"facecolor": "white", "alpha": 0.8, "lw": 0},
                        zorder=5)  # fmt: skip
            # The long objective label once per row: repeated, it runs into the next panel.
            ax.set_ylabel(metric_label(objective) if i % 3 == 0 else "")
            ax.set_title(f"{name} (n = {len(present)})", fontsize="medium")
        fig.suptitle(
            f"Marginal effect of each hyperparameter ({len(done)} complete trials)\n"
            "line: median per equal-count bin; band and boxes: interquartile range",
            fontsize="medium",
        )
    return fig


def plot_marginal_effects(
    trials: pd.DataFrame,
    path: str | Path,
    *,
    objective: str = "objective",
    scales: Mapping[str, Scale] | None = None,
    params: Sequence[str] | None = None,
) -> Path:
    """The objective against each parameter over the COMPLETE trials, one panel per parameter.

    Every trial is a dot. Numeric parameters (log x axis for log-scale ones) add the median
    objective per equal-count bin as a line inside its interquartile band
    (:func:`~sweeplab.analysis._params.binned_summary`), robust to the one diverged trial that
    drags a mean into a spurious V; categorical ones add a box (median and quartiles) per
    category. A summary is drawn only over enough trials (:data:`~sweeplab.analysis._params.
    MIN_POINTS_PER_BIN` per bin, and :data:`~sweeplab.analysis._params.MIN_BINS` bins for a
    line); otherwise the panel shows the points and says so.

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

    Example:
        >>> import tempfile
        >>> t = pd.DataFrame({"number": range(20), "state": "COMPLETE",
        ...                   "value": [0.9 - 0.01 * i for i in range(20)],
        ...                   "param.dropout": [0.025 * i for i in range(20)]})
        >>> with tempfile.TemporaryDirectory() as d:
        ...     plot_marginal_effects(t, f"{d}/m.png").name
        'm.png'
    """
    fig = draw_marginal_effects(trials, objective=objective, scales=scales, params=params)
    with style():
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


def parallel_axes(
    trials: pd.DataFrame, ranking: Sequence[str], k: int | None = PARALLEL_AXES
) -> list[str]:
    """The ``k`` parameters (``None``: all) a parallel-coordinates plot shows: the first of
    ``ranking`` (most important first) that vary over the COMPLETE trials, then, where the
    ranking is short, the other varying ones by name.

    Example:
        >>> t = pd.DataFrame({"number": [0, 1], "state": ["COMPLETE"] * 2, "value": [0.1, 0.2],
        ...                   "param.a": [1, 2], "param.b": [1, 1], "param.c": [3, 4]})
        >>> parallel_axes(t, ["b", "c"], k=2)
        ['c', 'a']
    """
    done = complete_trials(trials)
    names = sorted(c.removeprefix(PARAM_PREFIX) for c in done.columns if c.startswith(PARAM_PREFIX))
    order = [*(n for n in ranking if n in names), *(n for n in names if n not in ranking)]
    return _varying(done, order)[:k]


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
        params: parameters in axis order (default: every varying one, by name; the report
            passes the few most important, :func:`parallel_axes`).
        maximize: whether larger objectives are better (the best lines are drawn last).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: fewer than 2 COMPLETE trials, or no parameter varies.
    """
    fig = draw_parallel_coordinates(
        trials, objective=objective, scales=scales, params=params, maximize=maximize
    )
    with style():
        return save_figure(fig, path)


def draw_parallel_coordinates(
    trials: pd.DataFrame,
    *,
    objective: str = "objective",
    scales: Mapping[str, Scale] | None = None,
    params: Sequence[str] | None = None,
    maximize: bool = True,
) -> Figure:
    """The figure of :func:`plot_parallel_coordinates`, not yet saved.

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
    return fig
