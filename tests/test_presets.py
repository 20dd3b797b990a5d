"""The shipped presets: each one parses, validates and lists itself; each CPU preset really runs.

The smoke test (slow) trains every CPU preset for real through Ray Tune and the SQLite database,
shrunk to 2 trials x 1 epoch on a few hundred images. MNIST presets need the local copy (``SHARED_DATA``)
and skip cleanly without it; GPU presets are only validated.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import optuna
import pytest
from conftest import SHARED_DATA
from optuna.trial import TrialState
from rich.console import Console

from sweeplab.studies import load_spec, preset_names, run_ablation, run_study, spec_from_dict
from sweeplab.studies._spec import StudySpec, preset_text
from sweeplab.studies.cli import main

CLASSIC = [
    "mnist-activations",
    "mnist-optimizers",
    "mnist-regularization",
    "random-labels",
    "init-schemes",
    "cifar10-augmentation",
]
MNIST = (SHARED_DATA / "MNIST" / "raw").is_dir()


def _is_gpu(spec: StudySpec) -> bool:
    return spec.search.resources.gpus > 0


def _cpu_preset(name: str) -> Any:
    """A pytest parameter; MNIST presets skip (before Ray starts) without the local copy."""
    needs_mnist = load_spec(name).data.dataset == "mnist"
    reason = f"no local MNIST copy at {SHARED_DATA} (set SWEEPLAB_TEST_DATA)"
    return pytest.param(name, marks=pytest.mark.skipif(needs_mnist and not MNIST, reason=reason))


CPU_PRESETS = [_cpu_preset(n) for n in preset_names() if not _is_gpu(load_spec(n))]


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


def _shrunk(name: str, tmp_path: Path) -> StudySpec:
    """The preset at smoke-test size: 2 trials x 1 epoch, a few hundred training images."""
    raw: dict[str, Any] = load_spec(name).to_dict()
    if raw["study"]["direction"] is None:
        raw["study"].pop("direction")
    raw["study"]["storage"] = f"sqlite:///{tmp_path / 'smoke.db'}"
    raw["budget"].update(n_trials=2, max_epochs=1)
    raw["search"]["grace_period"] = 1
    if raw["data"]["dataset"] != "digits":
        # Keep the validation split small too: it is evaluated after every epoch.
        raw["data"].update(root=str(SHARED_DATA), subset=300, val_fraction=0.02)
    return spec_from_dict(raw, source=f"preset '{name}' (shrunk)")


# ---- every preset ------------------------------------------------------------------------------


def test_the_classic_questions_are_all_shipped() -> None:
    assert set(CLASSIC) <= set(preset_names())


@pytest.mark.parametrize("name", preset_names())
def test_preset_validates_and_describes_itself(name: str) -> None:
    spec = load_spec(name)
    assert spec.study.name == name, "sweeplab run NAME then ablate/report NAME use one name"
    assert spec.study.storage == "sqlite:///sweeplab.db"
    # The product never assumes this machine's data folder: torchvision's default layout.
    assert spec.data.root == "data" and not spec.data.download
    first = preset_text(name).splitlines()[0]
    assert first.startswith("# ") and len(first) <= 120
    # A budget is a whole grid, never more (run_study would lower it and say so).
    if spec.search.sampler == "grid":
        from sweeplab import searchspace

        assert spec.budget.n_trials == searchspace.grid_size(spec.space)
    # The command-line overrides apply (ASHA's first rung bounds the epochs from below).
    again = spec.with_overrides(n_trials=2, max_epochs=spec.search.grace_period)
    assert again.budget.n_trials == 2 and again.space.to_dict() == spec.space.to_dict()


def test_presets_command_lists_each_with_its_description(capsys) -> None:
    with pytest.raises(SystemExit) as code:
        main(["presets"])
    out = capsys.readouterr().out
    assert code.value.code == 0
    lines = out.splitlines()
    for name in preset_names():
        line = next(ln for ln in lines if ln.startswith(name + " "))
        spec = load_spec(name)
        description = preset_text(name).splitlines()[0].removeprefix("# ")
        assert f"{spec.data.dataset}/{spec.model.kind}" in line and description in line


@pytest.mark.parametrize("name", ["cifar10-augmentation", "mnist-activations"])
def test_missing_data_is_one_clear_error_and_no_study(
    name: str, capsys, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)  # root = "data" is relative: nothing there
    with pytest.raises(SystemExit) as code:
        main(["run", name])
    err = capsys.readouterr().err
    assert code.value.code == 2
    assert str(tmp_path / "data") in err and "Traceback" not in err
    assert not (tmp_path / "sweeplab.db").exists(), "data is checked before the database is made"


# ---- each CPU preset, for real, shrunk -----------------------------------------------------------


# Slow: each shrunk run is a few seconds of training but a fresh set of Ray workers, which import
# torch and read MNIST: about 2 minutes in all on a quiet 2-core machine, 6-7 on a busy one.
@pytest.mark.slow
@pytest.mark.parametrize("name", CPU_PRESETS)
def test_cpu_preset_runs_shrunk(name: str, ray_local, tmp_path: Path) -> None:
    spec = load_spec(name)
    small = _shrunk(name, tmp_path)
    summary = run_study(small, console=_quiet())
    assert summary.counts["complete"] + summary.counts["pruned"] == 2
    assert summary.counts["fail"] == 0
    study = optuna.load_study(study_name=name, storage=small.study.storage)
    searched = {p.name for p in spec.space.searched}
    for trial in study.trials:
        assert trial.state == TrialState.COMPLETE
        assert 0.0 < trial.user_attrs["test_acc"] <= 1.0
        assert trial.user_attrs["epochs_run"] == 1
        # Every unconditional searched entry was sampled (subsets are stored as flags).
        names = {p.split(".")[0] for p in trial.params}
        always = {p.name for p in spec.space.searched if not p.when}
        assert always <= names <= searched


@pytest.mark.slow
@pytest.mark.skipif(not MNIST, reason=f"no local MNIST copy at {SHARED_DATA}")
def test_regularization_preset_search_then_ablate(ray_local, tmp_path: Path) -> None:
    small = _shrunk("mnist-regularization", tmp_path)
    run_study(small, console=_quiet())
    summary = run_ablation(
        "mnist-regularization",
        storage=small.study.storage,
        seeds=1,
        components=["dropout"],
        console=_quiet(),
    )
    assert [v.name for v in summary.plan.variants] == ["baseline", "-dropout"]
    assert summary.run.counts["complete"] == 2
