"""Kill a running study with SIGKILL mid-trial, resume it: nothing lost, nothing twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import optuna
import pytest
from conftest import tiny_spec
from optuna.trial import TrialState

pytestmark = pytest.mark.slow

SWEEPLAB = [sys.executable, "-m", "sweeplab.studies.cli"]


def _snapshot(storage: str) -> list[optuna.trial.FrozenTrial]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return optuna.load_study(study_name="killme", storage=storage).trials
        except KeyError:  # the study is not created yet
            return []


def _kill_mid_trial(spec: Path, storage: str, done_before_kill: int) -> list[int]:
    """Start ``sweeplab run``, SIGKILL its whole process group once ``done_before_kill``
    trials are finished and at least one is RUNNING; return the numbers that were RUNNING."""
    proc = subprocess.Popen(
        [*SWEEPLAB, "run", str(spec)],
        start_new_session=True,  # its own process group: the kill takes Ray's processes too
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            assert proc.poll() is None, "the study finished before it could be killed"
            trials = _snapshot(storage)
            done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
            running = [t.number for t in trials if t.state == TrialState.RUNNING]
            if done >= done_before_kill and running:
                time.sleep(0.3)  # mid-epoch, not at a trial boundary
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
                return running
            time.sleep(0.2)
        raise AssertionError("the study never reached the kill point")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.parametrize("pack", [1, 4])
def test_sigkill_mid_trial_then_resume_finishes_exactly_the_budget(tmp_path: Path, pack) -> None:
    # pack = 4: two packs (4 + 2 members) run at once; killing one mid-run must recover each of
    # its members as an ordinary interrupted trial.
    n_trials = 6
    spec = tiny_spec(
        tmp_path, name="killme", n_trials=n_trials, max_epochs=40, scheduler="none",
        extra=f"pack = {pack}",
    )  # fmt: skip
    storage = f"sqlite:///{tmp_path / 'study.db'}"

    _kill_mid_trial(spec, storage, done_before_kill=2)
    time.sleep(1.0)
    at_kill = {t.number: t for t in _snapshot(storage)}
    finished_at_kill = {
        n: (t.state, t.value, t.params) for n, t in at_kill.items() if t.state.is_finished()
    }
    running_at_kill = {n: t for n, t in at_kill.items() if t.state == TrialState.RUNNING}
    assert len(finished_at_kill) >= 2 and running_at_kill

    resumed = subprocess.run(
        [*SWEEPLAB, "resume", "killme", "--storage", storage],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert f"recovered {len(running_at_kill)} interrupted trial(s)" in resumed.stderr

    trials = _snapshot(storage)
    by_number = {t.number: t for t in trials}
    states = [t.state for t in trials]
    # Exactly the budget of trials with a result; nothing left running or waiting.
    assert states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED) == n_trials
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states
    # Nothing finished before the kill was lost or changed.
    for number, (state, value, params) in finished_at_kill.items():
        t = by_number[number]
        assert (t.state, t.value, t.params) == (state, value, params)
    # Every interrupted trial is stored as such, and was re-run once with its parameters and seed.
    for number, t in running_at_kill.items():
        interrupted = by_number[number]
        assert interrupted.state == TrialState.FAIL
        assert interrupted.user_attrs["interrupted"] is True
        retries = [r for r in trials if r.user_attrs.get("retry_of") == number]
        assert len(retries) == 1
        assert retries[0].params == t.params
        assert retries[0].user_attrs["seed"] == t.user_attrs["seed"]
        assert retries[0].state == TrialState.COMPLETE

    again = subprocess.run(
        [*SWEEPLAB, "run", str(spec)], capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, again.stderr
    assert "nothing to run" in again.stderr
    assert len(_snapshot(storage)) == len(trials)
