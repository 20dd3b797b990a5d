"""Seed variance of one configuration: how far apart K re-runs of the same settings land.

``sweeplab ablate --mode seeds`` trains the baseline (normally the best trial) K times with K
seeds. The spread of those runs is the noise floor every claimed difference between
configurations has to clear: a 0.3-point "gain" means little when re-running the winner moves
it by 0.8.
"""

from __future__ import annotations

import pandas as pd

from sweeplab.analysis._markdown import table as markdown_table
from sweeplab.analysis.ablation.cells import MARKDOWN, format_number
from sweeplab.analysis.ablation.stats import is_fraction, metric_name

__all__ = ["SEED_VARIANCE_COLUMNS", "seed_variance", "seed_variance_markdown"]

#: Columns of :func:`seed_variance`: one row per metric, in the metric's own units.
SEED_VARIANCE_COLUMNS: dict[str, str] = {
    "metric": "string",
    "n": "int64",
    "mean": "float64",
    "std": "float64",
    "min": "float64",
    "max": "float64",
    "range": "float64",
}


def seed_variance(
    trials: pd.DataFrame, *, objective: str = "objective", variant: str | None = "baseline"
) -> pd.DataFrame:
    """Mean, std (ddof = 1), min, max and range over seeds of the objective and the accuracies.

    Args:
        trials: :func:`analysis.trials_frame` of the study; COMPLETE trials count (those of
            ``variant`` only, unless it is ``None``), the last of several with one seed.
        objective: the objective's metric name; its row reads the trials' ``value`` (the value
            the search optimised, e.g. the best epoch's validation accuracy).
        variant: the variant whose runs are summarised.

    Returns:
        Columns :data:`SEED_VARIANCE_COLUMNS`; rows ``objective`` (the trial value, named in
        ``attrs["objective"]``), then ``test_acc``, ``val_acc`` and ``train_acc`` where recorded.

    Example:
        >>> t = pd.DataFrame({"state": ["COMPLETE"] * 3, "variant": ["baseline"] * 3,
        ...     "seed": [1, 2, 3], "value": [0.95, 0.97, 0.96], "test_acc": [0.94, 0.95, 0.97]})
        >>> seed_variance(t, objective="val_acc").round(4)
             metric  n    mean     std   min   max  range
        0   val_acc  3  0.9600  0.0100  0.95  0.97   0.02
        1  test_acc  3  0.9533  0.0153  0.94  0.97   0.03
    """
    done = trials[trials["state"] == "COMPLETE"]
    if variant is not None and "variant" in done.columns:
        done = done[done["variant"] == variant]
    if "seed" in done.columns:
        done = done[~done.duplicated(["seed"], keep="last") | done["seed"].isna()]
    rows = []
    for metric, column in [
        (objective, "value"),
        *((m, m) for m in ("test_acc", "val_acc", "train_acc")),
    ]:
        if column not in done.columns or (column != "value" and metric == objective):
            continue
        x = pd.to_numeric(done[column], errors="coerce").dropna().astype("float64")
        if x.empty:
            continue
        rows.append(
            {
                "metric": metric,
                "n": len(x),
                "mean": x.mean(),
                "std": x.std(ddof=1),
                "min": x.min(),
                "max": x.max(),
                "range": x.max() - x.min(),
            }
        )
    table = pd.DataFrame(
        {c: pd.Series([r[c] for r in rows], dtype=dt) for c, dt in SEED_VARIANCE_COLUMNS.items()}
    )
    table.attrs.update(objective=objective, variant=variant)
    return table


def seed_variance_markdown(table: pd.DataFrame, *, digits: int = 2) -> str:
    """The seed-variance table as Markdown: accuracies in percent, a footnote on the rows.

    Example:
        >>> t = pd.DataFrame({"state": ["COMPLETE"] * 2, "variant": ["baseline"] * 2,
        ...     "seed": [1, 2], "value": [0.95, 0.97]})
        >>> print(seed_variance_markdown(seed_variance(t, objective="val_acc")).splitlines()[2])
        | validation accuracy (objective) (%) | 2 | 96.00 | 1.41 | 95.00 | 97.00 | 2.00 |
    """
    d = MARKDOWN
    objective = str(table.attrs.get("objective", "objective"))
    rows = []
    for _, r in table.iterrows():
        metric = str(r["metric"])
        fraction = is_fraction(metric)
        scale, places = (100.0, digits) if fraction else (1.0, digits + 2)
        name = metric_name(metric) + (" (objective)" if metric == objective else "")
        cells = [
            d.missing if pd.isna(r[c]) else format_number(scale * float(r[c]), places, d)
            for c in ("mean", "std", "min", "max", "range")
        ]
        rows.append([d.text(name + (" (%)" if fraction else "")), str(int(r["n"])), *cells])
    headers = ["Metric", "n", "Mean", "Std", "Min", "Max", "Range"]
    lines = markdown_table(headers, rows, [False, *([True] * 6)])
    note = (
        f"The same configuration ({d.name(str(table.attrs.get('variant') or 'all trials'))}) "
        "trained once per seed; std with ddof = 1. A difference between configurations smaller "
        "than this spread is within run-to-run noise."
    )
    return "\n".join([*lines, "", note, ""])
