"""The report's search-analysis part: figures drawn into the report folder, and their sections.

Kept apart from :mod:`analysis._report` so that module stays the report's outline. A figure that
cannot be drawn (too few complete trials, nothing varies) is replaced in the report by the reason
the plotting function gave, never by a silent gap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sweeplab.analysis._isolation import isolation_table, plot_generalization_gap, plot_isolation
from sweeplab.analysis._markdown import cell, code, metric_cell, percent, table
from sweeplab.analysis._params import Scale
from sweeplab.analysis._rungs import MIN_TRUSTWORTHY_RHO, rung_correlations
from sweeplab.analysis._search_plots import (
    complete_trials,
    parallel_axes,
    plot_interactions,
    plot_marginal_effects,
    plot_parallel_coordinates,
)
from sweeplab.studies.asha import rungs_from_spec

__all__ = ["SEARCH_FIGURES", "SearchAnalysis", "analyse_search", "search_sections"]

#: File names of the search-analysis figures (each also written as ``.svg`` when asked).
SEARCH_FIGURES = {
    "marginal": "marginal_effects.png",
    "interactions": "interactions.png",
    "parallel": "parallel_coordinates.png",
    "gap": "generalization_gap.png",
    "isolation": "isolation.png",
}


@dataclass(frozen=True)
class SearchAnalysis:
    """What the search-analysis sections show."""

    figures: dict[str, str | None]
    reasons: dict[str, str]  # figure key -> why it was not drawn
    isolation: pd.DataFrame
    gap: pd.DataFrame  # number, train, held-out, gap of the complete trials
    held_out: str
    rungs: list[int] | None
    rung_table: pd.DataFrame | None
    scheduler: str | None = None
    notes: list[str] = field(default_factory=list)
    parallel_axes: list[str] = field(default_factory=list)  # shown, most important first
    ranked: bool = False  # whether parallel_axes follow an importance ranking
    n_params: int = 0  # hyperparameters that vary over the complete trials
    svg: bool = False  # whether the figures were also written as SVG


def _draw(key: str, out: Path, draw: Callable[[Path], Path], figures: dict, reasons: dict) -> None:
    try:
        figures[key] = draw(out / SEARCH_FIGURES[key]).name
    except ValueError as e:  # the plotting function's own "not enough data" message
        figures[key] = None
        reasons[key] = str(e)


def analyse_search(
    trials: pd.DataFrame,
    curves: pd.DataFrame,
    out: Path,
    *,
    objective: str,
    maximize: bool,
    scales: Mapping[str, Scale],
    ranking: Sequence[str],
    spec: Mapping[str, Any] | None,
    svg: bool = False,
) -> SearchAnalysis:
    """Draw the search-analysis figures into ``out`` and compute their tables (``svg``: the
    caller has :func:`~sweeplab.analysis._figures.svg_copies` on, and the text says so)."""
    figures: dict[str, str | None] = dict.fromkeys(SEARCH_FIGURES)
    reasons: dict[str, str] = {}
    common = {"objective": objective, "scales": scales}
    _draw("marginal", out, lambda p: plot_marginal_effects(trials, p, **common), figures, reasons)
    _draw(
        "interactions", out,
        lambda p: plot_interactions(trials, p, ranking=ranking, **common), figures, reasons,
    )  # fmt: skip
    # Parallel coordinates only for the most important few: with an axis per hyperparameter
    # (14 in the quickstart) the lines are a tangle nobody can follow.
    axes = parallel_axes(trials, ranking)
    _draw(
        "parallel", out,
        lambda p: plot_parallel_coordinates(trials, p, params=axes, maximize=maximize, **common),
        figures, reasons,
    )  # fmt: skip
    _draw("gap", out, lambda p: plot_generalization_gap(trials, p), figures, reasons)
    isolation = isolation_table(trials, maximize=maximize, scales=scales)
    _draw("isolation", out, lambda p: plot_isolation(isolation, p, objective=objective),
          figures, reasons)  # fmt: skip

    done = complete_trials(trials)
    held = "test_acc" if done["test_acc"].notna().any() else "val_acc"
    gap = done[["number", "train_acc", held]].dropna()
    gap = gap.assign(gap=gap["train_acc"] - gap[held])

    spec_search = (spec or {}).get("search") if isinstance(spec, Mapping) else None
    scheduler = spec_search.get("scheduler", "asha") if isinstance(spec_search, Mapping) else None
    rungs = rungs_from_spec(spec)
    rung_table = rung_correlations(curves, rungs) if rungs and len(rungs) > 1 else None
    return SearchAnalysis(
        figures=figures, reasons=reasons, isolation=isolation, gap=gap, held_out=held,
        rungs=rungs, rung_table=rung_table, scheduler=scheduler, parallel_axes=axes,
        ranked=bool(ranking), n_params=len(parallel_axes(trials, ranking, k=None)),
        svg=svg,
    )  # fmt: skip


def _figure(analysis: SearchAnalysis, key: str, title: str) -> list[str]:
    name = analysis.figures.get(key)
    if name:
        return [f"![{title}]({name})", ""]
    return [f"Not drawn: {analysis.reasons.get(key, 'no data')}", ""]


def _gap_lines(analysis: SearchAnalysis) -> list[str]:
    gap = analysis.gap
    if gap.empty:
        return []
    held = code(analysis.held_out)

    def points(x: float) -> str:
        return percent(x, unit=" pp")

    return [
        f"Over {len(gap)} complete trials, `train_acc` − {held} at the best epoch, in "
        f"percentage points (pp): median {points(float(gap['gap'].median()))}, smallest "
        f"{points(float(gap['gap'].min()))} (trial #{int(gap.loc[gap['gap'].idxmin(), 'number'])}"
        f"), largest {points(float(gap['gap'].max()))} "
        f"(trial #{int(gap.loc[gap['gap'].idxmax(), 'number'])}).",
        "",
    ]


def _parallel_lines(analysis: SearchAnalysis) -> list[str]:
    axes = analysis.parallel_axes
    if not axes or not analysis.figures.get("parallel"):
        return []
    names = ", ".join(code(a) for a in axes)
    if len(axes) >= analysis.n_params:
        return [f"Every hyperparameter that varies, one axis each: {names}.", ""]
    which = "most important (by fANOVA)" if analysis.ranked else "first by name (no importance)"
    return [
        f"The {len(axes)} {which} of the {analysis.n_params} hyperparameters that vary, one "
        f"axis each: {names}. The others are in the marginal-effect and isolation plots.",
        "",
    ]


def _isolation_lines(analysis: SearchAnalysis, objective: str) -> list[str]:
    iso = analysis.isolation
    lines = [
        "Each value (or bucket, for continuous hyperparameters) of each hyperparameter, with "
        "the other hyperparameters optimised away: the best complete trial that had it, and "
        "how many complete trials had it. A value tried by few trials had less chance to "
        'reach a good objective (Deep Learning Tuning Playbook, "isolation plots").',
        "",
    ]
    if iso.empty:
        return [*lines, "Not assessed: no hyperparameter took two values in complete trials.", ""]
    rows = [
        [
            code(r.param),
            cell(r.value),
            str(r.n_trials),
            metric_cell(objective, r.best),
            f"#{r.best_trial}",
        ]
        for r in iso.itertuples()
    ]
    headers = ["Parameter", "Value", "Trials", f"Best {code(objective)}", "Best trial"]
    return [*lines, *table(headers, rows, [False, False, True, True, True]), ""]


def _rung_lines(analysis: SearchAnalysis) -> list[str]:
    lines = ["## Is early stopping trustworthy?", ""]
    if analysis.scheduler not in (None, "asha"):
        return [*lines, f"The study ran without ASHA (scheduler {code(analysis.scheduler)}); "
                "no trial was stopped at a rung.", ""]  # fmt: skip
    if analysis.rungs is None:
        return [*lines, "Not assessed: the study has no stored sweeplab spec with ASHA's "
                "grace period, reduction factor and epoch budget.", ""]  # fmt: skip
    rungs = ", ".join(str(r) for r in analysis.rungs)
    lines += [
        f"ASHA compared trials at epochs {rungs}. For the trials that reached two consecutive "
        "rungs, Spearman's rank correlation ρ of their objective at the two rungs says whether "
        "the ranking at a rung predicts the later one (only promoted trials reach the next rung, "
        f"so this is the ranking among the best). ρ below {MIN_TRUSTWORTHY_RHO} over 5 or more "
        "trials is flagged.",
        "",
    ]
    rt = analysis.rung_table
    if rt is None or rt.empty:
        return [*lines, "Only one rung: there is no pair of rungs to compare.", ""]
    rows = []
    for r in rt.itertuples():
        verdict = "too few trials to judge" if pd.isna(r.trustworthy) else (
            "ok" if r.trustworthy else "**low**"
        )  # fmt: skip
        rows.append([str(r.rung), str(r.next_rung), str(r.n_trials), cell(r.spearman_rho, 3),
                     cell(r.p_value, 2), verdict])  # fmt: skip
    headers = ["Rung (epoch)", "Next rung (epoch)", "Trials at both", "Spearman ρ", "p", "Verdict"]
    lines += [*table(headers, rows, [True, True, True, True, True, False]), ""]
    low = rt[rt["trustworthy"].eq(False).fillna(False)]
    for r in low.itertuples():
        lines += [
            f"> **Warning:** between epochs {r.rung} and {r.next_rung} the rank correlation is "
            f"ρ = {r.spearman_rho:.3f} < {MIN_TRUSTWORTHY_RHO} over {r.n_trials} trials: a "
            f"trial's rank at epoch {r.rung} says little about its rank at epoch {r.next_rung}, "
            "so ASHA may have stopped trials that would have ended up among the best. Consider a "
            'larger `search.grace_period` or `search.scheduler = "none"`.',
            "",
        ]
    return lines


def search_sections(analysis: SearchAnalysis, objective: str) -> list[str]:
    """The search-analysis and early-stopping sections, as Markdown lines."""
    return [
        "## Search analysis",
        "",
        "Every figure reads the complete trials only"
        + (", and is also written as SVG next to the PNG." if analysis.svg else "."),
        "",
        "### Marginal effect of each hyperparameter",
        "",
        *_figure(analysis, "marginal", "Marginal effects"),
        "### Interactions of the most important hyperparameters",
        "",
        *_figure(analysis, "interactions", "Interaction heatmaps"),
        "### Parallel coordinates",
        "",
        *_parallel_lines(analysis),
        *_figure(analysis, "parallel", "Parallel coordinates"),
        "### Generalisation gap",
        "",
        *_gap_lines(analysis),
        *_figure(analysis, "gap", "Generalisation gap"),
        "### Isolation: the best trial per value",
        "",
        *_isolation_lines(analysis, objective),
        *_figure(analysis, "isolation", "Isolation plots"),
        *_rung_lines(analysis),
    ]
