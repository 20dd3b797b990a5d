"""Ablation analysis: what an ablation study (``sweeplab ablate``) found, as tables and figures.

An ablation study lives in the same database as the study it ablates; its trials carry the user
attributes ``variant`` and ``seed`` (and, for ``--mode path``, ``step``, ``component``,
``source``, ``change``). This subpackage reads them and says what each component is worth. One
module per role:

- :mod:`~sweeplab.analysis.ablation.stats`: the numbers. :func:`ablation_table` (mean ± std over
  seeds per variant, each variant's difference from the baseline with Welch's or a bootstrap
  interval and Welch's t test), the tests themselves (:func:`welch`, :func:`bootstrap_ci`) and
  the metric names every other module prints.
- :mod:`~sweeplab.analysis.ablation.path`: the greedy ablation path of ``--mode path`` (Fawcett &
  Hoos 2016) replayed from the trials: :func:`greedy_path`, :func:`path_trials_frame` (also read
  by the runner that picks the next step) and :func:`ablation_path`.
- :mod:`~sweeplab.analysis.ablation.seeds`: :func:`seed_variance`, the spread of one
  configuration over seeds (``--mode seeds``), and its Markdown.
- :mod:`~sweeplab.analysis.ablation.cells` and :mod:`~sweeplab.analysis.ablation.tables`: the
  ablation table and the path table as Markdown, LaTeX, CSV and HTML; ``cells`` says what each
  cell holds in each format's dialect, ``tables`` lays the cells out and writes the files.
- :mod:`~sweeplab.analysis.ablation.charts`: :func:`ablation_bar_chart` and
  :func:`ablation_path_chart`.
- :mod:`~sweeplab.analysis.ablation.report`: :func:`render_ablation_sections`, the report's
  ``## Ablations`` section over every ablation linked to a study.

Everything here is also reachable from :mod:`sweeplab.analysis`, which re-exports the functions;
this face adds the column schemas and the statistical building blocks. Importing it has no side
effects (matplotlib and seaborn are imported by the chart functions when called).

Example:
    >>> import pandas as pd
    >>> from sweeplab.analysis import ablation
    >>> trials = pd.DataFrame({
    ...     "state": ["COMPLETE"] * 4, "variant": ["baseline", "baseline", "-aug", "-aug"],
    ...     "train_acc": [0.99] * 4, "val_acc": [0.9] * 4, "test_acc": [0.90, 0.92, 0.80, 0.84]})
    >>> table = ablation.ablation_table(trials)
    >>> table[["variant", "n", "delta"]].round(3)
        variant  n  delta
    0  baseline  2   0.00
    1      -aug  2  -0.09
"""

from sweeplab.analysis.ablation.charts import ablation_bar_chart, ablation_path_chart
from sweeplab.analysis.ablation.path import (
    PATH_COLUMNS,
    ablation_path,
    describe_change,
    greedy_path,
    path_trials_frame,
)
from sweeplab.analysis.ablation.report import render_ablation_sections
from sweeplab.analysis.ablation.seeds import (
    SEED_VARIANCE_COLUMNS,
    seed_variance,
    seed_variance_markdown,
)
from sweeplab.analysis.ablation.stats import (
    ABLATION_COLUMNS,
    METHODS,
    N_RESAMPLES,
    Comparison,
    ablation_metric,
    ablation_table,
    bootstrap_ci,
    welch,
)
from sweeplab.analysis.ablation.tables import (
    path_to_html,
    path_to_latex,
    path_to_markdown,
    to_csv,
    to_html,
    to_latex,
    to_markdown,
    write_ablation_tables,
    write_path_tables,
)

__all__ = [
    "ABLATION_COLUMNS",
    "METHODS",
    "N_RESAMPLES",
    "PATH_COLUMNS",
    "SEED_VARIANCE_COLUMNS",
    "Comparison",
    "ablation_bar_chart",
    "ablation_metric",
    "ablation_path",
    "ablation_path_chart",
    "ablation_table",
    "bootstrap_ci",
    "describe_change",
    "greedy_path",
    "path_to_html",
    "path_to_latex",
    "path_to_markdown",
    "path_trials_frame",
    "render_ablation_sections",
    "seed_variance",
    "seed_variance_markdown",
    "to_csv",
    "to_html",
    "to_latex",
    "to_markdown",
    "welch",
    "write_ablation_tables",
    "write_path_tables",
]
