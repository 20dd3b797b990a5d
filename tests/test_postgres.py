"""The same storage behaviour on a real PostgreSQL server (CI starts one: .ci/postgres.sh).

Runs when SWEEPLAB_TEST_POSTGRES_URL names a server; skipped otherwise, except in CI, where a
missing server is a failure rather than a silent skip.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import uuid

import optuna
import pytest
from conftest import tiny_spec
from optuna.trial import TrialState
from rich.console import Console

from sweeplab.studies import StorageError, load_spec, mask_secrets, open_storage, run_study
from sweeplab.studies.cli import main

URL = os.environ.get("SWEEPLAB_TEST_POSTGRES_URL")
if URL is None:
    if os.environ.get("CI"):
        raise RuntimeError("CI must provide SWEEPLAB_TEST_POSTGRES_URL (see .ci/postgres.sh)")
    pytest.skip("no PostgreSQL server (set SWEEPLAB_TEST_POSTGRES_URL)", allow_module_level=True)


def _name() -> str:
    return f"pg-{uuid.uuid4().hex[:10]}"


def test_open_storage_creates_and_lists_studies() -> None:
    storage = open_storage(URL)
    name = _name()
    study = optuna.create_study(study_name=name, storage=storage)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    again = optuna.load_study(study_name=name, storage=open_storage(URL))
    assert len(again.trials) == 3


def test_wrong_password_is_a_storage_error_with_the_password_masked(capsys) -> None:
    bad = URL.replace(":sweeplab-ci-pw@", ":wrong-secret@") if "sweeplab-ci-pw" in URL else None
    if bad is None:
        pytest.skip("the server's password is not the CI one")
    with pytest.raises(StorageError) as info:
        open_storage(bad)
    assert "wrong-secret" not in str(info.value) and "***" in str(info.value)
    with pytest.raises(SystemExit) as code:
        main(["status", "anything", "--storage", bad])
    err = capsys.readouterr().err
    assert code.value.code == 2 and "wrong-secret" not in err and "cannot open" in err


def test_unreachable_server_is_a_storage_error() -> None:
    closed_port = URL.rsplit("@", 1)[0] + "@127.0.0.1:9/sweeplab"
    with pytest.raises(StorageError, match="cannot open the study database"):
        open_storage(closed_port)


def _tell_trials(args: tuple[str, str, int]) -> None:
    url, name, n = args
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    for i in range(n):
        trial = study.ask()
        trial.set_user_attr("writer", os.getpid())
        study.tell(trial, float(i))


def test_concurrent_writers_share_one_study() -> None:
    name = _name()
    optuna.create_study(study_name=name, storage=open_storage(URL))
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.map(_tell_trials, [(URL, name, 15)] * 4)
    trials = optuna.load_study(study_name=name, storage=open_storage(URL)).trials
    assert len(trials) == 60 and all(t.state == TrialState.COMPLETE for t in trials)
    assert len({t.number for t in trials}) == 60


@pytest.mark.slow
def test_a_study_runs_resumes_and_reports_on_postgres(ray_local, tmp_path, capsys) -> None:
    name = _name()
    spec_path = tiny_spec(tmp_path, name=name, n_trials=4, max_epochs=3)
    spec = load_spec(spec_path).with_overrides(storage=URL)
    summary = run_study(spec, console=Console(file=io.StringIO()))
    assert summary.counts["complete"] + summary.counts["pruned"] == 4
    assert run_study(spec, console=Console(file=io.StringIO())).ran == 0

    for args in (
        ["status", name],
        ["best", name, "--json"],
        ["report", name, "-o", str(tmp_path / "r")],
    ):
        with pytest.raises(SystemExit) as code:
            main([*args, "--storage", URL])
        out = capsys.readouterr()
        assert code.value.code == 0, out.err
        assert "sweeplab-ci-pw" not in out.out + out.err
    report = (tmp_path / "r" / "report.md").read_text()
    assert mask_secrets(URL) in report or "***" in report
    assert "sweeplab-ci-pw" not in report
