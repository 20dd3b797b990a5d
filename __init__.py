"""sweeplab: hyperparameter search and ablation studies for PyTorch.

The repository's root is this package: its four top-level folders are its subpackages
(``sweeplab.studies``, ``sweeplab.searchspace``, ``sweeplab.trainer``, ``sweeplab.analysis``),
mapped under the one installed name by ``pyproject.toml``. This module is the small public face;
each name is imported on first use, so ``import sweeplab`` (and ``sweeplab --help``) costs no
torch, Ray or pandas import.

- :func:`load_spec` reads and validates a TOML spec (or a preset) into a :class:`StudySpec`
  (:func:`spec_from_dict` the same from a dict, in a notebook);
- :func:`run_study` runs (or resumes) it through Ray Tune into its Optuna database, training
  sweeplab's own models or the user's (``model=``, ``data=``, ``function=``: a training
  function gets a :class:`Trial` to report its epochs to, which raises :class:`TrialPruned`
  when the scheduler stops it);
- :func:`run_ablation` trains variants of a study's best configuration over seeds;
- :func:`open_storage` opens a study database; :func:`frames` reads a study into pandas frames;
  :func:`write_report` writes its Markdown/HTML report;
- every error sweeplab reports to a user is a :class:`SweeplabError` carrying its exit code.

Example:
    >>> import sweeplab
    >>> spec = sweeplab.load_spec("quickstart").with_overrides(n_trials=4, max_epochs=3)
    >>> spec.budget.n_trials, spec.search.sampler
    (4, 'tpe')
    >>> sorted(set(sweeplab.__all__) - set(dir(sweeplab)))
    []
"""

from __future__ import annotations

import importlib
from typing import Any

# Public name -> the module that defines it (imported when the name is first used).
_HOMES = {
    "AblationSummary": "sweeplab.studies",
    "DatasetMissing": "sweeplab.studies",
    "RunSummary": "sweeplab.studies",
    "SpecConflict": "sweeplab.studies",
    "SpecError": "sweeplab.studies",
    "StorageError": "sweeplab.studies",
    "StudyNotFound": "sweeplab.studies",
    "StudySpec": "sweeplab.studies",
    "Trial": "sweeplab.studies",
    "TrialPruned": "sweeplab.studies",
    "SweeplabError": "sweeplab.studies",
    "UsageError": "sweeplab.studies",
    "frames": "sweeplab.analysis",
    "delete_study": "sweeplab.studies",
    "load_model": "sweeplab.studies",
    "load_spec": "sweeplab.studies",
    "open_storage": "sweeplab.studies",
    "run_ablation": "sweeplab.studies",
    "run_study": "sweeplab.studies",
    "spec_from_dict": "sweeplab.studies",
    "write_report": "sweeplab.analysis",
}

__all__ = sorted(_HOMES)
# The subpackages, reachable as attributes too (``sweeplab.analysis.frames``), imported on use.
_SUBPACKAGES = ("analysis", "searchspace", "studies", "trainer")


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"sweeplab.{name}")
    if name not in _HOMES:
        raise AttributeError(f"module 'sweeplab' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
