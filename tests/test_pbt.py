"""Population based training: ``[search] scheduler = "pbt"`` and ``[search.pbt]``.

The spec's rules (each bad input: one message, exit 2, no database), the trainer taking over
another run's state with its own rates, and a real Ray Tune PBT run on the digits in which a
trial really copies another one: the copy is recorded, its learning rate changes mid-run, and
``sweeplab best`` shows the schedule.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import signal
import socket
import subprocess
import threading
import time
import warnings

import optuna
import pytest
from conftest import run_cli, tiny_spec
from rich.console import Console

from sweeplab import searchspace, trainer
from sweeplab.studies import load_spec, records, run_study, storage
from sweeplab.studies._spec import pbt_settings
from sweeplab.studies._study import open_study
from sweeplab.studies._tune import outcomes
from sweeplab.studies.errors import SpecError

LR_WD = """
[space.lr]
type = "float"
low = 1e-4
high = 0.3
log = true

[space.weight_decay]
type = "float"
low = 1e-6
high = 1e-2
log = true
"""


def _spec(tmp_path, *, extra: str = "", space: str = LR_WD, n_trials: int = 2, **kw):
    # tiny_spec writes `concurrency = {concurrency}` itself; `extra` follows it in [search].
    return tiny_spec(
        tmp_path, name="pop", n_trials=n_trials, max_epochs=4, scheduler="pbt", space=space,
        extra=extra, **kw,
    )  # fmt: skip


# ---- the spec ------------------------------------------------------------------------------------


def test_defaults_perturb_what_the_trainer_can_change_every_quarter_of_the_run(tmp_path) -> None:
    space = LR_WD + '\n[space.batch_size]\ntype = "categorical"\nchoices = [32, 64]\n'
    spec = load_spec(_spec(tmp_path, space=space))
    pbt = pbt_settings(spec)
    assert (pbt.interval, pbt.mutate) == (1, ("lr", "weight_decay"))  # batch_size: not mutable
    assert (pbt.quantile, pbt.resample_probability) == (0.25, 0.25)
    assert {"lr", "weight_decay", "momentum", "dropout"} <= trainer.MUTABLE_BETWEEN_EPOCHS


BAD = {
    "a name not in the space": (
        '[search.pbt]\nmutate = ["momentum"]', LR_WD, 2, 'search.pbt.mutate[0]: "momentum" is not in [space]'
    ),
    "a name the trainer cannot change mid-run": (
        '[search.pbt]\nmutate = ["batch_size"]',
        LR_WD + '\n[space.batch_size]\ntype = "int"\nlow = 16\nhigh = 64\n',
        2,
        'search.pbt.mutate[0]: population based training cannot change "batch_size"',
    ),
    "a dropout rate that may be 0": (
        '[search.pbt]\nmutate = ["lr", "dropout"]', LR_WD + '\n[space.dropout]\ntype = "float"\nlow = 0.0\nhigh = 0.5\n', 2,
        "its 0 removes the layer",
    ),
    "nothing in the space it can change": (
        "", '[space.batch_size]\ntype = "int"\nlow = 16\nhigh = 64\n', 2,
        "search.pbt.mutate: none of [space] can change between epochs",
    ),
    "a conditional name": (
        '[search.pbt]\nmutate = ["momentum"]',
        LR_WD + '\n[space.optimizer]\ntype = "categorical"\nchoices = ["sgd", "adam"]\n'
        '\n[space.momentum]\ntype = "float"\nlow = 0.5\nhigh = 0.9\nwhen = { optimizer = "sgd" }\n',
        2,
        'cannot change "momentum": it is conditional',
    ),
    "packed trials": ("pack = 2", LR_WD, 2, 'search.pack: scheduler = "pbt" copies single trials'),
    "n_trials other than the population": (
        "", LR_WD, 5, "n_trials must equal concurrency, at least 2; got n_trials = 5, concurrency = 2"
    ),
    "an interval as long as the run": (
        "[search.pbt]\ninterval = 4", LR_WD, 2,
        "search.pbt.interval: must be < budget.max_epochs (4), or no trial is ever copied; got 4",
    ),
    "a quantile above a half": ("[search.pbt]\nquantile = 0.6", LR_WD, 2, "search.pbt.quantile"),
    "an unknown key": ("[search.pbt]\nperiod = 2", LR_WD, 2, "search.pbt.period: unknown key"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_each_bad_pbt_setting_exits_2_with_one_message_and_no_database(
    tmp_path, capsys, case
) -> None:
    extra, space, n_trials, expected = BAD[case]
    path = _spec(tmp_path, extra=extra, space=space, n_trials=n_trials)
    code, _, err = run_cli(capsys, "run", str(path))
    assert code == 2, err
    assert expected in err and "Traceback" not in err
    assert not (tmp_path / "study.db").exists()


def test_a_pbt_section_without_the_pbt_scheduler_is_refused(tmp_path, capsys) -> None:
    path = tiny_spec(tmp_path, scheduler="asha", extra="[search.pbt]\ninterval = 2")
    code, _, err = run_cli(capsys, "run", str(path))
    assert code == 2
    assert '[search.pbt]: applies to scheduler = "pbt" only; got scheduler = "asha"' in err


def test_a_training_function_is_refused(tmp_path) -> None:
    path = _spec(tmp_path, extra='[search.pbt]\nmutate = ["lr"]')
    text = path.read_text().replace("[search]", '[trainable]\nfunction = "train:run"\n\n[search]')
    path.write_text(text)
    with pytest.raises(SpecError, match="sweeplab's own training loop"):
        load_spec(path)


def test_explore_stays_within_the_space() -> None:
    from sweeplab.studies._tune.pbt import mutations, within_space

    space = searchspace.parse_space({
        "lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True},
        "crop_padding": {"type": "int", "low": 1, "high": 4},
        "mixup_alpha": {"type": "float", "low": 0.1, "high": 0.5, "step": 0.1},
        "dropout": {"type": "categorical", "choices": [0.1, 0.2, 0.3]},
    })  # fmt: skip
    names = ["lr", "crop_padding", "mixup_alpha", "dropout"]
    drawn = mutations(space, names)
    assert drawn["dropout"] == [0.1, 0.2, 0.3]  # a choice moves to a neighbour or is redrawn
    assert (drawn["crop_padding"].lower, drawn["crop_padding"].upper) == (1, 5)  # exclusive
    perturbed = {"lr": 0.12, "crop_padding": 4.8, "mixup_alpha": 0.26, "dropout": 0.2}
    assert within_space(perturbed, space, names) == {
        "lr": 0.1, "crop_padding": 4, "mixup_alpha": pytest.approx(0.3), "dropout": 0.2,
    }  # fmt: skip
    assert within_space({**perturbed, "lr": 5e-5}, space, ["lr"])["lr"] == 1e-4
    assert isinstance(within_space(perturbed, space, names)["crop_padding"], int)


# ---- the trainer ---------------------------------------------------------------------------------


def test_a_run_takes_over_another_runs_state_with_its_own_rates() -> None:
    data = trainer.DataSettings(dataset="digits", subset=500)
    model = trainer.ModelSettings(hidden=(16,))
    settings = trainer.FitSettings(max_epochs=3, device="cpu", num_threads=1, deterministic=True)
    saved = []
    keep = trainer.Checkpointing(
        every_s=math.inf, at_epochs=frozenset({2}), save=lambda data, info: saved.append(data)
    )
    donor_params = {"optimizer": "sgd", "lr": 0.01, "momentum": 0.5, "dropout": 0.1}
    donor = trainer.fit(data, model, donor_params, settings, checkpointing=keep)
    assert len(saved) == 1  # at_epochs, though every_s never comes due
    state = trainer.read_checkpoint(saved[0])
    # The same hyperparameters and seed: exactly the donor's own run.
    same = trainer.fit(
        data, model, donor_params, settings,
        checkpointing=trainer.Checkpointing(resume=state, exploit=True),
    )  # fmt: skip
    assert [r.val_loss for r in same.history] == [r.val_loss for r in donor.history]
    # Other rates and seed: the donor's first two epochs, then this run's rates.
    mine = {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "dropout": 0.3}
    took = trainer.fit(
        data, model, mine, dataclasses.replace(settings, seed=7),
        checkpointing=trainer.Checkpointing(resume=state, exploit=True),
    )  # fmt: skip
    assert [r.lr for r in took.history] == [0.01, 0.01, 0.05]
    assert [r.val_loss for r in took.history[:2]] == [r.val_loss for r in donor.history[:2]]
    assert took.history[2].val_loss != donor.history[2].val_loss
    # Without exploit the digest refuses it; with it, only mutable names may differ.
    with pytest.raises(trainer.CheckpointError, match="other data, network, hyperparameters"):
        trainer.fit(data, model, mine, settings, checkpointing=trainer.Checkpointing(resume=state))
    with pytest.raises(trainer.CheckpointError, match="cannot change between epochs"):
        trainer.fit(
            data, model, {**mine, "optimizer": "adam"}, settings,
            checkpointing=trainer.Checkpointing(resume=state, exploit=True),
        )  # fmt: skip


def test_a_retry_after_a_copy_trains_on_with_the_copied_hyperparameters(tmp_path) -> None:
    """A worker death after an exploit: the retry takes the schedule's last hyperparameters
    (which its checkpoint was trained with), not the ones the trial started with."""
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'pbt.db'}", study_name="pop")
    space = searchspace.parse_space(
        {"lr": {"type": "float", "low": 1e-4, "high": 0.3, "log": True},
         "width": {"type": "categorical", "choices": [16, 32]}}
    )  # fmt: skip
    trial = study.ask()
    searchspace.sample(trial, space)
    step = {"epoch": 2, "from": 7, "params": {"lr": 0.012}, "was": {"lr": trial.params["lr"]},
            "all_params": {"lr": 0.012, "width": 32}}  # fmt: skip
    trial.set_user_attr(records.SEED, 5)
    trial.set_user_attr(records.PBT_SCHEDULE, [step])
    failed = study.tell(trial, state=optuna.trial.TrialState.FAIL)
    outcomes.RetryPolicy(retries=1).requeue(study, failed, attempt=0)
    retry = study.ask()
    assert searchspace.sample(retry, space) == {"lr": 0.012, "width": 32}
    assert retry.user_attrs[records.PBT_SCHEDULE] == [step]  # the copies so far, kept
    assert retry.user_attrs[records.SEED] == 5 and retry.user_attrs[records.RETRY_OF] == 0
    # A trial never copied into is retried with its own parameters.
    plain = study.ask()
    searchspace.sample(plain, space)
    done = study.tell(plain, state=optuna.trial.TrialState.FAIL)
    outcomes.RetryPolicy(retries=1).requeue(study, done, attempt=0)
    again = study.ask()
    assert searchspace.sample(again, space) == done.params
    assert records.PBT_SCHEDULE not in again.user_attrs


# ---- a real run ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_pbt_study_copies_trials_and_records_the_schedule(ray_local, tmp_path, capsys) -> None:
    path = _spec(
        tmp_path,
        extra="[search.pbt]\ninterval = 2\nresample_probability = 0.0",
        budget_extra="checkpoint_every_s = 1000",
    )
    spec = load_spec(path)
    # The study starts as a crashed run left it: its population (a slow lr and a fast one)
    # RUNNING under a driver that is gone. The run recovers them and trains them again as the
    # population, from the start, with their params and seeds: the budget is met exactly.
    crashed = _crashed_population(spec, [1.2e-3, 1.7e-2])
    summary = run_study(spec, console=Console(quiet=True))
    assert summary.recovered == [0, 1] and summary.ran == 2
    assert summary.counts["complete"] == 2 and summary.counts["interrupted"] == 2

    study = optuna.load_study(study_name="pop", storage=spec.study.storage)
    trials = {t.number: t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE}
    assert sorted(t.user_attrs["retry_of"] for t in trials.values()) == [0, 1]
    copied = [t for t in trials.values() if t.user_attrs.get("pbt_schedule")]
    # Two trials, a quarter each way: at epoch 2 the worse one copies the better one.
    assert len(copied) == 1
    (copier,) = copied
    (step,) = copier.user_attrs["pbt_schedule"]
    donor = trials[step["from"]]
    assert step["epoch"] == 2 and donor.number != copier.number
    assert set(step["params"]) == {"lr", "weight_decay"}
    # The donor was the better one at epoch 2 (PBT ranks on the objective).
    assert donor.intermediate_values[2] >= copier.intermediate_values[2]
    # Exploit: the copier went on from the donor's weights, not its own. With lr 1.2e-3 and
    # 1.7e-2, after two epochs the slow one is far behind (0.65 against 0.94), and one epoch
    # at the perturbed rate puts it level with the donor.
    copier_values, donor_values = copier.intermediate_values, donor.intermediate_values
    assert donor_values[2] - copier_values[2] > 0.15
    assert abs(copier_values[3] - donor_values[3]) < 0.03
    # Explore: the donor's lr times 0.8 or 1.2, within the space; the run used it from epoch 3.
    ratio = step["params"]["lr"] / donor.params["lr"]
    assert ratio == pytest.approx(0.8) or ratio == pytest.approx(1.2) or step["params"]["lr"] in (
        1e-4, 0.3,
    )  # fmt: skip
    lrs = copier.user_attrs["lr"]
    assert lrs[:2] == pytest.approx([copier.params["lr"]] * 2)  # its own, as sampled
    assert lrs[2:] == pytest.approx([step["params"]["lr"]] * 2)  # the perturbed donor's
    assert donor.user_attrs["lr"] == pytest.approx([donor.params["lr"]] * 4)
    assert copier.user_attrs["epochs_run"] == 4 and copier.params["lr"] == step["was"]["lr"]
    # The trial keeps its identity: its own seed (the crashed trial's), its own parameters.
    assert copier.user_attrs["seed"] == crashed[copier.user_attrs["retry_of"]]
    assert donor.user_attrs["seed"] == crashed[donor.user_attrs["retry_of"]]

    # best shows the schedule when the best trial has one; --json carries it either way.
    best = study.best_trial
    code, out, _ = run_cli(capsys, "best", "pop", "--storage", spec.study.storage, "--json")
    assert code == 0
    assert json.loads(out).get("pbt_schedule") == best.user_attrs.get("pbt_schedule")
    code, out, _ = run_cli(capsys, "best", "pop", "--storage", spec.study.storage)
    if best.number == copier.number:  # (which one ends best is up to the last two epochs)
        assert f"after epoch 2: copied trial {donor.number}, lr=" in out
    code, out, _ = run_cli(
        capsys, "status", "pop", "--storage", spec.study.storage, "--trial", str(copier.number)
    )
    assert code == 0 and "pbt_schedule" in out and f"'from': {donor.number}" in out
    export = tmp_path / "trials.csv"
    assert (
        run_cli(capsys, "export", "pop", "--storage", spec.study.storage, "-o", str(export))[0] == 0
    )
    rows = {int(r["number"]): r for r in csv.DictReader(export.open())}
    assert json.loads(rows[copier.number]["pbt_schedule"]) == copier.user_attrs["pbt_schedule"]
    assert rows[donor.number]["pbt_schedule"] == ""
    # Running it again does no work: the population is the budget.
    again = run_study(spec, console=Console(quiet=True))
    assert again.ran == 0 and again.counts["complete"] == 2


def _kill_copier_after_its_copy(db: str, killed: list, stop: threading.Event) -> None:
    """SIGKILL the worker of the first running trial that was copied into and has since saved
    a checkpoint of its own (an epoch after the copy)."""
    while not killed and not stop.is_set():
        time.sleep(0.05)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                trials = optuna.load_study(study_name="pop", storage=db).trials
            except KeyError:
                continue
        for t in trials:
            schedule = t.user_attrs.get(records.PBT_SCHEDULE)
            saved = (t.user_attrs.get(records.CHECKPOINT) or {}).get("epoch", 0)
            if (
                t.state == optuna.trial.TrialState.RUNNING
                and schedule
                and saved > schedule[-1]["epoch"]
            ):
                os.kill(t.user_attrs[records.WORKER_PID], signal.SIGKILL)
                killed.append((t.number, saved, schedule))
                return


@pytest.mark.slow
def test_a_copier_whose_worker_dies_is_retried_with_what_it_copied(ray_local, tmp_path) -> None:
    # The run must end at all: Ray's synchronous PBT waited for the dead trial at every interval.
    # 60 epochs of a wider MLP: the copy at epoch 15 leaves a window of seconds to kill in.
    path = tiny_spec(
        tmp_path, name="pop", n_trials=2, max_epochs=60, scheduler="pbt", space=LR_WD,
        extra="[search.pbt]\nresample_probability = 0.0",
        budget_extra="retries = 1\ncheckpoint_every_s = 0",
    )  # fmt: skip
    path.write_text(path.read_text().replace("hidden = [32]", "hidden = [256, 256]"))
    spec = load_spec(path)
    open_study(spec, storage.open_storage(spec.study.storage))  # before the killer polls it
    killed: list = []
    stop = threading.Event()
    killer = threading.Thread(
        target=_kill_copier_after_its_copy, args=(spec.study.storage, killed, stop)
    )
    killer.start()
    try:
        run_study(spec, console=Console(quiet=True))
    finally:
        stop.set()
        killer.join()
    assert killed, "no copier was killed after its copy"
    number, saved, schedule = killed[0]
    study = optuna.load_study(study_name="pop", storage=spec.study.storage)
    failed = study.trials[number]
    assert failed.user_attrs[records.FAIL_REASON] == "worker_died"
    (retry,) = [t for t in study.trials if t.user_attrs.get(records.RETRY_OF) == number]
    assert retry.state == optuna.trial.TrialState.COMPLETE
    # It went on with the hyperparameters it had copied and perturbed, not its first ones, from
    # the checkpoint its dead worker saved after the copy (so the checkpoint was usable).
    assert retry.params == pytest.approx(schedule[-1]["all_params"])
    assert retry.params != pytest.approx(failed.params)
    resumed_at = retry.user_attrs[records.RESUMED_AT]
    assert resumed_at["epoch"] >= saved and "why" not in resumed_at
    assert retry.user_attrs[records.PBT_SCHEDULE][: len(schedule)] == schedule


def _crashed_population(spec, lrs: list[float]) -> dict[int, int]:
    """The study with one RUNNING trial per lr, left by a driver process that has exited, as a
    SIGKILL leaves it; returns each trial's seed by number."""
    proc = subprocess.Popen(["true"])  # a driver's pid that has certainly exited
    proc.wait()
    driver = {"host": socket.gethostname(), "pid": proc.pid, "start": "gone"}
    study = open_study(spec, storage.open_storage(spec.study.storage))
    warnings.filterwarnings("ignore", "Heartbeat of storage", UserWarning)  # ask() without optimize
    seeds = {}
    for lr in lrs:
        study.enqueue_trial({"lr": lr, "weight_decay": 1e-4})
        trial = study.ask()
        searchspace.sample(trial, spec.space)  # takes the queued params
        seeds[trial.number] = spec.study.seed + trial.number
        trial.set_user_attr("seed", seeds[trial.number])
        storage.set_system_attr(study, trial, records.DRIVER, driver)
    return seeds
