"""Isolation plots and the generalisation gap: what each choice can reach, and what it costs.

Isolation follows the Deep Learning Tuning Playbook (Godbole et al., 2023, "Designing the next
round of experiments"): to compare the values of a *scientific* hyperparameter (optimizer, init
scheme, an augmentation on or off, a bucket of a continuous one) fairly, optimise the *nuisance*
hyperparameters away — here, take the best COMPLETE trial among those with that value — and show
how many trials each value had, since a value tried twice had less chance to shine than one tried
twenty times.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from sweeplab.analysis._figures import metric_label, panel_grid, save_figure, state_colour, style
from sweeplab.analysis._frames import PARAM_PREFIX
from sweeplab.analysis._params import Scale, bucket, param_scales
from sweeplab.analysis._search_plots import complete_trials, require_complete

__all__ = ["ISOLATION_COLUMNS", "isolation_table", "plot_generalization_gap", "plot_isolation"]

#: Columns of :func:`isolation_table`.
ISOLATION_COLUMNS = ("param", "value", "n_trials", "best", "best_trial")


def isolation_table(
    trials: pd.DataFrame,
    *,
    maximize: bool = True,
    scales: Mapping[str, Scale] | None = None,
) -> pd.DataFrame:
    """The best COMPLETE trial for each value (bucket) of each varying parameter.

    Args:
        trials: the trials frame.
        maximize: whether larger objectives are better.
        scales: parameter scales; continuous parameters are cut into equal-width (log-width)
            buckets, categorical ones keep their values. Inferred where missing.

    Returns:
        One row per parameter and value, columns :data:`ISOLATION_COLUMNS`: ``n_trials``
        COMPLETE trials had that value, the best of them is trial ``best_trial`` with objective
        ``best``. Parameters by name, values in their natural order; empty buckets are left out.

    Example:
        >>> t = pd.DataFrame({"number": [0, 1, 2], "state": ["COMPLETE"] * 3,
        ...                   "value": [0.5, 0.9, 0.7], "param.opt": ["sgd", "adam", "sgd"]})
        >>> isolation_table(t)
          param value  n_trials  best  best_trial
        0   opt  adam         1   0.9           1
        1   opt   sgd         2   0.7           2
    """
    done = complete_trials(trials)
    kinds = param_scales(done, scales)
    rows = []
    for name in sorted(kinds):
        values = done[PARAM_PREFIX + name]
        if values.dropna().nunique() < 2:
            continue
        labels = bucket(values, kinds[name])
        for label in labels.cat.categories:
            group = done[labels == label]
            if group.empty:
                continue
            score = group["value"].astype(float)
            # Ties go to the lower trial number, as everywhere in the report.
            best = group.loc[(score.idxmax() if maximize else score.idxmin())]
            rows.append([name, str(label), len(group), float(best["value"]), int(best["number"])])
    return pd.DataFrame(rows, columns=list(ISOLATION_COLUMNS)).astype(
        {"param": "string", "value": "string", "n_trials": "int64", "best": "float64",
         "best_trial": "int64"}
    )  # fmt: skip


def plot_isolation(table: pd.DataFrame, path: str | Path, *, objective: str = "objective") -> Path:
    """One panel per parameter: the best objective reached with each value, and its trial count.

    Args:
        table: the frame from :func:`isolation_table`.
        path: where to write the PNG; the SVG goes next to it.
        objective: the objective's metric name, for the axis label.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: ``table`` is empty.
    """
    if table.empty:
        raise ValueError("no parameter takes two values over the COMPLETE trials; nothing to plot.")
    names = list(dict.fromkeys(table["param"]))
    lo, hi = float(table["best"].min()), float(table["best"].max())
    pad = 0.08 * ((hi - lo) or abs(hi) or 1.0)
    tallest = int(table.groupby("param").size().max())
    with style():
        fig, axes = panel_grid(len(names), 3, (4.2, 0.9 + 0.45 * tallest))
        for ax, name in zip(axes, names, strict=False):
            part = table[table["param"] == name].reset_index(drop=True)
            ys = np.arange(len(part))[::-1]
            ax.hlines(ys, lo - pad, part["best"], color="0.75", lw=1)
            ax.scatter(part["best"], ys, color=state_colour("COMPLETE"), s=40, zorder=3)
            for yv, (_, row) in zip(ys, part.iterrows(), strict=True):
                ax.annotate(f"n={row['n_trials']} · #{row['best_trial']}", (row["best"], yv),
                            xytext=(5, 0), textcoords="offset points", va="center",
                            fontsize="x-small")  # fmt: skip
            ax.set_yticks(ys, part["value"].tolist(), fontsize="small")
            ax.set_xlim(lo - pad, hi + 3 * pad)
            label = metric_label(objective)
            ax.set_xlabel(f"Best {label[:1].lower()}{label[1:]}")
            ax.set_title(name, fontsize="medium")
            ax.grid(axis="y", visible=False)
        fig.suptitle("Isolation: best complete trial per value (n = trials with that value)")
        return save_figure(fig, path)


def _gap_columns(trials: pd.DataFrame) -> tuple[str, str]:
    """Train accuracy against test accuracy where recorded, else against validation accuracy."""
    held_out = "test_acc" if trials["test_acc"].notna().any() else "val_acc"
    return "train_acc", held_out


def plot_generalization_gap(trials: pd.DataFrame, path: str | Path, *, top: int = 20) -> Path:
    """Training against held-out accuracy per COMPLETE trial, and the gap of the best ``top``.

    Left: each configuration as a dot, the diagonal where the gap is zero. Right: ``train −
    held-out`` accuracy of the ``top`` trials with the best held-out accuracy. Held-out is test
    accuracy where trials recorded it, else validation accuracy (both at the best epoch).

    Args:
        trials: the trials frame; reads ``train_acc``, ``test_acc``/``val_acc``, ``number``.
        path: where to write the PNG; the SVG goes next to it.
        top: how many configurations the bar chart shows.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: fewer than 2 COMPLETE trials with both accuracies.
    """
    train, held = _gap_columns(trials)
    done = require_complete(trials, "a generalisation-gap plot")
    done = done[done[train].notna() & done[held].notna()]
    if len(done) < 2:
        raise ValueError(f"a generalisation-gap plot needs 2 trials with {train} and {held}.")
    held_label = "Test" if held == "test_acc" else "Validation"
    colour = state_colour("COMPLETE")
    with style():
        fig, axes = panel_grid(2, 2, (5.0, 4.6))
        ax = axes[0]
        ax.scatter(done[train], done[held], s=30, color=colour, zorder=3)
        both = pd.concat([done[train], done[held]]).astype(float)
        lo, hi = float(both.min()), float(both.max())
        margin = 0.03 * ((hi - lo) or 1.0)
        ax.plot([lo - margin, hi + margin], [lo - margin, hi + margin], "--", color="0.4",
                lw=1, label="no gap")  # fmt: skip
        ax.set_xlabel(metric_label(train))
        ax.set_ylabel(metric_label(held))
        ax.set_title(f"{len(done)} complete trials", fontsize="medium")
        ax.legend(loc="upper left")
        ranked = done.sort_values([held, "number"], ascending=[False, True]).head(top)
        gap = (ranked[train] - ranked[held]).astype(float)
        ax = axes[1]
        ys = np.arange(len(ranked))[::-1]
        ax.barh(ys, gap, color=state_colour("PRUNED"))
        ax.set_yticks(ys, [f"#{n}" for n in ranked["number"]], fontsize="x-small")
        ax.axvline(0, color="0.3", lw=0.8)
        ax.set_xlabel(f"Train − {held_label.lower()} accuracy (fraction)")
        ax.set_ylabel(f"Trial (best {held_label.lower()} accuracy at the top)")
        ax.set_title(f"Generalisation gap, top {len(ranked)}", fontsize="medium")
        ax.grid(axis="y", visible=False)
        return save_figure(fig, path)
