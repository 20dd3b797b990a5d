"""Checkpoints of one training run: a run resumed from any of them repeats the uninterrupted one.

Runs are on the CPU with one thread and torch's deterministic mode, where "repeats" means ``==``
on every recorded number: each epoch's losses and accuracies, the best epoch, the test metrics
and the final weights. The configurations draw from every random stream the loop has (dropout
and DropConnect from torch's global generator, augmentation and mixup/cutmix from the
augmenter's torch and numpy generators, label noise at load) and carry state across epochs
(Adam's moments, a warm-up and one-cycle or plateau schedule, early stopping with the best
weights restored).
"""

from __future__ import annotations

import dataclasses
import gc
import weakref

import pytest
import torch
from torch import nn

from sweeplab import trainer
from sweeplab.trainer._fit import evaluate

DATA = trainer.DataSettings(dataset="digits")
MODEL = trainer.ModelSettings(kind="mlp", hidden=(48, 24))
SETTINGS = trainer.FitSettings(
    max_epochs=6, device="cpu", num_threads=1, deterministic=True, seed=3,
    early_stopping=trainer.EarlyStopping(patience=3, restore_best_weights=True),
)  # fmt: skip
CONFIGS = {
    "mixup-onecycle": {
        "lr": 3e-3, "optimizer": "adam", "dropout": 0.2, "augment": ("noise", "mixup"),
        "lr_schedule": "onecycle", "label_noise": 0.1, "batch_size": 64,
    },
    "cutmix-plateau-sgd": {
        "lr": 0.05, "optimizer": "sgd", "momentum": 0.9, "dropconnect": 0.1,
        "augment": ("cutmix", "crop"), "lr_schedule": "plateau", "plateau_patience": 1,
        "warmup_epochs": 1.0, "weight_decay": 1e-3, "batch_size": 32,
    },
}  # fmt: skip


def _fit(params, checkpointing=None, settings=SETTINGS, model=MODEL, data=DATA):
    return trainer.fit(data, model, params, settings, checkpointing=checkpointing)


def _recording(every_s: float = 0.0, weights: bool = True):
    saved: list[tuple[bytes, trainer.SaveInfo]] = []

    def save(data: bytes, info: trainer.SaveInfo) -> None:
        saved.append((data, info))

    keep = trainer.Checkpointing(every_s=every_s, save=save, save_weights=save if weights else None)
    return keep, saved


def _same(a: trainer.FitResult, b: trainer.FitResult) -> None:
    assert len(a.history) == len(b.history)
    for x, y in zip(a.history, b.history, strict=True):
        assert dataclasses.replace(x, epoch_seconds=0.0) == dataclasses.replace(
            y, epoch_seconds=0.0
        )
    assert (a.best_epoch, a.best_value, a.test_acc, a.test_loss) == (
        b.best_epoch, b.best_value, b.test_acc, b.test_loss,
    )  # fmt: skip


def _weights(saved) -> trainer.Weights:
    (data,) = [d for d, info in saved if info.kind == "weights"]
    return trainer.read_weights(data)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_a_run_resumed_from_each_epoch_checkpoint_repeats_the_uninterrupted_run(name) -> None:
    params = CONFIGS[name]
    keep, saved = _recording(every_s=0.0)
    whole = _fit(params, keep)
    checkpoints = [(d, i) for d, i in saved if i.kind == "checkpoint"]
    # One after every epoch but the last (none at the last: the weights are saved there).
    assert [i.epoch for _, i in checkpoints] == list(range(1, whole.epochs_run))
    assert all(i.step == 0 for _, i in checkpoints)
    reference = _weights(saved)
    for data, info in checkpoints:
        again, resaved = _recording(every_s=0.0)
        seen: list[int] = []
        resumed = trainer.fit(
            DATA, MODEL, params, SETTINGS, on_epoch=lambda r, seen=seen: seen.append(r.epoch),
            checkpointing=dataclasses.replace(again, resume=trainer.read_checkpoint(data)),
        )  # fmt: skip
        _same(resumed, whole)
        assert seen == list(range(info.epoch + 1, whole.epochs_run + 1))  # the new epochs only
        final = _weights(resaved)
        assert final.epoch == reference.epoch == whole.best_epoch
        assert all(torch.equal(final.state_dict[k], v) for k, v in reference.state_dict.items())


def test_a_run_resumed_mid_epoch_repeats_the_uninterrupted_run() -> None:
    params = CONFIGS["mixup-onecycle"]
    whole = _fit(params)
    # A tiny interval: a checkpoint after every optimizer step, within the epochs too.
    keep, saved = _recording(every_s=1e-9, weights=False)
    _same(_fit(params, keep), whole)
    within = [(d, i) for d, i in saved if i.step > 0]
    assert within and {i.epoch for _, i in within} >= {0, 2}
    for data, info in [within[0], within[len(within) // 2], within[-1]]:
        resume = trainer.read_checkpoint(data)
        assert (resume.epoch, resume.step) == (info.epoch, info.step)
        resumed = _fit(params, trainer.Checkpointing(resume=resume))
        _same(resumed, whole)


def test_checkpointing_changes_nothing_in_the_run_and_nothing_is_saved_at_the_last_epoch() -> None:
    params = CONFIGS["cutmix-plateau-sgd"]
    plain = _fit(params)
    keep, saved = _recording(every_s=3600.0)  # never due: only the weights, at the end
    _same(_fit(params, keep), plain)
    assert [i.kind for _, i in saved] == ["weights"]


def test_the_saved_weights_rebuild_the_network_that_was_tested() -> None:
    keep, saved = _recording()
    result = _fit(CONFIGS["mixup-onecycle"], keep)
    weights = _weights(saved)
    net = trainer.model_from_weights(weights)
    assert not net.training
    ds = trainer.load_dataset(DATA, torch.device("cpu"))
    ds = trainer.corrupt_dataset(ds, trainer.resolve_params(dict(CONFIGS["mixup-onecycle"])), 0)
    test_loss, test_acc = evaluate(net, ds, "test")
    assert (test_acc, test_loss) == (result.test_acc, result.test_loss)


def test_a_users_own_network_round_trips_and_needs_its_factory() -> None:
    def build(input_shape, n_classes, hp):
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 20), nn.ReLU(), nn.Linear(20, n_classes))

    own = trainer.ModelSettings(factory=build)
    keep, saved = _recording()
    result = _fit({"lr": 3e-3}, keep, model=own)
    weights = _weights(saved)
    assert weights.own_model
    with pytest.raises(trainer.CheckpointError, match="own \\[model\\] factory"):
        trainer.model_from_weights(weights)
    net = trainer.model_from_weights(weights, factory=build)
    _, test_acc = evaluate(net, trainer.load_dataset(DATA, torch.device("cpu")), "test")
    assert test_acc == result.test_acc
    # And resuming a run of it from a checkpoint repeats it.
    checkpoint = trainer.read_checkpoint(next(d for d, i in saved if i.kind == "checkpoint"))
    _same(_fit({"lr": 3e-3}, trainer.Checkpointing(resume=checkpoint), model=own), result)


def test_a_users_datasets_resume_at_an_epoch_and_within_one() -> None:
    from torch.utils.data import TensorDataset

    def load() -> trainer.Data:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(300, 6, generator=g)
        y = (x[:, 0] > 0).long()
        return trainer.Data(
            train=TensorDataset(x[:200], y[:200]), val=TensorDataset(x[200:250], y[200:250]),
            test=TensorDataset(x[250:], y[250:]), num_classes=2,
        )  # fmt: skip

    data = trainer.DataSettings(factory=load)
    model = trainer.ModelSettings(hidden=(8,))
    params = {"lr": 1e-2, "batch_size": 16, "dropout": 0.1}
    whole = _fit(params, data=data, model=model)
    keep, saved = _recording(every_s=1e-9, weights=False)
    _fit(params, keep, data=data, model=model)
    at_end = next(d for d, i in saved if i.step == 0 and i.epoch == 2)
    within = next(d for d, i in saved if i.step == 5 and i.epoch == 3)
    for data_bytes in (at_end, within):
        resume = trainer.Checkpointing(resume=trainer.read_checkpoint(data_bytes))
        _same(_fit(params, resume, data=data, model=model), whole)


@pytest.mark.parametrize(
    "damage",
    [lambda b: b[: len(b) // 2], lambda b: b"\x00" * 64, lambda b: b"", lambda b: b"x" + b],
)
def test_damaged_bytes_raise_checkpoint_error_only(damage) -> None:
    keep, saved = _recording()
    _fit({"lr": 3e-3}, keep, settings=dataclasses.replace(SETTINGS, max_epochs=2))
    checkpoint, weights = saved[0][0], saved[-1][0]
    with pytest.raises(trainer.CheckpointError):
        trainer.read_checkpoint(damage(checkpoint))
    with pytest.raises(trainer.CheckpointError):
        trainer.read_weights(damage(weights))


def test_the_wrong_kind_or_another_runs_checkpoint_is_refused() -> None:
    keep, saved = _recording()
    settings = dataclasses.replace(SETTINGS, max_epochs=2)
    _fit({"lr": 3e-3}, keep, settings=settings)
    checkpoint, weights = saved[0][0], saved[-1][0]
    with pytest.raises(trainer.CheckpointError, match="not a sweeplab-checkpoint"):
        trainer.read_checkpoint(weights)
    with pytest.raises(trainer.CheckpointError, match="not a sweeplab-weights"):
        trainer.read_weights(checkpoint)
    other = trainer.Checkpointing(resume=trainer.read_checkpoint(checkpoint))
    with pytest.raises(trainer.CheckpointError, match="saved by a run with other"):
        _fit({"lr": 1e-2}, other, settings=settings)
    with pytest.raises(trainer.CheckpointError, match="saved by a run with other"):
        _fit({"lr": 3e-3}, other, settings=dataclasses.replace(settings, seed=4))


def test_every_s_is_validated() -> None:
    with pytest.raises(ValueError, match="every_s"):
        trainer.Checkpointing(every_s=-1)


def test_deterministic_mode_is_restored_after_the_run() -> None:
    before = torch.are_deterministic_algorithms_enabled()
    _fit({"lr": 3e-3}, settings=dataclasses.replace(SETTINGS, max_epochs=1))
    assert torch.are_deterministic_algorithms_enabled() == before


def test_a_run_stopped_from_on_epoch_leaves_nothing_of_it_alive() -> None:
    """What ASHA's stop does in a worker (``SystemExit`` out of ``on_epoch``): the network, its
    optimizer state and the checkpoint's tensors must go with the run, so the next trial in the
    same worker starts with the device memory free (on a GPU, ``fit`` then empties the cache)."""
    alive: list[weakref.ref] = []

    def build(input_shape, n_classes, hp):
        net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, n_classes))
        alive.append(weakref.ref(net))
        return net

    def stop(report: trainer.EpochReport) -> None:
        if report.epoch == 2:
            raise SystemExit(0)

    keep, _ = _recording()
    with pytest.raises(SystemExit):
        trainer.fit(
            DATA, trainer.ModelSettings(factory=build), {"lr": 3e-3}, SETTINGS, on_epoch=stop,
            checkpointing=keep,
        )  # fmt: skip
    gc.collect()
    assert alive and alive[0]() is None


class _Noisy(torch.utils.data.Dataset):
    """Examples with noise drawn as they are read, as a random transform does: from torch's
    global generator in this process, from a worker's own in a ``DataLoader`` worker."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i] + 0.3 * torch.randn(self.x.shape[1]), self.y[i]


@pytest.mark.parametrize("num_workers", [0, 1])
def test_a_users_randomly_transformed_datasets_resume_within_an_epoch(num_workers) -> None:
    """Without workers the skipped batches must not be read again (that would draw their noise
    twice from the restored generator); with one, they must (its generator is the worker's)."""

    def load() -> trainer.Data:
        g = torch.Generator().manual_seed(1)
        x = torch.randn(160, 5, generator=g)
        y = (x[:, 0] + x[:, 1] > 0).long()
        return trainer.Data(
            train=_Noisy(x[:112], y[:112]), val=(x[112:136], y[112:136]),
            test=(x[136:], y[136:]), num_classes=2,
        )  # fmt: skip

    data = trainer.DataSettings(factory=load, num_workers=num_workers)
    model = trainer.ModelSettings(hidden=(8,))
    params = {"lr": 1e-2, "batch_size": 16, "dropout": 0.2}
    settings = dataclasses.replace(SETTINGS, max_epochs=3)
    whole = _fit(params, settings=settings, data=data, model=model)
    keep, saved = _recording(every_s=1e-9, weights=False)
    _fit(params, keep, settings=settings, data=data, model=model)
    within = next(d for d, i in saved if i.step == 3 and i.epoch == 1)
    resume = trainer.Checkpointing(resume=trainer.read_checkpoint(within))
    _same(_fit(params, resume, settings=settings, data=data, model=model), whole)


def test_the_streams_sampler_skips_exactly_the_first_batches() -> None:
    from sweeplab.trainer._own_data import Streams

    x, y = torch.arange(50.0).unsqueeze(1), torch.arange(50)
    streams = Streams(
        trainer.Data(train=_Noisy(x, y), val=(x, y), num_classes=50), torch.device("cpu"), 0
    )
    order = streams.epoch_order(torch.Generator().manual_seed(0))
    every = [b.tolist() for _, b in streams.train_batches(8, order=order)]
    assert [b.tolist() for _, b in streams.train_batches(8, order=order, start=4)] == every[4:]
    # The same order as the DataLoader's own shuffle=True with the same seed.
    loader = torch.utils.data.DataLoader(
        _Noisy(x, y), batch_size=8, shuffle=True,
        generator=torch.Generator().manual_seed(int(order)),
    )  # fmt: skip
    assert every == [b.tolist() for _, b in loader][: len(every)]


@pytest.mark.filterwarnings("ignore::FutureWarning")  # gc.get_objects() meets deprecated names
def test_a_stopped_run_keeps_no_tensor_of_its_network_alive() -> None:
    """The checkpoint's state shares storage with the network and the optimizer: it must go
    too while the exception (and so ``fit``'s frame) is still alive."""
    storages: set[int] = set()

    def build(input_shape, n_classes, hp):
        net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, n_classes))
        storages.update(p.untyped_storage().data_ptr() for p in net.parameters())
        return net

    def stop(report: trainer.EpochReport) -> None:
        if report.epoch == 2:
            raise SystemExit(0)

    keep, _ = _recording()
    with pytest.raises(SystemExit) as stopped:
        trainer.fit(
            DATA, trainer.ModelSettings(factory=build), {"lr": 3e-3}, SETTINGS, on_epoch=stop,
            checkpointing=keep,
        )  # fmt: skip
    gc.collect()
    assert stopped.value.__traceback__ is not None
    left = [
        o
        for o in gc.get_objects()
        # Plain tensors only: another test's compiled code may leave fake ones about.
        if type(o) in (torch.Tensor, nn.Parameter) and o.untyped_storage().data_ptr() in storages
    ]
    assert left == []


def test_the_checkpoint_modules_examples_run() -> None:
    import doctest

    from sweeplab.trainer import _checkpoint

    result = doctest.testmod(_checkpoint)
    assert result.failed == 0 and result.attempted > 0
