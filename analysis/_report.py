"""A Markdown report of a study, with its figures next to it.

The report is a pure function of the database: it holds no "generated at" time, every list is
sorted, numbers go through one formatter (four significant digits; accuracies, which are
fractions correct, in percent to two decimals, as in the ablation tables) and importance is
seeded, so rerunning it on the same database rewrites ``report.md`` byte for byte (and a diff
between two runs shows what the study did in between). Database passwords are masked wherever
they appear, error messages included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.study import StudyDirection

from sweeplab.analysis._figures import svg_copies
from sweeplab.analysis._frames import (
    PARAM_PREFIX,
    STATES,
    TRIAL_COLUMNS,
    curves_frame_of,
    study_direction,
    trials_frame_of,
)
from sweeplab.analysis._markdown import MISSING, cell, code, escape, metric_cell, table
from sweeplab.analysis._params import distribution_scales
from sweeplab.analysis._pareto import (
    first_objective_view,
    objective_names,
    pareto_section,
    plot_objectives_history,
)
from sweeplab.analysis._plots import plot_learning_curves, plot_optimization_history
from sweeplab.analysis._report_html import HTML_NAME, render_html
from sweeplab.analysis._report_importance import (
    ImportanceAnalysis,
    analyse_importance,
    importance_section,
    objectives_importance_section,
)
from sweeplab.analysis._report_search import analyse_search, search_sections
from sweeplab.analysis._toml import to_toml
from sweeplab.analysis.ablation import render_ablation_sections
from sweeplab.studies import records
from sweeplab.studies.asha import rungs_from_spec
from sweeplab.studies.storage import describe_storage, load_study, mask_secrets

__all__ = ["FIGURES", "REPORT_NAME", "StudyInfo", "render_report", "write_report"]

REPORT_NAME = "report.md"
#: File names of the figures, relative to the report.
FIGURES = {
    "importances": "param_importances.png",
    "curves": "learning_curves.png",
    "history": "optimization_history.png",
}
TOP_N = 20
_ERROR_CHARS = 160
# Ranking for the trials table: finished work first, failures last.
_STATE_RANK = {"COMPLETE": 0, "PRUNED": 1, "RUNNING": 2, "WAITING": 3, "FAIL": 4}


@dataclass(frozen=True, kw_only=True)
class StudyInfo:
    """What the report says about the study besides its trials."""

    name: str
    storage: str  # already free of passwords
    direction: StudyDirection
    objective: str = "objective"
    user_attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def maximize(self) -> bool:
        return self.direction == StudyDirection.MAXIMIZE


# ---------------------------------------------------------------------------------------------
# Ranking
# ---------------------------------------------------------------------------------------------


def rank_trials(trials: pd.DataFrame, maximize: bool) -> pd.DataFrame:
    """Trials ordered for the table: COMPLETE by final value, then PRUNED, RUNNING, WAITING by the
    best value they reached, then FAIL; ties (and missing values) by trial number."""
    score = trials["value"].where(trials["state"] == "COMPLETE", trials["best_intermediate"])
    key = pd.DataFrame(
        {
            "rank": trials["state"].map(lambda s: _STATE_RANK.get(s, len(_STATE_RANK))),
            "score": -score if maximize else score,
            "number": trials["number"],
        }
    )
    order = key.sort_values(["rank", "score", "number"], na_position="last", kind="stable").index
    return trials.loc[order]


def best_trial(trials: pd.DataFrame, maximize: bool) -> pd.Series | None:
    """The best COMPLETE trial's row (lowest number among ties), ``None`` before the first."""
    complete = trials[(trials["state"] == "COMPLETE") & trials["value"].notna()]
    if complete.empty:
        return None
    return rank_trials(complete, maximize).iloc[0]


# ---------------------------------------------------------------------------------------------
# Sections (pure: frames in, Markdown lines out)
# ---------------------------------------------------------------------------------------------


def _summary(info: StudyInfo, trials: pd.DataFrame, best: pd.Series | None) -> list[str]:
    counts = trials["state"].value_counts()
    states = [*STATES, *sorted(set(counts.index) - set(STATES))]
    lines = [
        "## Summary",
        "",
        f"- Study: {code(info.name)} in {code(info.storage)}",
        f"- Objective: {code(info.objective)}, {info.direction.name.lower()}",
        f"- Trials: {len(trials)}",
    ]
    if best is None:
        lines.append("- Best value: none yet — no trial has completed.")
    else:
        lines.append(
            f"- Best value: {info.objective} = {metric_cell(info.objective, best['value'])}, "
            f"trial #{int(best['number'])} (best epoch {cell(best['best_epoch'])} "
            f"of {cell(best['epochs_run'])})"
        )
    wall = trials["wall_time_s"].sum(min_count=1)
    if not pd.isna(wall):
        lines.append(f"- Training time, all trials: {cell(float(wall))} s (sum of `wall_time_s`)")
    n_running = int(counts.get("RUNNING", 0)) + int(counts.get("WAITING", 0))
    if n_running:
        lines.append(
            f"- The study is still running ({n_running} trial(s) RUNNING or WAITING); "
            "this report is a snapshot of the database."
        )
    rows = [[s, str(int(counts.get(s, 0)))] for s in states]
    return [*lines, "", *table(["State", "Trials"], rows, [False, True]), ""]


def _param_columns(trials: pd.DataFrame) -> list[str]:
    return sorted(c for c in trials.columns if c.startswith(PARAM_PREFIX))


#: The metrics sweeplab's own loop records, in the order the report lists them.
_BUILT_IN_METRICS = ("train_acc", "val_acc", "test_acc", "train_loss", "val_loss", "test_loss")


def metric_columns(trials: pd.DataFrame) -> list[str]:
    """The metrics the study's trials recorded: the built-in loop's that any trial has, then a
    training function's own (the columns between the fixed ones and the parameters)."""
    built_in = [m for m in _BUILT_IN_METRICS if trials[m].notna().any()]
    own = [c for c in trials.columns if c not in TRIAL_COLUMNS and not c.startswith(PARAM_PREFIX)]
    return [*built_in, *own]


def _best_configuration(info: StudyInfo, trials: pd.DataFrame, best: pd.Series | None) -> list[str]:
    if best is None:
        return ["## Best configuration", "", "No trial has completed yet.", ""]
    params = [
        [code(c.removeprefix(PARAM_PREFIX)), cell(best[c])]
        for c in _param_columns(trials)
        if not pd.isna(best[c])  # a conditional parameter this trial did not sample
    ]
    metrics = [*metric_columns(trials), "epochs_run", "best_epoch", "wall_time_s"]
    results = [[code(m), metric_cell(m, best[m])] for m in metrics]
    return [
        f"## Best configuration (trial #{int(best['number'])})",
        "",
        *table(["Parameter", "Value"], params, [False, True]),
        "",
        "Results (each metric at the best epoch; test set evaluated once, at the end; a "
        "training function's final metrics as it returned them):",
        "",
        *table(["Metric", "Value"], results, [False, True]),
        "",
        *_kept_weights_lines(info),
    ]


def _kept_weights_lines(info: StudyInfo) -> list[str]:
    """Which trials kept their trained weights (a study that keeps artifacts only)."""
    if not info.user_attrs.get(records.ARTIFACTS):
        return []
    kept = [int(n) for n in info.user_attrs.get(records.KEPT_WEIGHTS) or []]
    if not kept:
        return ["No trial kept its trained weights (none completed with them yet).", ""]
    which = ", ".join(f"#{n}" for n in kept)
    return [
        f"Trained weights kept for trials {which} (best first): "
        f"`sweeplab best {info.name} --weights best.pt` writes them, "
        f"`sweeplab.load_model(storage, {info.name!r})` rebuilds the network.",
        "",
    ]


def _trials_section(info: StudyInfo, trials: pd.DataFrame) -> list[str]:
    if trials.empty:
        return ["## Trials", "", "The study has no trials yet.", ""]
    ranked = rank_trials(trials, info.maximize)
    shown = ranked.head(TOP_N)
    metrics = [m for m in metric_columns(trials) if m != info.objective and not m.endswith("_loss")]
    params = _param_columns(trials)
    headers = [
        "#", "State", code(info.objective), "Epochs", *map(code, metrics), "Time (s)",
        *(code(p.removeprefix(PARAM_PREFIX)) for p in params),
    ]  # fmt: skip
    numeric = [
        pd.api.types.is_numeric_dtype(trials[p]) and trials[p].dtype != "boolean" for p in params
    ]
    right = [True, False, True, True, *[True] * len(metrics), True, *numeric]
    rows = []
    for _, t in shown.iterrows():
        score = t["value"] if t["state"] == "COMPLETE" else t["best_intermediate"]
        shown_score = metric_cell(info.objective, score)
        objective = (
            shown_score if t["state"] == "COMPLETE" or pd.isna(score) else f"({shown_score})"
        )
        rows.append(
            [
                str(int(t["number"])), t["state"], objective, cell(t["epochs_run"]),
                *(metric_cell(m, t[m]) for m in metrics), cell(t["wall_time_s"], 3),
                *(cell(t[p]) for p in params),
            ]
        )  # fmt: skip
    more = len(ranked) - len(shown)
    note = (
        f"Showing the top {len(shown)} of {len(ranked)} trials; {more} more not shown."
        if more
        else f"All {len(ranked)} trial{'s' if len(ranked) != 1 else ''}."
    )
    return [
        "## Trials",
        "",
        f"{note} COMPLETE trials come first, ranked by their final {code(info.objective)}; "
        "PRUNED, RUNNING and WAITING trials follow, then FAIL trials, each showing in "
        "(parentheses) the best value it reached. Accuracies are at the best epoch, "
        "or at the last epoch where no best epoch was recorded.",
        "",
        *table(headers, rows, right),
        "",
    ]


def _failures_section(trials: pd.DataFrame) -> list[str]:
    failed = trials[trials["state"] == "FAIL"].sort_values("number")
    retried = trials[trials["retry_of"].notna()].sort_values("number")
    if failed.empty and retried.empty:
        return []
    lines = ["## Failures and retries", ""]
    if not failed.empty:
        rows = []
        for _, t in failed.iterrows():
            error = "" if pd.isna(t["error"]) else escape(str(t["error"]))
            if len(error) > _ERROR_CHARS:
                error = error[: _ERROR_CHARS - 1].rstrip("\\") + "…"
            rows.append([str(int(t["number"])), cell(t["fail_reason"]), error or MISSING])
        lines += [*table(["#", "Reason", "Error"], rows, [True, False, False]), ""]
    for _, t in retried.iterrows():
        lines.append(
            f"- Trial #{int(t['number'])} re-ran trial #{int(t['retry_of'])}, "
            "which a crash interrupted."
        )
    return [*lines, ""] if not retried.empty else lines


def _figure_section(title: str, figure: str | None, missing: str) -> list[str]:
    body = f"![{title}]({figure})" if figure else missing
    return [f"## {title}", "", body, ""]


def _spec_section(info: StudyInfo) -> list[str]:
    spec = info.user_attrs.get(records.SPEC)
    if spec is None:
        return []
    if not isinstance(spec, dict):
        return ["## Study spec", "", f"Stored spec not readable as a table: {cell(str(spec))}", ""]
    # The study stores the validated spec as a dict, not the file's text; as TOML it reads
    # like the file the user wrote. Folded away: it is a hundred lines of reference.
    text = to_toml(spec).rstrip("\n")
    return [
        "## Study spec",
        "",
        '<details markdown="1">',
        f"<summary>The spec the study ran, as TOML ({len(text.splitlines())} lines, defaults "
        "filled in, unset values as comments)</summary>",
        "",
        "```toml",
        text,
        "```",
        "",
        "</details>",
        "",
    ]


def render_report(
    info: StudyInfo,
    trials: pd.DataFrame,
    importance: ImportanceAnalysis | None,
    figures: dict[str, str | None],
    *,
    extra: Sequence[str] = (),
) -> str:
    """The whole report as Markdown text (passwords masked), from frames already computed.

    Args:
        info: the study's name, storage, direction, objective name and user attributes.
        trials: the trials frame.
        importance: fANOVA and PED-ANOVA with their intervals (``None``: not assessed).
        figures: ``FIGURES`` keys mapped to the relative file name of a written figure, or
            ``None`` where no figure could be drawn.
        extra: further Markdown lines (search analysis, ablation), placed before the spec.
    """
    best = best_trial(trials, info.maximize)
    lines = [
        f"# Study report: {escape(info.name)}",
        "",
        *_summary(info, trials, best),
        *_best_configuration(info, trials, best),
        *_trials_section(info, trials),
        *_failures_section(trials),
        *importance_section(importance),
        *_figure_section(
            "Learning curves",
            figures.get("curves"),
            "No trial has reported an objective value yet, so there are no curves to plot.",
        ),
        *_figure_section(
            "Optimisation history",
            figures.get("history"),
            "No trial has completed yet, so there is no history to plot.",
        ),
        *extra,
        *_spec_section(info),
    ]
    return mask_secrets("\n".join(lines).rstrip("\n") + "\n")


# ---------------------------------------------------------------------------------------------
# Public
# ---------------------------------------------------------------------------------------------


def write_report(
    storage: str | optuna.storages.BaseStorage,
    study_name: str,
    out_dir: str | Path,
    *,
    svg: bool = False,
) -> Path:
    """Write ``out_dir/report.md``, ``report.html`` and the PNG figures for one study.

    The report has: a summary (trials per state, objective and direction, best value), the best
    configuration (parameters, accuracies, epochs), the top 20 trials, failures and retries,
    seeded fANOVA and PED-ANOVA importances with bootstrap intervals and a bar chart (measured
    at an ASHA rung when more trials reached it than completed), learning curves and the
    optimisation history. It can be written while the study runs, and with no complete trial (it
    then says so in place of the figures). The same database always gives a byte-identical
    ``report.md``.

    Args:
        storage: an Optuna storage URL or storage object; a password in it is shown as ``***``.
        study_name: name of the study in that storage.
        out_dir: folder for ``report.md`` and the figures (created if missing); the figures are
            linked with relative paths, so the folder can be moved as a whole.
        svg: also write each figure as SVG beside its PNG (for a paper; the report itself
            shows the PNGs). Off by default: the SVGs took a quarter of the report's time.

    Returns:
        The path of ``report.md``.

    Raises:
        StorageError, StudyNotFound: no such database or study.

    Example:
        >>> import tempfile, optuna
        >>> storage = optuna.storages.InMemoryStorage()
        >>> study = optuna.create_study(storage=storage, study_name="demo", direction="maximize")
        >>> for x in (0.2, 0.9):
        ...     trial = study.ask()
        ...     trial.report(x, step=1)
        ...     study.tell(trial, x).number
        0
        1
        >>> with tempfile.TemporaryDirectory() as d:
        ...     text = write_report(storage, "demo", d).read_text()
        >>> "trial #1" in text
        True
    """
    study = load_study(storage, study_name, read_only=True)
    # Of several objectives, the sections below read the first; the Pareto section, all.
    snapshot = first_objective_view(study.get_trials(deepcopy=False))
    direction = study_direction(study)
    objective = study.user_attrs.get(records.OBJECTIVE)
    if len(study.directions) > 1:
        objective = objective_names(study)[0]
    info = StudyInfo(
        name=study.study_name,
        storage=describe_storage(storage),
        direction=direction,
        objective=objective if isinstance(objective, str) and objective else "objective",
        user_attrs=dict(study.user_attrs),
    )
    trials = trials_frame_of(snapshot, direction)
    curves = curves_frame_of(snapshot)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    best = best_trial(trials, info.maximize)
    rungs = rungs_from_spec(info.user_attrs.get(records.SPEC))
    # The report's own figures; the ablation charts below keep their SVGs, which their
    # section links to.
    with svg_copies(svg):
        importance = analyse_importance(
            snapshot, direction, rungs=rungs, figure=out / FIGURES["importances"]
        )
        # Each figure is drawn only when it has data; the report says why where one is missing.
        figures: dict[str, str | None] = dict.fromkeys(FIGURES)
        figures["importances"] = importance.figure
        if curves["objective"].notna().any():
            figures["curves"] = plot_learning_curves(
                curves,
                out / FIGURES["curves"],
                objective=info.objective,
                highlight=None if best is None else int(best["number"]),
                rungs=rungs or (),
            ).name
        if best is not None:
            history = out / FIGURES["history"]
            # Several objectives: a panel each, with the Pareto trials marked, rather than the
            # first objective's history alone.
            figures["history"] = (
                plot_objectives_history(study, history)
                if len(study.directions) > 1
                else plot_optimization_history(
                    trials, history, direction=direction, objective=info.objective
                )
            ).name
        search = analyse_search(
            trials,
            curves,
            out,
            objective=info.objective,
            maximize=info.maximize,
            scales=distribution_scales(snapshot),
            ranking=importance.ranking,
            spec=info.user_attrs.get(records.SPEC),
            svg=svg,
        )
        pareto = pareto_section(study, out)
        if len(study.directions) > 1:
            pareto += objectives_importance_section(
                study.get_trials(deepcopy=False), objective_names(study), study.directions
            )
    ablation = render_ablation_sections(storage, study_name, out).strip("\n")
    extra = [*search_sections(search, info.objective), *([ablation, ""] if ablation else [])]
    extra = [*pareto, *extra]
    text = render_report(info, trials, importance, figures, extra=extra)
    path = out / REPORT_NAME
    # newline="\n": the same bytes on every platform.
    with path.open("w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    page = render_html(text, out, title=f"Study report: {info.name}", scrub=mask_secrets)
    with (out / HTML_NAME).open("w", encoding="utf-8", newline="\n") as f:
        f.write(page)
    return path
