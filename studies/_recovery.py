"""Finding trials a crash left RUNNING, and queueing them to run again.

Trials run under Ray are driven by ask/tell, which Optuna's own heartbeat thread does not
cover, so the driver records heartbeats itself and stamps each trial with who runs it. On the
next start a RUNNING trial is *interrupted* when its driver process on this host is gone, or
when its heartbeat is older than the grace period (a driver on another machine), or when it
started longer than the grace period ago and never had a heartbeat (its driver died between
``study.ask()`` and stamping it). Such a trial is stored as FAIL with ``interrupted = true``
and the same parameters are queued, with the same seed, to be run again first.
"""

from __future__ import annotations

import datetime
import os
import socket
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from sweeplab.studies._storage import HEARTBEAT_GRACE_S

DRIVER_ATTR = "sweeplab:driver"


def driver_identity() -> dict[str, Any]:
    """This process, in a form that survives PID reuse: host, pid and the pid's start tick."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "start": _start_tick(os.getpid())}


def _start_tick(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            # The command name (field 2) may hold spaces; fields after its ')' are fixed.
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _is_dead_here(driver: dict[str, Any] | None) -> bool:
    """True only when the driver ran on this host and that process is certainly gone."""
    if not driver or driver.get("host") != socket.gethostname():
        return False
    pid = int(driver.get("pid", -1))
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return driver.get("start") is not None and _start_tick(pid) != driver.get("start")


@dataclass(frozen=True)
class Interrupted:
    """A trial found RUNNING with no live driver, and what was done about it."""

    number: int
    params: dict[str, Any]


def recover_interrupted(study: optuna.Study) -> list[Interrupted]:
    """Mark interrupted trials FAIL and queue their parameters again; return what was found.

    Safe with several drivers on one database: a trial another live driver runs is left alone,
    and a trial that another recovering driver already failed is skipped.
    """
    storage = study._storage
    stale_ids = set(storage._get_stale_trial_ids(study._study_id))
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    never_beat = _never_beat(study, running)
    found = []
    for trial in running:
        driver = trial.system_attrs.get(DRIVER_ATTR)
        if (
            trial._trial_id not in stale_ids
            and trial._trial_id not in never_beat
            and not _is_dead_here(driver)
        ):
            continue
        if requeue(study, trial, reason="the driver stopped before this trial finished"):
            found.append(Interrupted(number=trial.number, params=dict(trial.params)))
    return found


def _never_beat(study: optuna.Study, running: list[optuna.trial.FrozenTrial]) -> set[int]:
    """Ids of RUNNING trials that started over a grace period ago and never had a heartbeat.

    A live driver records the first heartbeat right after ``study.ask()``; a trial without one
    that old was orphaned in between, and no heartbeat will ever make it stale.
    """
    now = datetime.datetime.now()
    grace = datetime.timedelta(seconds=HEARTBEAT_GRACE_S)
    old = [t._trial_id for t in running if t.datetime_start and now - t.datetime_start > grace]
    backend = getattr(study._storage, "_backend", study._storage)
    if not old or not isinstance(backend, optuna.storages.RDBStorage):
        return set()
    from optuna.storages._rdb import models

    session = backend.scoped_session()
    try:
        beating = {
            trial_id
            for (trial_id,) in session.query(models.TrialHeartbeatModel.trial_id).filter(
                models.TrialHeartbeatModel.trial_id.in_(old)
            )
        }
    finally:
        session.close()
    return set(old) - beating


def requeue(study: optuna.Study, trial: optuna.trial.FrozenTrial, *, reason: str) -> bool:
    """Store a RUNNING trial as FAIL (interrupted) and queue its parameters and seed again.

    Returns False when the trial had already finished (another driver got there first).
    """
    storage = study._storage
    try:
        # Attributes first: Optuna refuses writes to a trial once it is finished.
        storage.set_trial_user_attr(trial._trial_id, "interrupted", True)
        storage.set_trial_user_attr(trial._trial_id, "fail_reason", "interrupted")
        storage.set_trial_user_attr(
            trial._trial_id, "error", f"interrupted: {reason}; its parameters were queued again"
        )
        if not storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
            return False
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    retry_attrs: dict[str, Any] = {"retry_of": trial.number}
    # An interrupted run is no fault of the trial's: its worker-retry count carries over as is.
    for key in ("seed", "attempt"):
        if key in trial.user_attrs:
            retry_attrs[key] = trial.user_attrs[key]
    study.enqueue_trial(trial.params, user_attrs=retry_attrs)
    return True
