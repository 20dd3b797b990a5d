"""The bridge between Ray Tune and the Optuna study database.

Ray Tune's stock ``OptunaSearch`` keeps its own copy of the search state, tells Optuna a
scheduler-stopped trial as COMPLETE, and loses its state on restore. This searcher does none of
that: every decision reads or writes the study in the RDB storage, which stays the single source
of truth. It is Ray's ``Searcher`` interface over parts that each do one job:

- :class:`~sweeplab.studies._tune.budget.Budget`: a trial starts only while (complete + pruned
  + running) < ``n_trials``, counted in the database under the study's lock, so a resumed study,
  or one that several drivers share, never runs more or fewer trials than its budget;
- :class:`~sweeplab.studies._tune.live.LiveTrials`: the trials this driver runs, kept alive by
  heartbeats;
- :class:`~sweeplab.studies._tune.curves.Curves`: every epoch's objective becomes an Optuna
  intermediate value, and the curves are stored when the trial ends;
- :func:`~sweeplab.studies._tune.outcomes.trial_outcome` and its
  :class:`~sweeplab.studies._tune.outcomes.RetryPolicy`: a trial ASHA stopped is told PRUNED,
  never COMPLETE; one that raised or diverged is told FAIL with its message, and the study goes
  on; one whose worker died is FAIL with that cause and, up to ``retries`` times, runs again.

A :class:`Proposer` may take the sampler's place: it chooses each new trial's configuration
itself (``sweeplab ablate`` hands out (variant, seed) pairs this way), and the run ends when it
has nothing left to propose.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any, Protocol

import optuna
from optuna.trial import TrialState
from ray.tune.search import Searcher

from sweeplab import searchspace
from sweeplab.studies import records, storage
from sweeplab.studies._recovery import driver_identity, requeue
from sweeplab.studies._tune import messages
from sweeplab.studies._tune.artifact_index import ArtifactIndex
from sweeplab.studies._tune.budget import Budget, NoSlot
from sweeplab.studies._tune.curves import Curves
from sweeplab.studies._tune.live import LiveTrials
from sweeplab.studies._tune.outcomes import RetryPolicy, trial_outcome


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
        objective, direction: the metric and whether it is maximised or minimised (of several
            objectives: the one training tracks, whose curve is stored as intermediate values).
        objectives: a multi-objective study's metrics, told to Optuna as a trial's values.
        use_best_value: tell the best epoch's objective (restore-best-weights) rather than the
            last epoch's.
        time_limit_s: no new trial is asked for after this many seconds.
        max_failures: stop asking after this many failed trials in this run.
        retries: how many times a trial whose worker process died is run again (same
            parameters and seed) before it stays FAIL.
        proposer: chooses each trial's configuration instead of sampling ``space``; the run
            ends when it has none left (failed trials are not replaced).
        pack: Optuna trials per Ray trial (``[search] pack``). Above 1, ``suggest`` returns a
            config of :data:`~messages.MEMBERS` and results carry one report per member (see
            :mod:`sweeplab.studies._tune.packed`); each member is still an ordinary Optuna trial.
        artifacts: the study's artifact folder (checkpoints, weights); ``None``: none kept.
        keep_best: complete trials whose final weights are kept (``[study] keep_best``).
        extra_curves: report fields kept as curves beside the built-in loop's
            (:data:`~records.LR_CURVE` under population based training).
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
        artifacts: str | None = None,
        keep_best: int = 3,
        extra_curves: tuple[str, ...] = (),
        objectives: tuple[str, ...] = (),
    ) -> None:
        super().__init__(metric=objective, mode="max" if direction == "maximize" else "min")
        self.study = study
        self.space = space
        self.seed = seed
        self.objective = objective
        self.objectives = objectives
        self.use_best_value = use_best_value
        self.proposer = proposer
        self.pack = pack
        self.max_failures = max_failures if max_failures is not None else max(n_trials, 3)
        self.retry = RetryPolicy(retries)
        self.deadline = None if time_limit_s is None else time.monotonic() + time_limit_s
        self.failed_this_run = 0
        # This driver's own trials: with several drivers on one study, the study's counts
        # include the others'.
        self.started_this_run = 0
        self.stop_reason: str | None = None
        # The user's training function broke its contract: every trial would fail the same way.
        self.usage_error: str | None = None
        self.events: list[tuple[str, int, dict]] = []  # (kind, number, info) for the progress view
        self.budget = Budget(study, n_trials, driver_identity())
        self.live = LiveTrials(study, storage.HEARTBEAT_INTERVAL_S)
        self.curves = Curves(objective, extra_curves)
        self._worker_at: dict[str, tuple[Any, Any]] = {}  # key -> (pid, node ip) last recorded
        self.maximize = direction == "maximize"
        self.artifacts = ArtifactIndex(study, artifacts, keep_best) if artifacts else None
        self.schedules: dict[str, list[dict[str, Any]]] = {}  # population based training's

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
            trial = self.budget.reserve()
            if isinstance(trial, NoSlot):
                return self._no_slot(trial)
            return self._configure(trial_id, trial)
        # A pack: up to ``pack`` Optuna trials in this one Ray trial, each reserved, asked (and
        # later told) on its own, so the budget and the sampler see ordinary trials.
        limit = self.pack if self.proposer is None else min(self.pack, self.proposer.remaining())
        members: list[dict] = []
        while len(members) < limit:
            trial = self.budget.reserve()
            if isinstance(trial, NoSlot):
                if not members:
                    return self._no_slot(trial)
                break
            members.append(self._configure(trial_id, trial, packed=True))
        return {messages.MEMBERS: members, messages.NUMBER: members[0][messages.NUMBER]}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if messages.MEMBERS in result:
            self._record_members(trial_id, result)
        else:
            self._record_epochs(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        if self.pack > 1:
            self._record_members(trial_id, result)
            # The pack ended (or its worker died) before these members finished.
            for key in self.live.keys_with_prefix(member_key(trial_id, "")):
                self._finish(key, {}, lost=True)
            return
        self._record_epochs(trial_id, result)
        self._finish(trial_id, result, lost=error)

    def __getstate__(self) -> dict:
        # Tune pickles its configuration (searcher included) for its own restore feature. The
        # study database is our restore mechanism, so nothing of this live object is saved.
        return {"metric": self.metric, "mode": self.mode}

    def __setstate__(self, state: dict) -> None:
        Searcher.__init__(self, metric=state["metric"], mode=state["mode"])
        self.stop_reason = "restored from a pickle: resume from the study database instead"

    def record_exploit(self, trial_id: str, entry: dict[str, Any]) -> None:
        """Population based training copied another trial into this one (``entry``: one item of
        :data:`~records.PBT_SCHEDULE`): the schedule so far is written at once, while the trial
        runs (a finished trial's attributes cannot be written)."""
        trial = self.live.get(trial_id)
        if trial is None:
            return
        # A retry carries the schedule of the trial it re-runs: the copies go on after it.
        earlier = self.schedules.get(trial_id)
        if earlier is None:
            earlier = list(trial.user_attrs.get(records.PBT_SCHEDULE) or [])
        schedule = [*earlier, entry]
        self.schedules[trial_id] = schedule
        storage.write_user_attrs(self.study, trial, {records.PBT_SCHEDULE: schedule})

    # --- starting trials -------------------------------------------------------------------------
    def _no_slot(self, why: NoSlot) -> str | None:
        """What ``suggest`` returns when the budget started no trial."""
        if why is NoSlot.FINISHED:
            return Searcher.FINISHED
        # Running trials hold the remaining slots; those of a driver that died are freed here.
        for found in self.budget.recover_others():
            info = {"error": "interrupted: its driver stopped; its parameters were queued"}
            self.events.append(("fail", found.number, info))
        return None

    def _configure(self, trial_id: str, trial: optuna.Trial, packed: bool = False) -> dict:
        """Sample (or propose) a reserved trial's configuration and track it."""
        try:
            params: list[storage.Param] = []
            if self.proposer is not None:
                config = self.proposer(trial)
            else:
                # The sampled parameters go to the database with the trial's seed, in one
                # transaction rather than one per parameter.
                with storage.held_params(trial) as params:
                    config = searchspace.sample(trial, self.space)
        except Exception:
            self.study.tell(trial, state=TrialState.FAIL)
            raise
        # Read after proposing: a retry (enqueued) or a proposer may have set the seed.
        seed = int(trial.user_attrs.get(records.SEED, self.seed + trial.number))
        attrs: dict[str, Any] = {records.SEED: seed}
        resume_from = trial.user_attrs.get(records.RESUME_FROM)
        key = member_key(trial_id, trial.number) if packed else trial_id
        if self.artifacts is not None and resume_from and not packed:
            # Until it saves its own, the trial's checkpoint is the one it continues from: a
            # second interruption then resumes from there too.
            attrs[records.CHECKPOINT] = resume_from
            self.artifacts.started(key, resume_from)
        storage.write_trial_records(self.study, trial, params=params, user_attrs=attrs)
        self.live.add(key, trial)
        self.started_this_run += 1
        self.events.append(("start", trial.number, config))
        out = {messages.PARAMS: config, messages.SEED: seed, messages.NUMBER: trial.number}
        if self.artifacts is not None and resume_from and not packed:
            out[messages.RESUME_FROM] = resume_from
        return out

    # --- recording results -----------------------------------------------------------------------
    def _record_members(self, trial_id: str, result: dict | None) -> None:
        """A pack's report: each member's epoch is recorded (and a finished member told)."""
        for member in (result or {}).get(messages.MEMBERS) or ():
            key = member_key(trial_id, int(member[messages.NUMBER]))
            self._record_epochs(key, member)
            if member.get(messages.MEMBER_DONE):
                self._finish(key, member, lost=False)

    def _record_epochs(self, key: str, report: dict | None) -> None:
        """Store a report's new epochs as the trial's intermediate values (and the checkpoint,
        or the note about one, that came with them)."""
        trial = self.live.get(key)
        if trial is None or not report:
            return
        if self.artifacts is not None:
            self.artifacts.record(key, trial, report)
        if messages.ERROR in report or messages.EPOCH not in report:
            return
        where = None
        at = (report.get(messages.PID), report.get(messages.NODE_IP))
        if at[0] is not None and self._worker_at.get(key) != at:
            # Where the trial runs, while it runs: what an operator (or a fault test) needs to
            # find its worker process. Written with the first epochs, in their transaction, and
            # again when the trial goes on in another process (PBT restarts a copied trial).
            self._worker_at[key] = at
            where = {records.WORKER_PID: at[0], records.NODE_IP: at[1]}
        new = self.curves.add(key, report)
        for epoch, value in new:
            self.events.append(("epoch", trial.number, {"epoch": epoch, "value": value}))
        values = {e: float(v) for e, v in new if v is not None and math.isfinite(v)}
        if values or where:
            storage.write_trial_records(self.study, trial, user_attrs=where, values=values)

    def _finish(self, key: str, report: dict | None, *, lost: bool) -> None:
        """Tell the study how one trial ended, with its curve and final facts."""
        trial = self.live.pop(key)
        if trial is None:
            return
        attrs = self.curves.pop(key)
        self._worker_at.pop(key, None)
        outcome = trial_outcome(
            report,
            lost=lost,
            objective=self.objective,
            use_best_value=self.use_best_value,
            epochs_run=attrs[records.EPOCHS_RUN],
            objectives=self.objectives,
        )
        attrs.update(outcome.attrs)
        attempt = int(trial.user_attrs.get(records.ATTEMPT, 0))
        if outcome.worker_died:
            attrs[records.ERROR] += self.retry.note(attempt)
        retried = outcome.worker_died and self.retry.retries_after(attempt)
        if self.artifacts is not None:
            # Attributes first: a finished trial's cannot be written. A retry keeps the
            # checkpoint it continues from; everything else is done with its checkpoint.
            attrs.update(self.artifacts.finish(key, outcome.state, keep_checkpoint=retried))
        if outcome.state == TrialState.FAIL:
            self.failed_this_run += 1
        if attrs.get(records.FAIL_REASON) == records.FailReason.USAGE.value:
            self.usage_error = self.usage_error or f"trial {trial.number}: {attrs[records.ERROR]}"
            self.stop_reason = "the training function broke its contract (see the error)"
        storage.write_user_attrs(self.study, trial, attrs)
        # The told trial is read back only for a retry, which queues its parameters again.
        state = storage.tell(self.study, trial, outcome.value, state=outcome.state)
        if retried and state == TrialState.FAIL:
            self.retry.requeue(self.study, storage.reload(self.study, trial), attempt)
        if self.artifacts is not None:
            index = self.objectives.index(self.objective) if len(self.objectives) > 1 else 0
            self.artifacts.after_tell(trial.number, state, attrs, self.maximize, index)
        info = {"value": outcome.value, **attrs}
        if isinstance(outcome.value, list):
            # The live view ranks by the tracked objective and shows every value.
            info["values"] = dict(zip(self.objectives, outcome.value, strict=True))
            info["value"] = outcome.value[self.objectives.index(self.objective)]
        self.events.append((outcome.state.name.lower(), trial.number, info))

    # --- ending ----------------------------------------------------------------------------------
    def counts(self) -> dict[TrialState, int]:
        """Trials per state, read from the database (other drivers' trials included)."""
        return self.budget.counts()

    def close(self) -> list[int]:
        """Stop the heartbeat; requeue trials Tune left unfinished (e.g. after Ctrl-C).

        Returns the numbers of the trials requeued.
        """
        requeued = []
        for trial in self.live.close():
            frozen = storage.reload(self.study, trial)
            if frozen.state == TrialState.RUNNING and requeue(
                self.study, frozen, reason="the run was stopped before this trial finished"
            ):
                requeued.append(frozen.number)
        if self.artifacts is not None:
            with contextlib.suppress(Exception):  # tidying only: never fail the run's end
                self.artifacts.sweep()
        return requeued
