"""Read a sweeplab study database and explain it: frames, importances, figures, a report.

A sweeplab study is a plain single-objective Optuna study; this package only reads it (it never
creates a database, a study or a trial), so it can run against a study that is still going.

- :func:`frames` loads a study into ``Frames(trials, curves)``: one row per trial (state,
  objective, metrics at the best epoch, timings, failure reason, ``param.<name>`` columns) and one
  row per trial x epoch (the learning curves).
- :func:`param_importances` gives seeded fANOVA (or PED-ANOVA) importances over the COMPLETE
  trials.
- Figures, each written as PNG and SVG (no pyplot, no global matplotlib state, seaborn's
  colour-blind palette): :func:`plot_learning_curves` (every trial, by state),
  :func:`plot_optimization_history` (with best-so-far; :func:`plot_objectives_history` draws a
  panel per objective of a multi-objective study), :func:`plot_importances`,
  :func:`plot_importance_comparison` (fANOVA and PED-ANOVA side by side),
  :func:`plot_marginal_effects`, :func:`plot_interactions` (binned heatmaps of the top pairs),
  :func:`plot_parallel_coordinates`, :func:`plot_generalization_gap` (train vs held-out accuracy)
  and :func:`plot_isolation` of :func:`isolation_table` (the best trial per value of each
  hyperparameter, the Deep Learning Tuning Playbook's isolation plot).
- :func:`rung_correlations` asks whether early stopping is trustworthy: Spearman's ρ of the
  objective between consecutive ASHA rungs (:func:`asha_rungs`).
- :func:`write_report` writes ``report.md``, a self-contained ``report.html`` (images embedded,
  opens offline) and the figures, byte-identical for the same database.
- :func:`ablation_table` summarises an ablation study (trials tagged ``variant`` and ``seed``):
  mean ± std over seeds per variant, and each variant's difference from the baseline with a
  confidence interval and Welch's t test. :func:`to_markdown`, :func:`to_latex`, :func:`to_csv`
  and :func:`to_html` print it as papers do; :func:`write_ablation_tables` writes all four and
  :func:`ablation_bar_chart` draws the differences.
- :func:`ablation_path` replays the greedy ablation path of a ``--mode path`` study (Fawcett &
  Hoos 2016): per step the parameter flipped, its value, the objective after the step and the
  share of the default-to-target gain it explains; :func:`path_to_markdown`,
  :func:`path_to_latex`, :func:`write_path_tables` and :func:`ablation_path_chart` show it.
- :func:`seed_variance` is the spread of one configuration over seeds (``--mode seeds``).
- :func:`render_ablation_sections` writes every ablation linked to a study and returns the
  report's ``## Ablations`` section.

The ablation functions above live in the subpackage :mod:`sweeplab.analysis.ablation`, one module
per role (statistics, path, seeds, cells and tables, charts, report section), and are
re-exported here.

Importing this package has no side effects: matplotlib and seaborn are imported by the plotting
functions when first called, and no backend is selected.

Example:
    >>> import os, tempfile
    >>> import optuna
    >>> from sweeplab import analysis
    >>> storage = optuna.storages.InMemoryStorage()
    >>> study = optuna.create_study(storage=storage, study_name="demo", direction="maximize")
    >>> for lr in (0.1, 0.01, 0.001):
    ...     study.enqueue_trial({"lr": lr})
    ...     trial = study.ask()
    ...     lr = trial.suggest_float("lr", 1e-4, 1.0, log=True)
    ...     for epoch in (1, 2):
    ...         trial.report(1 - lr * epoch, step=epoch)
    ...     _ = study.tell(trial, 1 - lr * 2)
    >>> trials, curves = analysis.frames(storage, "demo")
    >>> trials[["number", "state", "value", "param.lr"]]
       number     state  value  param.lr
    0       0  COMPLETE  0.800     0.100
    1       1  COMPLETE  0.980     0.010
    2       2  COMPLETE  0.998     0.001
    >>> len(curves)
    6
    >>> analysis.asha_rungs(grace_period=2, reduction_factor=3, max_epochs=18)
    [2, 6, 18]
    >>> with tempfile.TemporaryDirectory() as out:
    ...     report = analysis.write_report(storage, "demo", out)
    ...     print(report.name, "trial #2" in report.read_text(), sorted(os.listdir(out))[-2:])
    report.md True ['report.html', 'report.md']
"""

from sweeplab.analysis._frames import Frames, curves_frame, frames, trials_frame
from sweeplab.analysis._importance import param_importances
from sweeplab.analysis._isolation import isolation_table, plot_generalization_gap, plot_isolation
from sweeplab.analysis._pareto import (
    directions_of,
    objective_names,
    pareto_frame,
    pareto_numbers,
    plot_objectives_history,
    plot_pareto,
)
from sweeplab.analysis._plots import (
    plot_importances,
    plot_learning_curves,
    plot_optimization_history,
)
from sweeplab.analysis._report import write_report
from sweeplab.analysis._rungs import rung_correlations
from sweeplab.analysis._search_plots import (
    plot_importance_comparison,
    plot_interactions,
    plot_marginal_effects,
    plot_parallel_coordinates,
)
from sweeplab.analysis.ablation import (
    ablation_bar_chart,
    ablation_metric,
    ablation_path,
    ablation_path_chart,
    ablation_table,
    greedy_path,
    path_to_html,
    path_to_latex,
    path_to_markdown,
    path_trials_frame,
    render_ablation_sections,
    seed_variance,
    seed_variance_markdown,
    to_csv,
    to_html,
    to_latex,
    to_markdown,
    write_ablation_tables,
    write_path_tables,
)
from sweeplab.studies.asha import asha_rungs

__all__ = [
    "Frames",
    "ablation_bar_chart",
    "ablation_metric",
    "ablation_path",
    "ablation_path_chart",
    "ablation_table",
    "asha_rungs",
    "curves_frame",
    "directions_of",
    "frames",
    "greedy_path",
    "isolation_table",
    "objective_names",
    "param_importances",
    "pareto_frame",
    "pareto_numbers",
    "path_to_html",
    "path_to_latex",
    "path_to_markdown",
    "path_trials_frame",
    "plot_generalization_gap",
    "plot_importance_comparison",
    "plot_importances",
    "plot_interactions",
    "plot_isolation",
    "plot_learning_curves",
    "plot_marginal_effects",
    "plot_objectives_history",
    "plot_optimization_history",
    "plot_parallel_coordinates",
    "plot_pareto",
    "render_ablation_sections",
    "rung_correlations",
    "seed_variance",
    "seed_variance_markdown",
    "to_csv",
    "to_html",
    "to_latex",
    "to_markdown",
    "trials_frame",
    "write_ablation_tables",
    "write_path_tables",
    "write_report",
]
