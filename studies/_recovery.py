"""Finding trials a crash left RUNNING, and queueing them to run again.

Trials run under Ray are driven by ask/tell, which Optuna's own heartbeat thread does not
cover, so the driver records heartbeats itself and stamps each trial with who runs it. On the
next start a RUNNING trial is *interrupted* when its driver process on this host is gone, or
when its heartbeat is older than the grace period (a driver on another machine), or when it
started longer than the grace period ago and never had a heartbeat (its driver died between
``study.ask()`` and stamping it). Such a trial is stored as FAIL with ``interrupted = true``
and the same parameters are queued, with the same seed, to be run again first, continuing from
the trial's last checkpoint when it saved one.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from sweeplab.studies import records, storage


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
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    # A live driver records the first heartbeat right after ``study.ask()``; a trial without one
    # that old was orphaned in between, and no heartbeat will ever make it stale.
    orphaned = storage.stale_trials(study, running) | storage.never_beat(
        study, running, storage.HEARTBEAT_GRACE_S
    )
    found = []
    for trial in running:
        if trial.number not in orphaned and not _is_dead_here(
            trial.system_attrs.get(records.DRIVER)
        ):
            continue
        if requeue(study, trial, reason="the driver stopped before this trial finished"):
            found.append(Interrupted(number=trial.number, params=dict(trial.params)))
    return found


def requeue(study: optuna.Study, trial: optuna.trial.FrozenTrial, *, reason: str) -> bool:
    """Store a RUNNING trial as FAIL (interrupted) and queue its parameters and seed again.

    Returns False when the trial had already finished (another driver got there first).
    """
    try:
        # Attributes first: Optuna refuses writes to a trial once it is finished.
        storage.write_user_attrs(
            study,
            trial,
            {
                records.INTERRUPTED: True,
                records.FAIL_REASON: records.FailReason.INTERRUPTED.value,
                records.ERROR: f"interrupted: {reason}; its parameters were queued again",
            },
        )
        if not storage.set_state(study, trial, TrialState.FAIL):
            return False
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    retry_attrs: dict[str, Any] = {records.RETRY_OF: trial.number}
    # An interrupted run is no fault of the trial's: its worker-retry count carries over as is.
    for key in (records.SEED, records.ATTEMPT):
        if key in trial.user_attrs:
            retry_attrs[key] = trial.user_attrs[key]
    # The re-run continues from the trial's last checkpoint (kept for it: see the searcher).
    if trial.user_attrs.get(records.CHECKPOINT):
        retry_attrs[records.RESUME_FROM] = trial.user_attrs[records.CHECKPOINT]
    study.enqueue_trial(trial.params, user_attrs=retry_attrs)
    return True
