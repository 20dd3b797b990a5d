"""The report's importance part: fANOVA and PED-ANOVA with bootstrap intervals, measured where
the most trials are, and said to be unreliable when they rest on too few.

Kept apart from :mod:`analysis._report` so that module stays the report's outline. What the
importances are measured on comes from :mod:`analysis._importance_basis`; the intervals from
:func:`~sweeplab.analysis._importance.importance_intervals`.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from sweeplab.analysis._importance import N_RESAMPLES, RESAMPLE_TREES, importance_intervals
from sweeplab.analysis._importance_basis import (
    MIN_RELIABLE_TRIALS,
    MIN_TRIALS_PER_DIMENSION,
    MIN_TRIALS_TO_RANK,
    ImportanceBasis,
    Verdict,
    format_share,
    importance_basis,
    needed_trials,
    param_dimensions,
    ranking_verdict,
)
from sweeplab.analysis._markdown import MISSING, code, table
from sweeplab.analysis._search_plots import plot_importance_comparison

__all__ = [
    "ImportanceAnalysis",
    "analyse_importance",
    "importance_section",
    "objectives_importance_section",
]

_METHODS = {"fANOVA": "fanova", "PED-ANOVA": "ped_anova"}


@dataclass(frozen=True, kw_only=True)
class ImportanceAnalysis:
    """What the importance section shows."""

    basis: ImportanceBasis
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # method -> intervals
    verdict: Verdict = Verdict.TOO_FEW
    dimensions: int = 0
    figure: str | None = None

    @property
    def ranking(self) -> list[str]:
        """Parameters by fANOVA importance, most important first (empty when not assessed)."""
        fanova = self.tables.get("fANOVA")
        return [] if fanova is None else [str(p) for p in fanova.index]


def _caveat(n: int, dimensions: int) -> str:
    return (
        f"Ranking unreliable: {n} trials, fewer than the {needed_trials(dimensions)} that "
        f"{dimensions} parameter dimensions need"
    )


def analyse_importance(
    snapshot: Sequence[FrozenTrial],
    direction: StudyDirection,
    *,
    rungs: Sequence[int] | None,
    figure: Path | None = None,
) -> ImportanceAnalysis:
    """Importances with intervals, measured on :func:`importance_basis`, and their figure.

    Args:
        snapshot: the study's trials.
        direction: the study's direction.
        rungs: ASHA's rung epochs, or ``None`` (then the COMPLETE trials' final objective).
        figure: where to write the comparison figure; ``None`` draws none. It is not drawn
            either when the trials are too few to rank.
    """
    basis = importance_basis(snapshot, rungs)
    ranks = len(basis.trials) >= MIN_TRIALS_TO_RANK
    # Below the minimum nothing is shown, so the bootstrap's cost is not paid; the point
    # estimates still order the interaction heatmaps.
    tables = {
        label: importance_intervals(
            basis.trials, direction, method=method, n_resamples=N_RESAMPLES if ranks else 0
        )
        for label, method in _METHODS.items()
    }
    fanova = tables["fANOVA"]
    dimensions = param_dimensions(basis.trials, list(fanova.index))
    verdict = ranking_verdict(len(basis.trials), dimensions)
    measured_at = f"epoch {basis.epoch}" if basis.epoch is not None else "the end"
    for frame in tables.values():
        frame.attrs["measured_at"] = measured_at
        if verdict is Verdict.UNRELIABLE:
            frame.attrs["caveat"] = _caveat(len(basis.trials), dimensions)
    drawn = None
    if figure is not None and verdict.ranks() and not fanova.empty:
        drawn = plot_importance_comparison(tables, figure).name
    return ImportanceAnalysis(
        basis=basis, tables=tables, verdict=verdict, dimensions=dimensions, figure=drawn
    )


def _number(v: float, reliable: bool) -> str:
    return MISSING if pd.isna(v) else format_share(float(v), reliable=reliable)


def _interval(frame: pd.DataFrame, param: str, reliable: bool) -> str:
    if param not in frame.index or pd.isna(frame.at[param, "low"]):
        return MISSING
    low, high = frame.at[param, "low"], frame.at[param, "high"]
    return f"{_number(low, reliable)} – {_number(high, reliable)}"


def _basis_lines(analysis: ImportanceAnalysis) -> list[str]:
    basis = analysis.basis
    text = f"Measured on {basis.describe()}."
    if basis.epoch is not None:
        text += (
            " fANOVA and PED-ANOVA each read one value per trial, so both count the pruned "
            "trials here; they say what mattered by that epoch, which need not be what matters "
            "at the end."
        )
    elif basis.rungs:
        text += " No ASHA rung holds more trials than completed, so pruned trials do not count."
    return [text, ""]


def importance_section(analysis: ImportanceAnalysis | None) -> list[str]:
    """The ``## Hyperparameter importance`` section, as Markdown lines.

    Example:
        >>> import optuna
        >>> trials = [optuna.trial.create_trial(value=v, params={}, distributions={})
        ...           for v in (0.5, 0.7, 0.6)]
        >>> basis = ImportanceBasis(trials=tuple(trials), epoch=None, n_complete=3)
        >>> print("\\n".join(importance_section(ImportanceAnalysis(basis=basis))))
        ## Hyperparameter importance
        <BLANKLINE>
        Measured on the final objective of the 3 complete trials.
        <BLANKLINE>
        Not ranked: 3 trials are too few (fewer than 5) for any ranking of importance to mean ...
        <BLANKLINE>
    """
    lines = ["## Hyperparameter importance", ""]
    if analysis is None:
        return [*lines, "Not assessed: no trials were read.", ""]
    lines += _basis_lines(analysis)
    n = len(analysis.basis.trials)
    if not analysis.verdict.ranks():
        return [
            *lines,
            f"Not ranked: {n} trials are too few (fewer than {MIN_TRIALS_TO_RANK}) for any "
            "ranking of importance to mean something; another handful of trials would reorder "
            f"it. From {MIN_RELIABLE_TRIALS} trials, and {MIN_TRIALS_PER_DIMENSION} per "
            "parameter dimension, a ranking is worth reading.",
            "",
        ]
    fanova = analysis.tables["fANOVA"]
    if fanova.empty:
        return [*lines, f"Not assessed: {fanova.attrs.get('reason', 'no data')}", ""]
    reliable = analysis.verdict is Verdict.RELIABLE
    level = f"{fanova.attrs.get('level', 0.9):.0%}"
    resamples = fanova.attrs.get("n_resamples", 0)
    ped = analysis.tables.get("PED-ANOVA", pd.DataFrame())
    lines += [
        "fANOVA (seeded random forest; the share of the objective's variance each parameter "
        "explains) and PED-ANOVA (how strongly the top 10 % of trials concentrate in part of "
        "each parameter's range)"
        + ("" if not ped.empty else f"; PED-ANOVA not assessed: {ped.attrs.get('reason')}")
        + f"; each column sums to 1. Each interval is the {level} percentile bootstrap interval "
        f"over {resamples} resamples of the {n} trials (fANOVA resamples use "
        f"{RESAMPLE_TREES}-tree forests, PED-ANOVA resamples their distinct trials; both err "
        "wide): where two intervals overlap, the data do not say which parameter matters more.",
        "",
    ]
    if not reliable:
        lines += [
            f"> **Warning:** the ranking is unreliable: {n} trials, fewer than the "
            f"{needed_trials(analysis.dimensions)} needed ({MIN_RELIABLE_TRIALS} at least, and "
            f"{MIN_TRIALS_PER_DIMENSION} per parameter dimension; these parameters have "
            f"{analysis.dimensions}). Another {n} trials could well reorder it, so numbers are "
            "shown to 2 significant digits.",
            "",
        ]
    headers = ["Parameter", "fANOVA", f"fANOVA {level} interval", "PED-ANOVA",
               f"PED-ANOVA {level} interval"]  # fmt: skip
    rows = [
        [
            code(str(p)), _number(v, reliable), _interval(fanova, p, reliable),
            _number(ped.at[p, "importance"], reliable) if p in ped.index else MISSING,
            _interval(ped, p, reliable),
        ]
        for p, v in fanova["importance"].items()
    ]  # fmt: skip
    lines += [*table(headers, rows, [False, True, True, True, True]), ""]
    excluded = fanova.attrs.get("excluded") or []
    if excluded:
        names = ", ".join(code(n) for n in excluded)
        lines += [
            f"Not assessed (absent from some trials, constant, or re-ranged): {names}.",
            "",
        ]
    if analysis.figure:
        lines += [
            f"![Hyperparameter importance]({analysis.figure})",
            "",
            f"Figure: importance by fANOVA and PED-ANOVA over {n} trials measured at "
            f"{fanova.attrs['measured_at']}; whiskers: the {level} bootstrap interval over "
            f"{resamples} resamples.",
            "",
        ]
    return lines


def _valued_by(trials: Sequence[FrozenTrial], index: int) -> list[FrozenTrial]:
    """The complete trials valued by objective ``index`` alone (what fANOVA reads)."""
    out = []
    for t in trials:
        if t.state != TrialState.COMPLETE or t.values is None or len(t.values) <= index:
            continue
        t = copy.copy(t)
        t.values = [t.values[index]]
        out.append(t)
    return out


def objectives_importance_section(
    trials: Sequence[FrozenTrial], names: Sequence[str], directions: Sequence[StudyDirection]
) -> list[str]:
    """A multi-objective study's ``## Importance per objective``: each parameter's fANOVA share
    of each objective's variance with its bootstrap interval, as Markdown lines (none for a
    single objective).

    "Which choices matter" is often asked of accuracy and cost together: the width may decide
    the parameter count while the learning rate decides accuracy. Pruned trials have no vector
    in Optuna, so this reads the complete trials' final values.

    Example:
        >>> import optuna
        >>> from optuna.distributions import FloatDistribution
        >>> dist = {"lr": FloatDistribution(0, 1), "width": FloatDistribution(0, 1)}
        >>> trials = [optuna.trial.create_trial(values=[lr, 100 * w], params={"lr": lr,
        ...           "width": w}, distributions=dist)
        ...           for lr, w in ((0.1, 0.9), (0.5, 0.2), (0.9, 0.5), (0.3, 0.7))]
        >>> minimize = optuna.study.StudyDirection.MINIMIZE
        >>> lines = objectives_importance_section(trials, ["val_loss", "params"], [minimize] * 2)
        >>> lines[0], "too few" in lines[2]
        ('## Importance per objective', True)
    """
    if len(names) < 2:
        return []
    lines = ["## Importance per objective", ""]
    complete = _valued_by(trials, 0)
    n = len(complete)
    if n < MIN_TRIALS_TO_RANK:
        return [
            *lines,
            f"Not ranked: {n} complete trials are too few (fewer than {MIN_TRIALS_TO_RANK}) "
            "for a ranking per objective to mean something.",
            "",
        ]
    frames = {
        name: importance_intervals(_valued_by(trials, i), directions[i], method="fanova")
        for i, name in enumerate(names)
    }
    assessed = [f for f in frames.values() if not f.empty]
    params = sorted({str(p) for f in assessed for p in f.index})
    dimensions = param_dimensions(complete, params)
    reliable = ranking_verdict(n, dimensions) is Verdict.RELIABLE
    level = f"{next(iter(assessed)).attrs.get('level', 0.9):.0%}" if assessed else "90%"
    lines += [
        f"fANOVA's share of each objective's variance that each parameter explains, over the "
        f"{n} complete trials' final values (pruned trials have no value of every objective), "
        f"with its {level} percentile bootstrap interval over {N_RESAMPLES} resamples; each "
        "column sums to 1. A parameter can matter for one objective and not another: where "
        "two intervals overlap, the data do not say which parameter matters more.",
        "",
    ]
    if not reliable:
        lines += [
            f"> **Warning:** unreliable: {n} trials, fewer than the {needed_trials(dimensions)} "
            f"that {dimensions} parameter dimensions need; shares are shown to 2 significant "
            "digits.",
            "",
        ]
    # Ordered by the first objective's importance, then by name.
    first = frames[names[0]]
    order = [p for p in map(str, first.index) if p in params] if not first.empty else []
    order += [p for p in params if p not in order]
    rows = []
    for p in order:
        row = [code(p)]
        for frame in frames.values():
            if p not in frame.index:
                row.append(MISSING)
                continue
            share = _number(frame.at[p, "importance"], reliable)
            row.append(f"{share} [{_interval(frame, p, reliable)}]")
        rows.append(row)
    headers = ["Parameter", *(f"{code(name)} ({level} interval)" for name in names)]
    lines += [*table(headers, rows, [False, *(True for _ in names)]), ""]
    for name, frame in frames.items():
        if frame.empty:
            lines += [f"{code(name)}: not assessed: {frame.attrs.get('reason', 'no data')}", ""]
    return lines
