"""Tests of datasets and data corruption: CIFAR-100's files, pixel statistics, Zhang et al. 2017."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest
import torch

from sweeplab.trainer import (
    HYPERPARAMETERS,
    DataError,
    DatasetNotFound,
    DataSettings,
    FitSettings,
    ModelSettings,
    check_dataset,
    fit,
    load_dataset,
)
from sweeplab.trainer._data import Dataset, corrupt_dataset

DIGITS = DataSettings(dataset="digits")


def snapshot(ds: Dataset) -> dict[str, torch.Tensor]:
    return {f.name: getattr(ds, f.name).clone() for f in dataclasses.fields(ds)
            if isinstance(getattr(ds, f.name), torch.Tensor)}  # fmt: skip


def assert_unchanged(ds: Dataset, before: dict[str, torch.Tensor]) -> None:
    for name, tensor in before.items():
        assert torch.equal(getattr(ds, name), tensor), f"{name} of the cached dataset changed"


def synthetic(n: int = 20_000, k: int = 10, seed: int = 0) -> Dataset:
    """A dataset large enough for tight statistics; each image is its own pixel positions."""
    gen = torch.Generator().manual_seed(seed)
    positions = torch.arange(16.0).view(1, 1, 4, 4)

    def split(m: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = positions + 100 * torch.arange(m, dtype=torch.float32).view(-1, 1, 1, 1)
        return x.expand(m, 2, 4, 4).contiguous(), torch.randint(0, k, (m,), generator=gen)

    (tx, ty), (vx, vy), (sx, sy) = split(n), split(300), split(200)
    return Dataset(train_x=tx, train_y=ty, val_x=vx, val_y=vy, test_x=sx, test_y=sy,
                   num_classes=k, input_shape=(2, 4, 4))  # fmt: skip


# ---- CIFAR-100 -----------------------------------------------------------------------------------


def test_cifar100_missing_files_name_the_folder_and_the_fix(tmp_path):
    data = DataSettings(dataset="cifar100", root=str(tmp_path))
    expected = str(tmp_path.resolve() / "cifar-100-python")
    for attempt in (check_dataset, load_dataset):
        with pytest.raises(DatasetNotFound) as info:
            attempt(data)
        message = str(info.value)
        assert expected in message and "'cifar100'" in message
        assert "set `download = true` in [data], or copy the files there" in message


def write_fake_cifar100(root, n_train: int = 600, n_test: int = 200) -> None:
    """CIFAR-100's layout (python pickles of uint8 rows and fine/coarse labels), tiny."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, n in (("train", n_train), ("test", n_test)):
        entry = {
            "data": rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8),
            "fine_labels": [i % 100 for i in range(n)],
            "coarse_labels": [i % 20 for i in range(n)],
        }
        (folder / name).write_bytes(pickle.dumps(entry))
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": [str(i) for i in range(100)]}))


def test_cifar100_files_that_fail_their_checksum_are_reported_as_corrupted(tmp_path):
    write_fake_cifar100(tmp_path)
    with pytest.raises(DatasetNotFound, match="missing or corrupted"):
        load_dataset(DataSettings(dataset="cifar100", root=str(tmp_path)))


def test_cifar100_loads_fine_labels_as_100_classes(tmp_path, monkeypatch):
    import torchvision.datasets.cifar

    write_fake_cifar100(tmp_path)
    # torchvision pins the MD5 of the real 160 MB files; the layout is what is under test here.
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)
    data = DataSettings(dataset="cifar100", root=str(tmp_path), val_fraction=0.25)
    check_dataset(data)
    ds = load_dataset(data)
    assert ds.num_classes == 100 and ds.input_shape == (3, 32, 32)
    assert len(ds.train_y) == 450 and len(ds.val_y) == 150 and len(ds.test_y) == 200
    assert int(ds.train_y.max()) == 99 and len(ds.pixel_mean) == 3  # fine labels, not coarse
    with pytest.raises(DataError, match=r"`data.subset` must be an int in \[100, 450\]"):
        load_dataset(dataclasses.replace(data, subset=99))
    small = load_dataset(dataclasses.replace(data, subset=100))
    assert sorted(small.train_y.tolist()) == list(range(100))  # stratified: one per class


# ---- pixel statistics ----------------------------------------------------------------------------


def test_pixel_statistics_recover_the_images():
    ds = load_dataset(DIGITS)
    mean = torch.tensor(ds.pixel_mean)[:, None, None]
    std = torch.tensor(ds.pixel_std)[:, None, None]
    pixels = ds.train_x * std + mean
    assert pixels.min().item() == pytest.approx(0.0, abs=1e-5)
    assert pixels.max().item() == pytest.approx(1.0, abs=1e-5)
    # digits' pixel values are sixteenths: the recovered pixels are too
    assert torch.allclose(pixels * 16, (pixels * 16).round(), atol=1e-3)


# ---- label noise ---------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.2, 0.5, 1.0])
def test_label_noise_changes_the_expected_share_of_training_labels_only(p):
    ds, k = synthetic(), 10
    before = snapshot(ds)
    noisy = corrupt_dataset(ds, {"label_noise": p}, seed=0)
    assert_unchanged(ds, before)
    changed = (noisy.train_y != ds.train_y).float().mean().item()
    assert changed == pytest.approx(p * (1 - 1 / k), abs=0.015)  # ~4 standard errors
    assert noisy.val_y is ds.val_y and noisy.test_y is ds.test_y  # generalisation stays measured
    assert noisy.train_x is ds.train_x and noisy.val_x is ds.val_x


def test_random_labels_are_uniform_and_independent_of_the_true_ones():
    ds, k = synthetic(), 10
    labels = corrupt_dataset(ds, {"label_noise": 1.0}, seed=1).train_y
    counts = torch.bincount(labels, minlength=k).double()
    expected = len(labels) / k
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    assert chi2 < 27.9  # chi-square, 9 degrees of freedom, p = 0.001
    joint = torch.bincount(ds.train_y * k + labels, minlength=k * k).double().view(k, k)
    independent = joint.sum(1, keepdim=True) * joint.sum(0, keepdim=True) / len(labels)
    chi2 = ((joint - independent) ** 2 / independent).sum().item()
    assert chi2 < 124.1  # 81 degrees of freedom, p = 0.001


def test_label_noise_is_seeded_nested_and_bounded():
    ds = synthetic(n=2000)
    a = corrupt_dataset(ds, {"label_noise": 0.3}, seed=0).train_y
    assert torch.equal(a, corrupt_dataset(ds, {"label_noise": 0.3}, seed=0).train_y)
    assert not torch.equal(a, corrupt_dataset(ds, {"label_noise": 0.3}, seed=1).train_y)
    more = corrupt_dataset(ds, {"label_noise": 0.6}, seed=0).train_y
    assert bool(((a != ds.train_y) <= (more != ds.train_y)).all())  # corrupted sets nest
    assert corrupt_dataset(ds, {"label_noise": 0.0, "lr": 1.0}, seed=0) is ds
    for bad in (-0.1, 1.1):
        with pytest.raises(ValueError, match=r"`label_noise` must be a float in \[0, 1\]"):
            corrupt_dataset(ds, {"label_noise": bad}, seed=0)
    row = HYPERPARAMETERS["label_noise"]
    assert row.accepts(0.0) and row.accepts(1.0) and not row.accepts(1.01)
    assert row.default == 0.0


# ---- shuffled and random pixels ------------------------------------------------------------------


def test_shuffle_pixels_applies_one_permutation_to_every_image_of_every_split():
    ds = synthetic(n=500)
    before = snapshot(ds)
    shuffled = corrupt_dataset(ds, {"shuffle_pixels": True}, seed=0)
    assert_unchanged(ds, before)
    # Each image is its offset plus its pixel positions, so what is left is the permutation.
    perms = [
        (getattr(shuffled, f"{split}_x") - getattr(ds, f"{split}_x")[:, :, :1, :1]).flatten(2)
        for split in ("train", "val", "test")
    ]
    first = perms[0][0, 0]
    assert sorted(first.tolist()) == list(range(16)) and not torch.equal(first, torch.arange(16.0))
    assert all(bool((perm == first).all()) for perm in perms)  # every image, channel and split
    assert shuffled.train_y is ds.train_y
    again = corrupt_dataset(ds, {"shuffle_pixels": True}, seed=0)
    assert torch.equal(again.train_x, shuffled.train_x)


def test_random_pixels_replace_every_image_with_matched_gaussian_noise():
    ds = load_dataset(DIGITS)
    before = snapshot(ds)
    noisy = corrupt_dataset(ds, {"random_pixels": True}, seed=0)
    assert_unchanged(ds, before)
    for split in ("train", "val", "test"):
        x, original = getattr(noisy, f"{split}_x"), getattr(ds, f"{split}_x")
        assert x.shape == original.shape and x.dtype == original.dtype
        assert x.mean().item() == pytest.approx(ds.train_x.mean().item(), abs=0.02)
        assert x.std().item() == pytest.approx(ds.train_x.std().item(), rel=0.02)
        correlation = torch.corrcoef(torch.stack([x.flatten(), original.flatten()]))[0, 1]
        assert abs(correlation.item()) < 0.02
    assert noisy.train_y is ds.train_y and noisy.val_y is ds.val_y
    assert torch.equal(noisy.val_x, corrupt_dataset(ds, {"random_pixels": True}, seed=0).val_x)


# ---- end to end: a trial trains on the corrupted data --------------------------------------------

MLP = ModelSettings(kind="mlp", hidden=(128,))


def train(params: dict, epochs: int = 25):
    settings = FitSettings(max_epochs=epochs, device="cpu", seed=0)
    return fit(DataSettings(dataset="digits", subset=300), MLP, {"lr": 3e-3, **params}, settings)


def test_a_network_memorises_random_labels_but_does_not_generalise():
    clean, noisy = train({}), train({"label_noise": 1.0})
    assert clean.history[-1].val_acc > 0.85
    assert noisy.history[-1].train_acc > noisy.history[0].train_acc + 0.15  # fits the noise
    assert noisy.history[-1].val_acc < 0.25  # chance is 0.1
    assert load_dataset(DataSettings(dataset="digits", subset=300)).val_y.numel() > 0


def test_an_mlp_ignores_shuffled_pixels_and_learns_nothing_from_random_ones():
    # An MLP has no notion of neighbouring pixels: one fixed shuffle loses nothing it uses.
    shuffled = train({"shuffle_pixels": True}, epochs=10)
    assert shuffled.history[-1].val_acc > 0.8
    random = train({"random_pixels": True}, epochs=10)
    assert random.history[-1].val_acc < 0.25


def write_fake_idx(folder, n_train: int = 200, n_test: int = 50, seed: int = 0) -> None:
    """MNIST's four IDX files (big-endian header, then unsigned bytes) with random content."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        header = np.array([2051, n, 28, 28], dtype=">u4").tobytes()
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(header + images.tobytes())
        header = np.array([2049, n], dtype=">u4").tobytes()
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(header + labels.tobytes())


@pytest.mark.parametrize(
    ("dataset", "folder"), [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")]
)
def test_idx_files_are_read_as_torchvision_reads_them(tmp_path, dataset, folder):
    import torchvision

    write_fake_idx(tmp_path / folder / "raw")
    data = DataSettings(dataset=dataset, root=str(tmp_path), val_fraction=0.25, split_seed=3)
    ds = load_dataset(data)
    # The same splits and pixels as through torchvision's own reader.
    cls = getattr(
        torchvision.datasets, {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}[dataset]
    )
    train, test = cls(str(tmp_path), train=True), cls(str(tmp_path), train=False)
    pixels = torch.from_numpy(test.data.numpy()[:, None] / 255.0).float()
    assert torch.allclose(ds.test_x * ds.pixel_std[0] + ds.pixel_mean[0], pixels, atol=1e-5)
    assert torch.equal(ds.test_y, test.targets)
    assert len(ds.train_y) + len(ds.val_y) == len(train.targets) == 200
    assert sorted(torch.cat([ds.train_y, ds.val_y]).tolist()) == sorted(train.targets.tolist())


def test_a_truncated_idx_file_is_named_in_the_error(tmp_path):
    write_fake_idx(tmp_path / "MNIST" / "raw")
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(
        DataError,
        match=r"train-images-idx3-ubyte could not be read \(not a complete IDX file: 1000 bytes\)",
    ):
        load_dataset(DataSettings(dataset="mnist", root=str(tmp_path)))
    path.write_bytes(b"\x00\x00")  # shorter than its header
    with pytest.raises(DataError, match="not a complete IDX file"):
        load_dataset(DataSettings(dataset="mnist", root=str(tmp_path), split_seed=1))
