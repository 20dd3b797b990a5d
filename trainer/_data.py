"""Datasets as normalised tensors on the training device, split once and cached per process.

Every dataset becomes six tensors: images ``(N, C, H, W)`` as float32 normalised by the training
split's per-channel mean and std, and int64 labels, for the train, validation and test splits. The
trainer slices batches out of these directly, so there is no ``DataLoader`` and no per-sample work.

Splits are stratified by class and seeded by ``DataSettings.split_seed`` (not the trial seed), so
every trial of a study trains and validates on exactly the same examples.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sweeplab.trainer._epochs import EVAL_BATCH_SIZE, batch_starts
from sweeplab.trainer._errors import DataError, DatasetNotFound
from sweeplab.trainer._own_data import Streams, check_data
from sweeplab.trainer._settings import DataSettings

# scikit-learn's digits ship without a test split; this share of them is held out as one.
DIGITS_TEST_FRACTION = 0.2

# Datasets loaded per process. A Ray worker process runs many trials in turn; this keeps it from
# re-reading and re-normalising the same files (and re-copying them to the GPU) for each one.
_CACHE_SIZE = 4


@dataclass(frozen=True, kw_only=True, eq=False)
class Dataset:
    """The three splits of a dataset as tensors on one device.

    Images are float32 ``(N, C, H, W)``, normalised with the per-channel mean and standard deviation
    of the training split (after ``subset``); labels are int64 class indices.

    Attributes:
        pixel_mean, pixel_std: the per-channel statistics the images were normalised with, in
            pixel intensities in [0, 1]; ``pixels = x * pixel_std + pixel_mean`` recovers the
            images (colour augmentation needs them).
        loss: a user's data set's own loss, ``loss(output, target)``; ``None``: cross-entropy
            over ``num_classes`` classes, accuracy measured too.
        has_test: ``False`` for a user's data set without a test split (no test metrics).

    Example:
        >>> from sweeplab.trainer import DataSettings, load_dataset
        >>> ds = load_dataset(DataSettings(dataset="digits"))
        >>> ds.input_shape, ds.num_classes
        ((1, 8, 8), 10)
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    input_shape: tuple[int, ...]
    pixel_mean: tuple[float, ...] = (0.0,)
    pixel_std: tuple[float, ...] = (1.0,)
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    has_test: bool = True

    @property
    def classifies(self) -> bool:
        """Class labels and cross-entropy (accuracy measured), not a loss of the user's."""
        return self.loss is None

    @property
    def n_train(self) -> int:
        return len(self.train_y)

    def steps(self, batch_size: int) -> int:
        """Optimizer steps per epoch."""
        return len(batch_starts(self.n_train, batch_size))

    def epoch_order(self, generator: torch.Generator) -> torch.Tensor:
        """One epoch's order of the training examples, drawn from ``generator``."""
        return torch.randperm(self.n_train, generator=generator, device=self.train_y.device)

    def train_batches(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        *,
        order: torch.Tensor | None = None,
        start: int = 0,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch's training batches, shuffled by ``generator`` (or in a given ``order``, from
        :meth:`epoch_order`), from batch ``start`` on: index slices on the device."""
        if order is None:
            order = self.epoch_order(generator)
        for first in batch_starts(self.n_train, batch_size)[start:]:
            idx = order[first : first + batch_size]
            # index_select, not ``x[idx]``: advanced indexing's general path costs about twice
            # as much on a CPU (~100 us for a batch of 64 MNIST images), the same rows either way.
            yield self.train_x.index_select(0, idx), self.train_y.index_select(0, idx)

    def eval_batches(self, split: str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """A split (``train``, ``val``, ``test``) in evaluation batches, in order."""
        x, y = {"train": (self.train_x, self.train_y), "val": (self.val_x, self.val_y),
                "test": (self.test_x, self.test_y)}[split]  # fmt: skip
        for start in range(0, len(y), EVAL_BATCH_SIZE):
            yield x[start : start + EVAL_BATCH_SIZE], y[start : start + EVAL_BATCH_SIZE]


@dataclass(frozen=True)
class _TorchvisionSource:
    """Where torchvision keeps one dataset under ``root`` and which files it needs there."""

    class_name: str
    folder: str
    files: tuple[str, ...]


_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_TORCHVISION: dict[str, _TorchvisionSource] = {
    "mnist": _TorchvisionSource("MNIST", "MNIST/raw", _MNIST_FILES),
    "fashion_mnist": _TorchvisionSource("FashionMNIST", "FashionMNIST/raw", _MNIST_FILES),
    "cifar10": _TorchvisionSource(
        "CIFAR10",
        "cifar-10-batches-py",
        (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"),
    ),
    # The 100 fine labels (torchvision's ``targets``), not the 20 superclasses.
    "cifar100": _TorchvisionSource("CIFAR100", "cifar-100-python", ("train", "test", "meta")),
}
#: Examples of each dataset's training set (digits: all of it, before its test split).
_TRAIN_EXAMPLES = {
    "digits": 1797, "mnist": 60000, "fashion_mnist": 60000, "cifar10": 50000, "cifar100": 50000
}  # fmt: skip
_NUM_CLASSES = {"digits": 10, "mnist": 10, "fashion_mnist": 10, "cifar10": 10, "cifar100": 100}
_INPUT_SHAPES = {
    "digits": (1, 8, 8),
    "mnist": (1, 28, 28),
    "fashion_mnist": (1, 28, 28),
    "cifar10": (3, 32, 32),
    "cifar100": (3, 32, 32),
}


def dataset_shape(data: DataSettings) -> tuple[tuple[int, int, int], int]:
    """``(input_shape, num_classes)`` of a built-in dataset, without loading it.

    Example:
        >>> dataset_shape(DataSettings(dataset="cifar100"))
        ((3, 32, 32), 100)
    """
    return _INPUT_SHAPES[data.dataset], _NUM_CLASSES[data.dataset]


def load_dataset(data: DataSettings, device: torch.device | str = "cpu") -> Dataset | Streams:
    """Load, split and normalise a dataset, once per process for each settings and device.

    Args:
        data: which dataset and how to split it.
        device: where the tensors live (``"cpu"``, ``"cuda"``, a ``torch.device``).

    Returns:
        The cached :class:`Dataset`; callers must not modify its tensors in place.

    Raises:
        DatasetNotFound: the dataset's files are missing and ``download`` is off, or the download
            failed.
        DataError: the split cannot be made (e.g. ``subset`` larger than the training split).

    Example:
        >>> from sweeplab.trainer import DataSettings, load_dataset
        >>> ds = load_dataset(DataSettings(dataset="digits", subset=500))
        >>> tuple(ds.train_x.shape)
        (500, 1, 8, 8)
    """
    return _load_cached(data, str(torch.device(device)))


def check_dataset(data: DataSettings) -> None:
    """Fail fast, without reading any data, when a dataset's files are not where ``data`` says.

    A no-op for ``digits`` (bundled with scikit-learn) and when ``download`` is on.

    Raises:
        DatasetNotFound: naming the dataset, the folder it was expected in, and the fix.
        DataError: an unknown dataset name.
    """
    if data.dataset not in _TORCHVISION and data.dataset != "digits":
        raise DataError(f"unknown dataset {data.dataset!r}; known: {[*_TORCHVISION, 'digits']}")
    if data.subset is not None:
        # Without reading the data: the training split holds at most this many examples (the
        # exact count, after the stratified validation split, is checked when it is loaded).
        total = _TRAIN_EXAMPLES[data.dataset]
        if data.dataset == "digits":
            total = math.ceil(total * (1.0 - DIGITS_TEST_FRACTION))
        most = math.ceil(total * (1.0 - data.val_fraction))
        if data.subset > most:
            raise DataError(
                f"`data.subset` must be at most {most} for {data.dataset!r} (its training split "
                f"after holding out validation data); got {data.subset}"
            )
    if data.dataset == "digits" or data.download:
        return
    folder = _expected_folder(data)
    missing = [name for name in _TORCHVISION[data.dataset].files if not (folder / name).is_file()]
    if missing:
        raise DatasetNotFound(
            f"dataset {data.dataset!r} not found: expected its files in {folder} "
            f"(missing {', '.join(missing)}); set `download = true` in [data], "
            f"or copy the files there"
        )


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _load_cached(data: DataSettings, device: str) -> Dataset | Streams:
    if data.factory is not None:
        return _own(data, torch.device(device))
    check_dataset(data)
    if data.dataset == "digits":
        images, labels, test_images, test_labels = _digits(data.split_seed)
    else:
        images, labels, test_images, test_labels = _torchvision(data)

    train_idx, val_idx = _stratified_split(
        np.arange(len(labels)), labels, data.val_fraction, data.split_seed, "the validation split"
    )
    if data.subset is not None:
        low, high = _NUM_CLASSES[data.dataset], len(train_idx)
        if not low <= data.subset <= high:
            raise DataError(
                f"`data.subset` must be an int in [{low}, {high}] for {data.dataset!r} (one "
                f"example per class at least, its training split after holding out validation "
                f"data at most); got {data.subset}"
            )
        if data.subset < high:
            train_idx, _ = _stratified_split(
                train_idx,
                labels[train_idx],
                len(train_idx) - data.subset,
                data.split_seed,
                "the training subset",
            )

    # Normalise by the statistics of the examples actually trained on, so no validation or test
    # pixel leaks into the inputs.
    train_x = _to_float(images[train_idx])
    mean = train_x.mean(dim=(0, 2, 3), keepdim=True)
    std = train_x.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-8)

    def prepare(x: np.ndarray | torch.Tensor, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = x if isinstance(x, torch.Tensor) else _to_float(x)
        return ((x - mean) / std).to(device), torch.as_tensor(y, dtype=torch.int64).to(device)

    train = prepare(train_x, labels[train_idx])
    val = prepare(images[val_idx], labels[val_idx])
    test = prepare(test_images, test_labels)
    return Dataset(
        train_x=train[0],
        train_y=train[1],
        val_x=val[0],
        val_y=val[1],
        test_x=test[0],
        test_y=test[1],
        num_classes=_NUM_CLASSES[data.dataset],
        input_shape=tuple(train[0].shape[1:]),
        pixel_mean=tuple(mean.flatten().tolist()),
        pixel_std=tuple(std.flatten().tolist()),
    )


def load_own_data(factory: Callable[[], Any]) -> Any:
    """Call a user's data factory and check what it returned (see :func:`check_data`)."""
    return check_data(factory())


def _own(data: DataSettings, device: torch.device) -> Dataset | Streams:
    """A user's data set on ``device``: tensors moved there once, Datasets read as streams."""
    own = load_own_data(data.factory)
    splits = (own.train, own.val, own.test)
    if any(isinstance(s, torch.utils.data.Dataset) for s in splits):
        return Streams(own, device, data.num_workers)
    test = own.test if own.test is not None else (own.val[0][:0], own.val[1][:0])
    (train_x, train_y), (val_x, val_y), (test_x, test_y) = [
        (x.to(device), y.to(device)) for x, y in (own.train, own.val, test)
    ]
    return Dataset(
        train_x=train_x,
        train_y=train_y,
        val_x=val_x,
        val_y=val_y,
        test_x=test_x,
        test_y=test_y,
        num_classes=own.num_classes,
        input_shape=tuple(own.input_shape),
        loss=own.loss,
        has_test=own.test is not None,
    )


# ---- corruption for generalisation studies -------------------------------------------------------


def corrupt_dataset(ds: Dataset, params: Mapping[str, Any], seed: int) -> Dataset:
    """Corrupt training labels or all images for a generalisation study; returns a new dataset.

    The corruptions of "Understanding deep learning requires rethinking generalization" (Zhang et
    al., 2017). ``ds`` is never modified (it is the per-process cached copy); the result shares
    every tensor that is not corrupted. Three corruptions, each on its own random stream of
    ``seed``, so switching one on does not change another's draws:

    - ``label_noise = p``: each training label, independently with probability ``p``, becomes a
      uniformly random class — possibly its own, so about ``p * (1 - 1/K)`` of them change (the
      paper's "partially corrupted labels"; ``p = 1`` is "random labels"). For one seed the
      corrupted examples at a smaller ``p`` are a subset of those at a larger one. Validation and
      test labels stay clean: they measure how well the corrupted training generalises.
    - ``shuffle_pixels``: one random permutation of the ``H * W`` pixel positions (channels move
      together), applied to every image of every split ("shuffled pixels").
    - ``random_pixels``: every image of every split replaced by independent Gaussian pixels with
      the training split's per-channel mean and std ("random pixels"); labels untouched. Drawn on
      the data's device, so the noise is reproducible per device type.

    Args:
        ds: the dataset from :func:`load_dataset`.
        params: reads ``label_noise``, ``shuffle_pixels`` and ``random_pixels`` (catalog
            defaults: none of them); other keys are ignored.
        seed: the data split seed (``DataSettings.split_seed``), so every trial of a study sees the
            same corruption.

    Returns:
        ``ds`` itself when nothing is switched on, else a new dataset.

    Raises:
        ValueError: ``label_noise`` outside [0, 1].

    Example:
        >>> from sweeplab.trainer import DataSettings, load_dataset
        >>> ds = load_dataset(DataSettings(dataset="digits"))
        >>> noisy = corrupt_dataset(ds, {"label_noise": 1.0}, seed=0)
        >>> noisy.val_y is ds.val_y, bool((noisy.train_y != ds.train_y).float().mean() > 0.8)
        (True, True)
    """
    label_noise = float(params.get("label_noise", 0.0))
    shuffle = bool(params.get("shuffle_pixels", False))
    random = bool(params.get("random_pixels", False))
    if not 0.0 <= label_noise <= 1.0:
        raise ValueError(f"`label_noise` must be a float in [0, 1]; got {label_noise}")
    if label_noise == 0.0 and not shuffle and not random:
        return ds
    if not isinstance(ds, Dataset) or not ds.classifies or len(ds.input_shape) != 3:
        raise ValueError(
            "label_noise, shuffle_pixels and random_pixels corrupt images with class labels "
            "held as tensors; this data set is not one"
        )
    label_stream, shuffle_stream, pixel_stream = np.random.SeedSequence(seed).spawn(3)
    changes: dict[str, torch.Tensor] = {}
    if label_noise > 0.0:
        rng = np.random.default_rng(label_stream)
        n = len(ds.train_y)
        # Both draws for every example whatever p is: that is what nests the corrupted sets.
        corrupted = rng.random(n) < label_noise
        random_labels = rng.integers(0, ds.num_classes, n)
        labels = ds.train_y.cpu().numpy().copy()
        labels[corrupted] = random_labels[corrupted]
        changes["train_y"] = torch.as_tensor(labels).to(ds.train_y.device)
    splits = ("train_x", "val_x", "test_x")
    if random:
        x = ds.train_x
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        std = x.std(dim=(0, 2, 3), keepdim=True)
        g = torch.Generator(device=x.device).manual_seed(int(pixel_stream.generate_state(1)[0]))
        for name in splits:
            shape = getattr(ds, name).shape
            noise = torch.randn(shape, generator=g, device=x.device, dtype=x.dtype)
            changes[name] = noise * std + mean
    elif shuffle:  # random pixels carry no positions to shuffle
        _, _, h, w = ds.train_x.shape
        perm = torch.as_tensor(np.random.default_rng(shuffle_stream).permutation(h * w))
        perm = perm.to(ds.train_x.device)
        for name in splits:
            x = getattr(ds, name)
            changes[name] = x.flatten(2)[:, :, perm].view_as(x)
    return dataclasses.replace(ds, **changes)


# ---- sources: each returns (train images, train labels, test images, test labels) -------------
# Images are uint8 or float arrays shaped (N, C, H, W); labels are int arrays.


def _digits(split_seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images[:, None].astype(np.float32) / 16.0  # pixel values are 0..16
    labels = bunch.target.astype(np.int64)
    rest, test = _stratified_split(
        np.arange(len(labels)), labels, DIGITS_TEST_FRACTION, split_seed, "the digits test split"
    )
    return images[rest], labels[rest], images[test], labels[test]


def _torchvision(data: DataSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if data.dataset in _IDX_DATASETS:
        arrays = _read_idx_files(_expected_folder(data))
        if arrays is not None:
            return arrays
    import torchvision  # ~1.3 s to import: only for CIFAR, downloads and missing files

    source = _TORCHVISION[data.dataset]
    cls = getattr(torchvision.datasets, source.class_name)
    arrays = []
    for train in (True, False):
        split = _open_split(cls, data, train)
        images = np.asarray(split.data)
        # MNIST-style data is (N, H, W); CIFAR is (N, H, W, C).
        images = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
        arrays += [np.ascontiguousarray(images), np.asarray(split.targets, dtype=np.int64)]
    return arrays[0], arrays[1], arrays[2], arrays[3]


def _open_split(cls: type, data: DataSettings, train: bool) -> Any:
    """One split of a torchvision dataset, its failures turned into messages that say what to do.

    Torchvision's own messages name neither the folder nor the spec setting to change; they stay
    on the chained exception for debugging.
    """
    folder = _expected_folder(data)
    try:
        return cls(data.root, train=train, download=data.download)
    except (RuntimeError, OSError) as e:  # torchvision's "not found", or a failed download
        if data.download:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DatasetNotFound(
                f"dataset {data.dataset!r} could not be downloaded into {folder} ({reason}); "
                f"check the network, or copy the files there and set `download = false`"
            ) from e
        raise DatasetNotFound(
            f"dataset {data.dataset!r} is missing or corrupted: expected its files in "
            f"{folder}; set `download = true` in [data], or copy the files there"
        ) from e
    except Exception as e:  # present but unreadable: torchvision asserts on a bad header
        raise DataError(
            f"dataset {data.dataset!r}: the files in {folder} could not be read "
            f"({type(e).__name__}), so they are probably truncated or corrupted; delete them and "
            f"set `download = true` in [data], or copy intact files there"
        ) from e


# The IDX magic numbers: unsigned bytes, 3 dimensions (images) or 1 (labels).
_IDX_MAGIC = {3: 2051, 1: 2049}
_IDX_DATASETS = ("mnist", "fashion_mnist")


def _read_idx_files(folder: Path) -> tuple[np.ndarray, ...] | None:
    """MNIST-style IDX files read straight into arrays, as torchvision would return them.

    ``None`` when any of the four files is absent (torchvision then downloads them or says what
    is missing). Reading them here skips importing torchvision in every worker process.
    """
    paths = [folder / name for name in _MNIST_FILES]
    if not all(p.is_file() for p in paths):
        return None
    arrays = []
    for path, ndim in zip(paths, (3, 1, 3, 1), strict=True):
        raw = np.fromfile(path, dtype=np.uint8)
        header = 4 + 4 * ndim
        dims = raw[:header].view(">u4").astype(np.int64) if len(raw) >= header else None
        if dims is None or dims[0] != _IDX_MAGIC[ndim] or len(raw) != header + dims[1:].prod():
            raise DataError(
                f"dataset file {path} could not be read (not a complete IDX file: {len(raw)} "
                f"bytes), so it is probably truncated or corrupted; delete it and set "
                f"`download = true` in [data], or copy an intact file there"
            )
        values = raw[header:].reshape(dims[1:])
        arrays.append(values if ndim == 3 else values.astype(np.int64))
    arrays[0], arrays[2] = arrays[0][:, None], arrays[2][:, None]  # (N, 1, H, W)
    return tuple(arrays)


# ---- helpers ------------------------------------------------------------------------------------


def _expected_folder(data: DataSettings) -> Path:
    return Path(data.root).expanduser().resolve() / _TORCHVISION[data.dataset].folder


def _to_float(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(images))
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


def _stratified_split(
    idx: np.ndarray, labels: np.ndarray, held_out: float | int, seed: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``idx`` into (kept, held out), stratified; ``held_out`` is sklearn's ``test_size``."""
    # Imported here: ~1 s, which every `sweeplab` command and driver would pay without loading data.
    from sklearn.model_selection import train_test_split

    try:
        kept, out = train_test_split(idx, test_size=held_out, stratify=labels, random_state=seed)
    except ValueError as e:
        raise DataError(f"cannot make {what}: {e}") from e
    # Sorted so batches never depend on the order train_test_split happens to return.
    return np.sort(kept), np.sort(out)
