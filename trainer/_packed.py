"""Batched trials: K configurations of one MLP trained at once as one stacked model.

:func:`fit_packed` is :func:`~trainer.fit` for a pack of members (HFTA, Wang et al., MLSys
2021): the same loop — data, network, optimizer, then per epoch train, evaluate, track each
member's best epoch, decide who stops, report — with every tensor carrying a member axis (see
:mod:`trainer._packed_net`). Each member reports ordinary :class:`~trainer.EpochReport` objects,
from its own :class:`~trainer._epochs.EpochTracker`, the bookkeeping ``fit`` keeps for its run.

What members may differ in and what they must share is explicit (:func:`pack_key`):

- per member: ``lr``, ``weight_decay`` and ``weight_decay_mode``, ``momentum``, ``nesterov``,
  ``beta1``, ``beta2``, ``eps``, ``label_smoothing``, ``init``, ``init_std``, ``dropout``,
  ``input_dropout``, the learning-rate schedule and its knobs (``lr_schedule``, ``lr_gamma``,
  ``plateau_*``, ``sgdr_*``, ``warmup_epochs``), and the seed (init and dropout masks);
  ``adam`` and ``adamw`` mix freely (AdamW is Adam with decoupled decay);
- shared: the architecture, ``batch_size``, ``activation``, the optimizer family (SGD or
  Adam), the augmentations and data corruptions, and the fit settings (epochs, objective, early
  stopping rule);
- not packable (such a member trains alone through :func:`~trainer.fit`): other optimizers,
  normalisation layers, PReLU, ``l1``, ``max_norm``, ``grad_clip``, ``dropconnect``,
  ``hidden_noise_std``, and every model other than the MLP.

Members share one data stream: the batch order and augmentation draws come from the first
member's seed, so member 0 sees exactly the batches ``fit`` would give it and the others see the
same batches (their inits and dropout masks still follow their own seeds). Sharing the batch is
what lets the first layer be a single wide GEMM. ``FitSettings.compile`` does not apply here;
CPU and GPU both train in float32 (no bf16 autocast), and each member's ``epoch_seconds`` is the
whole pack's epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import torch

from sweeplab.trainer._augment import Augmenter
from sweeplab.trainer._catalog import HYPERPARAMETERS, resolve_params
from sweeplab.trainer._data import Dataset, corrupt_dataset, load_dataset
from sweeplab.trainer._epochs import (
    EVAL_BATCH_SIZE,
    EpochReport,
    EpochTracker,
    FitResult,
    batch_starts,
    fit_result,
)
from sweeplab.trainer._errors import Diverged
from sweeplab.trainer._fit import resolve_device
from sweeplab.trainer._layers import make_activation
from sweeplab.trainer._models import build_model
from sweeplab.trainer._optim import LrSchedule, decay_is_decoupled, pytorch_lr
from sweeplab.trainer._packed_net import (
    MemberOptimizers,
    StackedOptimizer,
    StackedTensor,
    keep_probabilities,
    member_vector,
    packed_cross_entropy,
    packed_forward,
    stack_mlps,
)
from sweeplab.trainer._settings import DataSettings, FitSettings, ModelSettings

# Hyperparameters each member of a pack may set for itself. The last row does nothing for a
# norm-free MLP trained with SGD or Adam, so it must not split packs either.
PER_MEMBER = frozenset(
    {
        "lr", "weight_decay", "weight_decay_mode", "momentum", "nesterov", "beta1", "beta2",
        "eps", "label_smoothing", "init", "init_std", "dropout", "input_dropout",
        "lr_schedule", "lr_gamma", "plateau_factor", "plateau_patience", "sgdr_period",
        "sgdr_mult", "warmup_epochs",
        "rho", "initial_accumulator", "norm_position", "group_norm_groups", "spatial_dropout",
        "stochastic_depth",
    }
)  # fmt: skip
# Only the ordinary loop implements these: a member that sets one trains alone.
SOLO_ONLY = ("l1", "max_norm", "grad_clip", "dropconnect", "hidden_noise_std")
# Optimizer -> the packed update rule that reproduces it.
PACKED_OPTIMIZERS = {"sgd": "sgd", "adam": "adam", "adamw": "adam"}

OnPackEpoch = Callable[[Mapping[int, "EpochReport | Diverged"]], Collection[int]]


def pack_key(model: ModelSettings, params: Mapping[str, Any]) -> tuple | None:
    """What a trial must share with others to be trained in one pack; ``None``: train alone.

    Two trials pack together exactly when their keys are equal. The key holds every resolved
    hyperparameter outside :data:`PER_MEMBER` (the optimizer as its family), plus the model.

    Example:
        >>> from sweeplab.trainer import ModelSettings
        >>> mlp = ModelSettings(kind="mlp", hidden=(32,))
        >>> pack_key(mlp, {"lr": 0.1}) == pack_key(mlp, {"lr": 0.01, "dropout": 0.2})
        True
        >>> pack_key(mlp, {"batch_size": 64}) == pack_key(mlp, {"batch_size": 128})
        False
        >>> pack_key(ModelSettings(kind="cnn"), {}) is None
        True
    """
    if model.kind != "mlp":
        return None
    hp = resolve_params(dict(params))
    hp["activation"] = params.get("activation", model.activation)
    if hp["optimizer"] not in PACKED_OPTIMIZERS or hp["activation"] == "prelu":
        return None
    if hp["norm"] not in ("default", "none"):
        return None
    if any(hp[name] != HYPERPARAMETERS[name].default for name in SOLO_ONLY):
        return None
    shared = {k: v for k, v in hp.items() if k not in PER_MEMBER and k != "norm"}
    shared["optimizer"] = PACKED_OPTIMIZERS[hp["optimizer"]]
    items = tuple(
        sorted((k, tuple(v) if isinstance(v, list | tuple) else v) for k, v in shared.items())
    )
    return (model.kind, tuple(model.hidden), items)


def fit_packed(
    data: DataSettings,
    model: ModelSettings,
    members: Sequence[Mapping[str, Any]],
    seeds: Sequence[int],
    settings: FitSettings,
    on_epoch: OnPackEpoch | None = None,
) -> list[FitResult | Diverged]:
    """Train K configurations of one MLP at once, each reported as if it had trained alone.

    Args:
        data: the dataset, as for :func:`~trainer.fit`.
        model: the MLP.
        members: each member's sampled hyperparameters; all must have the same
            :func:`pack_key`.
        seeds: each member's seed (init, dropout); the first also seeds the shared batch order
            and augmentation.
        settings: epochs, objective, early stopping, device, threads (``seed`` is ignored).
        on_epoch: called once per epoch with ``{member index: report}`` for every member still
            training (a :class:`~trainer.Diverged` in place of the report for a member whose
            loss stopped being finite); returns the indices to stop now (pruned). A member's
            last report (``is_last``) carries its test metrics, as in ``fit``.

    Returns:
        Per member, its :class:`~trainer.FitResult` (a pruned member's has ``test_acc`` and
        ``test_loss`` ``nan``) or the :class:`~trainer.Diverged` that ended it.

    Raises:
        ValueError: no members, seeds of another length, or members that do not pack together.

    Example:
        >>> from sweeplab.trainer import DataSettings, FitSettings, ModelSettings
        >>> results = fit_packed(DataSettings(), ModelSettings(kind="mlp", hidden=(32,)),
        ...                      [{"lr": 1e-3}, {"lr": 3e-3}], [0, 1],
        ...                      FitSettings(max_epochs=2, device="cpu"))
        >>> [r.epochs_run for r in results]
        [2, 2]
    """
    if not members or len(seeds) != len(members):
        raise ValueError(f"fit_packed needs >= 1 member and one seed each; got "
                         f"{len(members)} members and {len(seeds)} seeds")  # fmt: skip
    keys = {pack_key(model, m) for m in members}
    if None in keys or len(keys) != 1:
        raise ValueError("these members cannot be packed together (see trainer.pack_key)")
    if settings.max_epochs < 1:
        raise ValueError(f"`max_epochs` must be an int >= 1; got {settings.max_epochs}")
    started = time.perf_counter()
    k_all = len(members)

    # ---- settings --------------------------------------------------------------------------------
    hps = [resolve_params(dict(m)) for m in members]
    for hp, m in zip(hps, members, strict=True):
        hp["activation"] = m.get("activation", model.activation)
    shared = hps[0]
    device = resolve_device(settings.device)
    if settings.num_threads is not None:
        torch.set_num_threads(settings.num_threads)

    # ---- data (one stream for the whole pack) ----------------------------------------------------
    ds = corrupt_dataset(load_dataset(data, device), shared, seed=data.split_seed)
    n_train, batch_size = len(ds.train_y), int(shared["batch_size"])
    starts = batch_starts(n_train, batch_size)
    augment = Augmenter.from_params(
        shared, seed=seeds[0], device=device, mean=ds.pixel_mean, std=ds.pixel_std
    )

    # ---- network: each member built and initialised exactly as fit would, then stacked --------
    nets = []
    for hp, seed in zip(hps, seeds, strict=True):
        torch.manual_seed(seed)
        nets.append(build_model(model, hp, ds.input_shape, ds.num_classes))
    params = stack_mlps(nets)
    for p in params:
        p.value = p.value.detach().to(device).requires_grad_()
    del nets
    torch.manual_seed(seeds[0])  # dropout masks
    activation = make_activation(shared["activation"])

    # ---- optimizers and schedules ------------------------------------------------------------
    optimizer = _pack_optimizer(params, hps, device)
    schedules = [
        LrSchedule(opt, hp, max_epochs=settings.max_epochs, steps_per_epoch=len(starts))
        for opt, hp in zip(optimizer.optimizers, hps, strict=True)
    ]

    rates = [float(hp["label_smoothing"]) for hp in hps]
    smoothing = member_vector(rates, device) if any(r > 0 for r in rates) else None
    input_rates = [float(hp["input_dropout"]) for hp in hps]
    hidden_rates = [float(hp["dropout"]) for hp in hps]

    # ---- per-member bookkeeping; ``alive`` maps stack rows to member indices ---------------------
    alive = list(range(k_all))
    histories: list[list[EpochReport]] = [[] for _ in range(k_all)]
    outcome: list[FitResult | Diverged | None] = [None] * k_all
    trackers = [EpochTracker(settings) for _ in range(k_all)]  # best epoch, early stopping
    restore_best = settings.early_stopping.restore_best_weights
    best = [p.value.detach().clone() for p in params] if restore_best else None

    # ---- training --------------------------------------------------------------------------------
    for epoch in range(1, settings.max_epochs + 1):
        epoch_started = time.perf_counter()
        lr_first = [schedules[m].optimizer.param_groups[0]["lr"] for m in alive]
        k = len(alive)
        input_keep = keep_probabilities([input_rates[m] for m in alive], device)
        hidden_keep = keep_probabilities([hidden_rates[m] for m in alive], device)
        loss_sum = torch.zeros(k, device=device)
        correct = torch.zeros(k, device=device)
        seen = 0
        order = torch.randperm(n_train, generator=augment.generator, device=device)
        for start in starts:
            idx = order[start : start + batch_size]
            batch = augment(ds.train_x[idx], ds.train_y[idx])
            logits = packed_forward(
                params, batch.x, activation, input_keep=input_keep, hidden_keep=hidden_keep
            )
            loss = packed_cross_entropy(logits, batch.y_a, smoothing)
            if augment.mixes:
                loss_b = packed_cross_entropy(logits, batch.y_b, smoothing)
                loss = batch.lam * loss + (1.0 - batch.lam) * loss_b
            optimizer.zero_grad()
            # Members share no parameter, so the sum's gradient is each member's own gradient.
            loss.sum().backward()
            optimizer.step()
            for m in alive:
                schedules[m].after_step()
            predicted = logits.detach().argmax(dim=-1)
            loss_sum += loss.detach() * len(idx)
            if augment.mixes:
                correct += batch.lam * (predicted == batch.y_a).sum(1)
                correct += (1.0 - batch.lam) * (predicted == batch.y_b).sum(1)
            else:
                correct += (predicted == batch.y_a).sum(1)
            seen += len(idx)
        train_loss, train_acc = (loss_sum / seen).tolist(), (correct / seen).tolist()

        # ---- evaluation, each member's best epoch and stop decision ---------------------------
        val_loss, val_acc = evaluate_packed(params, activation, ds.val_x, ds.val_y)
        diverged: dict[int, Diverged] = {}
        finishing: list[int] = []  # rows whose run ends this epoch
        for row, m in enumerate(alive):
            if not math.isfinite(train_loss[row]):
                diverged[m] = outcome[m] = Diverged(epoch, train_loss[row])
                continue
            tracker = trackers[m]
            tracker.record(
                epoch,
                train_loss=train_loss[row],
                train_acc=train_acc[row],
                val_loss=val_loss[row],
                val_acc=val_acc[row],
            )
            if tracker.improved and best is not None:
                for b, p in zip(best, params, strict=True):
                    b.select(p.member_dim, m).copy_(p.value.detach().select(p.member_dim, row))
            schedules[m].after_epoch(improved=tracker.improved)
            if tracker.is_last:
                finishing.append(row)

        # ---- members that finish now are measured on the test split (best weights) -----------
        final = _final_metrics(params, best, finishing, alive, activation, ds) if finishing else {}
        seconds = time.perf_counter() - epoch_started
        # One report per live member, in stack order; a diverged member's is its Diverged.
        reports: dict[int, EpochReport | Diverged] = {}
        for row, m in enumerate(alive):
            if m in diverged:
                reports[m] = diverged[m]
            else:
                reports[m] = trackers[m].report(
                    lr=lr_first[row], epoch_seconds=seconds, **final.get(m, {})
                )
                histories[m].append(reports[m])
        pruned = set(on_epoch(reports)) if on_epoch is not None else set()

        # ---- the group shrinks: finished, diverged and pruned members leave the stack ---------
        keep_rows = []
        for row, m in enumerate(alive):
            report = reports[m]
            if isinstance(report, Diverged):
                continue
            if report.is_last or m in pruned:
                outcome[m] = fit_result(histories[m], device=str(device), started=started)
                continue
            keep_rows.append(row)
        if not keep_rows:
            break
        if len(keep_rows) < len(alive):
            keep = torch.tensor(keep_rows, device=device)
            for p in params:
                p.select(keep)
            optimizer.select(keep_rows)
            smoothing = smoothing.index_select(0, keep) if smoothing is not None else None
            alive = [alive[row] for row in keep_rows]
    return [o if o is not None else fit_result(histories[i], device=str(device), started=started)
            for i, o in enumerate(outcome)]  # fmt: skip


# Where the optimizer is written once over the stacks rather than one PyTorch optimizer per
# member: on a GPU a step's cost is kernel launches and Python, which the stacked update pays
# once for the pack; on a CPU it is memory traffic, which each member's fused kernel keeps to one
# pass (the stacked update took about 3x as long there).
_STACKED_OPTIMIZER_DEVICES = ("cuda",)


def _pack_optimizer(
    params: list[StackedTensor], hps: Sequence[Mapping[str, Any]], device: torch.device
) -> MemberOptimizers | StackedOptimizer:
    if device.type not in _STACKED_OPTIMIZER_DEVICES:
        return MemberOptimizers(params, hps)

    def vec(name: str) -> torch.Tensor:
        return member_vector([hp[name] for hp in hps], device)

    decoupled = [decay_is_decoupled(hp) for hp in hps]
    wd = [float(hp["weight_decay"]) for hp in hps]
    hyper = {
        "momentum": vec("momentum"),
        "nesterov": member_vector(
            [bool(hp["nesterov"]) and float(hp["momentum"]) > 0 for hp in hps], device
        ),
        "beta1": vec("beta1"),
        "beta2": vec("beta2"),
        "eps": vec("eps"),
        "coupled_wd": member_vector(
            [0.0 if d else w for d, w in zip(decoupled, wd, strict=True)], device
        ),
        "decoupled_wd": member_vector(
            [w if d else 0.0 for d, w in zip(decoupled, wd, strict=True)], device
        ),
    }
    kind = PACKED_OPTIMIZERS[hps[0]["optimizer"]]
    lrs = [pytorch_lr(hp["optimizer"]) if hp["lr"] is None else float(hp["lr"]) for hp in hps]
    return StackedOptimizer(params, kind, hyper, lrs)


def _final_metrics(
    params: Sequence[StackedTensor],
    best: Sequence[torch.Tensor] | None,
    finishing: Sequence[int],
    alive: Sequence[int],
    activation: torch.nn.Module,
    ds: Dataset,
) -> dict[int, dict[str, float]]:
    """The test metrics of a last report for each member whose run ends now (at stack rows
    ``finishing``), keyed by member index: on its best weights when they are kept."""
    device = params[0].value.device
    # Best weights are kept for every member (indexed by member), live ones by row.
    if best is not None:
        rows = torch.tensor([alive[r] for r in finishing], device=device)
        tensors = best
    else:
        rows = torch.tensor(finishing, device=device)
        tensors = [p.value.detach() for p in params]
    source = [
        StackedTensor(t.index_select(p.member_dim, rows), p.member_dim, p.decays)
        for t, p in zip(tensors, params, strict=True)
    ]
    test_loss, test_acc = evaluate_packed(source, activation, ds.test_x, ds.test_y)
    _, train_acc = evaluate_packed(source, activation, ds.train_x, ds.train_y)
    return {
        alive[row]: {
            "test_loss": test_loss[i],
            "test_acc": test_acc[i],
            "final_train_acc": train_acc[i],
        }
        for i, row in enumerate(finishing)
    }


def evaluate_packed(
    params: Sequence[StackedTensor], activation: torch.nn.Module, x: torch.Tensor, y: torch.Tensor
) -> tuple[list[float], list[float]]:
    """Per-member mean cross entropy and accuracy on ``(x, y)``, without dropout or gradients."""
    k = params[1].value.shape[0]
    loss_sum = torch.zeros(k, device=x.device)
    correct = torch.zeros(k, device=x.device)
    with torch.no_grad():
        for start in range(0, len(y), EVAL_BATCH_SIZE):
            xb, yb = x[start : start + EVAL_BATCH_SIZE], y[start : start + EVAL_BATCH_SIZE]
            logits = packed_forward(params, xb, activation).float()
            loss_sum += packed_cross_entropy(logits, yb) * len(yb)
            correct += (logits.argmax(dim=-1) == yb).sum(1)
    return (loss_sum / len(y)).tolist(), (correct / len(y)).tolist()
