"""A user's own data set, trained on by sweeplab's loop: ``load() -> Data``.

Splits come as tensors ``(x, y)`` or as ``torch.utils.data.Dataset`` objects:

- **tensors** are moved to the trial's device once per worker process and kept there, like the
  built-in datasets (:class:`~sweeplab.trainer._data.Dataset`): batches are index slices, no
  ``DataLoader``, no per-example work;
- a **Dataset** (one too big for memory, or one that decodes files) is read through a
  ``DataLoader`` each epoch (``num_workers`` processes; shuffled from the trial's seed), its
  batches moved to the device as they come (:class:`Streams`).

The task is the loss's: with ``loss = None`` the network's outputs are logits over
``num_classes`` classes and the loop measures cross-entropy and accuracy (label smoothing,
label noise apply); with a loss of the user's (``torch.nn.functional.mse_loss`` for a
regression), ``num_classes`` is the width of the network's output and the loop measures that
loss only (there is no accuracy).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import RandomSampler, Sampler, TensorDataset

from sweeplab.trainer._epochs import EVAL_BATCH_SIZE, batch_starts

Split = Any  # tuple[torch.Tensor, torch.Tensor] | torch.utils.data.Dataset


@dataclass(frozen=True, kw_only=True, eq=False)
class Data:
    """A data set of the user's own: what ``[data] factory`` returns.

    Attributes:
        train, val: the training and validation splits, each ``(x, y)`` tensors (the first axis
            the example) or a ``torch.utils.data.Dataset`` of ``(x, y)`` pairs.
        test: the test split, measured once at the end of a trial; ``None``: no test metrics.
        num_classes: the width of the network's output (the classes, for a classification).
        input_shape: the shape of one example's ``x``; ``None``: read off the first example.
        loss: ``loss(output, target) -> scalar tensor`` (a batch mean), e.g.
            ``torch.nn.functional.mse_loss``; ``None``: cross-entropy on class labels, with
            accuracy measured too.

    Example:
        >>> import torch
        >>> x, y = torch.randn(100, 4), torch.randint(0, 3, (100,))
        >>> data = Data(train=(x[:60], y[:60]), val=(x[60:80], y[60:80]),
        ...             test=(x[80:], y[80:]), num_classes=3)
        >>> check_data(data).input_shape
        (4,)
    """

    train: Split
    val: Split
    test: Split | None = None
    num_classes: int
    input_shape: tuple[int, ...] | None = None
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None


def _is_dataset(split: Any) -> bool:
    return isinstance(split, torch.utils.data.Dataset) and not isinstance(split, tuple)


def _first_x(split: Split) -> torch.Tensor:
    # A Dataset's first (x, y) pair's x, or the first row of x: split[0][0] either way.
    return torch.as_tensor(split[0][0])


def check_data(data: Any) -> Data:
    """Check what a data factory returned; fill ``input_shape`` in.

    Raises:
        TypeError: not a :class:`Data`, or a split that is neither ``(x, y)`` tensors nor a
            ``torch.utils.data.Dataset``.
        ValueError: splits of mismatched lengths or shapes, class labels outside
            ``[0, num_classes)``, a ``num_classes`` below 1.
    """
    import dataclasses

    if not isinstance(data, Data):
        raise TypeError(f"returned {type(data).__name__}, not a sweeplab.trainer.Data")
    if isinstance(data.num_classes, bool) or not isinstance(data.num_classes, int):
        raise TypeError(f"num_classes must be an int; got {data.num_classes!r}")
    if data.num_classes < 1:
        raise ValueError(f"num_classes must be >= 1; got {data.num_classes}")
    splits = {"train": data.train, "val": data.val, "test": data.test}
    shape = None if data.input_shape is None else tuple(data.input_shape)
    for name, split in splits.items():
        if split is None:
            if name != "test":
                raise TypeError(f"the {name} split is missing")
            continue
        if _is_dataset(split):
            if len(split) == 0:
                raise ValueError(f"the {name} split (a Dataset) is empty")
        else:
            if not (isinstance(split, (tuple, list)) and len(split) == 2):
                raise TypeError(
                    f"the {name} split must be (x, y) tensors or a torch.utils.data.Dataset; "
                    f"got {type(split).__name__}"
                )
            x, y = split
            if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)):
                raise TypeError(f"the {name} split's x and y must be torch tensors")
            if len(x) != len(y) or len(x) == 0:
                raise ValueError(
                    f"the {name} split has {len(x)} inputs and {len(y)} targets; they must "
                    "match, and be at least one"
                )
            if data.loss is None:
                if y.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
                    raise ValueError(
                        f"the {name} split's targets are {y.dtype}: class labels must be "
                        "integers (or give a loss of your own, e.g. "
                        "torch.nn.functional.mse_loss)"
                    )
                if y.min() < 0 or y.max() >= data.num_classes:
                    raise ValueError(
                        f"the {name} split's labels run from {int(y.min())} to {int(y.max())}; "
                        f"they must lie in [0, num_classes = {data.num_classes})"
                    )
        first = tuple(_first_x(split).shape)
        if shape is None:
            shape = first
        elif first != shape:
            raise ValueError(
                f"the {name} split's examples have shape {first}; expected {shape} "
                "(input_shape, or the training split's)"
            )
    return dataclasses.replace(data, input_shape=shape)


class Streams:
    """The splits of a :class:`Data` given as Datasets, read through DataLoaders.

    It offers what the training loop asks of any data set (``train_batches``, ``eval_batches``,
    ``steps``, ``n_train``, ``classifies``...); batches are moved to ``device`` as they come.
    """

    pixel_mean = (0.0,)
    pixel_std = (1.0,)

    def __init__(self, data: Data, device: torch.device, num_workers: int) -> None:
        self.device, self.num_workers = device, num_workers
        # Splits given as tensors are read through the same loaders.
        self.splits = {
            name: split if split is None or _is_dataset(split) else TensorDataset(*split)
            for name, split in (("train", data.train), ("val", data.val), ("test", data.test))
        }
        self.num_classes = data.num_classes
        self.input_shape = data.input_shape
        self.loss = data.loss
        self.has_test = data.test is not None

    @property
    def classifies(self) -> bool:
        return self.loss is None

    @property
    def n_train(self) -> int:
        return len(self.splits["train"])

    def steps(self, batch_size: int) -> int:
        return len(batch_starts(self.n_train, batch_size))

    def _loader(
        self,
        split: Any,
        batch_size: int,
        generator: torch.Generator | None,
        skip: int = 0,
    ) -> Any:
        # The sampler DataLoader(shuffle=True) builds, made here so that it can start past the
        # first ``skip`` examples; the loader draws its workers' seed from ``generator`` first,
        # then the sampler its permutation, as with ``shuffle=True``.
        sampler = None if generator is None else RandomSampler(split, generator=generator)
        if sampler is not None and skip:
            sampler = _Skipping(sampler, skip)
        return torch.utils.data.DataLoader(
            split,
            batch_size=batch_size,
            sampler=sampler,
            generator=generator,
            num_workers=self.num_workers,
            pin_memory=self.device.type == "cuda",
        )

    def epoch_order(self, generator: torch.Generator) -> torch.Tensor:
        """One epoch's order: the seed of the DataLoader's shuffle, drawn from ``generator``."""
        # The DataLoader shuffles on the CPU; its seed is drawn from the trial's generator, so
        # the order follows the trial's seed as the tensor path's does.
        return torch.randint(2**62, (1,), generator=generator, device=generator.device)

    def train_batches(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        *,
        order: torch.Tensor | None = None,
        start: int = 0,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch's training batches, shuffled by ``generator`` (or by the seed ``order``
        from :meth:`epoch_order`), from batch ``start`` on.

        Resuming at ``start``: without workers the sampler skips the earlier batches' examples,
        which are never read (a read may draw from torch's global generator, which the
        checkpoint restored past them). With workers the earlier batches are read again and
        dropped: each worker's random state (seeded per epoch) then advances as it did, so the
        later batches' random transforms repeat too.
        """
        if order is None:
            order = self.epoch_order(generator)
        shuffle = torch.Generator().manual_seed(int(order))
        skipped = start if self.num_workers == 0 else 0
        loader = self._loader(self.splits["train"], batch_size, shuffle, skipped * batch_size)
        last = self.steps(batch_size)
        for step, (x, y) in enumerate(loader, start=skipped):
            if step == last:  # a trailing batch of one example (see batch_starts)
                break
            if step < start:
                continue
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def eval_batches(self, split: str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.splits[split] is None:
            return
        for x, y in self._loader(self.splits[split], EVAL_BATCH_SIZE, None):
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)


class _Skipping(Sampler[int]):
    """A sampler's indices after its first ``skip`` (an epoch entered midway)."""

    def __init__(self, sampler: Sampler[int], skip: int) -> None:
        self.sampler, self.skip = sampler, skip

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(iter(self.sampler), self.skip, None)

    def __len__(self) -> int:
        return max(len(self.sampler) - self.skip, 0)
