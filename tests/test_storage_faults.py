"""sweeplab never writes where it should not, and a failing database gets one clear message.

Read-only commands open a database read-only: its bytes (checksum) and journal mode stay as they
were, also for a plain Optuna database and on read-only media; a SQLite file that is not an Optuna
database is refused before anything is written to it, and so is a plain Optuna study as the target
of a run. A damaged file, a full disk and an in-memory URL each end in one message with the cause
and the fix, never a traceback. All on real SQLite files (and a real small tmpfs where the machine
allows mounting one).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
import warnings
from pathlib import Path

import optuna
import pytest
from conftest import run_cli as _sweeplab
from conftest import tiny_spec
from optuna.trial import TrialState

from sweeplab import searchspace
from sweeplab.studies import load_spec, open_storage, open_study, records

READERS = [
    ["status", "tiny"],
    ["best", "tiny"],
    ["export", "tiny", "-o", "{out}/t.csv"],
    ["report", "tiny", "-o", "{out}/report"],
    ["studies"],
]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _journal_mode(path: Path) -> str:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return db.execute("PRAGMA journal_mode").fetchone()[0]


def _sweeplab_study(tmp_path: Path) -> Path:
    """A sweeplab study 'tiny' with three finished trials, written without Ray, checkpointed
    into the main file (so a reader that wrote anything would change its bytes)."""
    spec = load_spec(tiny_spec(tmp_path))
    study = open_study(spec, open_storage(spec.study.storage))
    for value in (0.5, 0.9, 0.7):
        trial = study.ask()
        searchspace.sample(trial, spec.space)
        for key, curve in (("val_acc", [value]), ("train_acc", [value]), ("train_loss", [1.0])):
            trial.set_user_attr(key, curve)
        trial.set_user_attr("test_acc", value - 0.01)
        trial.report(value, 1)
        study.tell(trial, value)
    path = tmp_path / "study.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def _args(args: list[str], url: str, out: Path) -> list[str]:
    return [a.format(out=out) for a in args] + ["--storage", url]


def test_read_only_commands_never_change_a_sweeplab_database(capsys, tmp_path: Path) -> None:
    path = _sweeplab_study(tmp_path)
    url = f"sqlite:///{path}"
    before = _digest(path)
    for args in READERS:
        code, _, err = _sweeplab(capsys, *_args(args, url, tmp_path))
        assert code == 0, (args, err)
        assert _digest(path) == before, f"{args[0]} changed the database's bytes"


def test_read_only_commands_leave_a_plain_optuna_database_as_it_is(capsys, tmp_path) -> None:
    path = tmp_path / "plain.db"
    url = f"sqlite:///{path}"
    study = optuna.create_study(study_name="tiny", storage=url)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    before, mode = _digest(path), _journal_mode(path)
    assert mode == "delete"  # Optuna's default: sweeplab must not switch it to WAL
    for args in READERS:
        _sweeplab(capsys, *_args(args, url, tmp_path))
        assert _digest(path) == before and _journal_mode(path) == mode, args[0]


def test_a_sqlite_file_of_someone_elses_is_refused_and_untouched(capsys, tmp_path) -> None:
    path = tmp_path / "notes.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (body TEXT)")
        db.execute("INSERT INTO notes VALUES ('mine')")
    before, mode = _digest(path), _journal_mode(path)
    url = f"sqlite:///{path}"
    spec = tiny_spec(tmp_path)
    for args in [*READERS, ["run", str(spec)], ["resume", "tiny"], ["ablate", "tiny"]]:
        code, _, err = _sweeplab(capsys, *_args(args, url, tmp_path))
        assert code == 2 and "Traceback" not in err, (args, err)
        assert "is not an Optuna study database (its tables: notes)" in err, (args, err)
        assert _digest(path) == before and _journal_mode(path) == mode, args[0]


def test_a_run_into_a_plain_optuna_study_is_refused(capsys, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    theirs = optuna.create_study(study_name="theirs", storage=url, direction="minimize")
    theirs.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    code, _, err = _sweeplab(
        capsys, "run", str(tiny_spec(tmp_path)), "--name", "theirs", "--storage", url
    )
    assert code == 2 and "was not created by sweeplab" in err and "Traceback" not in err
    again = optuna.load_study(study_name="theirs", storage=url)
    assert again.user_attrs == {} and len(again.trials) == 2, "nothing was stamped on it"


def test_an_in_memory_database_is_refused_for_a_run(capsys, tmp_path: Path) -> None:
    for url in ("sqlite://", "sqlite:///:memory:"):
        code, _, err = _sweeplab(capsys, "run", str(tiny_spec(tmp_path)), "--storage", url)
        assert code == 2 and "in-memory databases cannot be shared with workers" in err


@pytest.mark.parametrize("where", ["header", "middle"])
def test_a_damaged_database_is_one_message_exit_1(capsys, tmp_path: Path, where: str) -> None:
    path = _sweeplab_study(tmp_path)
    size = path.stat().st_size
    with open(path, "r+b") as f:  # overwrite bytes: the header page, or pages further in
        f.seek(0 if where == "header" else size // 2)
        f.write(b"\xa5" * (4096 * 2))
    url = f"sqlite:///{path}"
    for args in [*READERS, ["resume", "tiny"]]:
        code, _, err = _sweeplab(capsys, *_args(args, url, tmp_path))
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, (args, err)
        assert code in (1, 2), (args, err)
        if code == 1:
            assert "malformed" in err or "not a database" in err, err
            assert "restore it from a backup" in err, err


def _mount(target: Path, options: str) -> bool:
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True
    )
    return done.returncode == 0


def _umount(target: Path) -> None:
    # Lazy: a connection this test process still pools may hold a file open on it.
    subprocess.run(["umount", "-l", str(target)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path: Path):
    """A real tmpfs of 400 KiB (skipped where this machine cannot mount one)."""
    target = tmp_path / "disk"
    if os.geteuid() != 0 or shutil.which("mount") is None or not _mount(target, "size=400k"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield target
    _umount(target)


def test_read_only_media_can_be_inspected(capsys, small_disk: Path, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    source = _sweeplab_study(tmp_path / "src")
    shutil.copy(source, small_disk / "study.db")
    remount = subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], capture_output=True)
    assert remount.returncode == 0, remount.stderr
    url = f"sqlite:///{small_disk / 'study.db'}"
    for args in READERS:  # the report and the export are written outside the medium
        code, _, err = _sweeplab(capsys, *_args(args, url, tmp_path))
        assert code == 0, (args, err)


@pytest.mark.slow  # a real run that fills the disk, then a resume
def test_a_full_disk_is_one_message_and_resume_recovers_once_there_is_room(
    small_disk: Path, tmp_path: Path
) -> None:
    name = f"full-{uuid.uuid4().hex[:6]}"
    spec = tiny_spec(tmp_path, name=name, n_trials=30, max_epochs=20, concurrency=2)
    url = f"sqlite:///{small_disk / 'study.db'}"
    command = [sys.executable, "-m", "sweeplab.studies.cli"]
    run = subprocess.run(
        [*command, "run", str(spec), "--storage", url], capture_output=True, text=True,
        timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert "database or disk is full" in last and "sweeplab resume" in last, last
    assert "invalid data in the commit" not in run.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        left = optuna.load_study(study_name=name, storage=url).trials
    finished = {t.number: t.value for t in left if t.state.is_finished()}
    assert len(finished) < 30
    # Room again: resume recovers the trials that were running and finishes the budget.
    grown = subprocess.run(
        ["mount", "-o", "remount,size=64m", str(small_disk)], capture_output=True
    )
    assert grown.returncode == 0, grown.stderr
    resumed = subprocess.run(
        [*command, "resume", name, "--storage", url], capture_output=True, text=True,
        timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trials = optuna.load_study(study_name=name, storage=url).trials
    states = [t.state for t in trials]
    assert states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED) == 30
    assert TrialState.RUNNING not in states
    for t in trials:  # nothing finished before the disk filled changed
        if t.number in finished and t.state != TrialState.FAIL:
            assert t.value == finished[t.number]
    assert all(
        t.user_attrs.get(records.FAIL_REASON) == "interrupted"
        for t in trials
        if t.state == TrialState.FAIL
    )


def test_storage_opening_examples_run() -> None:
    import doctest

    from sweeplab.studies.storage import _open

    result = doctest.testmod(_open, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_ordinary_mistakes_in_a_spec_are_one_message_and_create_nothing(
    capsys, tmp_path: Path
) -> None:
    base = tiny_spec(tmp_path).read_text(encoding="utf-8")
    cases = {
        "seed.toml": (base.replace("seed = 1", "seed = 4294967296"), "study.seed"),
        "subset.toml": (
            base.replace('dataset = "digits"', 'dataset = "digits"\nsubset = 1000000000000'),
            "`data.subset` must be at most",
        ),
        "deep.toml": ("a = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deep"),
        "deeper.toml": ("a = " + "[" * 100 + "]" * 100 + "\n", "nested deeper than 32 levels"),
        "huge.toml": ("# padding\n" * 200_000, "a spec is at most 1,000,000"),
    }
    folder = tmp_path / "specs"
    folder.mkdir()
    for name, (text, expected) in cases.items():
        (folder / name).write_text(text, encoding="utf-8")
        before = sorted(p.name for p in tmp_path.rglob("*"))
        code, _, err = _sweeplab(capsys, "run", str(folder / name))
        assert code == 2 and expected in err and "Traceback" not in err, (name, err)
        assert len(err.strip().splitlines()) <= 2, err  # the header line, then the error
        assert sorted(p.name for p in tmp_path.rglob("*")) == before, f"{name} created files"


def test_an_output_that_cannot_be_written_is_one_message_exit_2(capsys, tmp_path: Path) -> None:
    url = f"sqlite:///{_sweeplab_study(tmp_path)}"
    (tmp_path / "afile").write_text("not a folder", encoding="utf-8")
    targets = ["/proc/sweeplab-out", str(tmp_path / "afile" / "sub")]
    for target in targets:
        for args in (["export", "tiny", "-o", f"{target}/t.csv"], ["report", "tiny", "-o", target]):
            code, _, err = _sweeplab(capsys, *args, "--storage", url)
            assert code == 2 and "cannot write" in err and "Traceback" not in err, (args, err)
    assert (tmp_path / "afile").read_text(encoding="utf-8") == "not a folder"


def test_an_output_on_read_only_media_is_one_message(capsys, small_disk, tmp_path) -> None:
    url = f"sqlite:///{_sweeplab_study(tmp_path)}"
    remount = subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], capture_output=True)
    assert remount.returncode == 0, remount.stderr
    for args in (
        ["export", "tiny", "-o", f"{small_disk}/t.csv"],
        ["report", "tiny", "-o", f"{small_disk}/r"],
    ):
        code, _, err = _sweeplab(capsys, *args, "--storage", url)
        assert code == 2 and "Read-only file system" in err and "Traceback" not in err, err
