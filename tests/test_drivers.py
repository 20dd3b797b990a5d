"""Several drivers on one study database at once (the multi-machine pattern), on SQLite and,
when SWEEPLAB_TEST_POSTGRES_URL names a server (CI: .ci/postgres.sh), on PostgreSQL."""

from __future__ import annotations

import multiprocessing
import os
import re
import subprocess
import sys
import uuid
import warnings
from collections import Counter
from pathlib import Path

import optuna
import pytest
from conftest import tiny_spec
from optuna.trial import TrialState

from sweeplab.studies import load_spec, open_storage, open_study, records

POSTGRES = os.environ.get("SWEEPLAB_TEST_POSTGRES_URL")
BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(POSTGRES is None, reason="no SWEEPLAB_TEST_POSTGRES_URL"),
    ),
]


def _url(backend: str, tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'study.db'}" if backend == "sqlite" else POSTGRES


def _suggest_all(args: tuple[str, str, int, int, object]) -> int:
    """One driver: as many suggestions as it may, all drivers released at once by the barrier.
    Returns how many trials it started."""
    spec_path, url, n_trials, tries, barrier = args
    from sweeplab.studies._tune.searcher import StudySearcher

    spec = load_spec(spec_path).with_overrides(storage=url)
    study = open_study(spec, open_storage(url))
    searcher = StudySearcher(
        study=study, space=spec.space, n_trials=n_trials, seed=0,
        objective="val_acc", direction="maximize",
    )  # fmt: skip
    barrier.wait()
    started = 0
    for i in range(tries):
        if isinstance(searcher.suggest(f"{os.getpid()}-{i}"), dict):
            started += 1
    return started


@pytest.mark.slow  # four processes importing Ray and torch
@pytest.mark.parametrize("backend", BACKENDS)
def test_drivers_asking_at_the_same_moment_never_start_more_than_the_budget(
    backend, tmp_path
) -> None:
    """The budget guard: the count and the start of a trial are one critical section."""
    name = f"guard-{uuid.uuid4().hex[:8]}"
    url = _url(backend, tmp_path)
    # Four drivers ask for the last free slots at the same moment: without the guard each one
    # counts the same free slots before any of them has started a trial.
    n_trials, drivers = 2, 4
    spec_path = tiny_spec(tmp_path, name=name, n_trials=n_trials)
    open_study(load_spec(spec_path).with_overrides(storage=url), open_storage(url))
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Manager().Barrier(drivers)
    with ctx.Pool(drivers) as pool:
        started = pool.map(_suggest_all, [(str(spec_path), url, n_trials, 2, barrier)] * drivers)
    trials = optuna.load_study(study_name=name, storage=url).trials
    print(f"{backend}: trials started per driver {started}")
    assert sum(started) == n_trials == len(trials), started
    assert all(t.state == TrialState.RUNNING for t in trials)
    assert len({repr(sorted(t.params.items())) for t in trials}) == n_trials, "a config twice"


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_two_drivers_share_one_study_to_exactly_its_budget(backend, tmp_path) -> None:
    name = f"shared-{uuid.uuid4().hex[:8]}"
    url = _url(backend, tmp_path)
    n_trials = 6
    spec = tiny_spec(
        tmp_path, name=name, n_trials=n_trials, max_epochs=3, scheduler="none", concurrency=2
    )
    command = [sys.executable, "-m", "sweeplab.studies.cli", "run", str(spec), "--storage", url]
    drivers = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [d.communicate(timeout=400) for d in drivers]
    errors = [err for _, err in outputs]
    assert [d.returncode for d in drivers] == [0, 0], errors
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trials = optuna.load_study(study_name=name, storage=url).trials
    states = Counter(t.state for t in trials)
    assert states[TrialState.COMPLETE] == n_trials, states
    assert set(states) == {TrialState.COMPLETE}, "no trial failed, was discarded or left over"
    by_driver = Counter(t.system_attrs[records.DRIVER]["pid"] for t in trials)
    print(f"{backend}: trials per driver {dict(by_driver)}, states {dict(states)}")
    assert set(by_driver) == {d.pid for d in drivers}, f"trials per driver: {by_driver}"
    # Each driver's summary counts its own trials, not the study's.
    for driver, (out, _) in zip(drivers, outputs, strict=True):
        said = re.search(r"this run started (\d+) trial", out)
        assert said and int(said.group(1)) == by_driver[driver.pid], (out, by_driver)
    configs = [repr(sorted(t.params.items())) for t in trials]
    assert len(set(configs)) == n_trials, "two drivers ran the same configuration"
    seeds = [t.user_attrs["seed"] for t in trials]
    assert len(set(seeds)) == n_trials
