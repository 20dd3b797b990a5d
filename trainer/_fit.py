"""One training run: the loop every trial executes, written to be read top to bottom.

The layout follows airbench (Jordan, 2024): settings, data, network, optimizer, then the epoch
loop — train, evaluate, track the best epoch, decide whether to stop, report. Everything the loop
touches per step stays on the device; the host reads numbers back once per epoch. The best epoch,
the stop decision and the reports are :class:`~trainer._epochs.EpochTracker`'s, the bookkeeping
:func:`~trainer.fit_packed` keeps for each member of a pack.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sweeplab.trainer._augment import Augmenter
from sweeplab.trainer._catalog import resolve_params
from sweeplab.trainer._checkpoint import (
    Checkpoint,
    Checkpointing,
    SaveInfo,
    checkpoint_bytes,
    run_digest,
    weights_bytes,
)
from sweeplab.trainer._data import corrupt_dataset, load_dataset
from sweeplab.trainer._epochs import EpochReport, EpochTracker, FitResult, fit_result
from sweeplab.trainer._errors import CheckpointError, Diverged
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
    checkpointing: Checkpointing | None = None,
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
        checkpointing: save checkpoints and the final weights, or continue a saved run (see
            :class:`~sweeplab.trainer.Checkpointing`); a resumed run's history holds the
            restored epochs too, and ``on_epoch`` sees the new ones only.

    Returns:
        The run's history, best epoch and test metrics.

    Raises:
        Diverged: the mean training loss of an epoch was not finite.
        CheckpointError: ``checkpointing.resume`` was saved by another run (other data,
            network, hyperparameters or settings).
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
    net = module = optimizer = schedule = best_state = batch = logits = loss = loss_b = None
    penalised = order = restored = state = mid_epoch = ds = augment = x = y = None
    trainable: list[torch.Tensor] = []
    weights: list[torch.Tensor] = []
    saves = Saves(checkpointing, started)
    deterministic = _Determinism(settings.deterministic)
    gc_was_enabled = gc.isenabled()
    try:
        # ---- settings --------------------------------------------------------------------------
        hp = resolve_params(dict(params), own=model.factory is not None)
        hp["activation"] = params.get("activation", model.activation)
        device = resolve_device(settings.device)
        if settings.num_threads is not None:
            torch.set_num_threads(settings.num_threads)

        # ---- data ------------------------------------------------------------------------------
        # The cached dataset is shared by every trial of this process; corruption makes a copy.
        ds = corrupt_dataset(load_dataset(data, device), hp, seed=data.split_seed)
        batch_size = int(hp["batch_size"])
        augment = Augmenter.from_params(
            hp, seed=settings.seed, device=device, mean=ds.pixel_mean, std=ds.pixel_std
        )
        # Init and dropout (and a user's Dataset's random transforms); shuffling and augmentation
        # have the augmenter's generators. Seeded after the data: only a process's first run
        # loads it (it is cached), and a user's loading may draw from this generator.
        torch.manual_seed(settings.seed)

        # ---- network and optimizer -------------------------------------------------------------
        module = build_model(model, hp, ds.input_shape, ds.num_classes).to(device)
        on_gpu = device.type == "cuda"
        # Convolutions in channels-last run faster on GPUs and, with oneDNN, on CPUs too (the
        # CNN of benchmarks/trainer_throughput.py: 1.5x the contiguous layout on 2 cores).
        if model.kind != "mlp" and model.factory is None:
            module = module.to(memory_format=torch.channels_last)
        # The compiled wrapper shares its parameters with the eager module, which is saved.
        net = torch.compile(module) if settings.compile else module
        optimizer = build_optimizer(net, hp)
        schedule = LrSchedule(
            optimizer, hp, max_epochs=settings.max_epochs, steps_per_epoch=ds.steps(batch_size)
        )
        # Penalties and clipping on the trainable tensors; each costs nothing when it is 0.
        trainable = [p for p in net.parameters() if p.requires_grad]
        n_params = sum(p.numel() for p in trainable)
        weights = weight_tensors(net)
        l1, max_norm, grad_clip = float(hp["l1"]), float(hp["max_norm"]), float(hp["grad_clip"])

        def autocast() -> contextlib.AbstractContextManager:
            # bf16 matmuls on GPU roughly double throughput; CPU runs stay in float32 so that
            # tests and small sweeps are exact and reproducible (and skip autocast's set-up, a
            # few microseconds a step).
            if on_gpu:
                return torch.autocast("cuda", dtype=torch.bfloat16)
            return contextlib.nullcontext()

        own_loss = ds.loss  # not the data set itself: ``finally`` lets go of that

        def criterion(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            # Class labels: cross-entropy (with the trial's label smoothing); a user's own data
            # set may bring its own loss (a regression's mean squared error).
            if own_loss is None:
                return F.cross_entropy(out, y, label_smoothing=hp["label_smoothing"])
            return own_loss(out, y)

        # ---- a saved run to continue -----------------------------------------------------------
        history: list[EpochReport] = []
        tracker = EpochTracker(settings)  # the best epoch and the early-stopping rule
        digest = run_digest(data, model, params, settings)
        saves.fixed_digest = run_digest(data, model, params, settings, fixed_only=True)
        first_epoch = 1
        if checkpointing is not None and checkpointing.resume is not None:
            resume = checkpointing.resume
            restored = restore_state(
                resume, digest, module, optimizer, schedule, tracker, augment,
                exploit=checkpointing.exploit, fixed_digest=saves.fixed_digest,
            )  # fmt: skip
            best_state, history = restored["best_state"], [*resume.history]
            first_epoch = resume.epoch + 1

        # ---- training --------------------------------------------------------------------------
        for epoch in range(first_epoch, settings.max_epochs + 1):
            epoch_started = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            net.train()
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device)
            seen = step = 0
            if restored is not None and restored["mid_epoch"] is not None:
                # Saved within this epoch: its order, position and running sums.
                mid = restored["mid_epoch"]
                order, step, seen, lr = mid["order"].to(device), mid["step"], mid["seen"], mid["lr"]
                loss_sum += mid["loss_sum"].to(device)
                correct += mid["correct"].to(device)
                epoch_started -= mid["elapsed"]
            else:
                order = ds.epoch_order(augment.generator)
            restored = None
            # No garbage collection within the epoch: a step frees what it allocates by reference
            # counting, and a collection's pass over a Ray worker's heap would stall a step.
            gc.disable()
            for x, y in ds.train_batches(batch_size, order=order, start=step):
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
                loss_sum.add_(loss.detach(), alpha=len(y))
                if ds.classifies:
                    predicted = logits.detach().argmax(dim=1)
                    if augment.mixes:
                        correct += batch.lam * (predicted == batch.y_a).sum()
                        correct += (1.0 - batch.lam) * (predicted == batch.y_b).sum()
                    else:
                        correct += (predicted == batch.y_a).sum()
                seen += len(y)
                step += 1
                if saves.due_within_epoch():
                    mid_epoch = {
                        "order": order, "step": step, "seen": seen, "lr": lr,
                        "loss_sum": loss_sum, "correct": correct,
                        "elapsed": time.perf_counter() - epoch_started,
                    }  # fmt: skip
                    state = capture_state(
                        module, optimizer, schedule, tracker, augment, best_state, mid_epoch
                    )
                    saves.checkpoint(epoch - 1, step, history, digest, state)
            if gc_was_enabled:
                gc.enable()
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
                if saves.keeps_weights:
                    restored_best = best_state is not None and tracker.best_epoch != epoch
                    at = tracker.best_epoch if restored_best else epoch
                    saves.weights(
                        weights_bytes(module, model, params, ds.input_shape, ds.num_classes, at),
                        at,
                    )
            report = tracker.report(
                lr=lr,
                epoch_seconds=time.perf_counter() - epoch_started,
                test_loss=test_loss,
                test_acc=test_acc,
                final_train_acc=final_train_acc,
                params=n_params,
            )
            history.append(report)
            if not report.is_last and saves.due_at_epoch_end(epoch):
                state = capture_state(
                    module, optimizer, schedule, tracker, augment, best_state, None
                )
                saves.checkpoint(epoch, 0, history, digest, state)
            if on_epoch is not None:
                on_epoch(report)
            if report.is_last:
                break
        return fit_result(history, device=str(device), started=started)
    finally:
        deterministic.restore()
        if gc_was_enabled:
            gc.enable()
        # Ray reuses worker processes: a trial that ends, fails or is stopped must not leave its
        # network, optimizer state, autograd graph and best-weights copy holding GPU memory for
        # the next one. An exception's traceback keeps this frame's locals alive, hence the dels.
        del net, module, optimizer, schedule, best_state, batch, logits, loss, loss_b, penalised
        # The checkpoint's state shares the network's and optimizer's tensors, the mid-epoch
        # position the device sums; the data set may be a corrupted copy on the device.
        del trainable, weights, order, restored, saves, state, mid_epoch, ds, augment, x, y
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
    # inference_mode: no autograd bookkeeping at all (no version counters, no views tracked).
    with torch.inference_mode():
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


class Saves:
    """When a run saves, and the saving itself (nothing without ``checkpointing``)."""

    def __init__(self, checkpointing: Checkpointing | None, started: float) -> None:
        self.save = None if checkpointing is None else checkpointing.save
        self.save_weights = None if checkpointing is None else checkpointing.save_weights
        self.every_s = 0.0 if checkpointing is None else float(checkpointing.every_s)
        self.last = started
        self.keeps_weights = self.save_weights is not None
        self.at_epochs = frozenset() if checkpointing is None else checkpointing.at_epochs
        self.fixed_digest: str | None = None

    def due_at_epoch_end(self, epoch: int) -> bool:
        if self.save is None:
            return False
        return epoch in self.at_epochs or time.perf_counter() - self.last >= self.every_s

    def due_within_epoch(self) -> bool:
        # One clock read per step, and only when checkpointing: nothing waits for the device.
        return (
            self.save is not None
            and self.every_s > 0
            and time.perf_counter() - self.last >= self.every_s
        )

    def checkpoint(
        self,
        epoch: int,
        step: int,
        history: list[EpochReport],
        digest: str,
        state: dict[str, Any],
    ) -> None:
        assert self.save is not None
        data = checkpoint_bytes(epoch, step, history, digest, state, self.fixed_digest)
        self.save(data, SaveInfo("checkpoint", epoch, step))
        self.last = time.perf_counter()

    def weights(self, data: bytes, epoch: int) -> None:
        assert self.save_weights is not None
        self.save_weights(data, SaveInfo("weights", epoch, 0))


class _Determinism:
    """torch's deterministic mode for one run, the previous settings restored after it."""

    def __init__(self, on: bool) -> None:
        self.on = on
        if not on:
            return
        self.previous = (
            torch.are_deterministic_algorithms_enabled(),
            torch.backends.cudnn.deterministic,
            torch.backends.cudnn.benchmark,
        )
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False

    def restore(self) -> None:
        if self.on:
            algorithms, cudnn_deterministic, cudnn_benchmark = self.previous
            torch.use_deterministic_algorithms(algorithms)
            torch.backends.cudnn.deterministic = cudnn_deterministic
            torch.backends.cudnn.benchmark = cudnn_benchmark


def capture_state(
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: LrSchedule,
    tracker: EpochTracker,
    augment: Augmenter,
    best_state: dict[str, torch.Tensor] | None,
    mid_epoch: dict[str, Any] | None,
) -> dict[str, Any]:
    """Everything the rest of the run depends on, as tensors and plain values."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    return {
        "module": module.state_dict(),
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "tracker": tracker.state_dict(),
        "best_state": best_state,
        "rng": {
            "torch": torch.get_rng_state(),
            "cuda": cuda,
            "augment": augment.generator.get_state(),
            # numpy's state holds 128-bit ints; as JSON text it loads with weights_only.
            "numpy": json.dumps(augment.rng.bit_generator.state),
        },
        "mid_epoch": mid_epoch,
    }


def restore_state(
    checkpoint: Checkpoint,
    digest: str,
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: LrSchedule,
    tracker: EpochTracker,
    augment: Augmenter,
    *,
    exploit: bool = False,
    fixed_digest: str | None = None,
) -> dict[str, Any]:
    """Load a checkpoint's state into the run's objects; returns its ``best_state`` and
    ``mid_epoch`` (the position within an epoch, or ``None``).

    With ``exploit`` the checkpoint is another run's (population based training): it must match
    ``fixed_digest``, and this run's own values of the hyperparameters that may differ (the
    optimizer's built from this run's, the schedule's base rates) replace the saved ones.

    Raises:
        CheckpointError: it was saved by another run, or its state does not fit this one.
    """
    state = checkpoint.state
    if exploit and (fixed_digest is None or state.get("fixed_digest") != fixed_digest):
        raise CheckpointError(
            "the checkpoint to take over was saved by a run with other data, network, "
            "settings or hyperparameters that cannot change between epochs"
        )
    if not exploit and state.get("digest") != digest:
        raise CheckpointError(
            "the checkpoint was saved by a run with other data, network, hyperparameters or "
            "settings"
        )
    # This run's optimizer settings, before the saved ones overwrite them (exploit only).
    own_groups = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    own_base_lrs = list(schedule.base_lrs)
    try:
        module.load_state_dict(state["module"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        if exploit:
            # The saved moments (Adam's, momentum buffers) are kept: only the rates change.
            for group, own in zip(optimizer.param_groups, own_groups, strict=True):
                group.update(own)
            schedule.rebase(own_base_lrs)
        tracker.load_state_dict(state["tracker"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        augment.generator.set_state(rng["augment"])
        augment.rng.bit_generator.state = json.loads(rng["numpy"])
        device = next((p.device for p in module.parameters()), torch.device("cpu"))
        best = state["best_state"]
        best = None if best is None else {k: v.to(device) for k, v in best.items()}
    except (KeyError, RuntimeError, ValueError, TypeError) as e:
        raise CheckpointError(
            f"the checkpoint does not fit this run ({type(e).__name__}: {e})"
        ) from e
    return {"best_state": best, "mid_epoch": state.get("mid_epoch")}
