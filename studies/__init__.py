"""Study specs, the study database, and running studies through Ray Tune.

Example:
    >>> from sweeplab.studies import load_spec
    >>> spec = load_spec("quickstart").with_overrides(n_trials=4, max_epochs=3)
    >>> spec.budget.n_trials, spec.search.sampler, spec.space.names[:3]
    (4, 'tpe', ('lr', 'batch_size', 'init'))

Running it (``run_study(spec)``, or ``sweeplab run quickstart`` from a shell) starts local Ray
workers, so it is not executed here; nor is ``run_ablation("quickstart", storage=...)``
(``sweeplab ablate quickstart``), which trains variants of its best configuration over seeds.
"""

from sweeplab.studies._ablate import AblationSummary, run_ablation
from sweeplab.studies._errors import (
    DatasetMissing,
    SpecConflict,
    SpecError,
    StorageError,
    StudyNotFound,
    SweeplabError,
    UsageError,
)
from sweeplab.studies._run import RunSummary, run_study
from sweeplab.studies._spec import StudySpec, load_spec, parse_spec, preset_names, spec_from_dict
from sweeplab.studies._storage import mask_url, open_storage
from sweeplab.studies._study import open_study, stored_spec

__all__ = [
    "AblationSummary",
    "DatasetMissing",
    "RunSummary",
    "SpecConflict",
    "SpecError",
    "StorageError",
    "StudyNotFound",
    "StudySpec",
    "SweeplabError",
    "UsageError",
    "load_spec",
    "mask_url",
    "open_storage",
    "open_study",
    "parse_spec",
    "preset_names",
    "run_ablation",
    "run_study",
    "spec_from_dict",
    "stored_spec",
]
