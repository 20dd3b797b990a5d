"""The bridge between Ray Tune and the Optuna study database.

Ray Tune's stock ``OptunaSearch`` keeps its own copy of the search state, tells Optuna a
scheduler-stopped trial as COMPLETE, and loses its state on restore. This searcher does none of
that: every decision reads or writes the study in the RDB storage, which stays the single source
of truth.

- ``suggest`` asks Optuna only while (complete + pruned + running) < ``n_trials``, counted in
  the database under the study's budget lock (:func:`sweeplab.studies.storage.budget_lock`),
  so a resumed study, or one that several drivers share, never runs more or fewer trials than
  its budget;
- a trial whose worker process died is stored FAIL with that cause and, up to ``retries``
  times, run again with the same parameters and seed;
- every epoch's objective becomes an Optuna intermediate value;
- a trial ASHA stopped is told PRUNED (with its curve), never COMPLETE;
- a trial that raised or diverged is told FAIL with its message, and the study goes on.

A :class:`Proposer` may take the sampler's place: it chooses each new trial's configuration
itself (``sweeplab ablate`` hands out (variant, seed) pairs this way), and the run ends when it
has nothing left to propose.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import warnings
from collections import defaultdict
from typing import Any, Protocol

import optuna
from optuna.trial import TrialState
from ray.tune.search import Searcher

from sweeplab import searchspace
from sweeplab.studies import records, storage
from sweeplab.studies._recovery import driver_identity, recover_interrupted, requeue
from sweeplab.studies._trainable import EARLIER_EPOCHS

WORKER_DIED = "the trial's worker process died or was killed before the trial finished"


def member_key(trial_id: str, number: int | str) -> str:
    """How the searcher names one member of a pack (Ray's trial id, then the Optuna number)."""
    return f"{trial_id}#{number}"


class Proposer(Protocol):
    """Chooses the configurations of a study's new trials in place of the sampler."""

    def remaining(self) -> int:
        """How many more trials it has to propose; the run asks for no trial once it is 0."""
        ...

    def __call__(self, trial: optuna.Trial) -> dict[str, Any]:
        """Record ``trial``'s parameters in the study and return its configuration.

        A ``seed`` user attribute set on ``trial`` (with ``trial.set_user_attr``) becomes its
        training seed.
        """
        ...


class StudySearcher(Searcher):
    """A Ray Tune ``Searcher`` that samples from, and records into, one Optuna study.

    Args:
        study: the Optuna study (RDB storage) — the source of truth.
        space: the search space, sampled define-by-run per trial.
        n_trials: trials with a result (COMPLETE + PRUNED) the study should end with.
        seed: base seed; a trial's training seed is ``seed + trial.number``.
        objective, direction: the metric and whether it is maximised or minimised.
        use_best_value: tell the best epoch's objective (restore-best-weights) rather than the
            last epoch's.
        time_limit_s: no new trial is asked for after this many seconds.
        max_failures: stop asking after this many failed trials in this run.
        retries: how many times a trial whose worker process died is run again (same
            parameters and seed) before it stays FAIL.
        proposer: chooses each trial's configuration instead of sampling ``space``; the run
            ends when it has none left (failed trials are not replaced).
        pack: Optuna trials per Ray trial (``[search] pack``). Above 1, ``suggest`` returns
            ``{"members": [...]}`` and results carry a ``members`` list (see
            :mod:`studies._packed_trial`); each member is still an ordinary Optuna trial.
    """

    def __init__(
        self,
        *,
        study: optuna.Study,
        space: searchspace.SearchSpace,
        n_trials: int,
        seed: int,
        objective: str,
        direction: str,
        use_best_value: bool = True,
        time_limit_s: float | None = None,
        max_failures: int | None = None,
        retries: int = 1,
        proposer: Proposer | None = None,
        pack: int = 1,
    ) -> None:
        super().__init__(metric=objective, mode="max" if direction == "maximize" else "min")
        self.study = study
        self.space = space
        self.n_trials = n_trials
        self.seed = seed
        self.objective = objective
        self.use_best_value = use_best_value
        self.proposer = proposer
        self.pack = pack
        self.max_failures = max_failures if max_failures is not None else max(n_trials, 3)
        self.retries = retries
        self._last_recovery = time.monotonic()
        self.deadline = None if time_limit_s is None else time.monotonic() + time_limit_s
        self.failed_this_run = 0
        self.stop_reason: str | None = None
        self.events: list[tuple[str, int, dict]] = []  # (kind, number, info) for the progress view
        self._driver = driver_identity()
        self._live: dict[str, optuna.Trial] = {}
        self._curves: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
        self._lock = threading.Lock()
        self._stop_heartbeat = threading.Event()
        self._heartbeat = threading.Thread(
            target=self._beat, name="sweeplab-heartbeat", daemon=True
        )
        self._heartbeat.start()

    # --- Ray Tune's Searcher interface -----------------------------------------------------------
    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **_: Any
    ) -> bool:
        return True  # metric and mode come from the spec, not from Tune

    def suggest(self, trial_id: str) -> dict | str | None:
        if self.stop_reason is not None:
            return Searcher.FINISHED
        if self.proposer is not None and self.proposer.remaining() == 0:
            return Searcher.FINISHED
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.stop_reason = "time limit reached"
            return Searcher.FINISHED
        if self.failed_this_run >= self.max_failures:
            self.stop_reason = f"{self.failed_this_run} trials failed in this run (max_failures)"
            return Searcher.FINISHED
        if self.pack == 1:
            trial = self._reserve()
            if not isinstance(trial, optuna.Trial):
                return self._no_trial(trial)
            return self._configure(trial_id, trial)
        # A pack: up to ``pack`` Optuna trials in this one Ray trial, each reserved, asked (and
        # later told) on its own, so the budget and the sampler see ordinary trials.
        limit = self.pack if self.proposer is None else min(self.pack, self.proposer.remaining())
        members: list[dict] = []
        while len(members) < limit:
            trial = self._reserve()
            if not isinstance(trial, optuna.Trial):
                if not members:
                    return self._no_trial(trial)
                break
            members.append(self._configure(trial_id, trial, packed=True))
        return {"members": members, "number": members[0]["number"]}

    def _no_trial(self, reserved: str | None) -> str | None:
        """What ``suggest`` returns when :meth:`_reserve` started no trial."""
        if reserved is None:
            self._recover_others()
        return reserved  # Searcher.FINISHED, or None: running trials hold the remaining slots

    def _configure(self, trial_id: str, trial: optuna.Trial, packed: bool = False) -> dict:
        """Sample (or propose) a reserved trial's configuration and track it."""
        try:
            if self.proposer is not None:
                config = self.proposer(trial)
            else:
                config = searchspace.sample(trial, self.space)
        except Exception:
            self.study.tell(trial, state=TrialState.FAIL)
            raise
        # Read after proposing: a retry (enqueued) or a proposer may have set the seed.
        seed = int(trial.user_attrs.get(records.SEED, self.seed + trial.number))
        storage.write_user_attrs(self.study, trial, {records.SEED: seed})
        key = member_key(trial_id, trial.number) if packed else trial_id
        with self._lock:
            self._live[key] = trial
        self.events.append(("start", trial.number, config))
        return {"params": config, "seed": seed, "number": trial.number}

    def _reserve(self) -> optuna.Trial | str | None:
        """Start a trial if the budget has a free slot (see ``studies._budget``).

        Returns the trial, ``Searcher.FINISHED`` when finished trials meet the budget, or
        ``None`` when running trials hold the remaining slots.
        """
        with storage.budget_lock(self.study):
            counts = self.counts()
            done = counts[TrialState.COMPLETE] + counts[TrialState.PRUNED]
            if done >= self.n_trials:
                return Searcher.FINISHED
            if done + counts[TrialState.RUNNING] >= self.n_trials:
                return None
            with warnings.catch_warnings():
                # Optuna warns that heartbeats are meant for Study.optimize; we beat for ask/tell.
                warnings.simplefilter("ignore", UserWarning)
                trial = self.study.ask()
            # Stamp the trial before sampling, so that recovery can always tell whose it is.
            storage.set_system_attr(self.study, trial, records.DRIVER, self._driver)
            storage.record_heartbeat(self.study, trial)
        return trial

    def _recover_others(self) -> None:
        """While the budget is spoken for, free the slots of trials whose driver died.

        Another driver's crash would otherwise hold its RUNNING trials' slots for good. Runs at
        most once per heartbeat interval; trials of live drivers are left alone.
        """
        now = time.monotonic()
        if now - self._last_recovery < storage.HEARTBEAT_INTERVAL_S:
            return
        self._last_recovery = now
        with contextlib.suppress(Exception):  # tried again at the next interval
            for found in recover_interrupted(self.study):
                info = {"error": "interrupted: its driver stopped; its parameters were queued"}
                self.events.append(("fail", found.number, info))

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if "members" in result:
            self._record_members(trial_id, result)
        else:
            self._record_epoch(trial_id, result)

    def _record_members(self, trial_id: str, result: dict | None) -> None:
        """A pack's report: each member's epoch is recorded (and a finished member told)."""
        for member in (result or {}).get("members") or ():
            key = member_key(trial_id, int(member["number"]))
            self._record_epoch(key, member)
            if member.get("member_done"):
                self._finish(key, member, error=False)

    def _record_epoch(self, trial_id: str, result: dict | None) -> None:
        """Store a report's epochs (the trial's batch of unreported ones, then the latest), each
        once: Tune hands a scheduler-stopped trial's last result to ``on_trial_complete`` only,
        a finished one's to both."""
        trial = self._live.get(trial_id)
        if trial is None or not result or "error" in result or "epoch" not in result:
            return
        curve = self._curves[trial_id]
        if not curve["val_acc"] and result.get("pid") is not None:
            # Where the trial runs, while it runs: what an operator (or a fault test) needs to
            # find its worker process.
            where = {records.WORKER_PID: result["pid"], records.NODE_IP: result.get("node_ip")}
            with contextlib.suppress(Exception):  # informative only; never fail the run
                storage.write_user_attrs(self.study, trial, where)
        values: dict[int, float] = {}
        for report in (*result.get(EARLIER_EPOCHS, ()), result):
            epoch = int(report["epoch"])
            if epoch <= len(curve["val_acc"]):
                continue
            for key in records.CURVE_KEYS:
                curve[key].append(report.get(key))
            value = report.get(self.objective)
            if value is not None and math.isfinite(value):
                values[epoch] = float(value)
            self.events.append(("epoch", trial.number, {"epoch": epoch, "value": value}))
        if values:
            storage.write_intermediate_values(self.study, trial, values)

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        if self.pack > 1:
            self._record_members(trial_id, result)
            prefix = member_key(trial_id, "")
            with self._lock:
                left = [key for key in self._live if key.startswith(prefix)]
            for key in left:  # the pack ended (or its worker died) before these finished
                self._finish(key, {}, error=True)
            return
        self._record_epoch(trial_id, result)
        self._finish(trial_id, result, error)

    def _finish(self, trial_id: str, result: dict | None, error: bool) -> None:
        """Tell the study how one trial ended, with its curve and final facts."""
        with self._lock:
            trial = self._live.pop(trial_id, None)
        if trial is None:
            return
        curve = self._curves.pop(trial_id, {})
        attrs: dict[str, Any] = {k: list(v) for k, v in curve.items()}
        attrs[records.EPOCHS_RUN] = len(curve.get("val_acc", []))
        result = result or {}
        for key in records.FINAL_KEYS:
            if result.get(key) is not None:
                attrs[key] = result[key]
        worker_died = False
        if "error" in result:  # the trial raised or diverged, and said so (see _trainable)
            attrs[records.ERROR] = result["error"]
            attrs[records.FAIL_REASON] = result.get("fail_reason", records.FailReason.ERROR.value)
            state, values = TrialState.FAIL, None
            self.failed_this_run += 1
        elif error or not result:  # Tune lost the trial: its worker process is gone
            worker_died = True
            attrs[records.ERROR] = WORKER_DIED + f" (after {attrs[records.EPOCHS_RUN]} epochs)"
            attrs[records.FAIL_REASON] = records.FailReason.WORKER_DIED.value
            state, values = TrialState.FAIL, None
            self.failed_this_run += 1
        elif result.get("is_last"):
            value = result.get("best_value") if self.use_best_value else result.get(self.objective)
            state, values = TrialState.COMPLETE, value
            if value is None or not math.isfinite(value):
                attrs.setdefault(
                    records.ERROR, f"no finite {self.objective} at the end of the trial"
                )
                attrs.setdefault(records.FAIL_REASON, records.FailReason.ERROR.value)
                state, values = TrialState.FAIL, None
        else:
            state, values = TrialState.PRUNED, None  # stopped by the scheduler before its budget
        attempt = int(trial.user_attrs.get(records.ATTEMPT, 0))
        retry = worker_died and attempt < self.retries
        if worker_died:
            attrs[records.ERROR] += (
                f"; run again with the same parameters and seed (retry {attempt + 1} of "
                f"{self.retries})"
                if retry
                else f"; not retried ({self.retries} retries used)"
            )
        storage.write_user_attrs(self.study, trial, attrs)
        frozen = self.study.tell(trial, values, state=state, skip_if_finished=True)
        if retry and frozen.state == TrialState.FAIL:
            self.study.enqueue_trial(
                frozen.params,
                user_attrs={
                    records.RETRY_OF: frozen.number,
                    records.SEED: frozen.user_attrs.get(records.SEED),
                    records.ATTEMPT: attempt + 1,
                },
            )
        self.events.append((state.name.lower(), trial.number, {"value": values, **attrs}))

    def __getstate__(self) -> dict:
        # Tune pickles its configuration (searcher included) for its own restore feature. The
        # study database is our restore mechanism, so nothing of this live object is saved.
        return {"metric": self.metric, "mode": self.mode}

    def __setstate__(self, state: dict) -> None:
        Searcher.__init__(self, metric=state["metric"], mode=state["mode"])
        self.stop_reason = "restored from a pickle: resume from the study database instead"

    # --- helpers ---------------------------------------------------------------------------------
    def counts(self) -> dict[TrialState, int]:
        """Trials per state, read from the database (other drivers' trials included)."""
        # One statement, so the counts are one snapshot: counting state by state, a trial that
        # another driver finishes between two reads is counted in neither, and the budget is
        # overshot by one.
        return storage.count_by_state(self.study)

    def _beat(self) -> None:
        while not self._stop_heartbeat.wait(storage.HEARTBEAT_INTERVAL_S):
            with self._lock:
                live = list(self._live.values())
            for trial in live:
                with contextlib.suppress(Exception):  # a missed beat is retried next interval
                    storage.record_heartbeat(self.study, trial)

    def close(self) -> list[int]:
        """Stop the heartbeat; requeue trials Tune left unfinished (e.g. after Ctrl-C).

        Returns the numbers of the trials requeued.
        """
        self._stop_heartbeat.set()
        with self._lock:
            left, self._live = list(self._live.values()), {}
        requeued = []
        for trial in left:
            frozen = storage.reload(self.study, trial)
            if frozen.state == TrialState.RUNNING and requeue(
                self.study, frozen, reason="the run was stopped before this trial finished"
            ):
                requeued.append(frozen.number)
        return requeued
