"""Study specs, the study database, and running studies through Ray Tune.

- the spec: :func:`load_spec` (a TOML file or a preset), :func:`parse_spec`,
  :func:`spec_from_dict`, :class:`StudySpec`; :func:`preset_names`, :func:`preset_text`;
- running: :func:`run_study` (run or resume until the budget is met) and :func:`run_ablation`
  (``sweeplab ablate``), each returning a summary;
- the database: :func:`open_storage`, :func:`load_study`, :func:`open_study`,
  :func:`stored_spec`, :func:`mask_secrets` (more in :mod:`sweeplab.studies.storage`; the
  names of the records in :mod:`sweeplab.studies.records`);
- the errors (:mod:`sweeplab.studies.errors`), each with its exit code.

Names are imported on first use (PEP 562), so the command line's ``--help`` pays for no spec
validation, Optuna, Ray or torch import.

Example:
    >>> from sweeplab.studies import load_spec
    >>> spec = load_spec("quickstart").with_overrides(n_trials=4, max_epochs=3)
    >>> spec.budget.n_trials, spec.search.sampler, spec.space.names[:3]
    (4, 'tpe', ('lr', 'batch_size', 'init'))

Running it (``run_study(spec)``, or ``sweeplab run quickstart`` from a shell) starts local Ray
workers, so it is not executed here; nor is ``run_ablation("quickstart", storage=...)``
(``sweeplab ablate quickstart``), which trains variants of its best configuration over seeds.
"""

from __future__ import annotations

import importlib
from typing import Any

from sweeplab.studies.errors import (
    DatabaseFault,
    DatasetMissing,
    InvalidArgument,
    SpecConflict,
    SpecError,
    StorageError,
    StudyNotFound,
    SweeplabError,
    UsageError,
)
from sweeplab.studies.records import ABLATION_MODES

# Public name -> the module that defines it, imported when the name is first used.
_HOMES = {
    "AblationSummary": "sweeplab.studies.ablation",
    "RunSummary": "sweeplab.studies._run",
    "StudySpec": "sweeplab.studies._spec",
    "Trial": "sweeplab.studies._tune.function",
    "TrialPruned": "sweeplab.studies._tune.function",
    "delete_study": "sweeplab.studies.weights",
    "load_model": "sweeplab.studies.weights",
    "load_spec": "sweeplab.studies._spec",
    "load_study": "sweeplab.studies.storage",
    "mask_secrets": "sweeplab.studies.storage",
    "open_storage": "sweeplab.studies.storage",
    "open_study": "sweeplab.studies._study",
    "parse_spec": "sweeplab.studies._spec",
    "preset_names": "sweeplab.studies._spec",
    "preset_text": "sweeplab.studies._spec",
    "run_ablation": "sweeplab.studies.ablation",
    "run_study": "sweeplab.studies._run",
    "spec_from_dict": "sweeplab.studies._spec",
    "stored_spec": "sweeplab.studies._study",
}

__all__ = [
    "ABLATION_MODES",
    "DatasetMissing",
    "InvalidArgument",
    "SpecConflict",
    "SpecError",
    "DatabaseFault",
    "StorageError",
    "StudyNotFound",
    "SweeplabError",
    "UsageError",
    *sorted(_HOMES),
]


def __getattr__(name: str) -> Any:
    if name in ("ablation", "storage", "asha", "cli", "weights"):  # subpackages and modules, on use
        return importlib.import_module(f"sweeplab.studies.{name}")
    if name not in _HOMES:
        raise AttributeError(f"module 'sweeplab.studies' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
