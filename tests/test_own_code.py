"""A user's own model, data and training loop: the spec keys, the checks before anything runs,
the trainer with a factory's network or data, the training-function trial, and the records.

End-to-end runs of the three ways in are in ``tests/test_examples.py`` (the ``examples/``
folders) and on a two-node cluster in ``tests/test_cluster.py``.
"""

from __future__ import annotations

import math
import re
import sys
import textwrap
from pathlib import Path

import optuna
import pytest
import torch
from torch import nn

from sweeplab import trainer
from sweeplab.searchspace import parse_space
from sweeplab.studies import SpecError, UsageError, load_spec, parse_spec, records, spec_from_dict
from sweeplab.studies._code import load_user_code, probe_config, with_objects
from sweeplab.studies._run import preflight
from sweeplab.studies._tune import messages
from sweeplab.studies._tune.curves import Curves
from sweeplab.studies._tune.function import FunctionTemplate, Trial, TrialPruned, run_function
from sweeplab.studies._tune.outcomes import trial_outcome
from sweeplab.studies._tune.worker import Reporter, ReportError
from sweeplab.studies.ablation.plan import find_components, plan_ablation, variant_config

FUNCTION_SPEC = """
[study]
name = "fn"
storage = "sqlite:///{db}"
objective = "val_f1"
direction = "maximize"
[trainable]
function = "{module}:train"
[budget]
n_trials = 2
max_epochs = 3
[space.lr]
type = "float"
low = 0.001
high = 0.1
log = true
[space.depth]
type = "int"
low = 1
high = 3
default = 1
"""


def _project(tmp_path: Path, module: str, source: str, spec: str = FUNCTION_SPEC) -> Path:
    """A user's project folder: their module and a spec naming it; returns the spec's path."""
    sys.modules.pop(module, None)
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    path = tmp_path / "study.toml"
    path.write_text(spec.format(db=tmp_path / "study.db", module=module), encoding="utf-8")
    return path


# ---- the spec ------------------------------------------------------------------------------------


def test_own_hyperparameters_need_own_code() -> None:
    with pytest.raises(
        SpecError, match=r"space.depth: unknown hyperparameter.*\[trainable\] function"
    ):
        parse_spec("[space.depth]\nlow = 1\nhigh = 3\n")
    spec = parse_spec(
        '[model]\nfactory = "nets:build"\n[space.depth]\nlow = 1\nhigh = 3\ndefault = 2\n'
    )
    assert spec.space["depth"].default == 2
    assert spec.to_dict()["space"]["depth"]["default"] == 2
    assert spec_from_dict(spec.to_dict()).space == spec.space  # the stored spec reads back


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[space.dropout]\nlow = 0.0\nhigh = 0.5\ndefault = 0.1\n",
            r"space.dropout.default: `dropout` is the trainer's own hyperparameter: its default \(0.0\)",
        ),
        (
            '[model]\nfactory = "n:b"\n[space.depth]\nlow = 1\nhigh = 3\ndefault = "one"\n',
            r'space.depth.default: must be a finite int; got "one"',
        ),
        (
            '[model]\nfactory = "n:b"\n[space.aug]\ntype = "subset"\nchoices = ["a"]\ndefault = ["b"]\n',
            r"space.aug.default: must be a list of the choices \['a'\]",
        ),
        (
            '[model]\nfactory = "nets"\n[space.lr]\nlow = 0.1\nhigh = 1.0\n',
            r'model.factory: must be "module:attribute" naming your own code, e.g. "mynets:build"',
        ),
        (
            '[study]\nobjective = "f1"\ndirection = "maximize"\n[space.lr]\nlow = 0.1\nhigh = 1.0\n',
            r"study.objective: sweeplab's training loop reports val_acc, val_loss, train_acc, train_loss, epochs, params, train_time; got \"f1\".*\[trainable\] function",
        ),
        (
            '[study]\nobjective = "f1"\n[trainable]\nfunction = "t:train"\n[space.lr]\nlow = 0.1\nhigh = 1.0\n',
            r'study.direction: must be "maximize" or "minimize" for the objective "f1"',
        ),
        (
            '[trainable]\nfunction = "t:train"\n[model]\nfactory = "n:b"\n[space.lr]\nlow = 0.1\nhigh = 1.0\n',
            r"model.factory: a training function .* builds its own model and data",
        ),
        (
            '[trainable]\nfunction = "t:train"\n[early_stopping]\npatience = 3\n[space.lr]\nlow = 0.1\nhigh = 1.0\n',
            r"early_stopping.patience: early stopping is part of sweeplab's own training loop",
        ),
        (
            '[model]\nfactory = "n:b"\n[search]\npack = 4\n[space.lr]\nlow = 0.1\nhigh = 1.0\n',
            r"search.pack: packed trials train sweeplab's built-in MLPs only",
        ),
    ],
)
def test_the_spec_says_what_is_wrong_with_own_code_keys(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_spec(text)


# ---- found and checked before anything runs --------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "reference", "message"),
    [
        (
            "def train(hp, trial):\n    pass\n",
            "nowhere:train",
            r"trainable.function: no module 'nowhere' \(looked in .*\); put nowhere.py beside the spec",
        ),
        (
            "def train(hp, trial):\n    pass\n",
            "{module}:trian",
            r"trainable.function: '\w+' has no 'trian'; did you mean `train`\? \(it defines: train\)",
        ),
        (
            "train = 3\n",
            "{module}:train",
            r"trainable.function: \w+:train is not callable; expected train\(hp, trial\)",
        ),
        (
            "def train(hp):\n    pass\n",
            "{module}:train",
            r"trainable.function: \w+:train cannot be called as train\(hp, trial\)",
        ),
        (
            "import not_a_real_package\n",
            "{module}:train",
            r"trainable.function: importing '\w+' failed: No module named 'not_a_real_package'",
        ),
        (
            "raise RuntimeError('boom')\n",
            "{module}:train",
            r"trainable.function: importing '\w+' raised RuntimeError: boom",
        ),
    ],
)
def test_broken_code_is_refused_before_the_database_is_touched(
    tmp_path: Path, source: str, reference: str, message: str
) -> None:
    module = f"own_{abs(hash((source, reference))) % 10**8}"
    spec_text = FUNCTION_SPEC.replace("{module}:train", reference.replace("{module}", module))
    path = _project(tmp_path, module, source, spec_text)
    spec = load_spec(path)
    with pytest.raises(SpecError, match=message):
        preflight(spec)
    with pytest.raises(SpecError, match=message):
        from sweeplab.studies import run_study

        run_study(spec)
    assert not (tmp_path / "study.db").exists()


MODEL_SPEC = """
[study]
storage = "sqlite:///{db}"
[model]
factory = "{module}:build"
[space.width]
type = "int"
low = 4
high = 16
"""


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "return [1, 2]",
            r"model.factory: \w+:build: the model factory .* returned list, not a torch.nn.Module",
        ),
        (
            "return nn.Sequential(nn.Flatten(), nn.Linear(64, 3))",
            r"maps a batch of shape \(2, 1, 8, 8\) to \(2, 3\); expected logits of shape \(2, 10\)",
        ),
        (
            "return nn.Sequential(nn.Linear(5, 10))",
            r"the network it built raised on a batch of shape \(2, 1, 8, 8\)",
        ),
        ("raise ValueError('no ' + str(hp['width']))", r"model.factory: \w+:build: no 4"),
        (
            "raise KeyError('depth')",
            r"model.factory: \w+:build raised KeyError: 'depth' when called with input_shape=\(1, 8, 8\), n_classes=10",
        ),
    ],
)
def test_a_model_factory_is_tried_once_before_any_trial(
    tmp_path: Path, body: str, message: str
) -> None:
    module = f"nets_{abs(hash(body)) % 10**8}"
    source = f"from torch import nn\ndef build(input_shape, n_classes, hp):\n    {body}\n"
    spec = load_spec(_project(tmp_path, module, source, MODEL_SPEC))
    with pytest.raises(SpecError, match=message):
        preflight(spec)
    assert not (tmp_path / "study.db").exists()


DATA_SPEC = """
[study]
storage = "sqlite:///{db}"
objective = "{objective}"
[data]
factory = "{module}:load"
[model]
hidden = [8]
[space.lr]
low = 0.001
high = 0.1
"""


@pytest.mark.parametrize(
    ("body", "objective", "message"),
    [
        (
            "return (x, y)",
            "val_acc",
            r"data.factory: \w+:load: returned tuple, not a sweeplab.trainer.Data",
        ),
        (
            "return Data(train=(x, y), val=(x, y + 5), num_classes=3)",
            "val_acc",
            r"the val split's labels run from 5 to 7; they must lie in \[0, num_classes = 3\)",
        ),
        (
            "return Data(train=(x, y[:5]), val=(x, y), num_classes=3)",
            "val_acc",
            r"the train split has 10 inputs and 5 targets",
        ),
        (
            "return Data(train=(x, y.float()), val=(x, y.float()), num_classes=3)",
            "val_acc",
            r"targets are torch.float32: class labels must be integers",
        ),
        (
            "return Data(train=(x, y), val=(x[:, :2], y), num_classes=3)",
            "val_acc",
            r"the val split's examples have shape \(2,\); expected \(4,\)",
        ),
        (
            "return Data(train=(x, y.float()), val=(x, y.float()), num_classes=1, loss=F.mse_loss)",
            "val_acc",
            r"study.objective: the data set brings its own loss .* no accuracy",
        ),
    ],
)
def test_a_data_factory_is_checked_before_any_trial(
    tmp_path: Path, body: str, objective: str, message: str
) -> None:
    module = f"data_{abs(hash(body)) % 10**8}"
    source = (
        "import torch\nimport torch.nn.functional as F\nfrom sweeplab.trainer import Data\n"
        "def load():\n    x, y = torch.randn(10, 4), torch.arange(10) % 3\n"
        f"    {body}\n"
    )
    spec = load_spec(
        _project(tmp_path, module, source, DATA_SPEC.replace("{objective}", objective))
    )
    with pytest.raises(SpecError, match=message):
        preflight(spec)


def test_objects_given_through_the_api_are_named_in_the_stored_spec(tmp_path: Path) -> None:
    spec = parse_spec(FUNCTION_SPEC.format(db=tmp_path / "s.db", module="placeholder"))
    named = with_objects(spec, function=_train_reporting)
    assert named.trainable.function == f"{__name__}:_train_reporting"
    code = load_user_code(named, function=_train_reporting)
    assert code.function is _train_reporting
    assert code.folder == Path(__file__).parent.resolve()  # the test module's folder ships


def test_the_probe_configuration_takes_defaults_then_low_ends() -> None:
    space = parse_space({
        "dropout": {"low": 0.1, "high": 0.5},
        "depth": {"type": "int", "low": 2, "high": 5, "default": 3},
        "width": {"type": "int", "low": 8, "high": 64},
        "act": {"type": "categorical", "choices": ["tanh", "relu"]},
    })  # fmt: skip
    assert probe_config(space) == {"dropout": 0.0, "depth": 3, "width": 8, "act": "tanh"}


# ---- the trainer with the user's network or data ------------------------------------------------


def _cnn(input_shape: tuple[int, ...], n_classes: int, hp: dict) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(input_shape[0], hp["width"], 3, padding=1), nn.ReLU(), nn.Flatten(),
        nn.Linear(hp["width"] * input_shape[1] * input_shape[2], n_classes),
    )  # fmt: skip


def test_fit_trains_a_factory_network_with_the_catalogs_choices() -> None:
    model = trainer.ModelSettings(factory=_cnn)
    params = {"width": 4, "init": "orthogonal", "optimizer": "sgd", "lr": 0.05,
              "weight_decay": 1e-3, "augment": ["noise"]}  # fmt: skip
    result = trainer.fit(
        trainer.DataSettings(dataset="digits"), model, params,
        trainer.FitSettings(max_epochs=3, device="cpu", seed=0),
    )  # fmt: skip
    assert result.epochs_run == 3 and result.test_acc > 0.5
    # The init scheme reaches its layers: the conv's flattened weight rows are orthonormal.
    net = trainer.build_model(model, trainer.resolve_params(params, own=True), (1, 8, 8), 10)
    weight = net[0].weight.detach().flatten(1)
    assert torch.allclose(weight @ weight.T, torch.eye(4), atol=1e-5)
    assert not net[0].bias.detach().any()


def _blobs() -> trainer.Data:
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(60, 3, generator=g) + 3, torch.randn(60, 3, generator=g) - 3])
    y = torch.cat([torch.zeros(60), torch.ones(60)]).long()
    order = torch.randperm(120, generator=g)
    x, y = x[order], y[order]
    return trainer.Data(train=(x[:80], y[:80]), val=(x[80:100], y[80:100]),
                        test=(x[100:], y[100:]), num_classes=2)  # fmt: skip


def _regression() -> trainer.Data:
    from torch.utils.data import TensorDataset

    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 2, generator=g)
    y = (x @ torch.tensor([2.0, -1.0])).unsqueeze(1)
    return trainer.Data(
        train=TensorDataset(x[:200], y[:200]), val=TensorDataset(x[200:250], y[200:250]),
        num_classes=1, loss=torch.nn.functional.mse_loss,
    )  # fmt: skip


def test_fit_trains_on_a_users_tensors_with_the_built_in_mlp() -> None:
    result = trainer.fit(
        trainer.DataSettings(factory=_blobs), trainer.ModelSettings(hidden=(8,)), {"lr": 0.01},
        trainer.FitSettings(max_epochs=4, device="cpu"),
    )  # fmt: skip
    assert result.test_acc > 0.9 and result.history[-1].final_train_acc > 0.9


def test_fit_streams_a_users_datasets_with_the_users_loss() -> None:
    result = trainer.fit(
        trainer.DataSettings(factory=_regression), trainer.ModelSettings(hidden=(16,)),
        {"lr": 0.01, "batch_size": 32}, trainer.FitSettings(max_epochs=5, device="cpu",
                                                             objective="val_loss",
                                                             direction="minimize"),
    )  # fmt: skip
    first, last = result.history[0], result.history[-1]
    assert last.val_loss < first.val_loss / 2  # it learns the linear map
    assert math.isnan(last.val_acc) and math.isnan(last.train_acc)  # no accuracy of a regression
    assert result.test_acc is None or math.isnan(result.test_acc)  # no test split given


def test_corruptions_refuse_data_they_cannot_corrupt() -> None:
    with pytest.raises(ValueError, match="label_noise, shuffle_pixels and random_pixels corrupt"):
        trainer.fit(
            trainer.DataSettings(factory=_blobs), trainer.ModelSettings(hidden=(4,)),
            {"label_noise": 0.2}, trainer.FitSettings(max_epochs=1, device="cpu"),
        )  # fmt: skip


# ---- the training-function trial -----------------------------------------------------------------


def _train_reporting(hp: dict, trial: Trial) -> dict:
    for epoch in range(1, trial.max_epochs + 1):
        trial.report(epoch, val_f1=0.5 + 0.1 * epoch, train_loss=1.0 / epoch)
    return {"test_f1": 0.77}


def _template(function, rungs=frozenset()) -> FunctionTemplate:
    return FunctionTemplate(
        function=function, objective="val_f1", direction="maximize", max_epochs=3, cpus=1,
        gpus=0, sweeplab_version="test", rungs=rungs,
    )  # fmt: skip


def _run(monkeypatch, function, rungs=frozenset()) -> list[dict]:
    import ray.tune

    import sweeplab.studies._tune.function as module

    reports: list[dict] = []
    monkeypatch.setattr(ray.tune, "report", lambda metrics: reports.append(metrics))
    monkeypatch.setattr(module, "worker_facts", lambda version: {"pid": 1, "run_started_at": 0})
    run_function({"params": {"lr": 0.1}, "seed": 3, "number": 7}, _template(function, rungs))
    return reports


def test_a_function_reports_its_epochs_and_ends_with_its_final_metrics(monkeypatch) -> None:
    reports = _run(monkeypatch, _train_reporting)
    *_, last = reports
    epochs = [e["epoch"] for r in reports for e in (*r.get("earlier_epochs", ()), r)]
    assert sorted(set(epochs)) == [1, 2, 3]
    assert last["is_last"] and last["epoch"] == 3 and last["best_value"] == pytest.approx(0.8)
    assert [list(pair) for pair in last[messages.FINAL_METRICS]] == [["test_f1", 0.77]]
    assert last["curve_names"] == ["train_loss", "val_f1"] and last["best_epoch"] == 3
    outcome = trial_outcome(last, lost=False, objective="val_f1", use_best_value=True, epochs_run=3)
    assert outcome.state == optuna.trial.TrialState.COMPLETE and outcome.value == pytest.approx(0.8)
    assert outcome.attrs[records.FINAL_METRICS] == {"test_f1": 0.77}


def test_the_returned_objective_is_the_trials_value(monkeypatch) -> None:
    def train(hp, trial):
        trial.report(1, val_f1=0.5)
        return {"val_f1": 0.9}

    *_, last = _run(monkeypatch, train)
    assert last["is_last"] and last["best_value"] == 0.9
    assert last["val_f1"] == 0.5  # the epoch keeps its own value


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "trial.report(1, train_loss=0.3)",
            r"usage.*the study's objective 'val_f1' \(\[study\] objective\) is not among the reported metrics \(train_loss\)",
        ),
        (
            "trial.report(2, val_f1=0.3); trial.report(2, val_f1=0.4)",
            r"usage.*epoch must be in \[3, 3\]",
        ),
        (
            "trial.report(4, val_f1=0.3)",
            r"usage.*epoch must be in \[1, 3\] \(after epoch 0; budget.max_epochs = 3\); got 4",
        ),
        ("trial.report(1, val_f1='high')", r"usage.*metric 'val_f1' must be a number; got str"),
        ("pass", r"usage.*returned without reporting an epoch"),
        (
            "trial.report(1, val_f1=0.3); return 0.3",
            r"usage.*must return a dict of final metrics \(or None\); got float",
        ),
    ],
)
def test_a_function_that_breaks_its_contract_fails_as_usage(monkeypatch, body, message) -> None:
    namespace: dict = {}
    exec(f"def train(hp, trial):\n    {body}\n", namespace)  # the user's code, in a test
    (*_, last) = _run(monkeypatch, namespace["train"])
    assert re.search(message, f"{last['fail_reason']} {last['error']}"), last


def test_an_exception_in_user_code_keeps_its_traceback(monkeypatch) -> None:
    def train(hp, trial):
        trial.report(1, val_f1=0.3)
        raise ZeroDivisionError("the user's own bug")

    reports = _run(monkeypatch, train)
    last = reports[-1]
    assert (
        last["fail_reason"] == "error" and last["error"] == "ZeroDivisionError: the user's own bug"
    )
    assert "in train" in last["traceback"] and "ZeroDivisionError" in last["traceback"]
    assert reports[0]["epoch"] == 1  # the epoch before the failure was sent first
    outcome = trial_outcome(last, lost=False, objective="val_f1", use_best_value=True, epochs_run=1)
    assert "ZeroDivisionError" in outcome.attrs[records.TRACEBACK]


def test_report_raises_trial_pruned_when_ray_stops_the_trial() -> None:
    class Stopping(Reporter):
        def flush(self, **extra):
            raise SystemExit(0)  # what ray.tune.report does once the scheduler said stop

    trial = Trial(number=0, params={}, seed=0, template=_template(_train_reporting),
                  reporter=Stopping({}, frozenset(), 0.0))  # fmt: skip
    with pytest.raises(TrialPruned, match="the scheduler stopped trial 0 at epoch 1"):
        trial.report(1, val_f1=0.5)
    assert trial.stopped


def test_a_stopped_trial_ends_its_thread_as_ray_asked(monkeypatch) -> None:
    import ray.tune

    import sweeplab.studies._tune.function as module

    def report(metrics: dict) -> None:
        raise SystemExit(0)

    monkeypatch.setattr(ray.tune, "report", report)
    monkeypatch.setattr(module, "worker_facts", lambda version: {"pid": 1, "run_started_at": 0})
    with pytest.raises(SystemExit):
        run_function({"params": {}, "seed": 0, "number": 0}, _template(_train_reporting, {1}))


def test_report_error_is_a_type_error() -> None:
    assert issubclass(ReportError, TypeError)


# ---- records -------------------------------------------------------------------------------------


def test_curves_keep_a_functions_own_metrics() -> None:
    curves = Curves("val_f1")
    names = ["train_loss", "val_f1"]
    curves.add("t", {"epoch": 1, "val_f1": 0.5, "train_loss": 0.9, "curve_names": names,
                     "epoch_seconds": 0.1})  # fmt: skip
    curves.add("t", {"epoch": 2, "val_f1": 0.6, "curve_names": ["val_f1"], "epoch_seconds": 0.1})
    attrs = curves.pop("t")
    assert attrs["val_f1"] == [0.5, 0.6] and attrs["train_loss"] == [0.9, None]
    assert attrs[records.CURVE_NAMES] == ["train_loss", "val_f1"] and attrs["epochs_run"] == 2


def test_frames_show_a_functions_metrics_under_their_names() -> None:
    from sweeplab import analysis

    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    trial.report(0.5, step=1)
    trial.report(0.7, step=2)
    for key, value in {
        records.CURVE_NAMES: ["val_f1"],
        "val_f1": [0.5, 0.7],
        records.FINAL_METRICS: {"test_f1": 0.66},
        records.BEST_EPOCH: 2,
    }.items():
        trial.set_user_attr(key, value)  # fmt: skip
    study.tell(trial, 0.7)
    trials, curves = analysis.trials_frame(study), analysis.curves_frame(study)
    assert trials.loc[0, "val_f1"] == 0.7 and trials.loc[0, "test_f1"] == 0.66
    assert list(curves["val_f1"]) == [0.5, 0.7]
    assert analysis.ablation_metric(trials, "val_f1") == "test_f1"


# ---- ablation of the user's own hyperparameters --------------------------------------------------


def test_own_hyperparameters_are_ablated_to_their_declared_default() -> None:
    space = parse_space({
        "lr": {"low": 1e-3, "high": 1e-1, "log": True},
        "depth": {"type": "int", "low": 1, "high": 4, "default": 1},
        "width": {"type": "int", "low": 8, "high": 64},  # no default: never switched off
    })  # fmt: skip
    assert [c.name for c in find_components(space)] == ["lr", "depth"]
    baseline = {"lr": 0.01, "depth": 3, "width": 32}
    plan = plan_ablation(space, baseline, mode="loo", seeds=[0])
    assert {v.name: v.config for v in plan.variants}["-depth"] == {"lr": 0.01, "depth": 1,
                                                                      "width": 32}  # fmt: skip
    assert variant_config(space, baseline, ())["width"] == 32
    with pytest.raises(UsageError, match=r"`width` has no default to start from"):
        variant_config(space, {}, ())
