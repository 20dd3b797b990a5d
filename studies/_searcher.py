"""The bridge between Ray Tune and the Optuna study database.

Ray Tune's stock ``OptunaSearch`` keeps its own copy of the search state, tells Optuna a
scheduler-stopped trial as COMPLETE, and loses its state on restore. This searcher does none of
that: every decision reads or writes the study in the RDB storage, which stays the single source
of truth.

- ``suggest`` asks Optuna only while (complete + pruned + running) < ``n_trials``, counted in
  the database under the study's budget lock (``studies._budget``), so a resumed study, or one
  that several drivers share, never runs more or fewer trials than its budget;
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
import json
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
from sweeplab.studies._budget import budget_lock
from sweeplab.studies._recovery import DRIVER_ATTR, driver_identity, recover_interrupted, requeue
from sweeplab.studies._storage import HEARTBEAT_INTERVAL_S
from sweeplab.studies._trainable import EARLIER_EPOCHS

WORKER_DIED = "the trial's worker process died or was killed before the trial finished"

# Per-epoch metrics stored as one list each in the trial's user attributes.
CURVE_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc", "epoch_seconds")
# Facts of the finished run copied from the trial's last report.
FINAL_KEYS = (
    "best_epoch",
    "best_value",
    "test_acc",
    "test_loss",
    "final_train_acc",
    "stopped_early",
    "device",
    "torch_version",
    "sweeplab_version",
    "node_ip",
    "node_id",
    "pid",
    "run_started_at",
    "run_finished_at",
    "wall_time_s",
    "pack_id",
    "pack_size",
)


def set_user_attrs(storage: optuna.storages.BaseStorage, trial_id: int, attrs: dict) -> None:
    """Write several user attributes in one transaction where the storage allows it."""
    # Study._storage wraps the RDB storage in a cache that passes attribute writes straight
    # through, so writing to the backend directly bypasses nothing.
    storage = getattr(storage, "_backend", storage)
    if isinstance(storage, optuna.storages.RDBStorage):
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session

        # One read of the trial and of its attributes, then one batch of inserts: a finished
        # trial brings ~20 attributes (curves, facts), which Optuna's per-key path turns into
        # two statements each, all on the driver's event loop.
        with _create_scoped_session(storage.scoped_session, True) as session:
            trial = models.TrialModel.find_or_raise_by_id(trial_id, session)
            storage.check_trial_is_updatable(trial_id, trial.state)
            model = models.TrialUserAttributeModel
            existing = {
                row.key: row for row in session.query(model).filter(model.trial_id == trial_id)
            }
            for key, value in attrs.items():
                text = json.dumps(value)
                if key in existing:
                    existing[key].value_json = text
                else:
                    session.add(model(trial_id=trial_id, key=key, value_json=text))
        return
    for key, value in attrs.items():  # pragma: no cover - other storages
        storage.set_trial_user_attr(trial_id, key, value)


def set_intermediate_values(
    storage: optuna.storages.BaseStorage, trial_id: int, values: dict[int, float]
) -> None:
    """Write several epochs' objective values (``{step: value}``) in one transaction.

    What ``Trial.report`` stores, one commit for a batch of epochs instead of one per epoch.
    """
    backend = getattr(storage, "_backend", storage)
    if isinstance(backend, optuna.storages.RDBStorage):
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session

        model = models.TrialIntermediateValueModel
        with _create_scoped_session(backend.scoped_session, True) as session:
            trial = models.TrialModel.find_or_raise_by_id(trial_id, session)
            backend.check_trial_is_updatable(trial_id, trial.state)
            existing = {
                row.step: row
                for row in session.query(model).filter(
                    model.trial_id == trial_id, model.step.in_(list(values))
                )
            }
            for step, value in values.items():
                stored, kind = model.intermediate_value_to_stored_repr(value)
                if step in existing:
                    existing[step].intermediate_value = stored
                    existing[step].intermediate_value_type = kind
                else:
                    session.add(
                        model(
                            trial_id=trial_id,
                            step=step,
                            intermediate_value=stored,
                            intermediate_value_type=kind,
                        )
                    )
        return
    for step, value in values.items():  # pragma: no cover - other storages
        storage.set_trial_intermediate_value(trial_id, step, value)


def count_by_state(storage: optuna.storages.BaseStorage, study_id: int) -> dict[TrialState, int]:
    """Trials per state in one ``COUNT ... GROUP BY`` where the storage allows it.

    The searcher asks before every new trial; Optuna's ``get_n_trials`` would load every
    unfinished trial (parameters, curves, attributes) once per state.
    """
    backend = getattr(storage, "_backend", storage)
    if isinstance(backend, optuna.storages.RDBStorage):
        import sqlalchemy
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session

        counts = dict.fromkeys(TrialState, 0)
        with _create_scoped_session(backend.scoped_session) as session:
            rows = (
                session.query(models.TrialModel.state, sqlalchemy.func.count())
                .filter(models.TrialModel.study_id == study_id)
                .group_by(models.TrialModel.state)
            )
            for state, n in rows:
                counts[state] = n
        return counts
    return {state: storage.get_n_trials(study_id, state) for state in TrialState}


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
        self._storage = study._storage
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
        seed = int(trial.user_attrs.get("seed", self.seed + trial.number))
        set_user_attrs(self._storage, trial._trial_id, {"seed": seed})
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
        with budget_lock(self._storage, self.study.study_name):
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
            self._storage.set_trial_system_attr(trial._trial_id, DRIVER_ATTR, self._driver)
            self._storage.record_heartbeat(trial._trial_id)
        return trial

    def _recover_others(self) -> None:
        """While the budget is spoken for, free the slots of trials whose driver died.

        Another driver's crash would otherwise hold its RUNNING trials' slots for good. Runs at
        most once per heartbeat interval; trials of live drivers are left alone.
        """
        now = time.monotonic()
        if now - self._last_recovery < HEARTBEAT_INTERVAL_S:
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
            where = {"worker_pid": result["pid"], "node_ip": result.get("node_ip")}
            with contextlib.suppress(Exception):  # informative only; never fail the run
                set_user_attrs(self._storage, trial._trial_id, where)
        values: dict[int, float] = {}
        for report in (*result.get(EARLIER_EPOCHS, ()), result):
            epoch = int(report["epoch"])
            if epoch <= len(curve["val_acc"]):
                continue
            for key in CURVE_KEYS:
                curve[key].append(report.get(key))
            value = report.get(self.objective)
            if value is not None and math.isfinite(value):
                values[epoch] = float(value)
            self.events.append(("epoch", trial.number, {"epoch": epoch, "value": value}))
        if values:
            set_intermediate_values(self._storage, trial._trial_id, values)

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
        attrs["epochs_run"] = len(curve.get("val_acc", []))
        result = result or {}
        for key in FINAL_KEYS:
            if result.get(key) is not None:
                attrs[key] = result[key]
        worker_died = False
        if "error" in result:  # the trial raised or diverged, and said so (see _trainable)
            attrs["error"] = result["error"]
            attrs["fail_reason"] = result.get("fail_reason", "error")
            state, values = TrialState.FAIL, None
            self.failed_this_run += 1
        elif error or not result:  # Tune lost the trial: its worker process is gone
            worker_died = True
            attrs["error"] = WORKER_DIED + f" (after {attrs['epochs_run']} epochs)"
            attrs["fail_reason"] = "worker_died"
            state, values = TrialState.FAIL, None
            self.failed_this_run += 1
        elif result.get("is_last"):
            value = result.get("best_value") if self.use_best_value else result.get(self.objective)
            state, values = TrialState.COMPLETE, value
            if value is None or not math.isfinite(value):
                attrs.setdefault("error", f"no finite {self.objective} at the end of the trial")
                attrs.setdefault("fail_reason", "error")
                state, values = TrialState.FAIL, None
        else:
            state, values = TrialState.PRUNED, None  # stopped by the scheduler before its budget
        attempt = int(trial.user_attrs.get("attempt", 0))
        retry = worker_died and attempt < self.retries
        if worker_died:
            attrs["error"] += (
                f"; run again with the same parameters and seed (retry {attempt + 1} of "
                f"{self.retries})"
                if retry
                else f"; not retried ({self.retries} retries used)"
            )
        set_user_attrs(self._storage, trial._trial_id, attrs)
        frozen = self.study.tell(trial, values, state=state, skip_if_finished=True)
        if retry and frozen.state == TrialState.FAIL:
            self.study.enqueue_trial(
                frozen.params,
                user_attrs={
                    "retry_of": frozen.number,
                    "seed": frozen.user_attrs.get("seed"),
                    "attempt": attempt + 1,
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
        return count_by_state(self._storage, self.study._study_id)

    def _beat(self) -> None:
        while not self._stop_heartbeat.wait(HEARTBEAT_INTERVAL_S):
            with self._lock:
                ids = [t._trial_id for t in self._live.values()]
            for trial_id in ids:
                with contextlib.suppress(Exception):  # a missed beat is retried next interval
                    self._storage.record_heartbeat(trial_id)

    def close(self) -> list[int]:
        """Stop the heartbeat; requeue trials Tune left unfinished (e.g. after Ctrl-C).

        Returns the numbers of the trials requeued.
        """
        self._stop_heartbeat.set()
        with self._lock:
            left, self._live = list(self._live.values()), {}
        requeued = []
        for trial in left:
            frozen = self.study._storage.get_trial(trial._trial_id)
            if frozen.state == TrialState.RUNNING and requeue(
                self.study, frozen, reason="the run was stopped before this trial finished"
            ):
                requeued.append(frozen.number)
        return requeued
