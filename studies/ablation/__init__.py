"""Ablation studies: which of a configuration's choices matter (``sweeplab ablate``).

- :mod:`.plan`: the components of a search space (each searched entry, each subset element),
  their "off" values, and the variants of the modes planned up front (``loo``, ``add``,
  ``grid``, ``seeds``); pure functions;
- :mod:`.path`: the greedy ablation path (Fawcett & Hoos 2016), planned one step at a time;
- :mod:`.study`: the linked study an ablation trains into, its baseline, and the (variant,
  seed) pairs it still lacks;
- :mod:`.run`: running them through Ray Tune, one round (or one per path step).

The tables, path replay and charts of a finished ablation are :mod:`sweeplab.analysis`'s.

Example:
    >>> from sweeplab.searchspace import parse_space
    >>> from sweeplab.studies.ablation import plan_ablation
    >>> space = parse_space({"lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True},
    ...                      "dropout": {"type": "float", "low": 0.0, "high": 0.5}})
    >>> plan = plan_ablation(space, {"lr": 0.01, "dropout": 0.2}, mode="loo", seeds=[0, 1, 2])
    >>> [v.name for v in plan.variants], len(plan.pairs)
    (['baseline', '-lr', '-dropout'], 9)
"""

from __future__ import annotations

from sweeplab.studies.ablation.path import path_cost, plan_path
from sweeplab.studies.ablation.plan import (
    AblationPlan,
    Component,
    Variant,
    find_components,
    plan_ablation,
)
from sweeplab.studies.ablation.run import AblationSummary, run_ablation
from sweeplab.studies.ablation.study import Ablation, Baseline, open_ablation

__all__ = [
    "Ablation",
    "AblationPlan",
    "AblationSummary",
    "Baseline",
    "Component",
    "Variant",
    "find_components",
    "open_ablation",
    "path_cost",
    "plan_ablation",
    "plan_path",
    "run_ablation",
]
