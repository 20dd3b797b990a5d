"""The training loop's fast paths change how a step runs, never what it computes.

Each speed-up of ``fit``'s loop on a CPU (batches gathered with ``index_select``, no garbage collection within an epoch, evaluation under
``inference_mode``) is checked for what it promises: the same numbers as the plain way, and the
interpreter's state restored afterwards, on success and on failure. Timings belong to
``benchmarks/trainer_throughput.py``.
"""

from __future__ import annotations

import gc

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sweeplab.trainer import (
    DataSettings,
    Diverged,
    FitSettings,
    ModelSettings,
    build_model,
    fit,
    load_dataset,
    resolve_params,
)
from sweeplab.trainer._optim import build_optimizer

DIGITS = DataSettings(dataset="digits")


def test_batches_are_the_rows_of_the_epoch_order():
    ds = load_dataset(DIGITS)
    order = ds.epoch_order(torch.Generator().manual_seed(0))
    batches = list(ds.train_batches(64, order=order))
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    kept = order[: len(y)]
    assert torch.equal(x, ds.train_x[kept]) and torch.equal(y, ds.train_y[kept])
    # From a mid-epoch position on (a resumed run): the same batches as the full epoch's tail.
    tail = list(ds.train_batches(64, order=order, start=3))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(tail, batches[3:], strict=True))


@pytest.mark.parametrize("weight_decay", [0.0, 1e-4])
def test_the_optimizer_groups_do_not_depend_on_weight_decay(weight_decay):
    """A state saved with one weight_decay loads into a run with another (resume, PBT)."""
    net = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 3))
    optimizer = build_optimizer(
        net, resolve_params({"optimizer": "sgd", "weight_decay": weight_decay})
    )
    assert [len(g["params"]) for g in optimizer.param_groups] == [2, 2]
    other = build_optimizer(net, resolve_params({"optimizer": "sgd", "weight_decay": 1e-3}))
    other.load_state_dict(optimizer.state_dict())


class _Probe(nn.Module):
    """The trainer's own MLP, noting the interpreter's state at each training and eval call."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.gc_in_training: list[bool] = []
        self.inference_in_eval: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.gc_in_training.append(gc.isenabled())
        else:
            self.inference_in_eval.append(torch.is_inference_mode_enabled())
        return self.inner(x)


def _probed(probes: list[_Probe]) -> ModelSettings:
    def factory(shape: tuple, n_classes: int, hp: dict) -> nn.Module:
        inner = build_model(ModelSettings(kind="mlp", hidden=(32,)), hp, shape, n_classes)
        probes.append(_Probe(inner))
        return probes[-1]

    return ModelSettings(factory=factory)


def test_no_gc_within_an_epoch_and_eval_under_inference_mode():
    probes: list[_Probe] = []
    assert gc.isenabled()
    fit(DIGITS, _probed(probes), {"lr": 1e-2}, FitSettings(max_epochs=2, device="cpu"))
    (probe,) = probes
    assert probe.gc_in_training and not any(probe.gc_in_training)
    assert probe.inference_in_eval and all(probe.inference_in_eval)
    assert gc.isenabled()  # restored after the run


def test_gc_is_restored_when_a_run_fails():
    probes: list[_Probe] = []
    with pytest.raises(Diverged):
        fit(
            DIGITS,
            _probed(probes),
            {"optimizer": "sgd", "lr": 1e12},
            FitSettings(max_epochs=3, device="cpu"),
        )
    assert gc.isenabled()
    # A caller that runs with the collector off keeps it off.
    gc.disable()
    try:
        fit(DIGITS, _probed(probes), {"lr": 1e-2}, FitSettings(max_epochs=1, device="cpu"))
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_fast_paths_leave_the_result_where_the_plain_loop_puts_it():
    # The loop as the tutorials write it (x[idx] batches, two parameter groups are irrelevant
    # without decay, no_grad evaluation), fed the trainer's own network, order and data:
    # the same accuracy, the same loss to float noise.
    ds = load_dataset(DIGITS)
    settings = FitSettings(max_epochs=2, device="cpu", seed=3)
    model = ModelSettings(kind="mlp", hidden=(32,))
    params = {"optimizer": "sgd", "lr": 0.1, "batch_size": 32}
    result = fit(DIGITS, model, params, settings)

    from sweeplab.trainer._augment import Augmenter

    hp = resolve_params(params)
    hp["activation"] = model.activation
    augment = Augmenter.from_params(hp, seed=settings.seed, device=torch.device("cpu"))
    torch.manual_seed(settings.seed)
    net = build_model(model, hp, ds.input_shape, ds.num_classes)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(settings.max_epochs):
        net.train()
        order = ds.epoch_order(augment.generator)
        for first in range(0, ds.n_train, 32):
            idx = order[first : first + 32]
            if len(idx) < 2:
                continue
            optimizer.zero_grad()
            F.cross_entropy(net(ds.train_x[idx]), ds.train_y[idx]).backward()
            optimizer.step()
    net.eval()
    with torch.no_grad():
        logits = net(ds.test_x)
    test_acc = (logits.argmax(1) == ds.test_y).float().mean().item()
    assert result.test_acc == pytest.approx(test_acc, abs=1e-6)
    assert result.test_loss == pytest.approx(F.cross_entropy(logits, ds.test_y).item(), rel=1e-4)


def test_the_cnn_trains_channels_last_and_computes_what_the_contiguous_layout_does():
    # The trainer's own CNN goes channels-last on every device (faster convolutions with oneDNN);
    # the same network built by a factory stays contiguous (the trainer leaves a factory's
    # network alone): the same run, to float noise.
    model = ModelSettings(kind="cnn", channels=(8, 16))

    def contiguous(shape: tuple, n_classes: int, hp: dict) -> nn.Module:
        return build_model(model, hp, shape, n_classes)

    settings = FitSettings(max_epochs=2, device="cpu", seed=1)
    params = {"optimizer": "sgd", "lr": 0.05, "batch_size": 64}

    fast = fit(DIGITS, model, params, settings)
    plain = fit(DIGITS, ModelSettings(factory=contiguous), params, settings)
    for a, b in zip(fast.history, plain.history, strict=True):
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-4)
        assert a.val_loss == pytest.approx(b.val_loss, rel=1e-4)
    assert fast.test_acc == pytest.approx(plain.test_acc, abs=1e-3)
