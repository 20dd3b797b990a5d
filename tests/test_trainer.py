"""Tests of the trainer: real training on scikit-learn's digits (and MNIST when it is present)."""

from __future__ import annotations

import dataclasses
import doctest
import importlib
import itertools
import math
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from sweeplab.trainer import (
    ACTIVATIONS,
    AUGMENTATIONS,
    INIT_SCHEMES,
    LR_SCHEDULES,
    OPTIMIZERS,
    DataError,
    DatasetNotFound,
    DataSettings,
    Diverged,
    EarlyStopping,
    EpochReport,
    FitSettings,
    ModelSettings,
    TrainingError,
    build_model,
    check_dataset,
    fit,
    load_dataset,
    resolve_params,
)
from sweeplab.trainer._augment import Augmenter, crop, flip, mixup, noise, pad
from sweeplab.trainer._epochs import is_better
from sweeplab.trainer._init import apply_init
from sweeplab.trainer._optim import build_optimizer, lr_factor

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DIGITS = DataSettings(dataset="digits")
SMALL_MLP = ModelSettings(kind="mlp", hidden=(64,))


def run(params=None, epochs=2, model=SMALL_MLP, data=DIGITS, on_epoch=None, **settings):
    settings.setdefault("device", "cpu")
    return fit(data, model, params or {}, FitSettings(max_epochs=epochs, **settings), on_epoch)


def comparable(history: tuple[EpochReport, ...]) -> list[dict]:
    """A history without its timings, which differ from run to run."""
    timings = ("epoch_seconds", "train_time")  # wall times differ between equal runs
    return [{k: v for k, v in r.metrics().items() if k not in timings} for r in history]


# ---- fit: learning, reporting, determinism -------------------------------------------------------


def test_digits_mlp_learns_and_reports_every_epoch():
    reports: list[EpochReport] = []
    result = run({"optimizer": "adam", "lr": 3e-3}, epochs=15, on_epoch=reports.append)

    assert result.history[-1].val_acc > 0.9
    assert result.test_acc > 0.9
    assert reports == list(result.history)
    assert [r.epoch for r in reports] == list(range(1, 16))
    assert result.epochs_run == 15 and result.device == "cpu"
    assert [r.is_last for r in reports] == [False] * 14 + [True]
    assert all(r.test_acc is None and r.test_loss is None for r in reports[:-1])
    assert reports[-1].test_acc == result.test_acc and reports[-1].test_loss == result.test_loss
    assert not reports[-1].stopped_early
    best = max(reports, key=lambda r: r.val_acc)
    assert (result.best_epoch, result.best_value) == (best.epoch, best.val_acc)


def test_metrics_is_a_flat_dict_of_every_field():
    report = run(epochs=1).history[0]
    metrics = report.metrics()
    assert list(metrics) == [f.name for f in dataclasses.fields(EpochReport)]
    assert list(metrics) == [
        "epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "epoch_seconds",
        "is_last", "best_epoch", "best_value", "stopped_early", "test_loss", "test_acc",
        "final_train_acc", "params", "train_time",
    ]  # fmt: skip
    # Costs a multi-objective study can minimise: the MLP's weights and biases, the time.
    assert metrics["params"] > 0
    assert metrics["train_time"] == pytest.approx(metrics["epoch_seconds"])
    assert all(isinstance(v, (int, float, bool)) for v in metrics.values())


def test_final_train_acc_is_measured_in_eval_mode_on_the_last_epoch_only():
    """Heavy dropout pulls the accuracy measured while training far below the network's real
    fit to its training data, which the last report measures without dropout."""
    history = run({"optimizer": "adam", "lr": 3e-3, "dropout": 0.8}, epochs=4).history
    assert all(r.final_train_acc is None for r in history[:-1])
    last = history[-1]
    assert last.final_train_acc is not None and 0.0 <= last.final_train_acc <= 1.0
    assert last.final_train_acc > last.train_acc + 0.05


def test_same_seed_same_history_and_another_seed_another():
    params = {"dropout": 0.2, "augment": ["noise", "mixup"]}
    first, again = run(params, seed=3), run(params, seed=3)
    other = run(params, seed=4)
    assert comparable(first.history) == comparable(again.history)
    assert first.test_acc == again.test_acc
    assert comparable(first.history) != comparable(other.history)


def test_raising_from_on_epoch_stops_the_run():
    class Stop(Exception):
        pass

    seen = []

    def on_epoch(report: EpochReport) -> None:
        seen.append(report.epoch)
        if report.epoch == 2:
            raise Stop

    with pytest.raises(Stop):
        run(epochs=5, on_epoch=on_epoch)
    assert seen == [1, 2]


def test_num_threads_is_applied():
    before = torch.get_num_threads()
    try:
        run(epochs=1, num_threads=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_unknown_hyperparameter_is_rejected():
    with pytest.raises(KeyError, match="learning_rate"):
        run({"learning_rate": 0.1})


# ---- early stopping and the best epoch -----------------------------------------------------------


def test_early_stopping_fires_before_the_budget():
    # No epoch can improve validation accuracy by more than 1, so patience 1 ends epoch 2.
    stopping = EarlyStopping(patience=1, min_delta=1.0)
    result = run({"lr": 3e-3}, epochs=10, early_stopping=stopping)
    assert result.epochs_run == 2
    assert result.history[-1].is_last and result.history[-1].stopped_early
    assert not result.history[0].is_last
    assert result.test_acc is not None


@pytest.mark.parametrize("restore", [True, False])
def test_test_metrics_come_from_the_best_or_the_final_weights(restore):
    # Minimising validation accuracy makes epoch 1 the best: accuracy rises as the MLP learns.
    stopping = EarlyStopping(patience=2, restore_best_weights=restore)
    kwargs = {"objective": "val_acc", "direction": "minimize", "seed": 1}
    result = run({"lr": 3e-3}, epochs=10, early_stopping=stopping, **kwargs)
    assert result.best_epoch == 1 < result.epochs_run == 3

    # Runs are deterministic, so a run cut at epoch k ends with the same weights.
    final = EarlyStopping(restore_best_weights=False)
    same_weights = run({"lr": 3e-3}, epochs=1 if restore else 3, early_stopping=final, **kwargs)
    assert (result.test_acc, result.test_loss) == (same_weights.test_acc, same_weights.test_loss)


@pytest.mark.parametrize("maximize", [True, False])
def test_is_better_needs_more_than_min_delta(maximize):
    sign = 1 if maximize else -1
    assert not is_better(0.5 + sign * 0.25, 0.5, maximize, min_delta=0.25)
    assert is_better(0.5 + sign * 0.375, 0.5, maximize, min_delta=0.25)
    assert not is_better(0.5, 0.5, maximize)
    assert not is_better(math.nan, 0.5, maximize)
    assert is_better(0.5, math.nan, maximize)


def test_minimize_val_loss_tracks_the_lowest_loss():
    result = run({"lr": 3e-3}, epochs=4, objective="val_loss", direction="minimize")
    losses = [r.val_loss for r in result.history]
    assert result.best_value == min(losses)
    assert result.best_epoch == losses.index(min(losses)) + 1


# ---- the toolbox: optimizers, inits, schedules, augmentations, models ----------------------------


@pytest.mark.parametrize("init", ["kaiming_normal", "orthogonal"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_trains(optimizer, init):
    # Adadelta's lr is a multiplier (1 = the published method); RAdam damps its first steps.
    lr = {"adadelta": 1.0, "radam": 3e-2, "sgd": 0.1}.get(optimizer, 1e-2)  # sgd: no momentum
    params = {"optimizer": optimizer, "init": init, "lr": lr, "weight_decay": 1e-4}
    result = run(params, epochs=1)
    report = result.history[0]
    assert math.isfinite(report.train_loss) and math.isfinite(report.val_loss)
    assert report.val_acc > 0.3  # well above chance (0.1) after one epoch


def test_nesterov_without_momentum_is_plain_sgd():
    params = {"optimizer": "sgd", "momentum": 0.0, "nesterov": True, "lr": 0.05}
    optimizer = build_optimizer(nn.Linear(2, 2), resolve_params(params))
    assert all(not group["nesterov"] for group in optimizer.param_groups)
    assert math.isfinite(run(params, epochs=1).history[0].train_loss)


@pytest.mark.parametrize(
    "augment", [[name] for name in AUGMENTATIONS] + [list(AUGMENTATIONS)], ids=str
)
def test_every_augmentation_trains(augment):
    result = run({"augment": augment, "lr": 3e-3}, epochs=2, model=ModelSettings(kind="cnn"))
    assert all(math.isfinite(r.train_loss) and math.isfinite(r.val_loss) for r in result.history)


def test_cnn_learns_digits():
    model = ModelSettings(kind="cnn", channels=(16, 32), activation="gelu")
    result = run({"lr": 3e-3, "dropout": 0.1, "label_smoothing": 0.1}, epochs=3, model=model)
    assert result.history[-1].val_acc > 0.8


@pytest.mark.parametrize("channels", [(8,), (4, 4, 4, 4, 4)])
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_cnn_fits_every_image_size(channels, shape):
    net = build_model(ModelSettings(kind="cnn", channels=channels), {}, shape, 10)
    assert net(torch.zeros(2, *shape)).shape == (2, 10)


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 28, 28)])
def test_resnet18_is_adapted_to_small_images(shape):
    net = build_model(ModelSettings(kind="resnet18"), {"activation": "silu"}, shape, 10)
    assert net.conv1.in_channels == shape[0]
    assert (net.conv1.kernel_size, net.conv1.stride) == ((3, 3), (1, 1))
    assert isinstance(net.maxpool, nn.Identity)
    assert not any(isinstance(m, nn.ReLU) for m in net.modules())
    net.eval()
    with torch.no_grad():
        assert net(torch.randn(2, *shape)).shape == (2, 10)


def test_mlp_layout_activation_and_dropout():
    model = ModelSettings(kind="mlp", hidden=(32, 16), activation="gelu")
    net = build_model(model, {"dropout": 0.5}, (1, 8, 8), 10)
    kinds = [type(m) for m in net]
    assert kinds == [
        nn.Flatten, nn.Linear, nn.GELU, nn.Dropout, nn.Linear, nn.GELU, nn.Dropout, nn.Linear,
    ]  # fmt: skip
    assert net[-1].out_features == 10 and net[1].in_features == 64
    # A sampled activation overrides the model's.
    searched = build_model(model, {"activation": "tanh"}, (1, 8, 8), 10)
    assert any(isinstance(m, nn.Tanh) for m in searched) and not any(
        isinstance(m, nn.GELU) for m in searched
    )


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_builds(activation):
    net = build_model(
        SMALL_MLP, {"activation": activation, "init": "kaiming_uniform"}, (1, 8, 8), 10
    )
    assert torch.isfinite(net(torch.randn(3, 1, 8, 8))).all()


def test_unknown_activation_and_model_are_rejected():
    with pytest.raises(ValueError, match="`activation` must be one of"):
        build_model(ModelSettings(activation="swish"), {}, (1, 8, 8), 10)
    with pytest.raises(ValueError, match=r"`model\.kind` must be one of"):
        build_model(ModelSettings(kind="vit"), {}, (1, 8, 8), 10)  # type: ignore[arg-type]


@pytest.mark.parametrize("schedule", LR_SCHEDULES)
def test_lr_schedules_step_once_per_epoch(schedule):
    result = run({"lr": 0.01, "lr_schedule": schedule}, epochs=4)
    lrs = [r.lr for r in result.history]
    expected = [0.01 * lr_factor(schedule, epoch, 4) for epoch in range(4)]
    assert lrs == pytest.approx(expected)
    if schedule != "onecycle":  # one-cycle starts at lr / 25 by definition
        assert lrs[0] == pytest.approx(0.01)


def test_lr_factor_shapes():
    assert [lr_factor("step", e, 8) for e in range(8)] == pytest.approx(
        [1, 1, 1, 1, 0.1, 0.1, 0.01, 0.01]
    )
    cosine = [lr_factor("cosine", e, 10) for e in range(10)]
    assert cosine[0] == 1 and all(a > b > 0 for a, b in itertools.pairwise(cosine))
    with pytest.raises(ValueError, match="`lr_schedule` must be one of"):
        lr_factor("linear", 0, 10)


# ---- weight decay groups and init ----------------------------------------------------------------


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_weight_decay_only_on_weights(optimizer):
    net = build_model(ModelSettings(kind="cnn", channels=(4,)), {}, (1, 8, 8), 10)
    opt = build_optimizer(net, resolve_params({"optimizer": optimizer, "weight_decay": 0.1}))
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] == 0.1 for p in g["params"]}
    weights = {id(m.weight) for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))}
    biases = {id(m.bias) for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))}
    assert decayed == weights
    assert not decayed & biases
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(net.parameters()))


def test_resnet_norm_parameters_are_not_decayed():
    net = build_model(ModelSettings(kind="resnet18"), {}, (3, 32, 32), 10)
    opt = build_optimizer(net, resolve_params({"optimizer": "adamw", "weight_decay": 0.05}))
    undecayed = [p for g in opt.param_groups if g["weight_decay"] == 0.0 for p in g["params"]]
    bn = [p for m in net.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters()]
    assert {id(p) for p in bn} <= {id(p) for p in undecayed}
    assert all(p.ndim == 1 for p in undecayed)


def test_orthogonal_init_makes_square_weights_orthogonal():
    layer = nn.Linear(32, 32)
    apply_init(layer, "orthogonal", "relu")
    w = layer.weight.detach()
    assert torch.allclose(w @ w.T, torch.eye(32), atol=1e-5)
    assert torch.count_nonzero(layer.bias) == 0


@pytest.mark.parametrize("activation, gain", [("relu", math.sqrt(2)), ("tanh", 5 / 3)])
def test_kaiming_normal_uses_the_activation_gain(activation, gain):
    torch.manual_seed(0)
    layer = nn.Linear(1000, 400)
    apply_init(layer, "kaiming_normal", activation)
    assert layer.weight.std().item() == pytest.approx(gain / math.sqrt(1000), rel=0.03)


def test_xavier_uniform_bound():
    layer = nn.Conv2d(8, 16, 3)
    apply_init(layer, "xavier_uniform", "relu")
    fan_in, fan_out = 8 * 9, 16 * 9
    assert layer.weight.abs().max() <= math.sqrt(6 / (fan_in + fan_out))


@pytest.mark.parametrize("scheme", INIT_SCHEMES)
def test_init_schemes_zero_biases_except_default(scheme):
    torch.manual_seed(0)
    net = build_model(SMALL_MLP, {}, (1, 8, 8), 10)
    torch.manual_seed(0)
    reinitialised = build_model(SMALL_MLP, {"init": scheme}, (1, 8, 8), 10)
    linears = [m for m in reinitialised.modules() if isinstance(m, nn.Linear)]
    if scheme == "default":
        pairs = zip(net.parameters(), reinitialised.parameters(), strict=True)
        assert all(torch.equal(a, b) for a, b in pairs)
    else:
        assert all(torch.count_nonzero(m.bias) == 0 for m in linears)
        assert not torch.equal(net[1].weight, reinitialised[1].weight)


# ---- augmentation ------------------------------------------------------------------------------


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_flip_mirrors_some_images_and_leaves_the_rest():
    x = torch.randn(64, 3, 5, 7)
    out = flip(x, generator())
    mirrored = [torch.equal(out[i], x[i].flip(-1)) for i in range(len(x))]
    unchanged = [torch.equal(out[i], x[i]) for i in range(len(x))]
    assert all(m != u for m, u in zip(mirrored, unchanged, strict=True))  # exactly one, never a mix
    assert 10 < sum(mirrored) < 54


def test_crop_returns_shifted_windows_of_the_padded_image():
    x, padding = torch.randn(40, 2, 6, 6), 2
    out = crop(x, padding, generator())
    assert out.shape == x.shape
    padded = pad(x, padding)
    offsets = set()
    for i in range(len(x)):
        matches = [
            (dy, dx)
            for dy in range(2 * padding + 1)
            for dx in range(2 * padding + 1)
            if torch.equal(out[i], padded[i, :, dy : dy + 6, dx : dx + 6])
        ]
        assert matches, f"image {i} is not a window of its padded input"
        offsets.update(matches)
    assert len(offsets) > 5  # offsets vary per image


def test_noise_has_the_requested_scale():
    x = torch.zeros(200, 1, 8, 8)
    out = noise(x, 0.5, generator())
    assert out.std().item() == pytest.approx(0.5, rel=0.05)


def test_mixup_blends_pairs_and_returns_both_labels():
    x, y = torch.randn(32, 1, 4, 4), torch.arange(32)
    batch = mixup(x, y, 0.4, generator(), np.random.default_rng(0))
    assert 0.0 <= batch.lam <= 1.0
    assert torch.equal(batch.y_a, y)
    assert sorted(batch.y_b.tolist()) == y.tolist()  # a permutation of the batch
    # y = arange, so y_b is the pairing itself.
    assert torch.allclose(batch.x, batch.lam * x + (1 - batch.lam) * x[batch.y_b])


def test_augmenter_is_reproducible_and_leaves_labels_alone_without_mixup():
    x, y = torch.randn(16, 1, 8, 8), torch.arange(16) % 10

    def augment(seed):
        aug = Augmenter(["crop", "flip", "noise"], crop_padding=1, noise_std=0.1,
                        mixup_alpha=0.2, seed=seed, device="cpu")  # fmt: skip
        return aug(x, y)

    a, b, c = augment(0), augment(0), augment(1)
    assert torch.equal(a.x, b.x) and not torch.equal(a.x, c.x)
    assert a.y_a is y and a.y_b is y and a.lam == 1.0
    with pytest.raises(ValueError, match="subset of"):
        Augmenter(["spin"], crop_padding=1, noise_std=0.1, mixup_alpha=0.2, seed=0, device="cpu")


# ---- divergence --------------------------------------------------------------------------------


def test_divergence_is_reported_with_its_epoch():
    with pytest.raises(Diverged, match=r"diverged at epoch 1 \(train loss nan\)") as info:
        run({"optimizer": "sgd", "lr": 1e6}, epochs=3)
    assert info.value.epoch == 1
    assert isinstance(info.value, TrainingError) and isinstance(info.value, RuntimeError)
    # Ray ships a trial's exception between processes.
    assert pickle.loads(pickle.dumps(info.value)).epoch == 1


# ---- data ----------------------------------------------------------------------------------------


def test_digits_splits_normalisation_and_cache():
    ds = load_dataset(DIGITS)
    assert ds.input_shape == (1, 8, 8) and ds.num_classes == 10
    assert len(ds.test_y) == 360  # a fifth of 1797, stratified
    assert len(ds.train_y) + len(ds.val_y) + len(ds.test_y) == 1797
    assert len(ds.val_y) == pytest.approx(0.2 * (1797 - 360), abs=1)
    assert ds.train_x.dtype == torch.float32 and ds.train_y.dtype == torch.int64
    assert ds.train_x.mean().item() == pytest.approx(0, abs=1e-5)
    assert ds.train_x.std().item() == pytest.approx(1, abs=1e-3)
    assert torch.bincount(ds.test_y).tolist() == pytest.approx([36] * 10, abs=1)
    assert load_dataset(DataSettings(dataset="digits"), torch.device("cpu")) is ds
    reshuffled = load_dataset(DataSettings(dataset="digits", split_seed=1))
    assert reshuffled is not ds and not torch.equal(reshuffled.test_y, ds.test_y)


def test_subset_is_stratified_and_bounded():
    ds = load_dataset(DataSettings(dataset="digits", subset=200))
    assert ds.train_x.shape == (200, 1, 8, 8)
    assert torch.bincount(ds.train_y).tolist() == pytest.approx([20] * 10, abs=1)
    with pytest.raises(DataError, match=r"`data.subset` must be an int in \[10, 1149\]"):
        load_dataset(DataSettings(dataset="digits", subset=1150))
    with pytest.raises(DataError, match="got 9"):
        load_dataset(DataSettings(dataset="digits", subset=9))
    load_dataset(DataSettings(dataset="digits", subset=10))  # one example per class


@pytest.mark.parametrize(
    "dataset, folder",
    [("mnist", "MNIST/raw"), ("fashion_mnist", "FashionMNIST/raw"),
     ("cifar10", "cifar-10-batches-py")],
)  # fmt: skip
def test_missing_files_name_the_folder_and_the_fix(tmp_path, dataset, folder):
    data = DataSettings(dataset=dataset, root=str(tmp_path))
    expected = str(tmp_path.resolve() / folder)
    for attempt in (check_dataset, load_dataset):
        with pytest.raises(DatasetNotFound) as info:
            attempt(data)
        message = str(info.value)
        assert expected in message and repr(dataset) in message
        assert "set `download = true` in [data], or copy the files there" in message


def test_unreadable_files_are_a_data_error(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):  # fmt: skip
        (raw / name).write_bytes(b"not an idx file")
    with pytest.raises(DataError, match="could not be read"):
        load_dataset(DataSettings(dataset="mnist", root=str(tmp_path)))


def test_check_dataset_is_a_no_op_when_nothing_can_be_missing(tmp_path):
    check_dataset(DIGITS)
    check_dataset(DataSettings(dataset="mnist", root=str(tmp_path), download=True))


@pytest.mark.skipif(
    not (SHARED_DATA / "MNIST" / "raw").is_dir(), reason="no local MNIST copy (../shared/data)"
)
def test_mnist_subset_loads_and_trains():
    data = DataSettings(dataset="mnist", root=str(SHARED_DATA), subset=2000)
    check_dataset(data)
    ds = load_dataset(data)
    assert ds.train_x.shape == (2000, 1, 28, 28) and ds.input_shape == (1, 28, 28)
    assert ds.val_x.shape == (12000, 1, 28, 28) and ds.test_x.shape == (10000, 1, 28, 28)
    assert ds.train_x.mean().item() == pytest.approx(0, abs=1e-4)
    assert torch.bincount(ds.train_y).min() > 150  # stratified: about 200 per class
    result = run({"lr": 1e-3}, epochs=1, data=data, model=ModelSettings(hidden=(128,)))
    assert result.history[0].is_last and result.test_acc > 0.5


# ---- packaging -----------------------------------------------------------------------------------


def test_import_has_no_side_effects():
    code = (
        "import sys, torch; torch.set_num_threads(1); from sweeplab import trainer; "
        "[getattr(trainer, name) for name in trainer.__all__]; "  # imports every module
        "assert torch.get_num_threads() == 1; "
        "assert 'torchvision' not in sys.modules; "
        "assert trainer._data._load_cached.cache_info().currsize == 0; "
        "assert set(trainer.__all__) <= set(dir(trainer))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


def test_the_catalog_settings_and_errors_import_no_torch():
    # The spec validator and `sweeplab --help` read these; torch costs seconds to import.
    code = (
        "import sys; "
        "from sweeplab.trainer import HYPERPARAMETERS, DATASETS, MODELS, DataSettings, "
        "FitSettings, resolve_params, DataError; "
        "assert 'torch' not in sys.modules, 'the torch-free face imported torch'; "
        "from sweeplab import trainer; "
        "missing = [n for n in trainer.__all__ if getattr(trainer, n, None) is None]; "
        "assert not missing, missing; "
        "assert sorted(set(trainer.__all__) - set(dir(trainer))) == []; "
        "assert 'torch' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


def test_the_face_serves_each_name_from_its_home_and_no_unknown_name():
    import sweeplab.trainer as face
    import sweeplab.trainer._fit

    assert face.fit is sweeplab.trainer._fit.fit
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        face.no_such_name  # noqa: B018


@pytest.mark.slow
def test_compile_runs_the_network_through_torch_compile():
    """`compile = true` trains through torch.compile (slow on CPU: the first compile takes ~30 s)."""
    import torch._dynamo

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    data, model = DataSettings(), ModelSettings(hidden=(32,))
    settings = FitSettings(max_epochs=2, seed=0, device="cpu", compile=True)
    result = fit(data, model, {"optimizer": "adam", "lr": 3e-3}, settings)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0
    assert result.history[-1].val_acc > 0.5 and result.test_acc is not None


@pytest.mark.parametrize("module", ["sweeplab.trainer", "sweeplab.trainer._epochs"])
def test_doctests_pass(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0 and result.attempted > 0
