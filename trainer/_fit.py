"""One training run: the loop every trial executes, written to be read top to bottom.

The layout follows airbench (Jordan, 2024): settings, data, network, optimizer, then the epoch
loop — train, evaluate, track the best epoch, decide whether to stop, report. Everything the loop
touches per step stays on the device; the host reads numbers back once per epoch. The best epoch,
the stop decision and the reports are :class:`~trainer._epochs.EpochTracker`'s, the bookkeeping
:func:`~trainer.fit_packed` keeps for each member of a pack.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sweeplab.trainer._augment import Augmenter
from sweeplab.trainer._catalog import resolve_params
from sweeplab.trainer._data import corrupt_dataset, load_dataset
from sweeplab.trainer._epochs import EpochReport, EpochTracker, FitResult, fit_result
from sweeplab.trainer._errors import Diverged
from sweeplab.trainer._models import build_model
from sweeplab.trainer._optim import LrSchedule, build_optimizer
from sweeplab.trainer._penalties import l1_penalty, max_norm_, weight_tensors
from sweeplab.trainer._settings import DataSettings, FitSettings, ModelSettings


def fit(
    data: DataSettings,
    model: ModelSettings,
    params: Mapping[str, Any],
    settings: FitSettings,
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> FitResult:
    """Train one network on one dataset with one set of hyperparameters.

    Args:
        data: the dataset and its split (loaded once per process, see :func:`load_dataset`).
        model: the network.
        params: the trial's sampled hyperparameters (catalog names); the rest take their catalog
            defaults. ``activation`` overrides ``model.activation`` only when sampled.
        settings: epochs, objective, early stopping, seed, device, threads.
        on_epoch: called with each epoch's report, after the stop decision and (on the last
            epoch) the test evaluation. May raise or never return (Ray stopping the trial); the
            run's device memory is freed either way.

    Returns:
        The run's history, best epoch and test metrics.

    Raises:
        Diverged: the mean training loss of an epoch was not finite.
        DatasetNotFound: the dataset's files are missing.
        KeyError: a hyperparameter the catalog does not know.

    Example:
        >>> from sweeplab.trainer import DataSettings, FitSettings, ModelSettings, fit
        >>> result = fit(DataSettings(dataset="digits"), ModelSettings(kind="mlp", hidden=(64,)),
        ...              {"lr": 3e-3}, FitSettings(max_epochs=3, device="cpu"))
        >>> result.epochs_run, result.test_acc > 0.8
        (3, True)
    """
    if settings.max_epochs < 1:
        raise ValueError(f"`max_epochs` must be an int >= 1; got {settings.max_epochs}")
    started = time.perf_counter()
    net = optimizer = schedule = best_state = batch = logits = loss = loss_b = penalised = None
    trainable: list[torch.Tensor] = []
    weights: list[torch.Tensor] = []
    try:
        # ---- settings --------------------------------------------------------------------------
        hp = resolve_params(dict(params), own=model.factory is not None)
        hp["activation"] = params.get("activation", model.activation)
        device = resolve_device(settings.device)
        if settings.num_threads is not None:
            torch.set_num_threads(settings.num_threads)
        torch.manual_seed(settings.seed)  # init and dropout; shuffling and augmentation below

        # ---- data ------------------------------------------------------------------------------
        # The cached dataset is shared by every trial of this process; corruption makes a copy.
        ds = corrupt_dataset(load_dataset(data, device), hp, seed=data.split_seed)
        batch_size = int(hp["batch_size"])
        augment = Augmenter.from_params(
            hp, seed=settings.seed, device=device, mean=ds.pixel_mean, std=ds.pixel_std
        )

        # ---- network and optimizer -------------------------------------------------------------
        net = build_model(model, hp, ds.input_shape, ds.num_classes).to(device)
        on_gpu = device.type == "cuda"
        if on_gpu and model.kind != "mlp" and model.factory is None:
            net = net.to(memory_format=torch.channels_last)
        if settings.compile:
            net = torch.compile(net)  # the wrapper shares its parameters with the eager module
        optimizer = build_optimizer(net, hp)
        schedule = LrSchedule(
            optimizer, hp, max_epochs=settings.max_epochs, steps_per_epoch=ds.steps(batch_size)
        )
        # Penalties and clipping on the trainable tensors; each costs nothing when it is 0.
        trainable = [p for p in net.parameters() if p.requires_grad]
        weights = weight_tensors(net)
        l1, max_norm, grad_clip = float(hp["l1"]), float(hp["max_norm"]), float(hp["grad_clip"])

        def autocast() -> contextlib.AbstractContextManager:
            # bf16 matmuls on GPU roughly double throughput; CPU runs stay in float32 so that
            # tests and small sweeps are exact and reproducible.
            return torch.autocast("cuda", dtype=torch.bfloat16, enabled=on_gpu)

        def criterion(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            # Class labels: cross-entropy (with the trial's label smoothing); a user's own data
            # set may bring its own loss (a regression's mean squared error).
            if ds.classifies:
                return F.cross_entropy(out, y, label_smoothing=hp["label_smoothing"])
            return ds.loss(out, y)

        # ---- training --------------------------------------------------------------------------
        history: list[EpochReport] = []
        tracker = EpochTracker(settings)  # the best epoch and the early-stopping rule
        for epoch in range(1, settings.max_epochs + 1):
            epoch_started = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            net.train()
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device)
            seen = 0
            for x, y in ds.train_batches(batch_size, augment.generator):
                batch = augment(x, y)
                with autocast():
                    logits = net(batch.x)
                    loss = criterion(logits, batch.y_a)
                    if augment.mixes:
                        loss_b = criterion(logits, batch.y_b)
                        loss = batch.lam * loss + (1.0 - batch.lam) * loss_b
                # The L1 term is added outside autocast, in float32, and kept out of train_loss.
                penalised = (loss + l1 * l1_penalty(weights)) if l1 > 0 else loss
                optimizer.zero_grad(set_to_none=True)
                penalised.backward()
                if grad_clip > 0:
                    # No host sync: the norm stays on the device and scales the gradients there.
                    nn.utils.clip_grad_norm_(trainable, grad_clip)
                optimizer.step()  # decoupled decay for sgd-like optimizers runs in a pre-step hook
                if max_norm > 0:
                    max_norm_(weights, max_norm)  # a projection: after the step, every step
                schedule.after_step()
                # Accumulated on the device: a .item() per step would stall the GPU every batch.
                loss_sum += loss.detach().float() * len(y)
                if ds.classifies:
                    predicted = logits.detach().argmax(dim=1)
                    if augment.mixes:
                        correct += batch.lam * (predicted == batch.y_a).sum()
                        correct += (1.0 - batch.lam) * (predicted == batch.y_b).sum()
                    else:
                        correct += (predicted == batch.y_a).sum()
                seen += len(y)
            train_loss = (loss_sum / seen).item()
            train_acc = (correct / seen).item() if ds.classifies else math.nan
            if not math.isfinite(train_loss):
                raise Diverged(epoch, train_loss)

            # ---- evaluation and the best epoch -------------------------------------------------
            val_loss, val_acc = evaluate(net, ds, "val", autocast)
            tracker.record(
                epoch,
                train_loss=train_loss,
                train_acc=train_acc,
                val_loss=val_loss,
                val_acc=val_acc,
            )
            if tracker.improved and settings.early_stopping.restore_best_weights:
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            schedule.after_epoch(improved=tracker.improved)

            # ---- stop or go on; the last epoch also measures the test split --------------------
            test_loss = test_acc = final_train_acc = None
            if tracker.is_last:
                if best_state is not None and tracker.best_epoch != epoch:
                    net.load_state_dict(best_state)
                if ds.has_test:
                    test_loss, test_acc = evaluate(net, ds, "test", autocast)
                if ds.classifies:
                    _, final_train_acc = evaluate(net, ds, "train", autocast)
            report = tracker.report(
                lr=lr,
                epoch_seconds=time.perf_counter() - epoch_started,
                test_loss=test_loss,
                test_acc=test_acc,
                final_train_acc=final_train_acc,
            )
            history.append(report)
            if on_epoch is not None:
                on_epoch(report)
            if report.is_last:
                break
        return fit_result(history, device=str(device), started=started)
    finally:
        # Ray reuses worker processes: a trial that ends, fails or is stopped must not leave its
        # network, optimizer state, autograd graph and best-weights copy holding GPU memory for
        # the next one. An exception's traceback keeps this frame's locals alive, hence the dels.
        del net, optimizer, schedule, best_state, batch, logits, loss, loss_b, penalised
        del trainable, weights
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.empty_cache()


def evaluate(
    net: nn.Module,
    ds: Any,
    split: str,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> tuple[float, float]:
    """Mean loss and accuracy of ``net`` on a split of ``ds`` (``train``, ``val``, ``test``), in
    eval mode, without gradients: cross entropy (no smoothing) for class labels, else the data
    set's own loss and no accuracy (``nan``).

    Leaves ``net`` in eval mode.
    """
    net.eval()
    device = next((p.device for p in net.parameters()), torch.device("cpu"))
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device)
    seen = 0
    with torch.no_grad():
        for xb, yb in ds.eval_batches(split):
            with autocast():
                logits = net(xb)
            if ds.classifies:
                loss_sum += F.cross_entropy(logits.float(), yb, reduction="sum")
                correct += (logits.argmax(dim=1) == yb).sum()
            else:
                loss_sum += ds.loss(logits.float(), yb).float() * len(yb)
            seen += len(yb)
    if seen == 0:
        return math.nan, math.nan
    accuracy = (correct / seen).item() if ds.classifies else math.nan
    return (loss_sum / seen).item(), accuracy


def resolve_device(device: str) -> torch.device:
    """``"auto"`` is CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
