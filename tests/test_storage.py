"""The study database: opening it, several writers at once, crash recovery, spec checks on resume.

Everything runs against real SQLite files under ``tmp_path``; other processes are real forked
processes, so "database is locked" and dead-driver detection are exercised, not simulated.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import socket
import sqlite3
import traceback
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from sweeplab import searchspace
from sweeplab.studies import (
    SpecConflict,
    StorageError,
    StudyNotFound,
    load_spec,
    load_study,
    mask_secrets,
    open_storage,
    open_study,
    parse_spec,
    records,
    spec_from_dict,
    stored_spec,
)
from sweeplab.studies._recovery import driver_identity, recover_interrupted
from sweeplab.studies._study import make_sampler
from sweeplab.studies.storage import (
    HEARTBEAT_GRACE_S,
    HEARTBEAT_INTERVAL_S,
    ask_new,
    count_by_state,
    held_params,
    stamp_started,
    tell,
    write_trial_records,
    write_user_attrs,
)

# study.ask() on a storage with heartbeats warns that heartbeats are meant for optimize(); the
# searcher records them itself for ask/tell, and so do these tests.
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")

FORK = multiprocessing.get_context("fork")


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture(scope="module")
def _schema(tmp_path_factory) -> Path:
    """An empty study database, made once: creating Optuna's schema costs most of a second."""
    path = tmp_path_factory.mktemp("schema") / "empty.db"
    storage = open_storage(_url(path))
    with storage.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file
    storage.engine.dispose()
    return path


@pytest.fixture
def db_url(tmp_path, _schema) -> str:
    """A fresh, empty study database of this test's own."""
    path = tmp_path / "study.db"
    shutil.copyfile(_schema, path)
    return _url(path)


def _quickstart(url: str):
    return load_spec("quickstart").with_overrides(storage=url)


# --- open_storage -------------------------------------------------------------------------------


def test_open_storage_creates_the_file_and_its_folder_in_wal_mode(tmp_path) -> None:
    path = tmp_path / "new" / "folder" / "study.db"
    storage = open_storage(_url(path))
    assert path.is_file()
    # WAL is a property of the file: a plain sqlite3 connection sees it too.
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with storage.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 60_000
    # synchronous is per connection: every one the pool hands out has NORMAL (1), including
    # several open at once (another thread's), not only the first.
    with (
        storage.engine.connect() as a,
        storage.engine.connect() as b,
        storage.engine.connect() as c,
    ):
        levels = [x.exec_driver_sql("PRAGMA synchronous").scalar() for x in (a, b, c)]
    assert levels == [1, 1, 1]
    assert (storage.heartbeat_interval, storage.grace_period) == (
        HEARTBEAT_INTERVAL_S,
        HEARTBEAT_GRACE_S,
    )


def test_open_storage_without_create_opens_an_existing_file(db_url) -> None:
    optuna.create_study(study_name="s", storage=open_storage(db_url))
    storage = open_storage(db_url, create=False)
    assert [s.study_name for s in storage.get_all_studies()] == ["s"]


def test_open_storage_without_create_refuses_a_missing_file(tmp_path) -> None:
    path = tmp_path / "typo" / "study.db"
    with pytest.raises(StorageError) as info:
        open_storage(_url(path), create=False)
    assert str(path) in str(info.value)
    assert not path.exists() and not path.parent.exists()


@pytest.mark.parametrize(
    "url",
    [
        "notaurl",
        "sqlite+nodriver://x",
        "sqlite+nodriver://user:hunter2@x/db",
        "postgresql+nodriver://user:hunter2@localhost:5432/db",
        "user:hunter2@localhost/db",
        "postgresql://:hunter2@localhost/db",
    ],
)
def test_a_bad_url_is_a_storage_error_that_hides_the_password(url) -> None:
    with pytest.raises(StorageError) as info:
        open_storage(url)
    assert "hunter2" not in str(info.value)
    assert "Traceback" not in str(info.value)


def test_a_sqlite_folder_that_cannot_be_created_is_a_storage_error(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StorageError, match="cannot create the folder"):
        open_storage(_url(blocker / "study.db"))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql+psycopg://user:hunter2@db.example.com:5432/sweeps",
            "postgresql+psycopg://user:***@db.example.com:5432/sweeps",
        ),
        ("postgresql://user:p%40ss@host/db", "postgresql://user:***@host/db"),
        ("postgresql://user:sec/ret@host/db", "postgresql://user:***@host/db"),
        ("postgresql+psycopg://user@host/db", "postgresql+psycopg://user@host/db"),
        ("sqlite:///sweeplab.db", "sqlite:///sweeplab.db"),
        ("sqlite:////abs/path/with:colon/x.db", "sqlite:////abs/path/with:colon/x.db"),
        (
            "postgresql://:hunter2@host/db",
            "postgresql://:***@host/db",
        ),
    ],
)
def test_mask_secrets_of_a_url(url, shown) -> None:
    assert mask_secrets(url) == shown


# --- load_study ---------------------------------------------------------------------------------


def test_load_study_of_an_unknown_name_lists_the_existing_ones(db_url) -> None:
    storage = open_storage(db_url)
    with pytest.raises(StudyNotFound, match=r"studies there: none"):
        load_study(storage, "alpha")
    for name in ("beta", "alpha"):
        optuna.create_study(study_name=name, storage=storage)
    with pytest.raises(StudyNotFound) as info:
        load_study(storage, "alpah")
    assert "'alpah'" in str(info.value) and "studies there: alpha, beta" in str(info.value)
    assert load_study(storage, "alpha").study_name == "alpha"
    assert load_study(db_url, "beta").study_name == "beta"  # a URL is opened, never created


# --- several writers ----------------------------------------------------------------------------


def _write_trials(url: str, worker: int, n: int, start, errors) -> None:
    try:
        storage = open_storage(url)
        study = optuna.load_study(
            study_name="shared", storage=storage, sampler=optuna.samplers.RandomSampler(worker)
        )
        start.wait(timeout=60)
        for i in range(n):
            trial = study.ask()
            x = trial.suggest_float("x", 0.0, 1.0)
            write_user_attrs(study, trial, {"worker": worker, "i": i, "x": x})
            storage.record_heartbeat(trial._trial_id)
            study.tell(trial, x)
    except BaseException:
        errors.put(traceback.format_exc())
        raise


def test_four_processes_write_one_sqlite_file_without_locking_errors(db_url) -> None:
    optuna.create_study(study_name="shared", storage=open_storage(db_url))
    start, errors = FORK.Barrier(4), FORK.Queue()
    workers = [
        FORK.Process(target=_write_trials, args=(db_url, w, 25, start, errors)) for w in range(4)
    ]
    for p in workers:
        p.start()
    for p in workers:
        p.join(timeout=120)
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    assert not failures, failures[0]
    assert [p.exitcode for p in workers] == [0, 0, 0, 0]
    trials = optuna.load_study(study_name="shared", storage=open_storage(db_url)).trials
    assert len(trials) == 100
    assert {t.state for t in trials} == {TrialState.COMPLETE}
    assert sorted((t.user_attrs["worker"], t.user_attrs["i"]) for t in trials) == [
        (w, i) for w in range(4) for i in range(25)
    ]
    assert all(t.value == t.user_attrs["x"] == t.params["x"] for t in trials)


# --- crash recovery -----------------------------------------------------------------------------


def _report_identity(queue, stop) -> None:
    queue.put(driver_identity())
    if stop is not None:
        stop.wait(timeout=60)


def _exited_driver() -> dict[str, Any]:
    """The identity of a real driver process that has since exited."""
    queue = FORK.Queue()
    child = FORK.Process(target=_report_identity, args=(queue, None))
    child.start()
    identity = queue.get(timeout=30)
    child.join(timeout=30)
    assert child.exitcode == 0
    assert identity["pid"] == child.pid and identity["start"] is not None
    return identity


@pytest.fixture
def live_driver():
    """The identity of another driver process on this host that is still running."""
    queue, stop = FORK.Queue(), FORK.Event()
    child = FORK.Process(target=_report_identity, args=(queue, stop))
    child.start()
    yield queue.get(timeout=30)
    stop.set()
    child.join(timeout=30)


def _start_trials(study: optuna.Study, space: searchspace.SearchSpace, n: int):
    """Ask and sample ``n`` trials the way the searcher does, each with its seed stamped."""
    trials, configs = [], []
    for _ in range(n):
        trial = study.ask()
        write_user_attrs(study, trial, {records.SEED: 1000 + trial.number})
        configs.append(searchspace.sample(trial, space))
        trials.append(study._storage.get_trial(trial._trial_id))
    return trials, configs


def _stamp(study: optuna.Study, trial: optuna.trial.FrozenTrial, driver: dict | None) -> None:
    if driver is not None:
        study._storage.set_trial_system_attr(trial._trial_id, records.DRIVER, driver)


def test_recover_interrupted_fails_and_requeues_trials_of_dead_drivers(db_url) -> None:
    storage = open_storage(db_url)
    spec = _quickstart(db_url)
    study = open_study(spec, storage)
    trials, configs = _start_trials(study, spec.space, 3)
    dead = _exited_driver()
    _stamp(study, trials[0], dead)
    _stamp(study, trials[1], dead)
    _stamp(study, trials[2], driver_identity())  # this process: alive

    found = recover_interrupted(study)

    assert [(f.number, f.params) for f in found] == [(0, trials[0].params), (1, trials[1].params)]
    by_number = {t.number: t for t in study.get_trials()}
    for n in (0, 1):
        assert by_number[n].state == TrialState.FAIL
        attrs = by_number[n].user_attrs
        assert attrs["interrupted"] is True and attrs["fail_reason"] == "interrupted"
        assert attrs["error"].startswith("interrupted: ")
    assert by_number[2].state == TrialState.RUNNING
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert [t.user_attrs for t in waiting] == [
        {"retry_of": 0, "seed": 1000},
        {"retry_of": 1, "seed": 1001},
    ]
    assert [t.system_attrs["fixed_params"] for t in waiting] == [trials[0].params, trials[1].params]

    assert recover_interrupted(study) == []  # idempotent: nothing left to recover
    assert len(study.get_trials(states=(TrialState.WAITING,))) == 2

    # The retries replay the interrupted configurations exactly, with the same seeds.
    retried, retried_configs = _start_trials(study, spec.space, 2)
    assert retried_configs == configs[:2]
    assert [t.params for t in retried] == [trials[0].params, trials[1].params]
    assert [t.user_attrs["retry_of"] for t in retried] == [0, 1]


def test_only_drivers_that_are_certainly_gone_count_as_dead(live_driver, db_url) -> None:
    storage = open_storage(db_url)
    study = optuna.create_study(storage=storage)
    drivers = {
        "exited": _exited_driver(),
        "reused pid": {**live_driver, "start": "not-its-start-tick"},
        "this process": driver_identity(),
        "live, other process": live_driver,
        "live, start unknown": {**live_driver, "start": None},
        "other host": {**_exited_driver(), "host": socket.gethostname() + "-elsewhere"},
        "unstamped": None,
    }
    trials, _ = _start_trials(study, searchspace.parse_space({"x": {"low": 0.0, "high": 1.0}}), 7)
    for trial, driver in zip(trials, drivers.values(), strict=True):
        _stamp(study, trial, driver)
    names = list(drivers)
    recovered = {names[f.number] for f in recover_interrupted(study)}
    assert recovered == {"exited", "reused pid"}


def _age_heartbeat(storage, trial: optuna.trial.FrozenTrial, seconds: int) -> None:
    """Make a trial's last heartbeat ``seconds`` old, as if its driver had gone quiet then."""
    storage.record_heartbeat(trial._trial_id)
    with storage.engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE trial_heartbeats SET heartbeat = datetime('now', ?) WHERE trial_id = ?",
            (f"-{seconds} seconds", trial._trial_id),
        )


def test_a_heartbeat_older_than_the_grace_period_recovers_a_trial_from_another_host(
    db_url,
) -> None:
    storage = open_storage(db_url)
    study = optuna.create_study(storage=storage)
    trials, _ = _start_trials(study, searchspace.parse_space({"x": {"low": 0.0, "high": 1.0}}), 4)
    elsewhere = {"host": socket.gethostname() + "-elsewhere", "pid": os.getpid(), "start": "1"}
    for trial in trials:
        _stamp(study, trial, elsewhere)
    # A few seconds either side of the grace period, so the clock ticking on is no matter.
    _age_heartbeat(storage, trials[0], HEARTBEAT_GRACE_S + 5)
    _age_heartbeat(storage, trials[1], HEARTBEAT_GRACE_S - 5)
    storage.record_heartbeat(trials[2]._trial_id)
    # trials[3] never beat: nothing says its driver is gone, so it is left alone.

    assert [f.number for f in recover_interrupted(study)] == [0]
    states = [t.state for t in study.get_trials(states=(TrialState.RUNNING, TrialState.FAIL))]
    assert states == [TrialState.FAIL] + [TrialState.RUNNING] * 3


# --- open_study and the stored spec -------------------------------------------------------------


def test_open_study_twice_loads_the_same_study(db_url) -> None:
    storage = open_storage(db_url)
    first = open_study(_quickstart(db_url), storage)
    first.ask()
    again = open_study(_quickstart(db_url), storage)
    assert again._study_id == first._study_id
    assert len(again.trials) == 1
    assert [s.study_name for s in storage.get_all_studies()] == ["quickstart"]
    assert again.direction == optuna.study.StudyDirection.MAXIMIZE


def test_a_changed_space_is_a_conflict_listing_what_differs(db_url) -> None:
    storage = open_storage(db_url)
    open_study(_quickstart(db_url), storage)
    raw = _quickstart(db_url).to_dict()
    raw["space"]["lr"]["high"] = 0.2
    raw["space"]["optimizer"]["choices"] = ["sgd", "adam"]
    raw["space"]["beta2"]["when"]["optimizer"] = ["adam"]
    with pytest.raises(SpecConflict) as info:
        open_study(spec_from_dict(raw), storage)
    message = str(info.value)
    assert "space.lr.high: stored 0.3, spec 0.2" in message
    assert (
        "space.optimizer.choices: stored ['sgd', 'adam', 'adamw'], spec ['sgd', 'adam']" in message
    )
    assert "space.beta2.when.optimizer" in message
    assert "another study name ([study] name)" in message
    # The refused spec was not written over the stored one.
    stored = storage.get_all_studies()[0].user_attrs[records.SPEC]
    assert stored["space"]["lr"]["high"] == 0.3


def test_a_changed_objective_is_a_conflict_naming_the_direction(db_url) -> None:
    storage = open_storage(db_url)
    open_study(_quickstart(db_url), storage)
    raw = _quickstart(db_url).to_dict()
    raw["study"]["objective"] = "val_loss"
    with pytest.raises(SpecConflict) as info:
        open_study(spec_from_dict(raw), storage)
    assert "study.direction: stored maximize, spec minimize" in str(info.value)
    assert "study.objective: stored 'val_acc', spec 'val_loss'" in str(info.value)


def test_how_much_to_run_may_change_between_runs(tmp_path, db_url) -> None:
    storage = open_storage(db_url)
    open_study(_quickstart(db_url), storage)
    raw = _quickstart(db_url).to_dict()
    raw["budget"]["n_trials"] = 50
    raw["search"]["concurrency"] = 4
    raw["study"]["storage"] = _url(tmp_path / "." / "study.db")
    open_study(spec_from_dict(raw), storage)
    stored = stored_spec(storage, "quickstart")
    assert (stored.budget.n_trials, stored.search.concurrency) == (50, 4)


def test_stored_spec_is_the_spec_the_study_was_run_with(tmp_path, db_url) -> None:
    storage = open_storage(db_url)
    spec = _quickstart(db_url)
    open_study(spec, storage)
    # The same file under another URL: the stored spec names where the database is now.
    other_url = _url(tmp_path / "sub" / ".." / "study.db")
    (tmp_path / "sub").mkdir()
    restored = stored_spec(other_url, "quickstart")
    expected = spec.to_dict()
    expected["study"]["storage"] = other_url
    assert restored.to_dict() == expected
    assert restored.space == spec.space


def test_stored_spec_of_a_study_sweeplab_did_not_create(db_url) -> None:
    storage = open_storage(db_url)
    optuna.create_study(study_name="foreign", storage=storage)
    with pytest.raises(SpecConflict, match="not created by sweeplab"):
        stored_spec(storage, "foreign")
    with pytest.raises(StudyNotFound, match="studies there: foreign"):
        stored_spec(storage, "quickstart")


def test_stored_spec_with_a_log_scaled_int(db_url) -> None:
    spec = parse_spec(
        f'[study]\nname = "logint"\nstorage = "{db_url}"\n'
        '[space.batch_size]\ntype = "int"\nlow = 16\nhigh = 256\nlog = true\n'
    )
    storage = open_storage(db_url)
    open_study(spec, storage)
    assert stored_spec(storage, "logint").to_dict() == spec.to_dict()


# --- make_sampler -------------------------------------------------------------------------------

GRID_SPACE = """
[space.optimizer]
type = "categorical"
choices = ["sgd", "adam"]

[space.batch_size]
type = "int"
low = 32
high = 128
step = 32
"""


@pytest.mark.parametrize(
    ("sampler", "kind"),
    [
        ("tpe", optuna.samplers.TPESampler),
        ("random", optuna.samplers.RandomSampler),
        ("grid", optuna.samplers.GridSampler),
        ("cmaes", optuna.samplers.CmaEsSampler),
    ],
)
def test_make_sampler_builds_the_spec_sampler(sampler, kind) -> None:
    spec = parse_spec(f'[search]\nsampler = "{sampler}"\n' + GRID_SPACE)
    built = make_sampler(spec, 0)
    assert isinstance(built, kind)
    study = optuna.create_study(sampler=built)
    config = searchspace.sample(study.ask(), spec.space)
    assert config["optimizer"] in ("sgd", "adam") and config["batch_size"] in (32, 64, 96, 128)


def _first_draws(spec, n_existing: int) -> list[dict[str, Any]]:
    study = optuna.create_study(sampler=make_sampler(spec, n_existing))
    draws = []
    for _ in range(3):
        trial = study.ask()
        draws.append(searchspace.sample(trial, spec.space))
        study.tell(trial, 0.5)
    return draws


@pytest.mark.parametrize("sampler", ["tpe", "random", "cmaes"])
def test_a_resumed_run_does_not_replay_the_first_runs_draws(sampler) -> None:
    raw = load_spec("quickstart").to_dict()
    raw["search"]["sampler"] = sampler
    spec = spec_from_dict(raw)
    assert _first_draws(spec, 0) == _first_draws(spec, 0)  # seeded: reproducible
    assert _first_draws(spec, 5) != _first_draws(spec, 0)


def test_a_grid_study_can_be_told_its_last_point_under_ask_tell(db_url) -> None:
    """The searcher drives studies by ask/tell, where Optuna's stock GridSampler raises from
    ``study.stop()`` on the tell that uses the grid up."""
    spec = parse_spec(f'[study]\nstorage = "{db_url}"\n[search]\nsampler = "grid"\n' + GRID_SPACE)
    study = open_study(spec, open_storage(db_url))
    seen = set()
    for _ in range(searchspace.grid_size(spec.space)):
        trial = study.ask()
        seen.add(repr(sorted(searchspace.sample(trial, spec.space).items())))
        study.tell(trial, 0.5)
    assert len(seen) == searchspace.grid_size(spec.space) == 8


# --- write_user_attrs ---------------------------------------------------------------------------


@pytest.mark.parametrize("through", ["rdb storage", "in-memory storage"])
def test_write_user_attrs_writes_several_attrs_that_read_back(through, db_url) -> None:
    storage = open_storage(db_url) if through == "rdb storage" else None
    study = optuna.create_study(storage=storage or optuna.storages.InMemoryStorage())
    trial = study.ask()
    trial.set_user_attr("seed", 1)
    attrs = {"seed": 7, "val_acc": [0.5, 0.75], "device": "cpu", "stopped_early": False}
    write_user_attrs(study, trial, attrs)
    assert study.trials[0].user_attrs == attrs  # seed overwritten


def test_write_user_attrs_is_all_or_nothing(db_url) -> None:
    storage = open_storage(db_url)
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    with pytest.raises(TypeError):  # not JSON-serialisable
        write_user_attrs(study, trial, {"first": 1, "bad": object()})
    assert storage.get_trial(trial._trial_id).user_attrs == {}


def test_write_user_attrs_refuses_a_finished_trial(db_url) -> None:
    storage = open_storage(db_url)
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    study.tell(trial, 1.0)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        write_user_attrs(study, trial, {"late": 1})
    assert storage.get_trial(trial._trial_id).user_attrs == {}


# --- a trial's start in few transactions ---------------------------------------------------------


def _commits(storage: optuna.storages.BaseStorage) -> list[int]:
    """A counter of the transactions that write on ``storage``'s engine from now on."""
    import sqlalchemy

    seen, writing = [0], [False]

    def statement(_conn, _cursor, text: str, *_: Any) -> None:
        writing[0] = writing[0] or text.lstrip().upper().startswith(("INSERT", "UPDATE"))

    def commit(_conn) -> None:
        seen[0] += writing[0]
        writing[0] = False

    sqlalchemy.event.listen(storage.engine, "before_cursor_execute", statement)
    sqlalchemy.event.listen(storage.engine, "commit", commit)
    return seen


@pytest.mark.parametrize("through", ["rdb storage", "in-memory storage"])
def test_held_params_reach_the_database_with_the_seed_in_one_commit(through, db_url) -> None:
    spec = spec_from_dict({"study": {"name": "s"}, "space": {
        "lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True},
        "optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
        "width": {"type": "int", "low": 8, "high": 64},
    }})  # fmt: skip
    storage = open_storage(db_url) if through == "rdb storage" else None
    study = optuna.create_study(storage=storage or optuna.storages.InMemoryStorage())
    trial = study.ask()
    commits = _commits(storage) if storage is not None else [0]
    with held_params(trial) as params:
        config = searchspace.sample(trial, spec.space)
        assert trial.params == config  # the trial sees its parameters at once ...
    assert commits[0] == 0  # ... Optuna's suggest_* would have written once per parameter
    if storage is not None:  # (an in-memory storage shares the trial's own copy)
        assert storage.get_trial(trial._trial_id).params == {}  # ... the database only later
    commits[0] = 0
    write_trial_records(study, trial, params=params, user_attrs={"seed": 3})
    assert commits[0] == (1 if storage is not None else 0)
    stored = study._storage.get_trial(trial._trial_id)
    assert stored.params == config and stored.user_attrs == {"seed": 3}
    assert stored.distributions == trial.distributions


def test_held_params_are_checked_against_the_studys_distributions(db_url) -> None:
    storage = open_storage(db_url)
    study = optuna.create_study(storage=storage)
    first = study.ask()
    first.suggest_float("lr", 1e-3, 1e-1)
    second = study.ask()
    with held_params(second) as params:
        second.suggest_categorical("lr", ["a", "b"])  # the name's distribution changed kind
    with pytest.raises(ValueError):
        write_trial_records(study, second, params=params, user_attrs={"seed": 1})
    assert storage.get_trial(second._trial_id).user_attrs == {}  # all or nothing


def test_a_distribution_is_read_from_the_study_once_per_storage(db_url) -> None:
    """The second trial of the same space reads no earlier parameters; a changed distribution
    is still checked (and refused) on the trial that brings it."""
    import sqlalchemy

    storage = open_storage(db_url)
    study = optuna.create_study(storage=storage)
    reads: list[str] = []

    def statement(_conn, _cursor, text: str, *_: Any) -> None:
        # The check's query: the study's earlier parameters of one name (trials joined).
        if "FROM trial_params JOIN trials" in text and "param_name" in text:
            reads.append(text)

    sqlalchemy.event.listen(storage.engine, "before_cursor_execute", statement)

    def write(choices: list[str]) -> optuna.Trial:
        trial = study.ask()
        with held_params(trial) as params:
            trial.suggest_float("lr", 1e-3, 1e-1, log=True)
            trial.suggest_categorical("optimizer", choices)
        write_trial_records(study, trial, params=params)
        return trial

    write(["sgd", "adam"])
    first_reads = len(reads)
    assert first_reads == 2  # each name checked against the study's earlier ones
    second = write(["sgd", "adam"])
    assert len(reads) == first_reads  # nothing of the study's parameters read again
    assert storage.get_trial(second._trial_id).params["optimizer"] in ("sgd", "adam")
    with pytest.raises(ValueError):
        write(["sgd", "adamw"])  # the choices changed: checked, refused
    # Another study object over the same storage is checked as strictly.
    again = optuna.load_study(study_name=study.study_name, storage=storage)
    trial = again.ask()
    with held_params(trial) as params:
        trial.suggest_float("lr", 1e-3, 1e-1, log=False)  # the log scale changed
    with pytest.raises(ValueError):
        write_trial_records(again, trial, params=params)


def test_write_trial_records_writes_values_and_attrs_together(db_url) -> None:
    storage = open_storage(db_url)
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    write_trial_records(study, trial, user_attrs={"worker_pid": 12}, values={1: 0.5, 2: 0.75})
    stored = storage.get_trial(trial._trial_id)
    assert stored.intermediate_values == {1: 0.5, 2: 0.75}
    assert stored.user_attrs == {"worker_pid": 12}
    study.tell(trial, 0.75)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        write_trial_records(study, trial, values={3: 0.8})


def test_ask_new_starts_a_trial_without_taking_an_enqueued_one(db_url) -> None:
    storage = open_storage(db_url)
    study = optuna.create_study(storage=storage)
    study.enqueue_trial({"x": 1.0})
    trial = ask_new(study)  # its caller counted no waiting trial: none is taken
    assert trial.number == 1 and storage.get_trial(trial._trial_id).state == TrialState.RUNNING
    assert count_by_state(study)[TrialState.WAITING] == 1
    assert study.ask().number == 0  # Optuna's ask takes the enqueued one


def test_ask_new_reads_no_trial_back_and_gives_optunas_trial(db_url) -> None:
    import sqlalchemy

    storage = open_storage(db_url)
    study = optuna.create_study(storage=storage)
    statements: list[str] = []
    sqlalchemy.event.listen(
        storage.engine, "before_cursor_execute", lambda *a: statements.append(a[2].lstrip())
    )
    cached = study._storage  # Optuna's caching wrapper around the RDB storage
    optuna.Trial(study, cached.create_new_trial(study._study_id))  # what Optuna's ask does
    theirs, statements[:] = len(statements), []
    trial = ask_new(study)
    assert len(statements) < theirs  # the new trial is not read back from the database
    assert trial.storage is cached and study._storage is cached
    stored = storage.get_trial(trial._trial_id)
    mine = trial._cached_frozen_trial
    assert (mine.number, mine.state, mine.datetime_start) == (
        stored.number,
        stored.state,
        stored.datetime_start,
    )
    x = trial.suggest_float("x", 0.0, 1.0)  # it samples and stores as any trial
    assert storage.get_trial(trial._trial_id).params == {"x": x}


def test_tell_ends_the_trial_as_optuna_does_and_reads_nothing_back(db_url) -> None:
    import sqlalchemy

    storage = open_storage(db_url)
    study = optuna.create_study(storage=storage)
    pruned, complete = ask_new(study), ask_new(study)
    write_trial_records(study, pruned, values={1: 0.4, 2: 0.6})
    statements: list[str] = []
    sqlalchemy.event.listen(
        storage.engine, "before_cursor_execute", lambda *a: statements.append(a[2].lstrip())
    )
    assert tell(study, complete, 0.9, state=TrialState.COMPLETE) == TrialState.COMPLETE
    # Optuna's tell reads the trial again after writing it, to return a copy: this one does not.
    last_write = max(i for i, text in enumerate(statements) if text.startswith("UPDATE"))
    assert not any(text.startswith("SELECT") for text in statements[last_write:])
    assert tell(study, pruned, state=TrialState.PRUNED) == TrialState.PRUNED
    assert storage.get_trial(pruned._trial_id).value == 0.6  # its last epoch's, as Optuna's
    assert storage.get_trial(complete._trial_id).value == 0.9
    # Told again (a late report of a trial already ended): its state, nothing changed.
    assert tell(study, complete, 0.1, state=TrialState.COMPLETE) == TrialState.COMPLETE
    assert storage.get_trial(complete._trial_id).value == 0.9


def test_stamp_started_sets_the_attrs_and_the_first_heartbeat(db_url) -> None:
    storage = optuna.storages.RDBStorage(db_url, heartbeat_interval=60)
    study = optuna.create_study(storage=storage)
    trial = ask_new(study)
    commits = _commits(storage)
    stamp_started(study, trial, {"driver": {"host": "h", "pid": 1}})
    assert commits[0] == 1
    assert storage.get_trial(trial._trial_id).system_attrs["driver"] == {"host": "h", "pid": 1}
    assert storage._get_stale_trial_ids(study._study_id) == []  # it has a heartbeat, a fresh one


# --- count_by_state -----------------------------------------------------------------------------


@pytest.mark.parametrize("through", ["rdb storage", "in-memory storage"])
def test_count_by_state_agrees_with_optuna(through, db_url) -> None:
    storage = optuna.storages.InMemoryStorage() if through == "in-memory storage" else None
    storage = storage or open_storage(db_url)
    study = optuna.create_study(storage=storage)
    other = optuna.create_study(storage=storage)  # its trials must not be counted
    other.tell(other.ask(), 0.0)
    trials = [study.ask() for _ in range(5)]
    study.tell(trials[0], 1.0)
    study.tell(trials[1], 2.0)
    study.tell(trials[2], state=TrialState.PRUNED)
    study.tell(trials[3], state=TrialState.FAIL)
    counts = count_by_state(study)
    assert counts == {s: storage.get_n_trials(study._study_id, s) for s in TrialState}
    assert counts[TrialState.COMPLETE] == 2 and counts[TrialState.RUNNING] == 1


def _open_fresh(url: str) -> str:
    from sweeplab.studies.storage import open_storage

    open_storage(url)
    return "ok"


def test_drivers_creating_one_new_database_at_once_all_open_it(tmp_path: Path) -> None:
    """Two drivers started together on a new database both create its tables; the loser of the
    race must open the database, not fail with "table alembic_version already exists"."""
    context = multiprocessing.get_context("fork")
    for round_ in range(8):
        url = f"sqlite:///{tmp_path / f'fresh-{round_}.db'}"
        with context.Pool(6) as pool:
            assert pool.map(_open_fresh, [url] * 6) == ["ok"] * 6


def test_records_examples_run() -> None:
    import doctest

    result = doctest.testmod(records)
    assert result.failed == 0 and result.attempted > 0
