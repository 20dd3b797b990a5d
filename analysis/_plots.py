"""Figures of a study: learning curves, optimisation history, parameter importance.

The three figures the report always tries to draw, whatever the study. Each is written as a PNG
at the path given and, unless :func:`~sweeplab.analysis._figures.svg_copies` turned it off, as
an SVG with the same stem next to it.

Style, figure constructor, state colours and the saver come from
:mod:`sweeplab.analysis._figures`, shared with every other figure: built on
:class:`matplotlib.figure.Figure` objects, never through ``pyplot``, so no backend is picked, no
window opened and no global figure left behind; seaborn's style and colour-blind palette apply
only for the duration of each call. States are told apart by line style or marker as well as
colour.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from optuna.study import StudyDirection

from sweeplab.analysis._figures import (
    metric_label,
    one_panel,
    save_figure,
    state_colour,
    state_style,
    style,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "draw_optimization_history",
    "plot_importances",
    "plot_learning_curves",
    "plot_optimization_history",
]

# Drawn first to last, so finished trials sit on top of the rest.
_DRAW_ORDER = ("WAITING", "FAIL", "PRUNED", "RUNNING", "COMPLETE")


def plot_learning_curves(
    curves: pd.DataFrame,
    path: str | Path,
    *,
    objective: str = "objective",
    highlight: int | None = None,
    rungs: Sequence[int] = (),
) -> Path:
    """Objective against epoch for every trial, coloured and dashed by trial state.

    Args:
        curves: the curves frame (:func:`analysis.curves_frame`); reads ``number``, ``state``,
            ``epoch``, ``objective``.
        path: where to write the PNG (parent folders are created); the SVG goes next to it.
        objective: the objective's metric name, for the axis label (e.g. ``"val_acc"``).
        highlight: a trial number to draw bold on top (the best trial), or ``None``.
        rungs: epochs of ASHA's rungs (:func:`analysis.asha_rungs`), drawn as dotted lines.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: no trial reported an objective value yet.

    Example:
        >>> import tempfile, pandas as pd
        >>> curves = pd.DataFrame({"number": [0, 0, 1], "state": ["COMPLETE", "COMPLETE", "PRUNED"],
        ...                        "epoch": [1, 2, 1], "objective": [0.5, 0.7, 0.3]})
        >>> with tempfile.TemporaryDirectory() as d:
        ...     plot_learning_curves(curves, f"{d}/curves.png", objective="val_acc").name
        'curves.png'
    """
    from matplotlib.lines import Line2D

    data = curves.dropna(subset=["objective"]).sort_values(["number", "epoch"])
    if data.empty:
        raise ValueError("no trial has reported an objective value yet; nothing to plot.")
    n_trials = data["number"].nunique()
    alpha = 0.9 if n_trials <= 20 else max(0.25, 20 / n_trials)
    with one_panel(8.0, 5.0) as (fig, ax):
        handles = []
        for state in [*_DRAW_ORDER, *sorted(set(data["state"]) - set(_DRAW_ORDER))]:
            part = data[data["state"] == state]
            if part.empty:
                continue
            _, style, marker = state_style(state)
            colour = state_colour(state)
            for _, trial in part.groupby("number", sort=True):
                ax.plot(
                    trial["epoch"], trial["objective"], style, color=colour, alpha=alpha, lw=1.4,
                    marker=marker if len(trial) == 1 else None,  # a one-epoch trial is a dot
                )  # fmt: skip
            count = part["number"].nunique()
            label = f"{state} ({count} trial{'s' if count != 1 else ''})"
            handles.append(Line2D([], [], color=colour, linestyle=style, lw=2, label=label))
        if highlight is not None and (data["number"] == highlight).any():
            best = data[data["number"] == highlight]
            ax.plot(best["epoch"], best["objective"], "-", color="black", lw=2.6, zorder=5)
            handles.append(Line2D([], [], color="black", lw=2.6, label=f"best trial #{highlight}"))
        for i, rung in enumerate(rungs):
            ax.axvline(rung, color="0.45", lw=0.9, ls=(0, (1, 3)), zorder=0)
            if i == 0:
                handles.append(Line2D([], [], color="0.45", lw=0.9, ls=(0, (1, 3)),
                                      label="ASHA rung"))  # fmt: skip
        ax.set_xlabel("Epoch")
        ax.set_ylabel(metric_label(objective))
        ax.set_title(f"Learning curves of {n_trials} trial{'s' if n_trials != 1 else ''}")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(handles=handles, loc="best", frameon=True)
        return save_figure(fig, path)


def plot_optimization_history(
    trials: pd.DataFrame,
    path: str | Path,
    *,
    direction: StudyDirection | str,
    objective: str = "objective",
) -> Path:
    """Objective of each finished trial against trial number, with the best-so-far line.

    COMPLETE trials are filled dots; PRUNED trials are crosses at the best value they reached
    before ASHA stopped them (they do not count towards the best-so-far line). The legend sits
    outside the axes, so it hides no point.

    Args:
        trials: the trials frame (:func:`analysis.trials_frame`); reads ``number``, ``state``,
            ``value``, ``best_intermediate``.
        path: where to write the PNG.
        direction: ``"maximize"``/``"minimize"`` or an :class:`optuna.study.StudyDirection`; sets
            which way "best so far" runs.
        objective: the objective's metric name, for the axis label.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: no COMPLETE trial with a value, or an unknown direction.

    Example:
        >>> import tempfile, pandas as pd
        >>> trials = pd.DataFrame({"number": [0, 1, 2], "state": ["COMPLETE", "PRUNED", "COMPLETE"],
        ...                        "value": [0.5, None, 0.8], "best_intermediate": [0.5, 0.3, 0.8]})
        >>> with tempfile.TemporaryDirectory() as d:
        ...     plot_optimization_history(trials, f"{d}/h.png", direction="maximize").name
        'h.png'
    """
    fig = draw_optimization_history(trials, direction=direction, objective=objective)
    with style():
        return save_figure(fig, path)


def draw_optimization_history(
    trials: pd.DataFrame, *, direction: StudyDirection | str, objective: str = "objective"
) -> Figure:
    """The figure of :func:`plot_optimization_history`, not yet saved.

    Raises:
        ValueError: no COMPLETE trial with a value, or an unknown direction.
    """
    if isinstance(direction, str):
        try:
            direction = StudyDirection[direction.upper()]
        except KeyError as e:
            raise ValueError(
                f"direction must be 'maximize' or 'minimize'; got {direction!r}."
            ) from e
    maximize = direction == StudyDirection.MAXIMIZE
    complete = trials[(trials["state"] == "COMPLETE") & trials["value"].notna()]
    complete = complete.sort_values("number")
    if complete.empty:
        raise ValueError("no COMPLETE trial with an objective value yet; nothing to plot.")
    pruned = trials[(trials["state"] == "PRUNED") & trials["best_intermediate"].notna()]
    values = complete["value"].astype(float)
    best_so_far = values.cummax() if maximize else values.cummin()
    best_row = complete.loc[values.idxmax() if maximize else values.idxmin()]
    last_number = int(trials["number"].max())

    with one_panel(8.0, 5.0) as (fig, ax):
        if not pruned.empty:
            ax.scatter(
                pruned["number"], pruned["best_intermediate"], marker="X", s=45, alpha=0.8,
                color=state_colour("PRUNED"), label="PRUNED (best value before stopping)",
            )  # fmt: skip
        ax.scatter(
            complete["number"], values, marker="o", s=45, color=state_colour("COMPLETE"),
            label="COMPLETE", zorder=3,
        )  # fmt: skip
        xs = [*complete["number"].astype(int), last_number]
        ys = [*best_so_far, best_so_far.iloc[-1]]
        ax.step(xs, ys, where="post", color="black", lw=2, label="best so far", zorder=4)
        ax.annotate(
            f"best: #{int(best_row['number'])} = {best_row['value']:.4g}",
            (best_row["number"], best_row["value"]),
            xytext=(8, -14 if maximize else 8), textcoords="offset points", fontsize="small",
        )  # fmt: skip
        ax.set_xlabel("Trial number")
        ax.set_ylabel(metric_label(objective))
        ax.set_title(f"Optimisation history ({'maximise' if maximize else 'minimise'})")
        ax.xaxis.get_major_locator().set_params(integer=True)
        # Below the axes, in one row: inside, a corner legend hid the trials that fell in that
        # corner (constrained layout makes room for it).
        fig.legend(loc="outside lower center", ncols=3, frameon=True)
    return fig


def plot_importances(importances: pd.Series, path: str | Path) -> Path:
    """Horizontal bar chart of parameter importances, most important at the top.

    Args:
        importances: the Series from :func:`analysis.param_importances`.
        path: where to write the PNG.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: ``importances`` is empty (the message carries its ``reason``).

    Example:
        >>> import tempfile, pandas as pd
        >>> imp = pd.Series({"lr": 0.7, "dropout": 0.3}, name="importance")
        >>> with tempfile.TemporaryDirectory() as d:
        ...     plot_importances(imp, f"{d}/imp.png").name
        'imp.png'
    """
    if importances.empty:
        reason = importances.attrs.get("reason") or "the Series is empty"
        raise ValueError(f"no importances to plot: {reason}")
    data = importances.sort_values(ascending=True, kind="stable")
    with one_panel(7.0, 1.4 + 0.42 * len(data)) as (fig, ax):
        colour = state_colour("COMPLETE")
        bars = ax.barh([str(i) for i in data.index], data.to_numpy(), color=colour)
        ax.bar_label(bars, labels=[f"{v:.3f}" for v in data], padding=3, fontsize="small")
        ax.set_xlim(0, min(1.0, float(data.max())) * 1.18)  # room for the labels
        ax.set_xlabel("Importance (fANOVA share of objective variance; sums to 1)")
        ax.set_ylabel("Hyperparameter")
        n = importances.attrs.get("n_trials")
        ax.set_title("Hyperparameter importance" + (f" ({n} complete trials)" if n else ""))
        ax.grid(axis="y", visible=False)
        return save_figure(fig, path)
