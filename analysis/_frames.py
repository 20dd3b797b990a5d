"""Flatten a sweeplab study into two pandas frames: one row per trial, one row per trial x epoch.

The frames are built from a single snapshot of the study's trials, so a study that is still
running gives a consistent picture (a trial cannot be RUNNING in one frame and COMPLETE in the
other). Every user attribute is optional: trials written by older sweeplab versions, by hand, or
that failed before training started simply get NA in the columns they lack.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, NamedTuple

import optuna
import pandas as pd
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial

from sweeplab.analysis._pareto import with_objective_columns
from sweeplab.studies import records
from sweeplab.studies.storage import load_study

__all__ = [
    "CURVE_COLUMNS",
    "STATES",
    "TRIAL_COLUMNS",
    "Frames",
    "curves_frame",
    "curves_frame_of",
    "frames",
    "study_direction",
    "trials_frame",
    "trials_frame_of",
]

#: Trial states in the order reports list them.
STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
#: Per-epoch metrics sweeplab records as user-attribute lists (index 0 = epoch 1).
METRICS = (records.TRAIN_LOSS, records.TRAIN_ACC, records.VAL_LOSS, records.VAL_ACC)

#: Fixed columns of :func:`trials_frame` and their dtypes; ``param.<name>`` columns follow.
TRIAL_COLUMNS: dict[str, str] = {
    "number": "int64",
    "state": "string",
    "value": "float64",
    "best_intermediate": "float64",
    "epochs_run": "Int64",
    "best_epoch": "Int64",
    "train_acc": "float64",
    "val_acc": "float64",
    "test_acc": "float64",
    "train_loss": "float64",
    "val_loss": "float64",
    "test_loss": "float64",
    "stopped_early": "boolean",
    "wall_time_s": "float64",
    "started": "datetime64[ns, UTC]",
    "completed": "datetime64[ns, UTC]",
    "duration_s": "float64",
    "fail_reason": "string",
    "error": "string",
    "interrupted": "boolean",
    "retry_of": "Int64",
    "variant": "string",
    "seed": "Int64",
    # Population based training: what the trial copied and changed (JSON text; none elsewhere).
    "pbt_schedule": "string",
}

#: Columns of :func:`curves_frame` and their dtypes.
CURVE_COLUMNS: dict[str, str] = {
    "number": "int64",
    "state": "string",
    "epoch": "int64",
    "train_loss": "float64",
    "train_acc": "float64",
    "val_loss": "float64",
    "val_acc": "float64",
    "objective": "float64",
    "epoch_seconds": "float64",
}

PARAM_PREFIX = "param."


class Frames(NamedTuple):
    """The two frames of a study.

    Attributes:
        trials: one row per trial, columns :data:`TRIAL_COLUMNS` then ``param.<name>``.
        curves: one row per trial and epoch, columns :data:`CURVE_COLUMNS`.
    """

    trials: pd.DataFrame
    curves: pd.DataFrame


# ---------------------------------------------------------------------------------------------
# Tolerant readers: a malformed attribute becomes NA, never an exception.
# ---------------------------------------------------------------------------------------------


def _as_float(x: Any) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return math.nan
    return float(x)


def _as_int(x: Any) -> int | None:
    if isinstance(x, bool):
        return None
    if isinstance(x, int):
        return x
    if isinstance(x, float) and x.is_integer():
        return int(x)
    return None


def _as_bool(x: Any) -> bool | None:
    return x if isinstance(x, bool) else None


def _as_str(x: Any) -> str | None:
    if x is None:
        return None
    return x if isinstance(x, str) else str(x)


def _as_floats(x: Any) -> list[float]:
    if not isinstance(x, (list, tuple)):
        return []
    return [_as_float(v) for v in x]


def _at_epoch(values: Sequence[float], epoch: int | None) -> float:
    """The value at a 1-based ``epoch``, or the last value when the epoch is unknown."""
    if not values:
        return math.nan
    if epoch is not None and 1 <= epoch <= len(values):
        return values[epoch - 1]
    return values[-1]


def _utc(unix_seconds: Any, fallback: datetime | None) -> datetime | None:
    seconds = _as_float(unix_seconds)
    if math.isfinite(seconds):
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    if fallback is None:
        return None
    # Optuna stores naive local times; astimezone() reads a naive datetime as local time.
    return fallback.astimezone(timezone.utc)


def _best(values: Sequence[float], direction: StudyDirection) -> float:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan
    return max(finite) if direction == StudyDirection.MAXIMIZE else min(finite)


def study_direction(study: optuna.Study) -> StudyDirection:
    """The direction of a study's objective; of a multi-objective study's, the first one's
    (the ``value`` column, the curves and the single-objective views follow the first
    objective; :mod:`~sweeplab.analysis._pareto` reads them all)."""
    return study.directions[0]


# ---------------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------------


def _trial_row(trial: FrozenTrial, direction: StudyDirection) -> dict[str, Any]:
    attrs = trial.user_attrs
    lists = {m: _as_floats(attrs.get(m)) for m in METRICS}
    intermediate = [
        _as_float(trial.intermediate_values[s]) for s in sorted(trial.intermediate_values)
    ]
    best_epoch = _as_int(attrs.get(records.BEST_EPOCH))
    epochs_run = _as_int(attrs.get(records.EPOCHS_RUN))
    if epochs_run is None:
        epochs_run = max([len(v) for v in lists.values()] + [len(intermediate)])
    started = _utc(attrs.get(records.RUN_STARTED_AT), trial.datetime_start)
    completed = _utc(attrs.get(records.RUN_FINISHED_AT), trial.datetime_complete)
    is_complete = trial.state == optuna.trial.TrialState.COMPLETE
    row: dict[str, Any] = {
        "number": trial.number,
        "state": trial.state.name,
        # Optuna also stores the last reported value on PRUNED trials; it is not a final
        # objective, so only COMPLETE trials get one here (see best_intermediate).
        # Of several objectives, the first (the others: value.<name>, with_objective_columns).
        "value": _as_float(trial.values[0]) if is_complete and trial.values else math.nan,
        "best_intermediate": _best(intermediate, direction),
        "epochs_run": epochs_run,
        "best_epoch": best_epoch,
        # One meaning everywhere (``best`` reads the same function): see records.train_accuracy.
        "train_acc": _as_float(records.train_accuracy(attrs)),
        "val_acc": _at_epoch(lists["val_acc"], best_epoch),
        "test_acc": _as_float(attrs.get(records.TEST_ACC)),
        **{m: _at_epoch(lists[m], best_epoch) for m in ("train_loss", "val_loss")},
        "test_loss": _as_float(attrs.get(records.TEST_LOSS)),
        "stopped_early": _as_bool(attrs.get(records.STOPPED_EARLY)),
        "wall_time_s": _as_float(attrs.get(records.WALL_TIME_S)),
        "started": started,
        "completed": completed,
        "duration_s": (completed - started).total_seconds() if started and completed else math.nan,
        "fail_reason": _as_str(attrs.get(records.FAIL_REASON)),
        "error": _as_str(attrs.get(records.ERROR)),
        "interrupted": _as_bool(attrs.get(records.INTERRUPTED)),
        "retry_of": _as_int(attrs.get(records.RETRY_OF)),
        # Ablation studies (`sweeplab ablate`) tag each trial with its variant and seed.
        "variant": _as_str(attrs.get(records.VARIANT)),
        "seed": _as_int(attrs.get(records.SEED)),
        "pbt_schedule": _schedule(attrs.get(records.PBT_SCHEDULE)),
    }
    return row


def _schedule(schedule: Any) -> str | None:
    return json.dumps(schedule) if isinstance(schedule, list) and schedule else None


def own_metrics(trial: FrozenTrial) -> list[str]:
    """The per-epoch metrics a user's training function reported for the trial, by name
    (empty for sweeplab's own loop, whose metrics are the fixed columns)."""
    names = trial.user_attrs.get(records.CURVE_NAMES)
    return [str(n) for n in names] if isinstance(names, list) else []


def _own_columns(trial: FrozenTrial, best_epoch: int | None) -> dict[str, float]:
    """A training function's metrics: each curve at the best epoch, then its final metrics (the
    function's last word on a name it also reported per epoch)."""
    attrs = trial.user_attrs
    out = {m: _at_epoch(_as_floats(attrs.get(m)), best_epoch) for m in own_metrics(trial)}
    final = attrs.get(records.FINAL_METRICS)
    if isinstance(final, Mapping):
        out.update({str(k): _as_float(v) for k, v in final.items()})
    return out


def _curve_rows(trial: FrozenTrial) -> list[dict[str, Any]]:
    attrs = trial.user_attrs
    names = dict.fromkeys([*METRICS, records.EPOCH_SECONDS, *own_metrics(trial)])
    lists = {m: _as_floats(attrs.get(m)) for m in names}
    n_listed = max(len(v) for v in lists.values())
    epochs = sorted({int(s) for s in trial.intermediate_values} | set(range(1, n_listed + 1)))
    rows = []
    for epoch in epochs:
        row: dict[str, Any] = {"number": trial.number, "state": trial.state.name, "epoch": epoch}
        for name, values in lists.items():
            row[name] = values[epoch - 1] if 1 <= epoch <= len(values) else math.nan
        row["objective"] = _as_float(trial.intermediate_values.get(epoch))
        rows.append(row)
    return rows


def _params_of(trial: FrozenTrial) -> dict[str, Any]:
    """The trial's parameters; for a WAITING trial, the ones queued for it.

    ``enqueue_trial`` (how sweeplab re-queues an interrupted trial) keeps the parameters in the
    ``fixed_params`` system attribute until a worker picks the trial up.
    """
    if trial.params or trial.state != optuna.trial.TrialState.WAITING:
        return dict(trial.params)
    fixed = trial.system_attrs.get(records.FIXED_PARAMS)
    return dict(fixed) if isinstance(fixed, Mapping) else {}


def _param_dtype(values: Sequence[Any]) -> str:
    """The narrowest nullable dtype that holds every present value of one parameter."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "boolean"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "Int64"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return "float64"
    if all(isinstance(v, str) for v in present):
        return "string"
    return "object"


def _typed(rows: list[dict[str, Any]], columns: Mapping[str, str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            name: pd.Series([row[name] for row in rows], dtype=dtype, name=name)
            for name, dtype in columns.items()
        }
    )


# ---------------------------------------------------------------------------------------------
# Public
# ---------------------------------------------------------------------------------------------


def _with_own_columns(
    rows: list[dict[str, Any]], own: list[dict[str, float]], columns: Mapping[str, str]
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Rows and columns with a training function's own metrics: a name that is also a fixed
    float column fills it; any other becomes a float column of its own, after the fixed ones."""
    extra: dict[str, str] = {}
    for row, values in zip(rows, own, strict=True):
        for name, value in values.items():
            if columns.get(name) == "float64":
                row[name] = value
            elif name not in columns:
                extra[name] = "float64"
    names = dict(sorted(extra.items()))
    for row, values in zip(rows, own, strict=True):
        for name in names:
            row[name] = values.get(name, math.nan)
    return rows, {**columns, **names}


def trials_frame_of(trials: Sequence[FrozenTrial], direction: StudyDirection) -> pd.DataFrame:
    """:func:`trials_frame` of a list of trials already read (one snapshot of a study), for a
    caller that builds several frames from the same snapshot (the report)."""
    trials = sorted(trials, key=lambda t: t.number)
    rows = [_trial_row(t, direction) for t in trials]
    own = [_own_columns(t, row["best_epoch"]) for t, row in zip(trials, rows, strict=True)]
    frame = _typed(*_with_own_columns(rows, own, TRIAL_COLUMNS))
    per_trial = [_params_of(t) for t in trials]
    names = sorted({name for p in per_trial for name in p})
    params = {}
    for name in names:
        values = [p.get(name) for p in per_trial]
        params[PARAM_PREFIX + name] = pd.Series(values, dtype=_param_dtype(values))
    if params:
        frame = pd.concat([frame, pd.DataFrame(params)], axis=1)
    return frame


def curves_frame_of(trials: Sequence[FrozenTrial]) -> pd.DataFrame:
    """:func:`curves_frame` of a list of trials already read (one snapshot of a study)."""
    rows = [row for t in sorted(trials, key=lambda t: t.number) for row in _curve_rows(t)]
    own = [{k: v for k, v in row.items() if k not in CURVE_COLUMNS} for row in rows]
    return _typed(*_with_own_columns(rows, own, CURVE_COLUMNS))


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial, sorted by trial number.

    Columns are :data:`TRIAL_COLUMNS` (metrics ``train_acc``..``val_loss`` taken at ``best_epoch``
    where it is known, else at the last recorded epoch; ``started``/``completed`` from sweeplab's
    ``run_started_at``/``run_finished_at`` where recorded, else Optuna's own timestamps, in UTC),
    then one ``param.<name>`` column per hyperparameter, sorted by name; a parameter a trial did
    not sample (e.g. ``momentum`` on an adam trial) is NA. WAITING trials show the parameters
    queued for them.

    Args:
        study: a single-objective Optuna study written by sweeplab (or any Optuna study).

    Returns:
        The trials frame; empty (with the fixed columns) for a study without trials.

    Example:
        >>> import optuna
        >>> study = optuna.create_study(direction="maximize")
        >>> trial = study.ask()
        >>> lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        >>> trial.report(0.5, step=1)
        >>> _ = study.tell(trial, 0.5)
        >>> trials_frame(study)[["number", "state", "value", "best_intermediate"]]
           number     state  value  best_intermediate
        0       0  COMPLETE    0.5                0.5
    """
    frame = trials_frame_of(study.get_trials(deepcopy=False), study_direction(study))
    return with_objective_columns(frame, study)


def curves_frame(study: optuna.Study) -> pd.DataFrame:
    """Tidy learning curves: one row per trial and epoch, sorted by trial number then epoch.

    ``objective`` is the intermediate value Optuna recorded at that epoch (step = epoch); the
    metric columns come from the trial's per-epoch user-attribute lists. An epoch appears when any
    of the two sources has it, so a RUNNING trial shows the epochs finished so far.

    Args:
        study: a single-objective Optuna study written by sweeplab.

    Returns:
        The curves frame with columns :data:`CURVE_COLUMNS`.

    Example:
        >>> import optuna
        >>> study = optuna.create_study()
        >>> trial = study.ask()
        >>> trial.report(0.9, step=1)
        >>> trial.report(0.7, step=2)
        >>> curves_frame(study)[["number", "state", "epoch", "objective"]]
           number    state  epoch  objective
        0       0  RUNNING      1        0.9
        1       0  RUNNING      2        0.7
    """
    return curves_frame_of(study.get_trials(deepcopy=False))


def frames(storage: str | optuna.storages.BaseStorage, study_name: str) -> Frames:
    """Load a study and return its trials and curves frames, built from one snapshot.

    Args:
        storage: an Optuna storage URL (``sqlite:///runs/study.db``, ``postgresql://...``) or an
            Optuna storage object.
        study_name: name of the study in that storage.

    Returns:
        ``Frames(trials, curves)``; see :func:`trials_frame` and :func:`curves_frame`.

    Raises:
        StorageError, StudyNotFound: no such database or study.

    Example:
        >>> import optuna
        >>> storage = optuna.storages.InMemoryStorage()
        >>> study = optuna.create_study(storage=storage, study_name="demo")
        >>> study.enqueue_trial({"x": 1.0})
        >>> trials, curves = frames(storage, "demo")
        >>> trials.loc[0, "state"], len(curves)
        ('WAITING', 0)
    """
    study = load_study(storage, study_name, read_only=True)
    snapshot = study.get_trials(deepcopy=False)
    trials = trials_frame_of(snapshot, study_direction(study))
    return Frames(with_objective_columns(trials, study), curves_frame_of(snapshot))
