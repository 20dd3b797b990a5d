"""The greedy ablation path of a ``sweeplab ablate --mode path`` study, step by step.

Fawcett & Hoos (2016), "Analysing differences between algorithm configurations through
ablation": from the default configuration, every parameter still at its default is flipped to
its target (best) value, one at a time; the flip that improves the objective most is kept, and
the walk repeats until the target is reached. A few flips usually explain almost all of the
default-to-target gain (1-4 parameters, > 95 %, in their experiments).

The trials of a path study carry user attributes ``variant`` (the configuration's name),
``seed``, ``step`` (0 for the default, i for a candidate of step i), ``component`` (the parameter
flipped), ``source`` (the variant it was flipped from) and ``change`` (the entries it changed).
:func:`greedy_path` replays the walk from those trials alone, so the runner that chooses the
next step and the report that shows the path read the same decisions out of the same data.

For step i with mean objective m_i over the seeds (m_0 the default's, m_d the target's after
all d flips):

- Δ_i = m_i − m_{i−1} (``delta``);
- gain share_i = Δ_i / (m_d − m_0) (``gain_share``), and the cumulative share
  (m_i − m_0) / (m_d − m_0) (``cumulative_share``). Both are signed, so they read the same for a
  minimised objective; a step can explain a negative share when the greedy choice was the least
  harmful one. They are NaN until the path has reached the target, or when m_d = m_0, and when
  the total change m_d − m_0 is not significant (Welch's t test over the seeds, p ≥ 0.05, or
  fewer than 2 seeds a side): a share of a gain that is within the seed noise is noise too.

The steps are chosen on the objective (the validation split, as the search chose); the m_i of
Δ and of the shares are the same rule as the ablation table's (:func:`analysis.ablation_metric`):
the objective's held-out counterpart (``val_acc`` -> ``test_acc``) where the trials recorded it,
else the objective itself. ``attrs["metric"]`` says which.

The target's m_d is measured on the path, with the same seeds as every step, not taken from the
search: the best trial of a search is its luckiest draw, and would inflate the total gain.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.study import StudyDirection

from sweeplab.analysis._frames import study_direction
from sweeplab.analysis.ablation.stats import Comparison, welch
from sweeplab.studies import records
from sweeplab.studies.storage import load_study

__all__ = ["PATH_COLUMNS", "ablation_path", "describe_change", "greedy_path", "path_trials_frame"]

#: Columns of :func:`greedy_path` and their dtypes. ``objective_*`` and ``delta`` are in the
#: objective's units (fractions for accuracies); the shares are fractions (0.95, not 95 %).
PATH_COLUMNS: dict[str, str] = {
    "step": "int64",
    "parameter": "string",
    "value": "string",
    "variant": "string",
    "candidates": "int64",
    "n": "int64",
    "objective_mean": "float64",
    "objective_std": "float64",
    "delta": "float64",
    "gain_share": "float64",
    "cumulative_share": "float64",
    "metric_mean": "float64",
    "metric_std": "float64",
    "test_acc_mean": "float64",
    "test_acc_std": "float64",
}

_TRIAL_COLUMNS = {
    "number": "int64",
    "state": "string",
    "value": "float64",
    "seed": "Int64",
    "variant": "string",
    "step": "Int64",
    "component": "string",
    "source": "string",
    "change": "string",
    "test_acc": "float64",
    "metric": "float64",
}


def _recorded(attrs: Mapping[str, Any], metric: str | None) -> float:
    """A trial's final ``metric``: its own attribute, or a training function's final metric."""
    if metric is None:
        return math.nan
    for value in (attrs.get(metric), (attrs.get(records.FINAL_METRICS) or {}).get(metric)):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return math.nan


def path_trials_frame(
    trials: Sequence[optuna.trial.FrozenTrial], metric: str | None = None
) -> pd.DataFrame:
    """One row per trial with what :func:`greedy_path` reads; ``change`` as JSON text, and
    ``metric`` the trial's final value of ``metric`` (NaN where not recorded)."""

    def row(t: optuna.trial.FrozenTrial) -> dict[str, Any]:
        a = t.user_attrs
        change = a.get(records.CHANGE)
        return {
            "number": t.number,
            "state": t.state.name,
            "value": t.value if t.value is not None else math.nan,
            "seed": a.get(records.SEED),
            "variant": a.get(records.VARIANT),
            "step": a.get(records.STEP),
            "component": a.get(records.COMPONENT),
            "source": a.get(records.SOURCE),
            "change": None if change is None else json.dumps(change),
            "test_acc": a.get(records.TEST_ACC, math.nan),
            "metric": _recorded(a, metric),
        }

    rows = [row(t) for t in trials]
    return pd.DataFrame(
        {c: pd.Series([r[c] for r in rows], dtype=dt) for c, dt in _TRIAL_COLUMNS.items()}
    )


def _number(x: Any) -> str:
    if isinstance(x, bool) or x is None:
        return {True: "on", False: "off", None: "dropped"}[x]
    if isinstance(x, float):
        return f"{x:.4g}"
    if isinstance(x, list):
        return "[" + ", ".join(map(str, x)) + "]"
    return str(x)


def describe_change(component: str, change: Mapping[str, Any]) -> str:
    """The new value of a flipped component, its children's in parentheses.

    Example:
        >>> describe_change("optimizer", {"optimizer": "sgd", "momentum": 0.8, "beta2": None})
        'sgd (momentum 0.8, beta2 dropped)'
        >>> describe_change("augment.crop", {"augment": ["crop"], "crop_padding": 1})
        'on (crop_padding 1)'
    """
    if component in change:
        head, own = _number(change[component]), component
    elif "." in component and component.split(".", 1)[0] in change:
        own, element = component.split(".", 1)
        head = "on" if element in (change[own] or []) else "off"
    else:
        head, own = "", None
    rest = [f"{k} {_number(v)}" for k, v in change.items() if k != own]
    if not rest:
        return head
    return f"{head} ({', '.join(rest)})".strip()


def _eq(column: pd.Series, value: Any) -> np.ndarray:
    # Nullable columns compare to NA where a value is missing; missing never matches.
    return (column == value).fillna(False).to_numpy(dtype=bool)


def _complete(trials: pd.DataFrame, seeds: Sequence[int] | None) -> pd.DataFrame:
    done = trials[
        _eq(trials["state"], "COMPLETE")
        & trials["variant"].notna().to_numpy(dtype=bool)
        & trials["value"].notna().to_numpy(dtype=bool)
    ]
    if seeds is not None:
        done = done[done["seed"].isin(list(seeds)).fillna(False).to_numpy(dtype=bool)]
    # A re-run of one (variant, seed) is the same experiment again; the last one counts.
    return done[~done.duplicated(["variant", "seed"], keep="last") | done["seed"].isna()]


def greedy_path(
    trials: pd.DataFrame,
    *,
    components: Sequence[str],
    direction: StudyDirection | str = "maximize",
    seeds: Sequence[int] | None = None,
    metric: str | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Replay the greedy ablation path from a path study's trials: one row per decided step.

    Step 0 is decided when the default configuration has a COMPLETE trial for every seed; step i
    when every component not yet flipped has a candidate (``step`` i, ``source`` the winner of
    step i − 1) with a COMPLETE trial for every seed. The winner is the candidate with the best
    mean objective (``value``); a tie goes to the component listed first in ``components``. The
    walk stops at the first undecided step, so a path still running shows the steps it has.

    Args:
        trials: :func:`path_trials_frame` of the study (or any frame with its columns).
        components: the parameters the path flips, in their tie-breaking order.
        direction: ``"maximize"`` or ``"minimize"`` (or a :class:`StudyDirection`).
        seeds: the seeds every configuration is trained with; only their trials count, and a
            step needs all of them. ``None``: any seed counts, and one trial is enough.
        metric: the name of the frame's ``metric`` column, which Δ and the shares are measured
            on when every step has it; ``None`` (or missing values): on the objective.
        confidence: the coverage of the total change's interval; the shares are shown only
            when the change is significant at ``1 - confidence``.

    Returns:
        Columns :data:`PATH_COLUMNS`. Step 0's ``parameter`` and ``value`` are NA, its
        ``candidates`` 1. ``attrs`` holds ``components``, ``direction``, ``seeds``,
        ``complete`` (whether the path reached the target), ``metric`` (what Δ is measured on:
        the given name, or ``None`` for the objective), and the total default-to-target change
        ``total`` = {``delta``, ``ci_low``, ``ci_high``, ``p_value``, ``significant``} (Welch;
        NaN and not significant until the path is complete or with < 2 seeds a side).

    Example:
        >>> t = pd.DataFrame({
        ...     "state": ["COMPLETE"] * 8, "seed": [0, 1] * 4,
        ...     "value": [0.5, 0.52, 0.6, 0.62, 0.8, 0.82, 0.9, 0.92],
        ...     "variant": ["default"] * 2 + ["+a"] * 2 + ["+b"] * 2 + ["+a+b"] * 2,
        ...     "step": [0, 0, 1, 1, 1, 1, 2, 2], "component": [None] * 2 + ["a"] * 2 + ["b"] * 4,
        ...     "source": [None] * 2 + ["default"] * 4 + ["+b"] * 2,
        ...     "change": [None] * 2 + ['{"a": 1}'] * 2 + ['{"b": 2}'] * 2 + ['{"a": 1}'] * 2})
        >>> t.loc[6:, "component"] = "a"
        >>> path = greedy_path(t, components=["a", "b"], seeds=[0, 1])
        >>> path[["step", "parameter", "value", "metric_mean", "gain_share"]].round(3)
           step parameter value  metric_mean  gain_share
        0     0      <NA>  <NA>         0.51         NaN
        1     1         b     2         0.81        0.75
        2     2         a     1         0.91        0.25
        >>> path.attrs["total"]["significant"], round(path.attrs["total"]["delta"], 3)
        (True, 0.4)
    """
    direction = StudyDirection[direction.upper()] if isinstance(direction, str) else direction
    maximize = direction == StudyDirection.MAXIMIZE
    components = list(components)
    done = _complete(trials, seeds)
    need = len(set(seeds)) if seeds is not None else 1
    has_test = "test_acc" in done.columns
    has_metric = metric is not None and "metric" in done.columns

    def stats(group: pd.DataFrame) -> dict[str, Any]:
        x = pd.Series(group["value"].to_numpy(dtype="float64"))
        test = pd.Series(
            group["test_acc"].to_numpy(dtype="float64", na_value=np.nan) if has_test else []
        ).dropna()
        held = (
            group["metric"].to_numpy(dtype="float64", na_value=np.nan)
            if has_metric
            else np.full(len(x), np.nan)
        )
        return {
            "variant": str(group["variant"].iloc[0]),
            "n": len(x),
            "objective_mean": x.mean(),
            "objective_std": x.std(ddof=1),
            "values": x.to_numpy(),
            "metric_values": held,
            "test_acc_mean": test.mean() if len(test) else math.nan,
            "test_acc_std": test.std(ddof=1) if len(test) > 1 else math.nan,
        }

    def enough(group: pd.DataFrame) -> bool:
        return group["seed"].nunique() >= need if seeds is not None else len(group) >= need

    rows: list[dict[str, Any]] = []
    default = done[_eq(done["step"], 0)]
    if len(default) and enough(default[_eq(default["variant"], default["variant"].iloc[0])]):
        default = default[_eq(default["variant"], default["variant"].iloc[0])]
        rows.append(
            {"step": 0, "parameter": None, "value": None, "candidates": 1, **stats(default)}
        )
        current, flipped = rows[0]["variant"], []
        for step in range(1, len(components) + 1):
            here = done[_eq(done["step"], step) & _eq(done["source"], current)]
            remaining = [c for c in components if c not in flipped]
            groups = []
            for c in remaining:
                group = here[_eq(here["component"], c)]
                if group.empty:
                    break
                # One candidate per component by construction; of hand-made duplicates, the last.
                group = group[_eq(group["variant"], group["variant"].iloc[-1])]
                if not enough(group):
                    break
                groups.append((c, group, stats(group)))
            if len(groups) < len(remaining):
                break
            best = groups[0]
            for candidate in groups[1:]:  # strict: ties keep the earlier component
                m, b = candidate[2]["objective_mean"], best[2]["objective_mean"]
                if (m > b) if maximize else (m < b):
                    best = candidate
            component, group, summary = best
            change = group["change"].iloc[-1]
            value = None if pd.isna(change) else describe_change(component, json.loads(change))
            rows.append(
                {
                    "step": step,
                    "parameter": component,
                    "value": value,
                    "candidates": len(groups),
                    **summary,
                }
            )
            current = summary["variant"]
            flipped.append(component)

    complete = len(rows) == len(components) + 1
    # Δ on the held-out metric where every step recorded it for every seed, else the objective.
    on_metric = bool(rows) and all(not np.isnan(r["metric_values"]).any() for r in rows)
    key = "metric_values" if on_metric else "values"
    for r in rows:
        r["metric_mean"] = float(np.mean(r[key]))
        r["metric_std"] = float(np.std(r[key], ddof=1)) if len(r[key]) > 1 else math.nan
    means = [r["metric_mean"] for r in rows]
    total = (
        welch(rows[-1][key], rows[0][key], confidence)
        if complete
        else Comparison(math.nan, math.nan, math.nan, math.nan, math.nan)
    )
    significant = bool(math.isfinite(total.p_value) and total.p_value < 1.0 - confidence)
    for i, r in enumerate(rows):
        r["delta"] = math.nan if i == 0 else means[i] - means[i - 1]
        usable = complete and significant and total.delta != 0 and math.isfinite(total.delta)
        r["gain_share"] = r["delta"] / total.delta if usable and i else math.nan
        r["cumulative_share"] = (means[i] - means[0]) / total.delta if usable else math.nan
    table = pd.DataFrame(
        {c: pd.Series([r[c] for r in rows], dtype=dt) for c, dt in PATH_COLUMNS.items()}
    )
    table.attrs.update(
        components=components,
        direction=direction.name.lower(),
        seeds=None if seeds is None else list(seeds),
        complete=complete,
        metric=metric if on_metric else None,
        confidence=confidence,
        total={
            "delta": total.delta, "ci_low": total.ci_low, "ci_high": total.ci_high,
            "p_value": total.p_value, "significant": significant,
        },
    )  # fmt: skip
    return table


def ablation_path(
    storage: str | optuna.storages.BaseStorage, ablation_study_name: str
) -> pd.DataFrame:
    """The greedy ablation path of a study written by ``sweeplab ablate --mode path``.

    The components and seeds are read from the study's ``sweeplab_ablation`` user attribute,
    the direction from the study; see :func:`greedy_path` for the rows and columns. ``attrs``
    also holds ``objective`` (the metric name), ``study`` and ``parent``.

    Raises:
        StorageError, StudyNotFound: no such database or study.
        ValueError: the study is not a path ablation.
    """
    study = load_study(storage, ablation_study_name, read_only=True)
    how = records.AblationRecord.from_attr(study.user_attrs.get(records.ABLATION))
    if how is None or how.mode != "path":
        mode = None if how is None else how.mode
        raise ValueError(
            f"study {ablation_study_name!r} is not a path ablation (mode {mode!r}); ablate its "
            "parent in mode 'path' to make one."
        )
    objective = study.user_attrs.get(records.OBJECTIVE)
    name = objective if isinstance(objective, str) and objective else "objective"
    # The ablation table's rule (ablation_metric): the objective's held-out counterpart.
    held_out = "test_" + name.removeprefix("val_")
    table = greedy_path(
        path_trials_frame(study.get_trials(deepcopy=False), held_out),
        components=list(how.components),
        direction=study_direction(study),
        seeds=how.seed_values or None,
        metric=held_out,
    )
    table.attrs.update(
        objective=objective if isinstance(objective, str) and objective else "objective",
        study=ablation_study_name,
        parent=study.user_attrs.get(records.PARENT),
    )
    return table
