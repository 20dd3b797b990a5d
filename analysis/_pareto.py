"""Several objectives: which trials are Pareto-optimal, as a table and a plot.

A multi-objective study has no single best trial. Its answer is the Pareto front: the complete
trials that no other complete trial beats in every objective at once (non-dominated sorting,
:func:`sweeplab.studies.asha.non_dominated_ranks`). Read from the database only.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from sweeplab.analysis._figures import metric_label, one_panel, panel_grid, save_figure, style
from sweeplab.analysis._markdown import cell, code, metric_cell, table
from sweeplab.studies import records
from sweeplab.studies.asha import non_dominated_ranks

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: The report's Pareto figure.
PARETO_FIGURE = "pareto_front.png"
#: The prefix of a multi-objective study's per-objective columns in the trials frame.
VALUE_PREFIX = "value."


def objective_names(study: optuna.Study) -> list[str]:
    """The study's objectives by name: as sweeplab stored them, else Optuna's metric names,
    else ``value0``, ``value1``, ..."""
    stored = study.user_attrs.get(records.OBJECTIVE)
    n = len(study.directions)
    if isinstance(stored, list) and len(stored) == n:
        return [str(s) for s in stored]
    if isinstance(stored, str) and n == 1:
        return [stored]
    names = study.metric_names
    return list(names) if names and len(names) == n else [f"value{i}" for i in range(n)]


def directions_of(study: optuna.Study) -> list[str]:
    """Each objective's direction, ``maximize`` or ``minimize``."""
    return [d.name.lower() for d in study.directions]


def pareto_numbers(trials: list[FrozenTrial], directions: list[str]) -> set[int]:
    """The numbers of the complete trials on the Pareto front (finite values only).

    Example:
        >>> from optuna.trial import create_trial
        >>> ts = [create_trial(values=v) for v in ([0.9, 5], [0.8, 2], [0.7, 4])]
        >>> for i, t in enumerate(ts):
        ...     t.number = i
        >>> sorted(pareto_numbers(ts, ["maximize", "minimize"]))
        [0, 1]
    """
    done = [
        t
        for t in trials
        if t.state == TrialState.COMPLETE
        and t.values is not None
        and all(math.isfinite(v) for v in t.values)
    ]
    ranks = non_dominated_ranks([t.values for t in done], directions)
    return {t.number for t, r in zip(done, ranks, strict=True) if r == 0}


def pareto_frame(study: optuna.Study) -> pd.DataFrame:
    """The Pareto front: one row per trial on it (``number``, one column per objective by
    name, then ``param.<name>``), sorted by the first objective, best first."""
    trials = study.get_trials(deepcopy=False)
    names, directions = objective_names(study), directions_of(study)
    front = pareto_numbers(trials, directions)
    rows = []
    for t in trials:
        if t.number in front:
            row: dict[str, Any] = {"number": t.number}
            row.update(dict(zip(names, t.values, strict=True)))
            row.update({f"param.{k}": v for k, v in t.params.items()})
            rows.append(row)
    frame = pd.DataFrame(rows, columns=None if rows else ["number", *names])
    if len(frame):
        frame = frame.sort_values(
            [names[0], "number"], ascending=[directions[0] == "minimize", True]
        ).reset_index(drop=True)
    return frame


def with_objective_columns(frame: pd.DataFrame, study: optuna.Study) -> pd.DataFrame:
    """The trials frame of a multi-objective study with one ``value.<name>`` column per
    objective and ``pareto`` (the trial is on the front); a single-objective frame as it is."""
    if len(study.directions) < 2:
        return frame
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    names = objective_names(study)
    front = pareto_numbers(list(trials.values()), directions_of(study))
    frame = frame.copy()
    for i, name in enumerate(names):
        frame[VALUE_PREFIX + name] = [_value(trials.get(int(n)), i) for n in frame["number"]]
    frame["pareto"] = [int(n) in front for n in frame["number"]]
    return frame


def _value(trial: FrozenTrial | None, i: int) -> float:
    if trial is None or trial.state != TrialState.COMPLETE or not trial.values:
        return math.nan
    return float(trial.values[i])


def _complete_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The study's complete trials with values, in trial-number order (the study's own)."""
    return [
        t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE and t.values
    ]


def plot_pareto(study: optuna.Study, path: str | Path) -> Path:
    """The complete trials in the plane of the first two objectives, the Pareto front (of all
    objectives) marked and joined in order of the first; written as ``path`` (PNG)."""
    names, directions = objective_names(study), directions_of(study)
    trials = _complete_trials(study)
    front = pareto_numbers(trials, directions)
    rest = [t for t in trials if t.number not in front]
    on = sorted((t for t in trials if t.number in front), key=lambda t: (t.values[0], t.number))
    with one_panel(6.0, 4.5) as (fig, ax):
        ax.scatter([t.values[0] for t in rest], [t.values[1] for t in rest], color="0.6", s=18,
                   label="dominated")  # fmt: skip
        ax.plot([t.values[0] for t in on], [t.values[1] for t in on], "o-", color="C3", ms=6,
                label="Pareto front")  # fmt: skip
        for t in on:
            ax.annotate(f"#{t.number}", (t.values[0], t.values[1]), fontsize=8,
                        xytext=(3, 3), textcoords="offset points")  # fmt: skip
        ax.set_xlabel(f"{names[0]} ({directions[0]})")
        ax.set_ylabel(f"{names[1]} ({directions[1]})")
        ax.set_title(f"Pareto front: {len(on)} of {len(trials)} complete trials")
        ax.legend(loc="best", fontsize=8)
        return save_figure(fig, path)


def plot_objectives_history(study: optuna.Study, path: str | Path) -> Path:
    """The history of each objective of a multi-objective study, one panel per objective.

    Each panel shows every complete trial's value of that objective against trial number, the
    trials on the Pareto front (of all objectives) in colour, and the best value so far of that
    objective alone in its own direction. Written as ``path`` (PNG).

    Raises:
        ValueError: no complete trial yet.

    Example:
        >>> import tempfile
        >>> study = optuna.create_study(directions=["maximize", "minimize"])
        >>> for acc, size in ((0.5, 10), (0.9, 50), (0.7, 5)):
        ...     _ = study.tell(study.ask(), [acc, size])
        >>> with tempfile.TemporaryDirectory() as d:
        ...     plot_objectives_history(study, f"{d}/h.png").name
        'h.png'
    """
    fig = draw_objectives_history(study)
    with style():
        return save_figure(fig, path)


def draw_objectives_history(study: optuna.Study) -> Figure:
    """The figure of :func:`plot_objectives_history`, not yet saved: one axes per objective.

    Raises:
        ValueError: no complete trial yet.
    """
    names, directions = objective_names(study), directions_of(study)
    trials = _complete_trials(study)
    if not trials:
        raise ValueError("no complete trial yet; nothing to plot.")
    front = pareto_numbers(trials, directions)
    numbers = [t.number for t in trials]
    on = [i for i, t in enumerate(trials) if t.number in front]
    off = [i for i, t in enumerate(trials) if t.number not in front]
    with style():
        fig, axes = panel_grid(len(names), 1, (8.0, 2.6))
        for k, (ax, name, direction) in enumerate(zip(axes, names, directions, strict=False)):
            values = pd.Series([float(t.values[k]) for t in trials])
            best = values.cummax() if direction == "maximize" else values.cummin()
            ax.scatter([numbers[i] for i in off], values.iloc[off], s=18, color="0.6",
                       label="dominated")  # fmt: skip
            ax.scatter([numbers[i] for i in on], values.iloc[on], s=36, color="C3", zorder=3,
                       label="on the Pareto front")  # fmt: skip
            ax.step([*numbers, numbers[-1]], [*best, best.iloc[-1]], where="post", color="black",
                    lw=1.5, label="best so far of this objective", zorder=4)  # fmt: skip
            # The metric's long label would not fit beside a short panel: the name is the axis
            # label, the long label and the direction the panel's title.
            ax.set_ylabel(name)
            ax.set_title(f"{metric_label(name)}, {direction}", loc="left", fontsize="medium")
            ax.xaxis.get_major_locator().set_params(integer=True)
        axes[len(names) - 1].set_xlabel("Trial number")
        fig.suptitle(
            f"History per objective; {len(front)} of {len(trials)} complete trials on the "
            "Pareto front",
            fontsize="medium",
        )
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=3)
    return fig


def first_objective_view(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """The trials valued by their first objective only: what the single-objective analyses
    (importances, history, search) read of a multi-objective study."""
    out = []
    for t in trials:
        if t.values is not None and len(t.values) > 1:
            t = copy.copy(t)
            t.values = [t.values[0]]
        out.append(t)
    return out


def pareto_section(study: optuna.Study, out_dir: Path) -> list[str]:
    """The report's Pareto front: the figure (first two objectives) and the table (all),
    as Markdown lines; none for a single-objective study."""
    if len(study.directions) < 2:
        return []
    names, directions = objective_names(study), directions_of(study)
    front = pareto_frame(study)
    lines = [
        "## Pareto front",
        "",
        f"{len(study.directions)} objectives: "
        + ", ".join(f"{code(n)} ({d})" for n, d in zip(names, directions, strict=True))
        + ". The Pareto front is the complete trials that no other complete trial beats in "
        "every objective at once. The importance per objective follows the front, and the "
        "optimisation history has a panel per objective; the other sections of this report read "
        f"the first objective, {code(names[0])}.",
        "",
    ]
    if not len(front):
        return [*lines, "No trial has completed yet: no front.", ""]
    figure = plot_pareto(study, out_dir / PARETO_FIGURE)
    lines += [f"![Pareto front]({figure.name})", ""]
    params = [c for c in front.columns if str(c).startswith("param.")]
    rows = [
        [f"#{int(r['number'])}", *(metric_cell(n, r[n]) for n in names),
         " ".join(f"{p.removeprefix('param.')}={cell(r[p])}" for p in params if r[p] == r[p])]
        for _, r in front.iterrows()
    ]  # fmt: skip
    lines += table(["trial", *map(code, names), "parameters"], rows,
                   [True, *(True for _ in names), False])  # fmt: skip
    return [*lines, ""]
