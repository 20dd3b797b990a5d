"""A seeded loop of SIGKILLs of the whole driver (Ray included), each followed by a resume.

Each kill waits for one moment of a run, seen in the database: a trial was just asked
(sampling), a trial has reported an epoch (mid-epoch), a trial was just told (telling), epoch
reports stream in (reporting); the seeded RNG orders the four and adds a random delay to each. After the last resume the study must hold
exactly its budget of finished trials, each interrupted trial re-run once with its parameters
and seed, nothing finished before a kill changed, and no process of a killed driver alive.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import optuna
import pytest
from conftest import session_processes as _session
from conftest import tiny_spec
from optuna.trial import TrialState

pytestmark = pytest.mark.slow

SWEEPLAB = [sys.executable, "-m", "sweeplab.studies.cli"]
NAME = "killloop"
# Large enough that the runs between kills cannot finish the budget before the fourth kill:
# each run finishes a few (mostly pruned, one-epoch) trials between its moment and its kill.
N_TRIALS = 30
SEED = 20261123


def _trials(storage: str) -> list[optuna.trial.FrozenTrial]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return optuna.load_study(study_name=NAME, storage=storage).trials
        except KeyError:  # the study is not created yet
            return []


def _kill_driver(leader: int) -> int:
    """SIGKILL the driver's process group, then any process of its session left over."""
    members = _session(leader)
    os.killpg(leader, signal.SIGKILL)
    for pid in _session(leader):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(members)


def _phase(trials: list[optuna.trial.FrozenTrial]) -> str:
    running = [t for t in trials if t.state == TrialState.RUNNING]
    if not running:
        return "between trials (asking, telling or waiting for Ray)"
    fresh = sum(not t.intermediate_values for t in running)
    return f"{len(running)} running ({fresh} not yet past epoch 1)"


def _moments(db: Path, launched: datetime.datetime) -> set[str]:
    """Which kill moments this driver's run has reached (see ``MOMENTS``).

    Read with one plain SQL query (milliseconds, unlike loading the study through Optuna), so
    that short windows (a trial running between two epochs) are not missed.
    """
    query = """
        SELECT t.state, t.datetime_start,
               (SELECT COUNT(*) FROM trial_intermediate_values v WHERE v.trial_id = t.trial_id)
        FROM trials t
    """
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            rows = conn.execute(query).fetchall()
    except sqlite3.Error:  # not created yet, or being created
        return set()
    since = launched.isoformat(sep=" ")
    mine = [(state, values) for state, start, values in rows if start and start >= since]
    reached = set()
    if any(state == "RUNNING" for state, _ in mine):
        reached.add("sampling")  # a trial was just asked: sampling, stamping, Ray placing it
    if any(state == "RUNNING" and values for state, values in mine):
        reached.add("mid-epoch")  # a trial has reported an epoch and trains on
    if any(state in ("COMPLETE", "PRUNED", "FAIL") for state, _ in mine):
        reached.add("telling")  # a trial was just told: the next tells and asks follow
    if sum(values for _, values in mine) >= 3:
        reached.add("reporting")  # epoch reports are streaming into the database
    return reached


# Where a kill lands: the seeded RNG orders them and adds a short random delay to each.
MOMENTS = ("sampling", "mid-epoch", "telling", "reporting")


def _kill_at(moment: str, args: list[str], storage: str, rng: random.Random) -> dict:
    launched = datetime.datetime.now()
    proc = subprocess.Popen(
        [*SWEEPLAB, *args],
        start_new_session=True,  # its own session: the kill can take every Ray process too
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 150
        db = Path(storage.removeprefix("sqlite:///"))
        while moment not in _moments(db, launched):
            assert proc.poll() is None, f"{args} exited with {proc.returncode} before {moment}"
            assert time.monotonic() < deadline, f"the driver never reached {moment}"
            time.sleep(0.01)
        delay = rng.uniform(0.0, 0.4)
        time.sleep(delay)
        assert proc.poll() is None, "the study finished before the kill"
        phase = _phase(_trials(storage))
        killed = _kill_driver(proc.pid)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            _kill_driver(proc.pid)
            proc.wait(timeout=30)
    deadline = time.monotonic() + 10  # the kernel reaps them; Ray's reaper may lag a little
    while _session(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    return {
        "moment": moment, "delay": round(delay, 2), "phase": phase, "processes": killed,
        "orphans": _session(proc.pid),
    }  # fmt: skip


def test_a_seeded_loop_of_sigkills_ends_with_exactly_the_budget(tmp_path: Path) -> None:
    spec = tiny_spec(
        tmp_path,
        name=NAME,
        n_trials=N_TRIALS,
        max_epochs=6,
        sampler="tpe",
        scheduler="asha",
        extra="n_startup_trials = 3",
    )
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    rng = random.Random(SEED)
    finished_before: dict[int, tuple] = {}
    kills = []
    moments = list(MOMENTS)
    rng.shuffle(moments)
    for k, moment in enumerate(moments):
        args = ["run", str(spec)] if k % 2 == 0 else ["resume", NAME, "--storage", storage]
        kills.append(_kill_at(moment, args, storage, rng))
        assert kills[-1]["orphans"] == [], f"processes outlived the kill: {kills[-1]}"
        for t in _trials(storage):
            if t.state.is_finished():
                finished_before.setdefault(t.number, (t.state, t.value, t.params))
    interrupted_at_kills = Counter(t.state.name for t in _trials(storage))

    final = subprocess.run(
        [*SWEEPLAB, "resume", NAME, "--storage", storage],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert final.returncode == 0, final.stderr
    trials = _trials(storage)
    by_number = {t.number: t for t in trials}
    states = Counter(t.state for t in trials)
    print(f"\nkills: {kills}\nstates after the kills: {dict(interrupted_at_kills)}")
    print(f"after the final resume: { {s.name: n for s, n in states.items()} }")

    # Exactly the budget; nothing left running or queued.
    assert states[TrialState.COMPLETE] + states[TrialState.PRUNED] == N_TRIALS
    assert states[TrialState.RUNNING] == 0 and states[TrialState.WAITING] == 0
    # Nothing finished before a kill was lost or changed by a later run.
    for number, (state, value, params) in finished_before.items():
        t = by_number[number]
        assert (t.state, t.value, t.params) == (state, value, params)
    # Every failure is an interruption, re-run exactly once with its parameters and seed. A
    # trial killed while it was being sampled keeps the parameters it had: the retry has
    # those, and samples the rest.
    retries = Counter(t.user_attrs.get("retry_of") for t in trials)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert failed, "no kill interrupted a trial: the loop tested nothing"
    for t in failed:
        assert t.user_attrs["interrupted"] is True, t.user_attrs.get("error")
        assert retries[t.number] == 1
        (retry,) = [r for r in trials if r.user_attrs.get("retry_of") == t.number]
        assert t.params.items() <= retry.params.items()
        if "seed" in t.user_attrs:
            assert retry.user_attrs["seed"] == t.user_attrs["seed"]

    # No slot counted twice: follow each retry chain to the trial it started from.
    def root(t: optuna.trial.FrozenTrial) -> int:
        while "retry_of" in t.user_attrs:
            t = by_number[t.user_attrs["retry_of"]]
        return t.number

    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len({root(t) for t in finished}) == len(finished)
    # Every finished trial was told whole: its curve, its reports and its value agree.
    for t in finished:
        epochs = t.user_attrs["epochs_run"]
        assert len(t.user_attrs["val_acc"]) == epochs == len(t.intermediate_values) >= 1
        if t.state == TrialState.COMPLETE:
            assert t.value == max(t.intermediate_values.values())
    # The sampler sees the whole history: a fresh TPE over the database uses every trial.
    study = optuna.load_study(study_name=NAME, storage=storage)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == states[TrialState.COMPLETE]
    again = subprocess.run(
        [*SWEEPLAB, "resume", NAME, "--storage", storage], capture_output=True, text=True
    )
    assert again.returncode == 0 and "nothing to run" in again.stderr
    assert len(_trials(storage)) == len(trials)
