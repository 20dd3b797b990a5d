"""The command line without Ray: presets, init, and every usage error as one line with exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli as sweeplab
from conftest import tiny_spec

from sweeplab.studies import load_spec


def test_presets_lists_quickstart(capsys) -> None:
    code, out, _ = sweeplab(capsys, "presets")
    assert code == 0 and "quickstart" in out and "digits/mlp" in out


def test_init_writes_an_editable_spec_that_runs(capsys, tmp_path: Path) -> None:
    target = tmp_path / "mine.toml"
    code, _, _ = sweeplab(capsys, "init", "quickstart", "-o", str(target))
    assert code == 0
    expected = load_spec("quickstart").to_dict()
    expected["study"]["name"] = "mine"
    assert load_spec(str(target)).to_dict() == expected
    code, _, err = sweeplab(capsys, "init", "quickstart", "-o", str(target))
    assert code == 2 and "--force" in err
    code, _, err = sweeplab(capsys, "init", "nosuch", "-o", str(tmp_path / "x.toml"))
    assert code == 2 and "unknown preset 'nosuch'" in err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "no-such-spec.toml"], "no such spec file, and not a preset"),
        (["status", "nope"], "no study database at"),
        (["best", "nope"], "no study database at"),
        (["export", "nope", "-o", "x.xlsx"], "the export format is chosen by the suffix"),
        (["resume", "nope"], "no study database at"),
        (
            ["run", "quickstart", "--storage", "mysql+nodriver://u:hunter2@h/db"],
            "cannot open the study database",
        ),
    ],
)
def test_usage_errors_are_one_line_exit_2(capsys, tmp_path, monkeypatch, args, expected) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = sweeplab(capsys, *args)
    assert code == 2
    assert expected in err
    assert "Traceback" not in err and "hunter2" not in err
    assert not (tmp_path / "sweeplab.db").exists(), "a failed command must not create a database"


def test_unknown_study_lists_the_existing_ones(capsys, tmp_path: Path) -> None:
    import optuna

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    optuna.create_study(study_name="alpha", storage=url)
    code, _, err = sweeplab(capsys, "status", "beta", "--storage", url)
    assert code == 2 and "no study named 'beta'" in err and "alpha" in err


def test_a_conflicting_spec_is_refused_and_the_study_is_untouched(capsys, tmp_path: Path) -> None:
    """Resuming with a changed search space names each difference and changes nothing."""
    import optuna

    from sweeplab.studies import open_storage, open_study

    spec = load_spec(tiny_spec(tmp_path))
    storage = open_storage(spec.study.storage)
    open_study(spec, storage).ask()
    before = optuna.load_study(study_name="tiny", storage=storage).user_attrs
    changed = tiny_spec(tmp_path, name="tiny", max_epochs=9)
    code, _, err = sweeplab(capsys, "run", str(changed))
    assert code == 2
    assert "budget.max_epochs: stored 4, spec 9" in err
    assert "--name NEW" in err  # the command line says how to choose another name here
    after = optuna.load_study(study_name="tiny", storage=storage)
    assert after.user_attrs == before and len(after.trials) == 1


def test_console_script_is_installed() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sweeplab.studies.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "run" in result.stdout and "resume" in result.stdout


def test_missing_dataset_files_are_one_message_and_no_study(capsys, tmp_path: Path) -> None:
    """Offline with the files absent: say where they were expected; leave no database."""
    spec = tiny_spec(tmp_path, name="nodata")
    text = spec.read_text().replace(
        'dataset = "digits"', f'dataset = "mnist"\nroot = "{tmp_path / "empty"}"'
    )
    spec.write_text(text)
    code, _, err = sweeplab(capsys, "run", str(spec))
    assert code == 2
    assert str(tmp_path / "empty") in err and "download" in err
    assert not (tmp_path / "study.db").exists()


def test_an_unreachable_database_server_is_one_message_with_the_password_hidden(capsys) -> None:
    """Nothing listens on port 9: the connection is refused, whatever the credentials."""
    url = "postgresql+psycopg://sweeplab:hunter2@127.0.0.1:9/sweeplab"
    for args in (["status", "x", "--storage", url], ["resume", "x", "--storage", url]):
        code, _, err = sweeplab(capsys, *args)
        assert code == 2
        assert "cannot open the study database" in err and "127.0.0.1:9" in err
        assert "hunter2" not in err and "***" in err and "Traceback" not in err


def test_resume_of_an_unknown_study_lists_the_existing_ones(capsys, tmp_path: Path) -> None:
    import optuna

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    optuna.create_study(study_name="alpha", storage=url)
    optuna.create_study(study_name="beta", storage=url)
    code, _, err = sweeplab(capsys, "resume", "gamma", "--storage", url)
    assert code == 2
    assert "no study named 'gamma'" in err and "alpha, beta" in err
    assert optuna.study.get_all_study_names(storage=url) == ["alpha", "beta"]


def test_init_names_the_copys_study_after_its_file(capsys, tmp_path: Path) -> None:
    target = tmp_path / "study.toml"
    code, out, _ = sweeplab(capsys, "init", "quickstart", "-o", str(target))
    assert code == 0 and "sweeplab status study" in out
    spec = load_spec(str(target))
    assert spec.study.name == "study"
    expected = load_spec("quickstart").to_dict()
    expected["study"]["name"] = "study"
    assert spec.to_dict() == expected  # nothing else of the preset changed


def _a_database(tmp_path: Path) -> str:
    import optuna

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    search = optuna.create_study(study_name="search", storage=url, direction="maximize")
    search.set_user_attr("objective", "val_acc")
    for value in (0.5, 0.9):
        search.add_trial(optuna.trial.create_trial(value=value))
    failed = search.ask()
    failed.set_user_attr("fail_reason", "diverged")
    search.tell(failed, state=optuna.trial.TrialState.FAIL)
    ablation = optuna.create_study(study_name="search-loo", storage=url, direction="maximize")
    ablation.set_user_attr("sweeplab_parent", "search")
    for seed in (0, 1):
        trial = optuna.trial.create_trial(
            value=0.8, user_attrs={"variant": "-dropout", "seed": seed}
        )
        ablation.add_trial(trial)
    return url


def test_studies_lists_each_study_with_its_counts_and_best_value(capsys, tmp_path: Path) -> None:
    url = _a_database(tmp_path)
    code, out, _ = sweeplab(capsys, "studies", "--storage", url)
    assert code == 0 and "2 studies in" in out
    search = next(line for line in out.splitlines() if line.strip().startswith("search "))
    assert "maximize val_acc" in search and "0.9" in search and "search" in search
    cells = [c.strip() for c in search.split("│")]
    assert cells[3:8] == ["3", "2", "0", "1", "0"]  # trials, complete, pruned, failed, running
    assert "ablation of search" in out


def test_status_shows_why_a_trial_failed_and_an_ablations_variant_and_seed(
    capsys, tmp_path: Path
) -> None:
    url = _a_database(tmp_path)
    code, out, _ = sweeplab(capsys, "status", "search", "--storage", url)
    assert code == 0 and "reason" in out and "diverged" in out
    code, out, _ = sweeplab(capsys, "status", "search-loo", "--storage", url)
    assert code == 0 and "variant" in out and "-dropout" in out and "seed" in out


@pytest.mark.slow  # a real run through Ray Tune in which every trial diverges (~15 s)
def test_a_run_whose_trials_all_fail_exits_1_with_the_reason(tmp_path: Path) -> None:
    space = """
[space.lr]
type = "categorical"
choices = [1e30]

[space.optimizer]
value = "sgd"
"""
    spec = tiny_spec(tmp_path, name="allfail", n_trials=2, max_epochs=2, space=space,
                     max_failures=2, scheduler="none")  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "sweeplab.studies.cli", "run", str(spec)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-2000:]
    assert "has 0 of its 2 trials with a result" in done.stderr
    assert "max_failures" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow  # a real run through Ray Tune, then its report (~40 s)
def test_a_study_of_fixed_values_runs_one_configuration_once_per_seed(tmp_path: Path) -> None:
    space = """
[space]
lr = 0.01
optimizer = "adam"
dropout = 0.1
"""
    spec = tiny_spec(tmp_path, name="fixed", n_trials=3, max_epochs=2, space=space,
                     scheduler="none")  # fmt: skip
    cli = [sys.executable, "-m", "sweeplab.studies.cli"]
    done = subprocess.run([*cli, "run", str(spec)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    import optuna

    trials = optuna.load_study(
        study_name="fixed", storage=f"sqlite:///{tmp_path / 'study.db'}"
    ).trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    assert sorted(t.user_attrs["seed"] for t in trials) == [1, 2, 3]  # seed + n
    assert len({tuple(t.user_attrs["val_acc"]) for t in trials}) == 3  # the seeds differ
    storage = ["--storage", f"sqlite:///{tmp_path / 'study.db'}"]
    report = subprocess.run(
        [*cli, "report", "fixed", *storage, "-o", str(tmp_path / "report")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert report.returncode == 0, report.stderr[-2000:]
    assert (tmp_path / "report" / "report.html").exists()


def test_the_best_parameters_wrap_between_items_never_inside_a_number() -> None:
    import doctest

    from sweeplab.studies import cli

    items = [f"p{i}={0.00541942 * (i + 1):.4g}" for i in range(30)] + ["augment=crop+noise"]
    for width in (40, 61, 80):
        lines = cli._wrap_items(items, width=width)
        assert all(len(line) <= width for line in lines), width
        # Joined back, the lines are the items in order, each whole on one line.
        assert " ".join(line.strip() for line in lines) == ", ".join(items)
        assert all(line.strip().rstrip(",").split(", ") for line in lines)
        pieces = [p for line in lines for p in line.strip().rstrip(",").split(", ")]
        assert pieces == items
    finder = doctest.DocTestFinder()
    (test,) = finder.find(cli._wrap_items, globs={"_wrap_items": cli._wrap_items})
    assert doctest.DocTestRunner().run(test).failed == 0
