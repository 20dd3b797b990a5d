"""The study database: opening it, loading a study, and every write beyond Optuna's public API.

All of sweeplab's storage concerns live in this package, in the manner of ``optuna.storages``:

- opening: :func:`open_storage` (WAL and a busy timeout for SQLite, retried schema races),
  :func:`load_study` (the one loader: it never creates a database or a study, and names the
  studies there when the one asked for is missing), :func:`mask_secrets` and
  :func:`describe_storage` (no password is ever shown);
- a study's artifacts (checkpoints, weights) in an Optuna artifact store beside the database
  (:func:`open_artifact_store`, :func:`put_artifact`, :func:`get_artifact`...), indexed by the
  trials' attributes;
- the budget lock (:func:`budget_lock`) several drivers of one study share;
- batched and low-level writes that reach into Optuna's private API (:func:`write_user_attrs`,
  :func:`write_intermediate_values`, :func:`count_by_state`, heartbeats, stale-trial queries),
  all in one module (``_optuna.py``) so that an Optuna upgrade breaks one file.

What the records are called is :mod:`sweeplab.studies.records`. :mod:`sweeplab.analysis` reads
studies through this package only.

Example:
    >>> import optuna
    >>> from sweeplab.studies import storage
    >>> db = storage.open_storage("sqlite:///:memory:")
    >>> study = optuna.create_study(storage=db, study_name="demo")
    >>> trial = study.ask()
    >>> storage.write_user_attrs(study, trial, {"seed": 3, "train_loss": [0.9, 0.5]})
    >>> storage.write_intermediate_values(study, trial, {1: 0.5, 2: 0.7})
    >>> frozen = storage.reload(study, trial)
    >>> frozen.user_attrs["seed"], frozen.intermediate_values
    (3, {1: 0.5, 2: 0.7})
    >>> storage.count_by_state(study)[optuna.trial.TrialState.RUNNING]
    1
"""

from __future__ import annotations

from sweeplab.studies.storage._artifacts import (
    ArtifactUnusable,
    AtomicFileSystemArtifactStore,
    artifact_id,
    check_writable,
    default_location,
    delete_study_files,
    get_artifact,
    live_artifacts,
    open_artifact_store,
    put_artifact,
    remove_artifact,
    resolve_location,
    sweep_study_files,
)
from sweeplab.studies.storage._lock import LOCK_SUFFIX, budget_lock, lock_path
from sweeplab.studies.storage._open import (
    HEARTBEAT_GRACE_S,
    HEARTBEAT_INTERVAL_S,
    absolute_url,
    database_fault,
    describe_storage,
    is_database_error,
    is_in_memory,
    load_study,
    mask_secrets,
    open_storage,
    root_cause,
    storage_url,
    study_names,
)
from sweeplab.studies.storage._optuna import (
    Param,
    ask_new,
    count_by_state,
    held_params,
    never_beat,
    record_heartbeat,
    reload,
    set_param,
    set_state,
    set_system_attr,
    stale_trials,
    stamp_started,
    storage_of,
    tell,
    trial_by_number,
    write_intermediate_values,
    write_trial_records,
    write_user_attrs,
)

__all__ = [
    "HEARTBEAT_GRACE_S",
    "HEARTBEAT_INTERVAL_S",
    "LOCK_SUFFIX",
    "ArtifactUnusable",
    "AtomicFileSystemArtifactStore",
    "Param",
    "absolute_url",
    "artifact_id",
    "ask_new",
    "budget_lock",
    "check_writable",
    "count_by_state",
    "database_fault",
    "default_location",
    "delete_study_files",
    "describe_storage",
    "get_artifact",
    "held_params",
    "is_database_error",
    "is_in_memory",
    "live_artifacts",
    "load_study",
    "lock_path",
    "mask_secrets",
    "never_beat",
    "open_artifact_store",
    "open_storage",
    "put_artifact",
    "record_heartbeat",
    "reload",
    "remove_artifact",
    "resolve_location",
    "root_cause",
    "set_param",
    "set_state",
    "set_system_attr",
    "stale_trials",
    "stamp_started",
    "storage_of",
    "storage_url",
    "study_names",
    "sweep_study_files",
    "tell",
    "trial_by_number",
    "write_intermediate_values",
    "write_trial_records",
    "write_user_attrs",
]
