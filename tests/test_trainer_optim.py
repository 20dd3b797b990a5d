"""Optimizers, weight penalties, gradient clipping and learning-rate schedules.

Unit tests compute one or two optimizer steps by hand on a tiny float64 layer whose loss is linear
in the parameters (so the gradient is a known constant); end-to-end tests train on scikit-learn's
digits and check that every option changes the run (none is a no-op).
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sweeplab.trainer import (
    HYPERPARAMETERS,
    LR_SCHEDULES,
    OPTIMIZERS,
    DataSettings,
    EarlyStopping,
    EpochReport,
    FitSettings,
    ModelSettings,
    build_model,
    fit,
    load_dataset,
    resolve_params,
)
from sweeplab.trainer._optim import LrSchedule, build_optimizer, decay_is_decoupled, lr_factor
from sweeplab.trainer._penalties import l1_penalty, max_norm_, weight_tensors

DIGITS = DataSettings(dataset="digits")
SMALL_MLP = ModelSettings(kind="mlp", hidden=(64,))
BATCH_SIZE = 64  # the catalog default


def run(params=None, epochs=2, model=SMALL_MLP, **settings):
    settings.setdefault("device", "cpu")
    return fit(DIGITS, model, params or {}, FitSettings(max_epochs=epochs, **settings))


def comparable(history: tuple[EpochReport, ...]) -> list[dict]:
    """A history without its timings, which differ from run to run."""
    timings = ("epoch_seconds", "train_time")  # wall times differ between equal runs
    return [{k: v for k, v in r.metrics().items() if k not in timings} for r in history]


def steps_per_epoch() -> int:
    n = len(load_dataset(DIGITS).train_y)
    return len([s for s in range(0, n, BATCH_SIZE) if s == 0 or n - s >= 2])


# ---- a tiny layer with a known, constant gradient ------------------------------------------------

W0 = [[0.5, -1.0, 2.0], [-0.25, 0.75, -1.5]]
B0 = [0.3, -0.6]
# dL/dW: the zeros show what decay does on its own; dL/db is never zero.
GRAD_W = [[0.2, 0.0, -0.4], [0.0, 0.1, 0.0]]
GRAD_B = [0.5, -0.2]


def tiny_layer() -> nn.Linear:
    layer = nn.Linear(3, 2, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(W0, dtype=torch.float64))
        layer.bias.copy_(torch.tensor(B0, dtype=torch.float64))
    return layer


def take_steps(layer: nn.Linear, optimizer: torch.optim.Optimizer, steps: int = 1) -> None:
    """Steps on L = sum(GRAD_W * W) + sum(GRAD_B * b), whose gradient is (GRAD_W, GRAD_B)."""
    gw, gb = torch.tensor(GRAD_W, dtype=torch.float64), torch.tensor(GRAD_B, dtype=torch.float64)
    for _ in range(steps):
        optimizer.zero_grad()
        ((layer.weight * gw).sum() + (layer.bias * gb).sum()).backward()
        optimizer.step()


def stepped(params: dict, steps: int = 1) -> nn.Linear:
    layer = tiny_layer()
    take_steps(layer, build_optimizer(layer, resolve_params(params)), steps)
    return layer


def t64(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


# ---- optimizers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "optimizer, params, expected",
    [
        ("sgd", {"momentum": 0.5, "nesterov": True}, {"momentum": 0.5, "nesterov": True}),
        ("adam", {"beta1": 0.8, "beta2": 0.95, "eps": 1e-6}, {"betas": (0.8, 0.95), "eps": 1e-6}),
        ("adamw", {"beta1": 0.8, "beta2": 0.95, "eps": 1e-6}, {"betas": (0.8, 0.95), "eps": 1e-6}),
        ("nadam", {"beta1": 0.8, "beta2": 0.95, "eps": 1e-6}, {"betas": (0.8, 0.95), "eps": 1e-6}),
        ("radam", {"beta1": 0.8, "beta2": 0.95, "eps": 1e-6}, {"betas": (0.8, 0.95), "eps": 1e-6}),
        ("rmsprop", {"rho": 0.9, "eps": 1e-6, "momentum": 0.5},
         {"alpha": 0.9, "eps": 1e-6, "momentum": 0.5}),
        ("adagrad", {"initial_accumulator": 0.1}, {"initial_accumulator_value": 0.1}),
        ("adadelta", {"rho": 0.95}, {"rho": 0.95}),
    ],
)  # fmt: skip
def test_optimizer_hyperparameters_reach_the_update_rule(optimizer, params, expected):
    opt = build_optimizer(tiny_layer(), resolve_params({"optimizer": optimizer, **params}))
    assert type(opt).__name__.lower() == optimizer
    for group in opt.param_groups:
        assert {k: group[k] for k in expected} == expected
    assert sorted(OPTIMIZERS) == sorted(
        ["sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta", "nadam", "radam"]
    )


def test_defaults_keep_the_optimizers_as_they_were():
    # unset rho is RMSprop's own alpha; eps is PyTorch's Adam/RMSprop default.
    rms = build_optimizer(tiny_layer(), resolve_params({"optimizer": "rmsprop"}))
    assert (rms.param_groups[0]["alpha"], rms.param_groups[0]["eps"]) == (0.99, 1e-8)
    assert rms.param_groups[0]["momentum"] == 0.0  # PyTorch's RMSprop: no momentum
    adam = build_optimizer(tiny_layer(), resolve_params({}))
    assert type(adam) is torch.optim.Adam and adam.param_groups[0]["betas"] == (0.9, 0.999)


@pytest.mark.parametrize(
    "optimizer, lr",
    [("sgd", 0.05), ("adam", 3e-3), ("adamw", 3e-3), ("rmsprop", 1e-3), ("adagrad", 3e-2),
     ("adadelta", 1.0), ("nadam", 3e-3), ("radam", 3e-2)],
)  # fmt: skip
def test_every_optimizer_learns_digits(optimizer, lr):
    result = run({"optimizer": optimizer, "lr": lr, "weight_decay": 1e-4}, epochs=3)
    assert result.history[-1].val_acc > 0.85


def test_plain_momentum_and_nesterov_sgd_take_their_textbook_steps():
    lr, mu, g = 0.1, 0.5, t64(GRAD_W)
    plain = stepped({"optimizer": "sgd", "lr": lr, "momentum": 0.0}, steps=2)
    heavy = stepped({"optimizer": "sgd", "lr": lr, "momentum": mu}, steps=2)
    nesterov = stepped({"optimizer": "sgd", "lr": lr, "momentum": mu, "nesterov": True}, steps=2)
    # Constant gradient g. Plain: two steps of lr*g. Heavy ball: v1 = g, v2 = mu*g + g.
    # Nesterov steps along g + mu*v: (1 + mu)*g, then g + mu*(1 + mu)*g.
    assert torch.allclose(plain.weight, t64(W0) - lr * 2 * g)
    assert torch.allclose(heavy.weight, t64(W0) - lr * (2 + mu) * g)
    assert torch.allclose(nesterov.weight, t64(W0) - lr * (2 + 2 * mu + mu**2) * g)


def test_unknown_optimizer_and_decay_mode_are_rejected():
    with pytest.raises(ValueError, match="`optimizer` must be one of"):
        build_optimizer(tiny_layer(), resolve_params({"optimizer": "lbfgs"}))
    with pytest.raises(ValueError, match="`weight_decay_mode` must be one of"):
        build_optimizer(tiny_layer(), resolve_params({"weight_decay_mode": "l2"}))


# ---- weight decay: coupled against decoupled ------------------------------------------------------


def test_adam_coupled_decay_is_rescaled_decoupled_is_not():
    lr, wd, eps = 0.01, 0.1, 1e-8
    w0, g, b0, gb = t64(W0), t64(GRAD_W), t64(B0), t64(GRAD_B)
    base = {"optimizer": "adam", "lr": lr, "weight_decay": wd, "eps": eps}
    coupled = stepped({**base, "weight_decay_mode": "coupled"})
    decoupled = stepped({**base, "weight_decay_mode": "decoupled"})

    # Adam's first step is lr * g / (|g| + eps) for the gradient g it is given (m^ = g, v^ = g^2).
    def adam_step(grad):
        return lr * grad / (grad.abs() + eps)

    # Coupled: wd*w joins the gradient and is divided by the adaptive denominator with it.
    assert torch.allclose(coupled.weight, w0 - adam_step(g + wd * w0))
    # Decoupled: the weights shrink by lr*wd*w outside the adaptive update.
    assert torch.allclose(decoupled.weight, w0 * (1 - lr * wd) - adam_step(g))
    # Where the data gradient is 0, coupled decay moves a weight by a full lr whatever wd is;
    # decoupled decay moves it by lr*wd*|w|, proportionally to the weight.
    zero = g == 0
    assert torch.allclose((coupled.weight - w0)[zero].abs(), torch.full((3,), lr, dtype=w0.dtype))
    assert torch.allclose((decoupled.weight - w0)[zero], -lr * wd * w0[zero])
    # Neither touches the bias.
    for layer in (coupled, decoupled):
        assert torch.allclose(layer.bias, b0 - adam_step(gb))


def test_sgd_coupled_and_decoupled_agree_without_momentum_and_differ_with_it():
    lr, wd, mu = 0.1, 0.2, 0.9
    w0, g = t64(W0), t64(GRAD_W)
    base = {"optimizer": "sgd", "lr": lr, "weight_decay": wd}
    # Without momentum both are w - lr*(g + wd*w) = (1 - lr*wd)*w - lr*g (Loshchilov & Hutter).
    plain_c = stepped({**base, "momentum": 0.0, "weight_decay_mode": "coupled"}, steps=2)
    plain_d = stepped({**base, "momentum": 0.0, "weight_decay_mode": "decoupled"}, steps=2)
    w1 = (1 - lr * wd) * w0 - lr * g
    assert torch.allclose(plain_c.weight, (1 - lr * wd) * w1 - lr * g)
    assert torch.allclose(plain_d.weight, plain_c.weight)

    # With momentum, coupled decay enters the velocity; decoupled decay does not.
    heavy_c = stepped({**base, "momentum": mu, "weight_decay_mode": "coupled"}, steps=2)
    heavy_d = stepped({**base, "momentum": mu, "weight_decay_mode": "decoupled"}, steps=2)
    v1 = g + wd * w0
    w1 = w0 - lr * v1
    assert torch.allclose(heavy_c.weight, w1 - lr * (mu * v1 + g + wd * w1))
    w1 = (1 - lr * wd) * w0 - lr * g
    assert torch.allclose(heavy_d.weight, (1 - lr * wd) * w1 - lr * (mu * g + g))
    assert not torch.allclose(heavy_c.weight, heavy_d.weight)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_decoupled_decay_shrinks_weights_by_lr_wd_and_skips_biases(optimizer):
    lr, wd = 0.05, 0.3
    params = {"optimizer": optimizer, "lr": lr, "weight_decay_mode": "decoupled"}
    decayed, free = stepped({**params, "weight_decay": wd}), stepped({**params})
    # The optimizers' own updates are the same with and without decay here (a weight's update
    # does not depend on its value), so decay is exactly the factor (1 - lr*wd) on the weights.
    assert torch.allclose(decayed.weight, free.weight - lr * wd * t64(W0))
    assert torch.equal(decayed.bias, free.bias)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_coupled_decay_changes_weights_and_skips_biases(optimizer):
    params = {"optimizer": optimizer, "lr": 0.05, "weight_decay_mode": "coupled"}
    decayed, free = stepped({**params, "weight_decay": 0.3}), stepped(params)
    assert not torch.allclose(decayed.weight, free.weight)
    assert torch.equal(decayed.bias, free.bias)


def test_auto_mode_is_decoupled_for_adamw_only():
    assert [decay_is_decoupled(resolve_params({"optimizer": o})) for o in OPTIMIZERS] == [
        o == "adamw" for o in OPTIMIZERS
    ]
    adamw = build_optimizer(tiny_layer(), resolve_params({"optimizer": "adamw"}))
    assert type(adamw) is torch.optim.AdamW
    # adamw with coupled decay is Adam with an L2 gradient term, step for step.
    base = {"lr": 0.01, "weight_decay": 0.1, "weight_decay_mode": "coupled"}
    a, b = stepped({**base, "optimizer": "adamw"}, 3), stepped({**base, "optimizer": "adam"}, 3)
    assert torch.equal(a.weight, b.weight)


# ---- L1, max-norm, gradient clipping -------------------------------------------------------------


def train_digits(params: dict, epochs: int, model=SMALL_MLP, *, l1=0.0, max_norm=0.0, check=None):
    """A bare training loop on digits with the trainer's pieces (fit does not return the net)."""
    ds = load_dataset(DIGITS)
    torch.manual_seed(0)
    net = build_model(model, {}, ds.input_shape, ds.num_classes)
    optimizer = build_optimizer(net, resolve_params(params))
    weights = weight_tensors(net)
    order_gen = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        order = torch.randperm(len(ds.train_y), generator=order_gen)
        for start in range(0, len(order), BATCH_SIZE):
            idx = order[start : start + BATCH_SIZE]
            loss = F.cross_entropy(net(ds.train_x[idx]), ds.train_y[idx])
            if l1:
                loss = loss + l1 * l1_penalty(weights)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if max_norm:
                max_norm_(weights, max_norm)
            if check is not None:
                check(weights)
    return net, weights


def test_l1_drives_more_weights_to_zero_than_no_penalty():
    sgd = {"optimizer": "sgd", "lr": 0.1, "momentum": 0.0}
    _, plain = train_digits(sgd, epochs=5)
    _, sparse = train_digits(sgd, epochs=5, l1=1e-2)

    def near_zero(weights):
        return torch.cat([w.detach().flatten() for w in weights]).abs().lt(1e-3).float().mean()

    assert near_zero(sparse) > 10 * near_zero(plain)
    assert near_zero(sparse) > 0.2


def test_l1_penalty_is_the_sum_of_absolute_weights():
    weights = [torch.tensor([[1.0, -2.0]], requires_grad=True), torch.tensor([[[[-0.5]]]])]
    penalty = l1_penalty(weights)
    assert penalty.item() == 3.5
    penalty.backward()
    assert weights[0].grad.tolist() == [[1.0, -1.0]]  # sign(w)


def test_max_norm_projects_long_rows_and_leaves_short_ones():
    w = torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]])
    conv = torch.randn(4, 2, 3, 3) * torch.tensor([0.01, 1.0, 10.0, 0.1]).view(4, 1, 1, 1)
    before = conv.clone()
    max_norm_([w, conv], 1.0)
    assert torch.allclose(w, torch.tensor([[0.6, 0.8], [0.3, 0.4], [0.0, 0.0]]))
    norms = conv.flatten(1).norm(dim=1)
    assert torch.all(norms <= 1.0)
    assert torch.allclose(norms[1:3], torch.ones(2), atol=1e-6)  # the long filters, on the ball
    assert torch.equal(conv[[0, 3]], before[[0, 3]])  # the short filters, untouched


@pytest.mark.parametrize("model", [SMALL_MLP, ModelSettings(kind="cnn", channels=(8,))], ids=str)
def test_max_norm_keeps_every_row_norm_within_c_while_training(model):
    c, norms_seen = 0.5, []

    def check(weights):
        for w in weights:
            norms = w.detach().flatten(1).norm(dim=1)
            norms_seen.append(norms.max().item())
            assert torch.all(norms <= c), norms.max()

    sgd = {"optimizer": "sgd", "lr": 0.2, "momentum": 0.9}
    train_digits(sgd, epochs=1, model=model, max_norm=c, check=check)
    assert max(norms_seen) > 0.999 * c  # the constraint was active, not vacuous
    # Without it the same training grows rows past c.
    net, weights = train_digits(sgd, epochs=1, model=model)
    assert max(w.detach().flatten(1).norm(dim=1).max().item() for w in weights) > 2 * c
    # Biases are not constrained.
    assert all(p.ndim < 2 for p in net.parameters() if not any(p is w for w in weights))


def test_grad_clip_rescales_the_global_norm_and_keeps_the_direction():
    ds = load_dataset(DIGITS)
    torch.manual_seed(0)
    net = build_model(SMALL_MLP, {}, ds.input_shape, ds.num_classes)
    F.cross_entropy(net(ds.train_x[:64]), ds.train_y[:64]).backward()
    grads = [p.grad.clone() for p in net.parameters()]
    total = torch.cat([g.flatten() for g in grads]).norm()
    nn.utils.clip_grad_norm_(list(net.parameters()), total.item() / 4)
    clipped = [p.grad for p in net.parameters()]
    assert torch.cat([g.flatten() for g in clipped]).norm().item() == pytest.approx(
        total.item() / 4, rel=1e-5
    )
    assert all(torch.allclose(c, g / 4, atol=1e-7) for c, g in zip(clipped, grads, strict=True))


# ---- every option changes a real run -------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"l1": 1e-3},
        {"max_norm": 0.5},
        {"grad_clip": 0.05},
        {"weight_decay": 0.5, "weight_decay_mode": "decoupled"},
        {"weight_decay": 0.5, "weight_decay_mode": "coupled"},
        {"eps": 1e-2},
        {"beta1": 0.5},
        {"beta2": 0.9},
        {"warmup_epochs": 1.0},
        *({"lr_schedule": s} for s in LR_SCHEDULES if s not in ("constant", "plateau")),
    ],
    ids=str,
)
def test_every_option_changes_the_run(params):
    base = {"lr": 3e-3}
    assert comparable(run({**base, **params}).history) != comparable(run(base).history)


@pytest.mark.parametrize(
    "optimizer, params",
    [("sgd", {"momentum": 0.5}), ("sgd", {"nesterov": True}), ("rmsprop", {"rho": 0.5}),
     ("rmsprop", {"momentum": 0.5}), ("adagrad", {"initial_accumulator": 1.0}),
     ("adadelta", {"rho": 0.5}), ("nadam", {"beta1": 0.5}), ("radam", {"beta2": 0.9})],
)  # fmt: skip
def test_optimizer_hyperparameters_change_the_run(optimizer, params):
    base = {"optimizer": optimizer, "lr": 1.0 if optimizer == "adadelta" else 1e-2}
    if "nesterov" in params:  # Nesterov needs momentum, which PyTorch's SGD leaves at 0
        base["momentum"] = 0.9
    assert comparable(run({**base, **params}, epochs=1).history) != comparable(
        run(base, epochs=1).history
    )


def test_adam_decay_modes_differ_in_a_real_run():
    base = {"optimizer": "adam", "lr": 3e-3, "weight_decay": 0.05}
    coupled = run({**base, "weight_decay_mode": "coupled"})
    decoupled = run({**base, "weight_decay_mode": "decoupled"})
    assert comparable(coupled.history) != comparable(decoupled.history)


def test_a_grad_clip_never_reached_changes_nothing():
    assert comparable(run({"grad_clip": 1e9}).history) == comparable(run({}).history)


# ---- learning-rate schedules ---------------------------------------------------------------------

# The documented sequences, written out independently of the trainer's code.
GAMMA, PERIOD, MULT = 0.7, 2, 2


def documented(schedule: str, epoch: int, epochs: int) -> float:
    if schedule in ("constant", "plateau"):
        return 1.0
    if schedule == "cosine":
        return (1 + math.cos(math.pi * epoch / epochs)) / 2
    if schedule == "step":
        return 1.0 if epoch < epochs / 2 else 0.1 if epoch < 3 * epochs / 4 else 0.01
    if schedule == "exponential":
        return GAMMA**epoch
    if schedule == "sgdr":
        # Cycles of 2, 4, 8 epochs: [0, 1], [2..5], [6..13].
        start, length = [(0, 2), (0, 2), (2, 4), (2, 4), (2, 4), (2, 4), (6, 8), (6, 8)][epoch]
        return (1 + math.cos(math.pi * (epoch - start) / length)) / 2
    raise AssertionError(schedule)


def onecycle(step: int, total: int) -> float:
    p, low = step / total, 1 / 25
    if p < 0.3:
        return low + (1 - low) * (1 - math.cos(math.pi * p / 0.3)) / 2
    end = low / 1e4
    return end + (1 - end) * (1 + math.cos(math.pi * (p - 0.3) / 0.7)) / 2


SCHEDULE_PARAMS = {"lr_gamma": GAMMA, "sgdr_period": PERIOD, "sgdr_mult": MULT}


def lrs_per_step(params: dict, epochs: int, steps: int, improved=None) -> list[list[float]]:
    """The lr each step ran with, per epoch, driving LrSchedule as the training loop does."""
    optimizer = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=params["lr"])
    schedule = LrSchedule(optimizer, resolve_params(params), max_epochs=epochs,
                          steps_per_epoch=steps)  # fmt: skip
    seen = []
    for epoch in range(epochs):
        seen.append([])
        for _ in range(steps):
            seen[-1].append(optimizer.param_groups[0]["lr"])
            schedule.after_step()
        schedule.after_epoch(improved=True if improved is None else improved[epoch])
    return seen


@pytest.mark.parametrize("schedule", ["constant", "cosine", "step", "exponential", "sgdr"])
def test_epoch_schedules_follow_their_formula_and_hold_within_an_epoch(schedule):
    lr, epochs = 0.2, 8
    seen = lrs_per_step({"lr": lr, "lr_schedule": schedule, **SCHEDULE_PARAMS}, epochs, steps=3)
    expected = [lr * documented(schedule, e, epochs) for e in range(epochs)]
    assert [steps[0] for steps in seen] == pytest.approx(expected, rel=1e-12)
    assert all(len(set(steps)) == 1 for steps in seen)


def test_sgdr_restarts_where_the_cycles_end():
    seen = lrs_per_step({"lr": 1.0, "lr_schedule": "sgdr", **SCHEDULE_PARAMS}, 8, steps=1)
    assert [i for i, s in enumerate(seen) if s[0] == 1.0] == [0, 2, 6]


def test_onecycle_is_stepped_per_batch():
    lr, epochs, steps = 0.5, 4, 5
    seen = lrs_per_step({"lr": lr, "lr_schedule": "onecycle"}, epochs, steps)
    flat = [x for epoch in seen for x in epoch]
    total = epochs * steps
    assert flat == pytest.approx([lr * onecycle(s, total) for s in range(total)], rel=1e-12)
    assert flat[0] == pytest.approx(lr / 25)
    peak = flat.index(max(flat))
    assert peak == 6 and flat[peak] == pytest.approx(lr)  # step 0.3 * 20
    assert all(a < b for a, b in itertools.pairwise(flat[: peak + 1]))
    assert all(a > b for a, b in itertools.pairwise(flat[peak:]))


def test_plateau_reduces_after_patience_epochs_without_a_new_best():
    improved = [True, False, False, False, True, False, False, False, False, False, False, True]
    params = {"lr": 1.0, "lr_schedule": "plateau", "plateau_patience": 3, "plateau_factor": 0.5}
    seen = lrs_per_step(params, len(improved), steps=2, improved=improved)
    # Reductions after epochs 3, 7 and 10 (0-based): 3 epochs without a new best each time.
    expected = [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125]
    assert [steps[0] for steps in seen] == expected


@pytest.mark.parametrize("schedule", ["constant", "cosine", "onecycle"])
def test_warmup_ramps_linearly_per_step_and_composes(schedule):
    lr, epochs, steps, warmup = 0.1, 4, 4, 1.5
    params = {"lr": lr, "lr_schedule": schedule, "warmup_epochs": warmup}
    flat = [x for epoch in lrs_per_step(params, epochs, steps) for x in epoch]
    w = round(warmup * steps)  # 6 steps

    def base(s):
        if schedule == "onecycle":
            return onecycle(s, epochs * steps)
        return documented(schedule, s // steps, epochs)

    expected = [lr * base(s) * min(1.0, (s + 1) / w) for s in range(epochs * steps)]
    assert flat == pytest.approx(expected, rel=1e-12)
    assert flat[0] == pytest.approx(lr * base(0) / w)


def test_lr_factor_rejects_an_unknown_schedule():
    with pytest.raises(ValueError, match="`lr_schedule` must be one of"):
        lr_factor("linear", 0, 10)


# plateau depends on the run's objective: see test_fit_plateau_follows_the_objective.
@pytest.mark.parametrize("schedule", [s for s in LR_SCHEDULES if s != "plateau"])
def test_fit_reports_each_schedule_at_the_start_of_each_epoch(schedule):
    lr, epochs, steps = 0.01, 8, steps_per_epoch()
    params = {"lr": lr, "lr_schedule": schedule, **SCHEDULE_PARAMS}
    lrs = [r.lr for r in run(params, epochs=epochs).history]
    if schedule == "onecycle":
        expected = [lr * onecycle(e * steps, epochs * steps) for e in range(epochs)]
    else:
        expected = [lr * documented(schedule, e, epochs) for e in range(epochs)]
    assert lrs == pytest.approx(expected, rel=1e-12)


def test_fit_plateau_follows_the_objective():
    # Maximising the training loss, which falls every epoch: no epoch after the first is a new
    # best, so with patience 2 the lr halves after epochs 3 and 5.
    params = {"lr": 0.01, "lr_schedule": "plateau", "plateau_patience": 2, "plateau_factor": 0.5}
    result = run(params, epochs=6, objective="train_loss", direction="maximize")
    losses = [r.train_loss for r in result.history]
    assert all(a > b for a, b in itertools.pairwise(losses))  # the premise
    assert [r.lr for r in result.history] == pytest.approx([0.01] * 3 + [0.005] * 2 + [0.0025])


def test_fit_warmup_reports_the_first_step_of_each_epoch():
    steps = steps_per_epoch()
    lrs = [r.lr for r in run({"lr": 0.01, "warmup_epochs": 2.5}, epochs=4).history]
    w = round(2.5 * steps)
    assert lrs == pytest.approx([0.01 * min(1, (e * steps + 1) / w) for e in range(4)])


# ---- early stopping restores the best epoch ------------------------------------------------------


def test_early_stopping_returns_the_best_epochs_weights():
    # A large lr makes validation loss bounce; take the first seed whose best epoch lies strictly
    # inside the run (seed 1 at the time of writing), so restoring is neither trivial nor last.
    stopping = EarlyStopping(patience=2, restore_best_weights=True)
    for seed in range(6):
        kwargs = {"objective": "val_loss", "direction": "minimize", "seed": seed}
        result = run({"lr": 3e-2}, epochs=12, early_stopping=stopping, **kwargs)
        if 1 < result.best_epoch < result.epochs_run < 12:
            break
    else:
        pytest.fail("no seed put the best epoch inside an early-stopped run")
    assert result.history[-1].stopped_early

    # A run cut at the best epoch ends with the same weights (runs are deterministic); the last
    # epoch's weights give other test metrics.
    final = EarlyStopping(restore_best_weights=False)
    cut = run({"lr": 3e-2}, epochs=result.best_epoch, early_stopping=final, **kwargs)
    last = run({"lr": 3e-2}, epochs=result.epochs_run, early_stopping=final, **kwargs)
    assert (result.test_acc, result.test_loss) == (cut.test_acc, cut.test_loss)
    assert result.test_loss != last.test_loss


# ---- the catalog ---------------------------------------------------------------------------------


NEW_ROWS = ("eps", "rho", "initial_accumulator", "lr_gamma", "plateau_factor",
            "plateau_patience", "sgdr_period", "sgdr_mult", "warmup_epochs",
            "weight_decay_mode", "l1", "max_norm", "grad_clip")  # fmt: skip


@pytest.mark.parametrize("name", NEW_ROWS)
def test_new_rows_are_in_the_catalog_and_accept_their_default(name):
    row = HYPERPARAMETERS[name]
    assert row.accepts(row.default) and row.doc


@pytest.mark.parametrize("name", ["l1", "max_norm", "grad_clip", "warmup_epochs", "weight_decay"])
def test_penalties_and_warmup_are_off_by_default(name):
    row = HYPERPARAMETERS[name]
    assert row.default == 0 and row.accepts(0.0) and not row.accepts(-1e-9)
