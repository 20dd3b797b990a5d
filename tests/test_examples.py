"""The ``examples/`` folders, each run end to end as a user would: search, ablate, report, from a
copy of the folder (the user's module is installed nowhere), through the command line. Plus the
Python API with a training function given as an object, and what a broken function gets.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from rich.console import Console

import sweeplab

pytestmark = pytest.mark.slow  # real studies through Ray Tune

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CLI = [sys.executable, "-m", "sweeplab.studies.cli"]


def _sweeplab(folder: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args], cwd=folder, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize(
    ("example", "study", "own_names", "components"),
    [
        ("own_model", "own-model", ["depth", "width"], "lr,depth"),
        ("own_data", "own-data", ["depth", "width"], "lr,width"),
        ("own_training_function", "own-function", ["depth", "width"], "dropout,depth"),
    ],
)
def test_an_example_searches_ablates_and_reports(
    tmp_path: Path, example: str, study: str, own_names: list[str], components: str
) -> None:
    folder = tmp_path / example
    shutil.copytree(
        EXAMPLES / example, folder, ignore=shutil.ignore_patterns("*.db*", "__pycache__")
    )
    run = _sweeplab(folder, "run", "study.toml", "--n-trials", "6", "--max-epochs", "4")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "best trial" in run.stdout

    loaded = optuna.load_study(study_name=study, storage=f"sqlite:///{folder / 'sweeplab.db'}")
    finished = [t for t in loaded.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 6 and all(set(own_names) <= set(t.params) for t in finished)
    assert loaded.metric_names == [loaded.user_attrs["objective"]]  # optuna-dashboard's label

    # Resume from the database alone: the stored spec names the user's code, found again here.
    resume = _sweeplab(folder, "resume", study, "--n-trials", "8")
    assert resume.returncode == 0, resume.stderr[-3000:]
    again = optuna.load_study(study_name=study, storage=f"sqlite:///{folder / 'sweeplab.db'}")
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in again.trials) == 8

    ablate = _sweeplab(folder, "ablate", study, "--seeds", "2", "--components", components)
    assert ablate.returncode == 0, ablate.stderr[-3000:]
    rows = [line for line in ablate.stdout.splitlines() if line.startswith("| `")]
    linked = [s for s in optuna.get_all_study_names(loaded._storage) if s != study]
    how = sweeplab.studies.records.AblationRecord.from_attr(
        optuna.load_study(study_name=linked[0], storage=loaded._storage).user_attrs[
            sweeplab.studies.records.ABLATION
        ]
    )
    # A component the best trial has at its default already is left out, and said so.
    assert sorted([*how.components, *how.unchanged]) == sorted(components.split(","))
    assert [r.split("`")[1] for r in rows] == ["baseline", *(f"-{c}" for c in how.components)]

    report = _sweeplab(folder, "report", study, "-o", "report")
    assert report.returncode == 0, report.stderr[-3000:]
    text = (folder / "report" / "report.md").read_text(encoding="utf-8")
    assert f"`{loaded.user_attrs['objective']}`" in text and "## Ablations" in text
    assert (folder / "report" / "report.html").exists()


def _train(hp: dict, trial: sweeplab.Trial) -> dict:
    """A training function defined in a test module: a noisy quadratic, pruned by ASHA."""
    x = hp["x"]
    for epoch in range(1, trial.max_epochs + 1):
        trial.report(epoch, score=-((x - 0.3) ** 2) - 1.0 / epoch)
    return {"final_x": x}


def test_the_python_api_takes_a_function_object_and_prints_no_optuna_lines(
    tmp_path: Path, capfd
) -> None:
    spec = sweeplab.spec_from_dict(
        {
            "study": {"name": "api", "storage": f"sqlite:///{tmp_path / 'api.db'}",
                      "objective": "score", "direction": "maximize"},
            "budget": {"n_trials": 6, "max_epochs": 4},
            "search": {"sampler": "random", "grace_period": 1, "reduction_factor": 2},
            "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
        }
    )  # fmt: skip
    summary = sweeplab.run_study(spec, function=_train, console=Console(file=io.StringIO()))
    assert summary.counts["complete"] + summary.counts["pruned"] == 6
    assert summary.best_attrs[sweeplab.studies.records.FINAL_METRICS]["final_x"] == pytest.approx(
        summary.best_params["x"]
    )
    out, err = capfd.readouterr()
    assert "A new study created" not in out + err and "[I " not in out + err
    stored = optuna.load_study(study_name="api", storage=spec.study.storage).user_attrs
    assert stored["sweeplab_spec"]["trainable"]["function"] == f"{__name__}:_train"


BROKEN = """
def train(hp, trial):
    {body}
"""
BROKEN_SPEC = """
[study]
name = "broken"
storage = "sqlite:///study.db"
objective = "score"
direction = "maximize"
[trainable]
function = "broken:train"
[budget]
n_trials = 3
max_epochs = 2
[search]
concurrency = 1
[space.x]
type = "float"
low = 0.0
high = 1.0
"""


def test_a_function_that_never_reports_stops_the_run_with_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text(BROKEN.format(body="return None"), encoding="utf-8")
    (tmp_path / "study.toml").write_text(BROKEN_SPEC, encoding="utf-8")
    run = _sweeplab(tmp_path, "run", "study.toml")
    assert run.returncode == 2, run.stderr
    assert "trainable.function: broken:train" in run.stderr
    assert "returned without reporting an epoch" in run.stderr and "Traceback" not in run.stderr
    trials = optuna.load_study(
        study_name="broken", storage=f"sqlite:///{tmp_path / 'study.db'}"
    ).trials
    assert len(trials) == 1 and trials[0].user_attrs["fail_reason"] == "usage"


def test_an_exception_in_a_function_fails_the_trial_and_status_shows_its_traceback(
    tmp_path: Path,
) -> None:
    body = "trial.report(1, score=hp['x'])\n    if hp['x'] > -1:\n        raise ValueError('bad x')"
    (tmp_path / "broken.py").write_text(BROKEN.format(body=body), encoding="utf-8")
    (tmp_path / "study.toml").write_text(BROKEN_SPEC, encoding="utf-8")
    run = _sweeplab(tmp_path, "run", "study.toml")
    assert "3 failed" in run.stdout, run.stdout + run.stderr
    shown = _sweeplab(
        tmp_path, "status", "broken", "--storage", "sqlite:///study.db", "--trial", "0"
    )
    assert shown.returncode == 0, shown.stderr
    assert "error: ValueError: bad x" in shown.stdout
    assert 'broken.py", line 5, in train' in shown.stdout  # the user's own traceback
    best = _sweeplab(tmp_path, "best", "broken", "--storage", "sqlite:///study.db", "--json")
    assert best.returncode == 2 and "no complete trial" in best.stderr
