"""Batched trials (trainer.fit_packed): real training on digits, compared with trainer.fit."""

from __future__ import annotations

import math

import pytest

from sweeplab import trainer
from sweeplab.trainer import DataSettings, FitSettings, ModelSettings, fit, fit_packed, pack_key

DATA = DataSettings(dataset="digits")
MLP = ModelSettings(kind="mlp", hidden=(32,))
SETTINGS = FitSettings(max_epochs=3, device="cpu", num_threads=1)


def _curve(result: trainer.FitResult, key: str = "val_loss") -> list[float]:
    return [getattr(r, key) for r in result.history]


@pytest.fixture(params=["per_member", "stacked"])
def pack_optimizer(request, monkeypatch) -> str:
    """Both ways a pack steps its members: each member's own PyTorch optimizer (the CPU's) and
    the update written once over the stacks (a GPU's), both run here on the CPU."""
    import sweeplab.trainer._packed

    devices = ("cpu", "cuda") if request.param == "stacked" else ("cuda",)
    monkeypatch.setattr(sweeplab.trainer._packed, "_STACKED_OPTIMIZER_DEVICES", devices)
    return request.param


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_each_member_trains_as_it_would_alone(optimizer: str, pack_optimizer: str) -> None:
    # Same seed (so the same batch order as fit), different lr, weight decay (and its mode), init,
    # label smoothing and schedule: every member's curve and test accuracy equal a solo fit to
    # float32 tolerance.
    members = [
        {
            "optimizer": optimizer,
            "lr": lr,
            "weight_decay": wd,
            "init": init,
            "momentum": 0.9,
            **more,
        }
        for lr, wd, init, more in [
            (0.01, 0.0, "default", {}),
            (0.03, 1e-3, "kaiming_normal", {"label_smoothing": 0.1, "lr_schedule": "cosine"}),
            (0.003, 1e-2, "orthogonal", {"lr_schedule": "onecycle", "nesterov": True}),
            (0.1, 0.0, "xavier_uniform", {"warmup_epochs": 1.0, "weight_decay_mode": "decoupled"}),
        ]
    ]
    packed = fit_packed(DATA, MLP, members, [0] * 4, SETTINGS)
    for member, result in zip(members, packed, strict=True):
        alone = fit(DATA, MLP, member, SETTINGS)
        assert _curve(result) == pytest.approx(_curve(alone), rel=1e-4, abs=1e-5)
        assert _curve(result, "train_loss") == pytest.approx(_curve(alone, "train_loss"), 1e-4)
        assert result.test_acc == pytest.approx(alone.test_acc, abs=1e-6)
    # The hyperparameters really differ in effect: four distinct curves.
    assert len({round(r.history[-1].val_loss, 4) for r in packed}) == 4


def test_dropout_acts_per_member() -> None:
    members = [{"lr": 3e-3, "dropout": p, "input_dropout": q} for p, q in [(0, 0), (0.5, 0.2)]]
    plain, dropped = fit_packed(DATA, MLP, members, [0, 0], SETTINGS)
    alone = fit(DATA, MLP, members[0], SETTINGS)
    # The member without dropout is untouched by its neighbour's masks...
    assert _curve(plain) == pytest.approx(_curve(alone), rel=1e-4, abs=1e-5)
    # ...and dropout makes the other's training loss (noisy forward passes) higher.
    assert dropped.history[-1].train_loss > plain.history[-1].train_loss + 0.01


def test_seeds_give_members_their_own_init() -> None:
    same = fit_packed(DATA, MLP, [{"lr": 3e-3}] * 2, [0, 0], SETTINGS)
    other = fit_packed(DATA, MLP, [{"lr": 3e-3}] * 2, [0, 5], SETTINGS)
    assert _curve(same[0]) == pytest.approx(_curve(same[1]), rel=1e-5)
    # Member 0 keeps seed 0's order and init; member 1's seed changes its init alone.
    assert _curve(other[0]) == pytest.approx(_curve(same[0]), rel=1e-5)
    assert _curve(other[1]) != pytest.approx(_curve(same[1]), rel=1e-3)


def test_a_pruned_member_stops_and_the_others_go_on(pack_optimizer: str) -> None:
    members = [{"lr": lr, "optimizer": "sgd", "momentum": 0.9} for lr in (0.01, 0.03, 0.1)]
    seen: list[set[int]] = []

    def on_epoch(reports: dict) -> set[int]:
        seen.append(set(reports))
        return {1} if 1 in reports else set()

    packed = fit_packed(DATA, MLP, members, [0] * 3, SETTINGS, on_epoch)
    assert seen == [{0, 1, 2}, {0, 2}, {0, 2}]
    assert packed[1].epochs_run == 1 and math.isnan(packed[1].test_acc)
    assert not packed[1].history[-1].is_last  # pruned, not finished
    for i in (0, 2):  # slicing member 1 away changes nothing for the others
        alone = fit(DATA, MLP, members[i], SETTINGS)
        assert packed[i].epochs_run == 3
        assert _curve(packed[i]) == pytest.approx(_curve(alone), rel=1e-4, abs=1e-5)


def test_early_stopping_and_divergence_are_per_member() -> None:
    settings = FitSettings(
        max_epochs=6,
        device="cpu",
        num_threads=1,
        early_stopping=trainer.EarlyStopping(patience=1, min_delta=0.5),
    )
    members = [{"lr": 3e-3, "optimizer": "sgd", "momentum": 0.9}, {"lr": 1e9, "optimizer": "sgd"}]
    finished, diverged = fit_packed(DATA, MLP, members, [0, 0], settings)
    assert isinstance(diverged, trainer.Diverged)
    alone = fit(DATA, MLP, members[0], settings)
    assert finished.epochs_run == alone.epochs_run < 6
    assert finished.history[-1].stopped_early
    assert finished.test_acc == pytest.approx(alone.test_acc, abs=1e-6)


def test_pack_key_says_what_must_be_shared() -> None:
    key = pack_key(MLP, {})
    assert key is not None
    assert pack_key(MLP, {"lr": 0.5, "dropout": 0.3, "init": "orthogonal"}) == key
    assert pack_key(MLP, {"optimizer": "adam"}) == pack_key(MLP, {"optimizer": "adamw"})
    assert pack_key(MLP, {"optimizer": "sgd"}) != pack_key(MLP, {"optimizer": "adam"})
    assert pack_key(MLP, {"batch_size": 64}) != pack_key(MLP, {"batch_size": 128})
    assert pack_key(MLP, {"activation": "tanh"}) != key
    assert pack_key(ModelSettings(kind="mlp", hidden=(64,)), {}) != key
    for solo in ({"optimizer": "rmsprop"}, {"l1": 1e-4}, {"norm": "batch"}, {"grad_clip": 1.0}):
        assert pack_key(MLP, solo) is None
    assert pack_key(ModelSettings(kind="cnn"), {}) is None
    with pytest.raises(ValueError, match="cannot be packed"):
        fit_packed(DATA, MLP, [{"batch_size": 64}, {"batch_size": 128}], [0, 0], SETTINGS)
