"""Faults a study survives: a worker killed mid-trial, trials that raise, diverge or run out of
memory, drivers that die between asking a trial and stamping it, fractional GPUs per trial."""

from __future__ import annotations

import io
import math
import os
import signal
import threading
import time
import warnings

import optuna
import pytest
import torch
from conftest import tiny_spec
from optuna.trial import TrialState
from rich.console import Console

from sweeplab import trainer
from sweeplab.studies import load_spec, open_storage, open_study, records, run_study
from sweeplab.studies._recovery import recover_interrupted
from sweeplab.studies._tune.worker import OOM_HINT, classify_error


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


def _load(spec) -> optuna.Study:
    return optuna.load_study(study_name=spec.study.name, storage=spec.study.storage)


# --- how a failed trial is classified (no GPU needed) -------------------------------------------


def test_cuda_out_of_memory_is_a_failure_with_a_hint() -> None:
    error = torch.OutOfMemoryError(
        "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 15.77 GiB total capacity)"
    )
    reason, message = classify_error(error)
    assert reason == "out_of_memory"
    assert message.startswith("OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB")
    assert OOM_HINT in message and "batch_size" in message


def test_an_out_of_memory_runtime_error_of_another_backend_gets_the_hint_too() -> None:
    reason, message = classify_error(RuntimeError("MPS backend out of memory (MPS allocated)"))
    assert reason == "out_of_memory" and OOM_HINT in message


def test_divergence_and_other_errors_keep_their_message() -> None:
    assert classify_error(trainer.Diverged(3, math.nan)) == (
        "diverged",
        "diverged at epoch 3 (train loss nan)",
    )
    assert (
        classify_error(trainer.Diverged(1, math.inf))[1] == "diverged at epoch 1 (train loss inf)"
    )
    assert classify_error(ValueError("Expected more than 1 value per channel")) == (
        "error",
        "ValueError: Expected more than 1 value per channel",
    )


# --- fractional GPUs reach Ray's per-trial resource request ----------------------------------


def test_fractional_gpus_per_trial_reach_the_ray_resource_request(tmp_path) -> None:
    from ray.tune.trainable import wrap_function

    from sweeplab.studies._run import make_trainable

    spec = load_spec(tiny_spec(tmp_path, extra="[search.resources]\ngpus = 0.25\ncpus = 0.5\n"))
    assert (spec.search.resources.gpus, spec.search.resources.cpus) == (0.25, 0.5)
    # What Tune does with the trainable a Tuner is given: wrap it into a Trainable class.
    request = wrap_function(make_trainable(spec)).default_resource_request({})
    assert request.required_resources == {"CPU": 0.5, "GPU": 0.25}
    default = wrap_function(make_trainable(load_spec(tiny_spec(tmp_path, name="cpu"))))
    assert default.default_resource_request({}).required_resources == {"CPU": 1.0}


# --- a driver that died between asking a trial and stamping it ------------------------------


def test_a_trial_that_never_had_a_heartbeat_is_recovered_after_the_grace_period(
    tmp_path, monkeypatch
) -> None:
    import sweeplab.studies.storage

    spec = load_spec(tiny_spec(tmp_path))
    study = open_study(spec, open_storage(spec.study.storage))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        orphan = study.ask()  # a driver died right after this: no stamp, no heartbeat
        orphan.suggest_float("lr", 1e-3, 3e-2, log=True)
        alive = study.ask()  # a live driver's trial: stamped and beating
    study._storage.set_trial_system_attr(alive._trial_id, records.DRIVER, {"host": "elsewhere"})
    study._storage.record_heartbeat(alive._trial_id)
    assert recover_interrupted(study) == [], "within the grace period nothing is touched"

    monkeypatch.setattr(sweeplab.studies.storage, "HEARTBEAT_GRACE_S", 0)
    time.sleep(0.01)
    found = recover_interrupted(study)
    assert [f.number for f in found] == [orphan.number]
    states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
    assert states[orphan.number] == TrialState.FAIL and states[alive.number] == TrialState.RUNNING
    (queued,) = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    assert queued.user_attrs["retry_of"] == orphan.number
    assert queued.system_attrs["fixed_params"] == {"lr": orphan.params["lr"]}


# --- real Ray Tune runs -----------------------------------------------------------------------

FAILING_SPACE = """
[space.batch_size]
type = "categorical"
choices = [1, 32]

[space.lr]
type = "categorical"
choices = [0.05, 1e30]

[space.optimizer]
value = "sgd"

[space.norm]
value = "batch"
"""


@pytest.mark.slow
def test_raising_and_diverging_trials_fail_with_their_message_and_the_study_goes_on(
    ray_local, tmp_path
) -> None:
    """batch_size 1 under batch norm raises in training; lr 1e30 diverges; the rest complete."""
    spec = load_spec(
        tiny_spec(
            tmp_path, n_trials=2, max_epochs=2, scheduler="none", space=FAILING_SPACE,
            max_failures=60,
        )
    )  # fmt: skip
    summary = run_study(spec, console=_quiet())
    trials = _load(spec).trials
    assert summary.counts["complete"] == 2 and summary.counts["running"] == 0
    raised = [t for t in trials if t.user_attrs.get("fail_reason") == "error"]
    diverged = [t for t in trials if t.user_attrs.get("fail_reason") == "diverged"]
    assert raised and diverged, [t.user_attrs.get("fail_reason") for t in trials]
    for t in raised:
        assert t.state == TrialState.FAIL and t.params["batch_size"] == 1
        assert t.user_attrs["error"].startswith("ValueError: Expected more than 1 value")
    for t in diverged:
        assert t.state == TrialState.FAIL and t.params == {"batch_size": 32, "lr": 1e30}
        assert t.user_attrs["error"].startswith("diverged at epoch 1 (train loss ")
    for t in trials:
        if t.state == TrialState.COMPLETE:
            assert t.params == {"batch_size": 32, "lr": 0.05} and math.isfinite(t.value)


def _kill_workers(storage: str, name: str, kills: int, killed: list, stop: threading.Event):
    """SIGKILL the Ray worker process of a running trial (found through its ``worker_pid``
    user attribute) once it has reported an epoch; then that of the trial retrying it."""
    target = None  # the number of the trial whose retry is killed next
    while len(killed) < kills and not stop.is_set():
        time.sleep(0.05)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                trials = optuna.load_study(study_name=name, storage=storage).trials
            except KeyError:
                continue
        for t in trials:
            if t.state != TrialState.RUNNING or not t.intermediate_values:
                continue
            if "worker_pid" not in t.user_attrs:
                continue
            if target is not None and t.user_attrs.get("retry_of") != target:
                continue
            os.kill(t.user_attrs["worker_pid"], signal.SIGKILL)
            killed.append((t.number, t.user_attrs["worker_pid"]))
            target = t.number
            break


@pytest.mark.slow
def test_a_worker_killed_mid_trial_is_retried_then_failed_and_the_study_goes_on(
    ray_local, tmp_path
) -> None:
    spec = load_spec(
        tiny_spec(
            tmp_path, name="workerkill", n_trials=3, max_epochs=100, scheduler="none",
            budget_extra="retries = 1",
        )
    )  # fmt: skip
    # Created before the killer polls it: two processes creating one schema at once collide.
    open_study(spec, open_storage(spec.study.storage))
    killed: list[tuple[int, int]] = []
    stop = threading.Event()
    killer = threading.Thread(
        target=_kill_workers, args=(spec.study.storage, "workerkill", 2, killed, stop)
    )
    killer.start()
    try:
        summary = run_study(spec, console=_quiet())
    finally:
        stop.set()
        killer.join()
    assert len(killed) == 2, killed
    trials = {t.number: t for t in _load(spec).trials}
    (first, _), (second, _) = killed
    # The first death: FAIL with the cause, its parameters and seed run again.
    assert trials[first].state == TrialState.FAIL
    assert trials[first].user_attrs["fail_reason"] == "worker_died"
    assert "worker process died" in trials[first].user_attrs["error"]
    assert "retry 1 of 1" in trials[first].user_attrs["error"]
    assert trials[second].user_attrs["retry_of"] == first
    assert trials[second].params == trials[first].params
    assert trials[second].user_attrs["seed"] == trials[first].user_attrs["seed"]
    # The retry died too: retries are used up, so it stays FAIL and nothing retries it.
    assert trials[second].state == TrialState.FAIL
    assert "not retried (1 retries used)" in trials[second].user_attrs["error"]
    assert not [t for t in trials.values() if t.user_attrs.get("retry_of") == second]
    # The study went on to its budget.
    assert summary.counts["complete"] == 3 and summary.counts["fail"] == 2
    assert summary.counts["running"] == 0 and summary.counts["waiting"] == 0


def test_a_driver_blocked_by_a_dead_drivers_trials_frees_their_slots(tmp_path) -> None:
    """Another driver died holding the whole budget in RUNNING trials: a live driver waiting for
    a free slot recovers them (FAIL, parameters queued) and runs their parameters itself."""
    import socket
    import subprocess

    from sweeplab.studies._tune.searcher import StudySearcher

    spec = load_spec(tiny_spec(tmp_path, n_trials=2))
    study = open_study(spec, open_storage(spec.study.storage))
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = {"host": socket.gethostname(), "pid": gone.pid, "start": "0"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        held = [study.ask() for _ in range(2)]
    for trial in held:
        trial.suggest_float("lr", 1e-3, 3e-2, log=True)
        study._storage.set_trial_system_attr(trial._trial_id, records.DRIVER, dead)
    searcher = StudySearcher(
        study=study, space=spec.space, n_trials=2, seed=0, objective="val_acc",
        direction="maximize",
    )  # fmt: skip
    try:
        assert searcher.suggest("a") is None, "the budget is held by the two RUNNING trials"
        searcher.budget._last_recovery = -1e9  # as if a heartbeat interval had passed
        assert searcher.suggest("b") is None  # recovers, then waits for the next call
        states = [t.state for t in study.get_trials(deepcopy=False)]
        assert states.count(TrialState.FAIL) == 2 and states.count(TrialState.WAITING) == 2
        configs = [searcher.suggest("c"), searcher.suggest("d")]
        assert [c["params"]["lr"] for c in configs] == [t.params["lr"] for t in held]
        assert searcher.suggest("e") is None  # the budget is spoken for again
    finally:
        searcher.close()


def test_end_tune_run_ends_a_tune_run_the_way_tunes_own_stop_does() -> None:
    """Pins the Ray behaviour studies._signals relies on: each Tune run installs a SIGUSR1
    handler that sets the event its loop checks; end_tune_run calls it."""
    import doctest

    from ray.tune.tune import _setup_signal_catching

    from sweeplab.studies import _signals

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGUSR1)}
    try:
        event = _setup_signal_catching()  # what each Tune run does first
        assert not event.is_set()
        _signals.end_tune_run()
        assert event.is_set()
    finally:
        for s, h in before.items():
            signal.signal(s, h)
    assert doctest.testmod(_signals).failed == 0


def test_the_first_signal_asks_for_a_stop_and_a_second_stops_at_once() -> None:
    from sweeplab.studies._signals import stop_on_signals

    before = signal.getsignal(signal.SIGTERM)
    asked: list[str] = []
    with pytest.raises(KeyboardInterrupt), stop_on_signals(asked.append) as interruption:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.1)  # the handler runs in the main thread between bytecodes
        assert asked == ["SIGTERM"] and interruption.signal == "SIGTERM"
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)
    assert asked == ["SIGTERM"], "on_first runs once"
    assert signal.getsignal(signal.SIGTERM) is before, "the previous handlers come back"


@pytest.mark.parametrize(
    "request_, expected",
    [("gpus = 1", "gpus = 1 per trial, but the Ray cluster has 0 GPU(s)"),
     ("cpus = 64", "cpus = 64 per trial, but the Ray cluster has 2 CPU(s)")],
)  # fmt: skip
def test_a_request_the_cluster_cannot_grant_is_refused_before_any_trial(
    ray_local, tmp_path, request_: str, expected: str
) -> None:
    from sweeplab.studies import UsageError

    spec = load_spec(tiny_spec(tmp_path, extra=f"[search.resources]\n{request_}\n"))
    with pytest.raises(UsageError, match=r"\[search.resources\]") as refused:
        run_study(spec, console=Console(file=io.StringIO()))
    assert expected in str(refused.value)
    study = optuna.load_study(study_name="tiny", storage=spec.study.storage)
    assert study.trials == [], "no trial started (none left RUNNING)"
