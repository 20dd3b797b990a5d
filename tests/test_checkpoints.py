"""Trials survive interruption: checkpoints, resume mid-trial, the best model kept.

Real Ray Tune runs on the bundled digits, a real SQLite database and the real artifact folder
beside it. The central promise: in deterministic mode a trial whose driver or worker was
SIGKILLed mid-training, then resumed from its last checkpoint, ends with exactly the per-epoch
curve and test metrics of an uninterrupted run of the same parameters and seed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import optuna
import pytest
from conftest import tiny_spec
from optuna.trial import TrialState
from rich.console import Console

from sweeplab import trainer
from sweeplab.studies import StorageError, load_spec, open_storage, open_study, records, run_study
from sweeplab.studies import cli as sweeplab_cli
from sweeplab.studies import storage as study_storage

SWEEPLAB = [sys.executable, "-m", "sweeplab.studies.cli"]

# One configuration, long enough to be killed mid-trial: dropout and mixup draw from every
# random stream the loop has (torch's global generator, the augmenter's torch and numpy ones).
ONE_CONFIG = """
[space.lr]
value = 0.01

[space.optimizer]
value = "adam"

[space.dropout]
value = 0.2

[space.augment]
value = ["mixup"]

[space.mixup_alpha]
value = 0.2

[space.batch_size]
type = "categorical"
choices = [64]
"""


def _quiet() -> Console:
    return Console(file=open(os.devnull, "w"), force_terminal=False)


def _trials(storage: str, name: str) -> list[optuna.trial.FrozenTrial]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return optuna.load_study(study_name=name, storage=storage).trials
        except KeyError:
            return []


def _checkpoint_epoch(db: Path) -> int:
    """The epoch of the newest checkpoint any running trial records (plain SQL: fast)."""
    query = "SELECT value_json FROM trial_user_attributes WHERE key = 'checkpoint'"
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            rows = conn.execute(query).fetchall()
    except sqlite3.Error:
        return 0
    epochs = [json.loads(v)["epoch"] for (v,) in rows if v and json.loads(v)]
    return max(epochs, default=0)


def _uninterrupted(spec, trial: optuna.trial.FrozenTrial) -> trainer.FitResult:
    """The same trial run start to end in this process, as a worker runs it (1 thread)."""
    config = spec.space.config_from_params(trial.params)
    settings = spec.fit_settings(seed=int(trial.user_attrs[records.SEED]), num_threads=1)
    return trainer.fit(spec.data_settings(), spec.model_settings(), config, settings)


def _assert_same_run(trial: optuna.trial.FrozenTrial, expected: trainer.FitResult) -> None:
    attrs = trial.user_attrs
    for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
        assert attrs[key] == [getattr(r, key) for r in expected.history], key
    assert attrs[records.TEST_ACC] == expected.test_acc
    assert attrs[records.TEST_LOSS] == expected.test_loss
    assert attrs[records.BEST_EPOCH] == expected.best_epoch
    assert trial.value == expected.best_value


def _one_trial_spec(tmp_path: Path, name: str, **kw) -> Path:
    budget = "retries = 1\ncheckpoint_every_s = 0\n" + kw.pop("budget_extra", "")
    path = tiny_spec(
        tmp_path, name=name, n_trials=1, max_epochs=kw.pop("max_epochs", 60),
        scheduler="none", concurrency=1, space=ONE_CONFIG, budget_extra=budget,
    )  # fmt: skip
    text = path.read_text().replace("seed = 1\n", "seed = 1\ndeterministic = true\n", 1)
    text = text.replace("hidden = [32]", "hidden = [256, 256]")
    path.write_text(text)
    return path


@pytest.mark.slow
def test_a_driver_killed_mid_trial_resumes_from_its_checkpoint_and_repeats_the_run_exactly(
    tmp_path: Path,
) -> None:
    spec_path = _one_trial_spec(tmp_path, "driverkill")
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    proc = subprocess.Popen(
        [*SWEEPLAB, "run", str(spec_path)],
        start_new_session=True,  # its own process group: the kill takes Ray's processes too
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while _checkpoint_epoch(tmp_path / "study.db") < 5:
            assert proc.poll() is None, "the trial finished before it could be killed"
            assert time.monotonic() < deadline, "no checkpoint was recorded"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    (killed,) = _trials(storage, "driverkill")
    assert killed.state == TrialState.RUNNING
    at_kill = killed.user_attrs[records.CHECKPOINT]
    assert len(killed.user_attrs.get("val_acc", [])) < 60

    resumed = subprocess.run(
        [*SWEEPLAB, "resume", "driverkill", "--storage", storage],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    first, retry = _trials(storage, "driverkill")
    assert first.state == TrialState.FAIL and first.user_attrs[records.INTERRUPTED]
    assert retry.state == TrialState.COMPLETE and retry.user_attrs[records.RETRY_OF] == 0
    assert retry.user_attrs[records.RESUME_FROM] == at_kill
    # It continued from the checkpoint, not from scratch: work lost is under one epoch.
    assert retry.user_attrs[records.RESUMED_AT] == {"epoch": at_kill["epoch"], "step": 0}
    assert at_kill["epoch"] >= 5
    _assert_same_run(retry, _uninterrupted(load_spec(spec_path), retry))
    # The finished trial's checkpoints are gone; its weights are kept.
    files = sorted(p.name for p in (tmp_path / "study-artifacts").rglob("*.pt"))
    assert len(files) == 1 and files[0].startswith("weights-"), files


def _kill_worker_at_checkpoint(
    storage: str, name: str, epoch: int, killed: list, stop: threading.Event
) -> None:
    """SIGKILL the worker process of the running trial once it has a checkpoint of ``epoch``."""
    while not killed and not stop.is_set():
        time.sleep(0.05)
        for t in _trials(storage, name):
            record = t.user_attrs.get(records.CHECKPOINT) or {}
            if t.state == TrialState.RUNNING and record.get("epoch", 0) >= epoch:
                os.kill(t.user_attrs[records.WORKER_PID], signal.SIGKILL)
                killed.append((t.number, record))
                return


@pytest.mark.slow
def test_a_worker_killed_mid_trial_is_retried_from_its_checkpoint_exactly(
    ray_local, tmp_path: Path
) -> None:
    spec = load_spec(_one_trial_spec(tmp_path, "workerkill"))
    open_study(spec, open_storage(spec.study.storage))  # before the killer polls it
    killed: list = []
    stop = threading.Event()
    killer = threading.Thread(
        target=_kill_worker_at_checkpoint,
        args=(spec.study.storage, "workerkill", 4, killed, stop),
    )
    killer.start()
    try:
        run_study(spec, console=_quiet())
    finally:
        stop.set()
        killer.join()
    assert killed, "the worker was never killed"
    first, retry = _trials(spec.study.storage, "workerkill")
    assert first.user_attrs[records.FAIL_REASON] == "worker_died"
    assert retry.state == TrialState.COMPLETE
    resumed_at = retry.user_attrs[records.RESUMED_AT]
    assert resumed_at["epoch"] >= killed[0][1]["epoch"] >= 4 and "why" not in resumed_at
    _assert_same_run(retry, _uninterrupted(spec, retry))


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated", "garbage", "missing"])
def test_a_damaged_checkpoint_restarts_the_trial_from_scratch_and_the_study_goes_on(
    ray_local, tmp_path: Path, damage: str
) -> None:
    spec = load_spec(_one_trial_spec(tmp_path, f"damaged{damage}", max_epochs=8))
    study = open_study(spec, open_storage(spec.study.storage))
    # What a kill leaves: a trial queued to continue from a checkpoint; here a damaged one.
    folder = tmp_path / "study-artifacts"
    store = study_storage.open_artifact_store(str(folder))
    data = b"\x80\x02not a checkpoint at all" * 50
    record = study_storage.put_artifact(
        store, f"{study.study_name}/trial-00000/checkpoint-e3.pt", data, kind="checkpoint", epoch=3
    )
    path = folder / record.artifact_id
    if damage == "truncated":
        path.write_bytes(data[:100])  # the digest no longer matches
    elif damage == "missing":
        path.unlink()
    study.enqueue_trial({}, user_attrs={records.SEED: 1, records.RESUME_FROM: record.to_attr()})

    summary = run_study(spec, console=_quiet())
    assert summary.counts["complete"] == 1 and summary.counts["fail"] == 0
    (trial,) = _trials(spec.study.storage, spec.study.name)
    resumed_at = trial.user_attrs[records.RESUMED_AT]
    assert resumed_at["epoch"] == 0 and "trained from scratch" in resumed_at["why"]
    assert len(trial.user_attrs["val_acc"]) == 8
    _assert_same_run(trial, _uninterrupted(spec, trial))


@pytest.mark.slow
def test_retention_keeps_the_best_weights_and_no_checkpoint_and_best_weights_rebuild_them(
    ray_local, tmp_path: Path, capsys
) -> None:
    import torch

    spec = load_spec(
        tiny_spec(
            tmp_path, name="keep", n_trials=8, max_epochs=6, concurrency=2,
            budget_extra="checkpoint_every_s = 0",
            extra="",
        )
    )  # fmt: skip
    text = Path(spec.source).read_text().replace("seed = 1\n", "seed = 1\nkeep_best = 2\n", 1)
    Path(spec.source).write_text(text)
    spec = load_spec(spec.source)
    summary = run_study(spec, console=_quiet())
    assert summary.counts["complete"] + summary.counts["pruned"] == 8
    study = optuna.load_study(study_name="keep", storage=spec.study.storage)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    ranked = sorted(complete, key=lambda t: (-t.value, t.number))
    kept = study.user_attrs[records.KEPT_WEIGHTS]
    assert kept == [t.number for t in ranked[:2]]
    # On disk: exactly the kept weights (checkpoints of pruned and finished trials deleted).
    folder = Path(study.user_attrs[records.ARTIFACTS])
    assert folder == (tmp_path / "study-artifacts").resolve()
    on_disk = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    indexed = {study.trials[n].user_attrs[records.WEIGHTS]["artifact_id"] for n in kept}
    assert on_disk == indexed
    assert all(t.user_attrs.get(records.CHECKPOINT) is None for t in study.trials)

    # best --weights writes a plain state_dict of the best trial; load_model rebuilds it.
    out = tmp_path / "best.pt"
    with pytest.raises(SystemExit) as exit_:
        sweeplab_cli.main(["best", "keep", "--storage", spec.study.storage, "--weights", str(out)])
    assert exit_.value.code == 0
    state_dict = torch.load(out, weights_only=True)
    import sweeplab

    net = sweeplab.load_model(spec.study.storage, "keep")
    assert not net.training
    assert state_dict.keys() == net.state_dict().keys()
    assert all(torch.equal(state_dict[k], v) for k, v in net.state_dict().items())
    best = ranked[0]
    ds = trainer.load_dataset(spec.data_settings(), torch.device("cpu"))
    from sweeplab.trainer._fit import evaluate

    _, test_acc = evaluate(net, ds, "test")
    assert test_acc == best.user_attrs[records.TEST_ACC]
    # A trial that kept none (pruned, or dropped from the best): one clear message, exit 2.
    dropped = next(t.number for t in study.trials if t.number not in kept)
    with pytest.raises(SystemExit) as exit_:
        sweeplab_cli.main(
            ["best", "keep", "--storage", spec.study.storage, "--weights", str(out),
             "--trial", str(dropped)]
        )  # fmt: skip
    assert exit_.value.code == 2
    assert f"trial {dropped} of study 'keep' kept no weights" in capsys.readouterr().err

    # status shows the disk they take; delete removes the study and its files.
    with pytest.raises(SystemExit):
        sweeplab_cli.main(["status", "keep", "--storage", spec.study.storage])
    assert "artifacts: " in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        sweeplab_cli.main(["delete", "keep", "--storage", spec.study.storage, "--yes"])
    assert exit_.value.code == 0
    assert not (folder / "keep").exists()
    assert "keep" not in optuna.get_all_study_names(spec.study.storage)


@pytest.mark.slow
def test_a_full_disk_is_noted_on_the_trial_and_training_goes_on(ray_local, tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(small)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        spec_path = tiny_spec(
            tmp_path, name="fulldisk", n_trials=2, max_epochs=4, scheduler="none",
            budget_extra="checkpoint_every_s = 0",
        )  # fmt: skip
        text = spec_path.read_text().replace("hidden = [32]", "hidden = [256]")
        text = text.replace("seed = 1\n", f'seed = 1\nartifacts = "{small}"\n', 1)
        spec_path.write_text(text)
        summary = run_study(load_spec(spec_path), console=_quiet())
        assert summary.counts["complete"] == 2 and summary.counts["fail"] == 0
        for trial in _trials(f"sqlite:///{tmp_path / 'study.db'}", "fulldisk"):
            assert "No space left on device" in trial.user_attrs[records.ARTIFACT_NOTE]
            assert len(trial.user_attrs["val_acc"]) == 4
        leftovers = [p.name for p in small.rglob("*") if p.is_file()]
        assert not [n for n in leftovers if n.endswith(".tmp")], leftovers
    finally:
        subprocess.run(["umount", str(small)], check=False)


def test_an_unwritable_artifact_folder_is_refused_before_anything_is_created(
    tmp_path: Path, capsys
) -> None:
    spec_path = tiny_spec(tmp_path, name="nowrite")
    text = spec_path.read_text().replace(
        "seed = 1\n", 'seed = 1\nartifacts = "/proc/sweeplab-artifacts"\n', 1
    )
    spec_path.write_text(text)
    with pytest.raises(StorageError, match=r"\[study\] artifacts: cannot write"):
        run_study(load_spec(spec_path), console=_quiet())
    with pytest.raises(SystemExit) as exit_:
        sweeplab_cli.main(["run", str(spec_path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "/proc/sweeplab-artifacts" in err and "Traceback" not in err
    assert not (tmp_path / "study.db").exists()


def test_an_object_store_url_for_artifacts_is_a_spec_error_naming_the_key(tmp_path: Path) -> None:
    from sweeplab.studies import SpecError

    spec_path = tiny_spec(tmp_path, name="s3")
    text = spec_path.read_text().replace("seed = 1\n", 'seed = 1\nartifacts = "s3://b/p"\n', 1)
    spec_path.write_text(text)
    with pytest.raises(SpecError, match=r"study\.artifacts.*s3:// stores are not supported"):
        load_spec(spec_path)


@pytest.mark.slow
def test_a_training_function_that_saves_continues_where_its_killed_worker_stopped(
    ray_local, tmp_path: Path, monkeypatch
) -> None:
    from sweeplab.studies import spec_from_dict

    def resumable(hp, trial):
        """Saves its state each epoch and restores it when re-run."""
        state = trial.restore() or {"total": 0.0, "runs": 0}
        state["runs"] += 1
        for epoch in range(len(trial.epochs) + 1, trial.max_epochs + 1):
            time.sleep(0.15)
            state["total"] += hp["lr"]
            trial.report(epoch, val_score=state["total"])
            trial.save(state)
        return {"runs": state["runs"]}

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    spec = spec_from_dict(
        {
            "study": {
                "name": "fnsave",
                "storage": storage,
                "objective": "val_score",
                "direction": "maximize",
            },
            "budget": {"n_trials": 1, "max_epochs": 30, "retries": 1},
            "search": {"scheduler": "none", "concurrency": 1},
            "space": {"lr": {"type": "categorical", "choices": [0.5]}},
        }
    )
    from sweeplab.studies._code import with_objects

    open_study(with_objects(spec, function=resumable), open_storage(storage))
    # The function lives in this file: the local Ray's workers find it from its folder.
    monkeypatch.chdir(Path(__file__).parent)
    killed: list = []
    stop = threading.Event()
    killer = threading.Thread(
        target=_kill_worker_at_checkpoint, args=(storage, "fnsave", 5, killed, stop)
    )
    killer.start()
    try:
        run_study(spec, function=resumable, console=_quiet())
    finally:
        stop.set()
        killer.join()
    assert killed
    first, retry = _trials(storage, "fnsave")
    assert first.user_attrs[records.FAIL_REASON] == "worker_died"
    assert retry.state == TrialState.COMPLETE
    # The retry restored the saved state: a second run of the function, epochs continued.
    assert retry.user_attrs[records.FINAL_METRICS]["runs"] == 2
    at = retry.user_attrs[records.RESUMED_AT]["epoch"]
    assert at >= 5
    assert retry.user_attrs["val_score"] == [0.5 * e for e in range(1, 31)]
    assert retry.value == 15.0
