"""Reserving a slot of a study's trial budget, in the database, across every driver of the study.

A study ends with exactly ``n_trials`` finished trials (COMPLETE + PRUNED) however many drivers
share it and however often they crash: a driver starts a trial only after counting, under the
study's lock (:func:`sweeplab.studies.storage.budget_lock`), the finished and RUNNING trials of
all of them, and only while their sum is below the budget. A RUNNING trial of a driver that died
holds its slot until recovery frees it; :meth:`Budget.recover_others` does that while the budget
is spoken for, so another driver's crash cannot stall this one for good.
"""

from __future__ import annotations

import contextlib
import enum
import time
import warnings
from typing import Any

import optuna
from optuna.trial import TrialState

from sweeplab.studies import records, storage
from sweeplab.studies._recovery import Interrupted, recover_interrupted


class NoSlot(enum.Enum):
    """Why :meth:`Budget.reserve` started no trial."""

    #: Finished trials meet the budget: the study is done.
    FINISHED = "finished"
    #: Running trials hold the remaining slots: one may still fail and free its slot.
    WAITING = "waiting"


class Budget:
    """The trial budget of one study, as this driver sees it in the database.

    Args:
        study: the study (RDB storage: the counts are every driver's).
        n_trials: trials with a result (COMPLETE + PRUNED) the study should end with.
        driver: this driver's identity, stamped on every trial it starts (recovery reads it).
    """

    def __init__(self, study: optuna.Study, n_trials: int, driver: dict[str, Any]) -> None:
        self.study = study
        self.n_trials = n_trials
        self.driver = driver
        self._last_recovery = time.monotonic()

    def counts(self) -> dict[TrialState, int]:
        """Trials per state, read from the database in one snapshot (other drivers' included)."""
        return storage.count_by_state(self.study)

    def reserve(self) -> optuna.Trial | NoSlot:
        """Start a trial if the budget has a free slot; else say why not."""
        with storage.budget_lock(self.study):
            counts = self.counts()
            done = counts[TrialState.COMPLETE] + counts[TrialState.PRUNED]
            if done >= self.n_trials:
                return NoSlot.FINISHED
            if done + counts[TrialState.RUNNING] >= self.n_trials:
                return NoSlot.WAITING
            with warnings.catch_warnings():
                # Optuna warns that heartbeats are meant for Study.optimize; we beat for ask/tell.
                warnings.simplefilter("ignore", UserWarning)
                # Enqueued trials (retries, a resumed study's interrupted ones) are asked first;
                # with none counted, the ask skips reading them.
                waiting = counts[TrialState.WAITING]
                trial = self.study.ask() if waiting else storage.ask_new(self.study)
            # Stamp the trial before sampling, so that recovery can always tell whose it is.
            storage.stamp_started(self.study, trial, {records.DRIVER: self.driver})
        return trial

    def recover_others(self) -> list[Interrupted]:
        """Free the slots of RUNNING trials whose driver died (at most once per heartbeat
        interval; trials of live drivers are left alone). Returns what was recovered."""
        now = time.monotonic()
        if now - self._last_recovery < storage.HEARTBEAT_INTERVAL_S:
            return []
        self._last_recovery = now
        with contextlib.suppress(Exception):  # tried again at the next interval
            return recover_interrupted(self.study)
        return []
