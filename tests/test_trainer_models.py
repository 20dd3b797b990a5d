"""Tests of the trainer's networks: init schemes, activations, norms, the dropout family, models.

Every option is checked by what it does to real tensors (a variance, a zeroed share, a module
order), so a no-op version of any of them fails. Training runs use the bundled digits.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sweeplab.trainer import (
    ACTIVATIONS,
    HYPERPARAMETERS,
    INIT_SCHEMES,
    MODELS,
    DataSettings,
    FitSettings,
    ModelSettings,
    build_model,
    fit,
    resolve_params,
)
from sweeplab.trainer._catalog import NORMS
from sweeplab.trainer._init import apply_init
from sweeplab.trainer._layers import (
    DropConnectLinear,
    DropPath,
    GaussianNoise,
    Residual,
    depth_rates,
    make_norm,
)

DIGITS = (1, 8, 8)
# Models small enough that a forward pass costs milliseconds; resnet18 is torchvision's own.
MODEL = {
    "mlp": ModelSettings(kind="mlp", hidden=(32, 16)),
    "cnn": ModelSettings(kind="cnn", channels=(8, 16)),
    "resnet9": ModelSettings(kind="resnet9", channels=(8, 16, 16, 32)),
    "resnet18": ModelSettings(kind="resnet18"),
}
# The options that make training random, each at a rate where its effect is plain to see.
STOCHASTIC = {
    "input_dropout": 0.2,
    "dropout": 0.5,
    "spatial_dropout": 0.3,
    "dropconnect": 0.3,
    "stochastic_depth": 0.5,
    "hidden_noise_std": 0.5,
}
NOT_APPLICABLE = {
    ("mlp", "spatial_dropout"),
    ("mlp", "stochastic_depth"),
    ("cnn", "stochastic_depth"),
}
NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)
WEIGHTED = (nn.Linear, nn.Conv2d)


def build(kind: str, params: dict | None = None, shape=DIGITS, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(MODEL[kind], params or {}, shape, 10)


def leaves(net: nn.Module) -> list[nn.Module]:
    """The network's modules without children, in the order a Sequential runs them."""
    return [m for m in net.modules() if not list(m.children())]


def twins(kind: str, params: dict) -> tuple[nn.Module, nn.Module]:
    """The net with ``params`` and the same net without its stochastic options, sharing weights."""
    net = build(kind, params)
    plain = build(kind, {k: v for k, v in params.items() if k not in STOCHASTIC})
    for mine, theirs in zip(plain.parameters(), net.parameters(), strict=True):
        mine.data.copy_(theirs.data)
    return net, plain


# ---- init: each scheme's variance is its formula -------------------------------------------------

GAIN_SQUARED = {
    "relu": 2.0,
    "leaky_relu": 2.0 / (1 + 0.01**2),
    "prelu": 2.0 / (1 + 0.25**2),
    "tanh": (5 / 3) ** 2,
    "sigmoid": 1.0,
    "gelu": 2.0,
    "elu": 2.0,
    "selu": 1.0,
    "silu": 2.0,
}
UNIFORM = {"uniform_fan_in", "xavier_uniform", "kaiming_uniform"}


def expected_variance(scheme: str, weight: torch.Tensor, activation: str, std: float) -> float:
    rows, cols = weight.shape[0], weight[0].numel()
    receptive = weight[0, 0].numel()
    fan_in, fan_out = cols, rows * receptive
    return {
        "uniform_fan_in": 1 / (3 * fan_in),
        "xavier_uniform": 2 / (fan_in + fan_out),
        "xavier_normal": 2 / (fan_in + fan_out),
        "kaiming_uniform": GAIN_SQUARED[activation] / fan_in,
        "kaiming_normal": GAIN_SQUARED[activation] / fan_in,
        "lecun_normal": 1 / fan_in,
        "orthogonal": 1 / max(rows, cols),
        "normal": std**2,
    }[scheme]


@pytest.mark.parametrize(
    "layer", [nn.Linear(600, 300), nn.Conv2d(64, 96, 3)], ids=["linear", "conv"]
)
@pytest.mark.parametrize("scheme", [s for s in INIT_SCHEMES if s != "default"])
def test_init_variances_match_their_formulas(scheme, layer):
    torch.manual_seed(0)
    apply_init(layer, scheme, "tanh", std=0.05)
    w = layer.weight.detach()
    variance = expected_variance(scheme, w, "tanh", 0.05)
    assert w.var().item() == pytest.approx(variance, rel=0.03)
    assert abs(w.mean().item()) < 4 * math.sqrt(variance / w.numel())
    assert torch.count_nonzero(layer.bias) == 0
    # Uniform and normal with the same variance differ in their tails: a uniform never passes
    # sqrt(3) standard deviations, a normal passes it for 8% of its draws.
    bound = math.sqrt(3 * variance) * (1 + 1e-5)
    if scheme in UNIFORM:
        assert w.abs().max().item() <= bound
    elif scheme != "orthogonal":
        assert w.abs().max().item() > bound
    else:
        flat = w.reshape(len(w), -1)
        assert torch.allclose(flat @ flat.T, torch.eye(len(w)), atol=1e-4)


@pytest.mark.parametrize("scheme", ["kaiming_uniform", "kaiming_normal"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_kaiming_variance_uses_the_activation_gain(activation, scheme):
    torch.manual_seed(0)
    layer = nn.Linear(500, 400)
    apply_init(layer, scheme, activation)
    assert layer.weight.var().item() == pytest.approx(GAIN_SQUARED[activation] / 500, rel=0.03)


@pytest.mark.parametrize("kind", MODELS)
def test_init_reaches_every_weight_of_every_model(kind):
    net = build(kind, {"init": "normal", "init_std": 0.3})
    layers = [m for m in net.modules() if isinstance(m, WEIGHTED)]
    assert layers
    for layer in layers:
        assert layer.weight.std().item() == pytest.approx(0.3, rel=0.25)
        assert layer.bias is None or torch.count_nonzero(layer.bias) == 0
    # Norm layers are not weights that carry signal variance: they keep their (1, 0) start.
    for norm in (m for m in net.modules() if isinstance(m, NORM_TYPES)):
        assert torch.all(norm.weight == 1) and torch.all(norm.bias == 0)


def test_init_std_sets_the_spread_of_normal_init():
    narrow = build("mlp", {"init": "normal", "init_std": 0.01})
    wide = build("mlp", {"init": "normal", "init_std": 0.1})
    assert narrow[1].weight.std().item() == pytest.approx(0.01, rel=0.1)
    assert wide[1].weight.std().item() == pytest.approx(0.1, rel=0.1)


# ---- activations ---------------------------------------------------------------------------------

REFERENCE = {
    "relu": F.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "gelu": F.gelu,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.01),
    "prelu": lambda x: F.leaky_relu(x, 0.25),  # PReLU's learned slope starts at 0.25
    "elu": F.elu,
    "selu": F.selu,
    "silu": F.silu,
}


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_computes_its_function(activation):
    net = build("mlp", {"activation": activation})
    x = torch.linspace(-4, 4, 81).reshape(81, 1)
    hidden = net[2]
    assert not isinstance(hidden, nn.Linear)
    assert torch.allclose(hidden(x), REFERENCE[activation](x), atol=1e-6)


@pytest.mark.parametrize("kind", ["cnn", "resnet9", "resnet18"])
def test_conv_nets_use_the_chosen_activation_everywhere(kind):
    net = build(kind, {"activation": "selu"})
    assert any(isinstance(m, nn.SELU) for m in net.modules())
    assert not any(isinstance(m, nn.ReLU) for m in net.modules())


def test_prelu_slope_is_learned():
    net = build("mlp", {"activation": "prelu"})
    slopes = [m.weight for m in net.modules() if isinstance(m, nn.PReLU)]
    assert len(slopes) == 2
    F.cross_entropy(net(torch.randn(16, *DIGITS)), torch.arange(16) % 10).backward()
    assert all(s.grad is not None and s.grad.abs().item() > 0 for s in slopes)


# ---- normalisation: which layer, where, over which axis -------------------------------------------


@pytest.mark.parametrize("position", ["before", "after"])
@pytest.mark.parametrize("norm", ["batch", "layer", "group"])
@pytest.mark.parametrize("kind", ["mlp", "cnn", "resnet9"])
def test_norm_kind_and_position(kind, norm, position):
    net = build(kind, {"norm": norm, "norm_position": position, "group_norm_groups": 4})
    order = [m for m in leaves(net) if isinstance(m, (*WEIGHTED, *NORM_TYPES, nn.ReLU))]
    norms = [m for m in order if isinstance(m, NORM_TYPES)]
    # One norm per hidden layer: every activation has one.
    assert len(norms) == sum(isinstance(m, nn.ReLU) for m in order) > 0
    for i, m in enumerate(order):
        if isinstance(m, NORM_TYPES):
            if position == "before":
                assert isinstance(order[i - 1], WEIGHTED) and isinstance(order[i + 1], nn.ReLU)
            else:
                assert isinstance(order[i - 1], nn.ReLU)
    spatial = kind != "mlp"
    expected = {
        "batch": nn.BatchNorm2d if spatial else nn.BatchNorm1d,
        "layer": nn.GroupNorm if spatial else nn.LayerNorm,
        "group": nn.GroupNorm,
    }[norm]
    assert all(type(m) is expected for m in norms)
    if expected is nn.GroupNorm:
        assert {m.num_groups for m in norms} == {1 if norm == "layer" else 4}


@pytest.mark.parametrize("norm", ["batch", "layer", "group"])
def test_mlp_norms_normalise_over_their_axis(norm):
    net = build("mlp", {"norm": norm, "group_norm_groups": 4})
    net.train()
    outputs = []
    norm_layer = next(m for m in net.modules() if isinstance(m, NORM_TYPES))
    norm_layer.register_forward_hook(lambda _m, _i, out: outputs.append(out.detach()))
    net(torch.randn(256, *DIGITS) * 3 + 1)
    z = outputs[0]  # (256 examples, 32 features)
    if norm == "batch":
        groups = z.T  # one row per feature: statistics over the batch
    elif norm == "layer":
        groups = z  # one row per example: statistics over its features
    else:
        groups = z.reshape(256 * 4, 8)  # one row per (example, group of 8 features)
    assert torch.allclose(groups.mean(dim=1), torch.zeros(len(groups)), atol=1e-4)
    assert torch.allclose(groups.var(dim=1, unbiased=False), torch.ones(len(groups)), atol=1e-2)


def test_norm_default_is_the_architectures_own():
    assert not any(isinstance(m, NORM_TYPES) for m in build("mlp").modules())
    assert not any(isinstance(m, NORM_TYPES) for m in build("cnn").modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in build("resnet9").modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in build("resnet18").modules())


@pytest.mark.parametrize("kind", ["resnet9", "resnet18"])
def test_residual_nets_can_drop_or_swap_their_norm(kind):
    assert not any(isinstance(m, NORM_TYPES) for m in build(kind, {"norm": "none"}).modules())
    grouped = build(kind, {"norm": "group", "group_norm_groups": 8})
    norms = [m for m in grouped.modules() if isinstance(m, NORM_TYPES)]
    assert norms and all(isinstance(m, nn.GroupNorm) and m.num_groups == 8 for m in norms)


def test_group_norm_groups_fall_back_to_a_divisor_of_the_width():
    assert make_norm("group", 120, spatial=False, groups=16).num_groups == 15
    assert make_norm("group", 10, spatial=True, groups=64).num_groups == 10
    assert make_norm("none", 10, spatial=True) is None
    # Samplers may hand an int hyperparameter over as a whole float.
    net = build("mlp", {"norm": "group", "group_norm_groups": 4.0})
    assert {m.num_groups for m in net.modules() if isinstance(m, nn.GroupNorm)} == {4}


def test_batch_norm_makes_the_layer_before_it_drop_its_bias():
    before = build("mlp", {"norm": "batch"})
    after = build("mlp", {"norm": "batch", "norm_position": "after"})
    layer = build("mlp", {"norm": "layer"})
    assert [m.bias is None for m in before.modules() if isinstance(m, nn.Linear)] == [
        True, True, False,
    ]  # fmt: skip
    assert all(m.bias is not None for m in after.modules() if isinstance(m, nn.Linear))
    assert all(m.bias is not None for m in layer.modules() if isinstance(m, nn.Linear))


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("norm", NORMS)
def test_every_norm_runs_on_every_model(kind, norm):
    net = build(kind, {"norm": norm, "norm_position": "after"})
    out = net(torch.randn(4, *DIGITS))
    assert out.shape == (4, 10) and torch.isfinite(out).all()


# ---- the dropout family and noise: exact in eval, random in train ----------------------------------


@pytest.mark.parametrize(
    "kind, option",
    [(k, o) for k in MODELS for o in STOCHASTIC if (k, o) not in NOT_APPLICABLE],
)
def test_each_stochastic_option_is_exact_in_eval_and_random_in_train(kind, option):
    net, plain = twins(kind, {option: STOCHASTIC[option]})
    x = torch.randn(8, *DIGITS)
    net.eval(), plain.eval()
    with torch.no_grad():
        assert torch.equal(net(x), plain(x))
        net.train()
        first, second = net(x), net(x)
    assert not torch.equal(first, second)


@pytest.mark.parametrize("kind, option", sorted(NOT_APPLICABLE))
def test_options_that_do_not_apply_are_ignored(kind, option):
    assert str(build(kind, {option: STOCHASTIC[option]})) == str(build(kind))


def hook_io(module: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    module.register_forward_hook(lambda _m, i, o: seen.append((i[0].detach(), o.detach())))
    return seen


def test_dropout_is_off_in_eval_and_scales_in_train():
    net = build_model(
        ModelSettings(kind="mlp", hidden=(512,)),
        {"input_dropout": 0.2, "dropout": 0.5},
        DIGITS,
        10,
    )
    inputs, hidden = [m for m in net if isinstance(m, nn.Dropout)]
    assert net[1] is inputs  # right after Flatten, before the first Linear
    seen_in, seen_hidden = hook_io(inputs), hook_io(hidden)
    x = torch.rand(64, *DIGITS) + 0.1  # no zeros of its own
    net.train()
    net(x)
    for (before, after), rate in [(seen_in[0], 0.2), (seen_hidden[0], 0.5)]:
        live = before != 0
        dropped = (after == 0) & live
        assert dropped.sum().item() / live.sum().item() == pytest.approx(rate, abs=0.03)
        kept = (after != 0) & live
        assert torch.allclose(after[kept], before[kept] / (1 - rate))
    net.eval()
    net(x)
    assert all(torch.equal(a, b) for a, b in (seen_in[1], seen_hidden[1]))
    # The classifier is linear in the hidden dropout's output: averaged over many masks the
    # training output is the eval output.
    net[1].p = 0.0  # input dropout off: its mask passes through a non-linearity
    with torch.no_grad():
        expected = net(x[:1])
        net.train()
        mean = net(x[:1].expand(20000, *DIGITS)).mean(dim=0, keepdim=True)
    assert torch.allclose(mean, expected, atol=0.02)


def test_spatial_dropout_zeroes_whole_feature_maps():
    net = build_model(
        ModelSettings(kind="cnn", channels=(32, 32)), {"spatial_dropout": 0.5}, (1, 28, 28), 10
    )
    drops = [m for m in net if isinstance(m, nn.Dropout2d)]
    assert len(drops) == 2
    seen = hook_io(drops[0])
    net.train()
    net(torch.randn(64, 1, 28, 28))
    before, after = seen[0]
    live = before.flatten(2).abs().sum(dim=2) > 0  # (example, channel) maps with any signal
    zeroed = after.flatten(2).abs().sum(dim=2) == 0
    assert (zeroed & live).sum().item() / live.sum().item() == pytest.approx(0.5, abs=0.06)
    kept = ~zeroed
    assert torch.allclose(after[kept], before[kept] * 2)


def test_dropconnect_drops_weights_not_units():
    torch.manual_seed(0)
    layer = DropConnectLinear(60, 50, p=0.3)
    eye = torch.eye(60)
    layer.train()
    # Row i of the output is column i of the effective weight plus the bias: one mask per batch.
    effective = (layer(eye) - layer.bias).T.detach()
    dropped = effective == 0
    assert dropped.float().mean().item() == pytest.approx(0.3, abs=0.03)
    assert torch.allclose(effective[~dropped], layer.weight[~dropped].detach() / 0.7, atol=1e-6)
    assert not dropped.all(dim=1).any()  # units survive: only their weights are dropped
    x = torch.randn(1, 60)
    with torch.no_grad():
        mean = torch.stack([layer(x) for _ in range(4000)]).mean(dim=0)
        layer.eval()
        exact = layer(x)
    assert torch.equal(exact, F.linear(x, layer.weight, layer.bias))
    assert torch.allclose(mean, exact, atol=0.03)


@pytest.mark.parametrize("kind", MODELS)
def test_dropconnect_replaces_every_linear_layer(kind):
    net = build(kind, {"dropconnect": 0.25})
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert linears and all(isinstance(m, DropConnectLinear) and m.p == 0.25 for m in linears)


def test_stochastic_depth_skips_whole_branches_per_example():
    torch.manual_seed(0)
    branch = nn.Linear(6, 6)
    block = Residual(branch, drop=0.25)
    x = torch.randn(1, 6).expand(20000, 6)
    with torch.no_grad():
        f = branch(x[:1])
        out = block(x)
        skipped = (out == x).all(dim=1)
        assert skipped.float().mean().item() == pytest.approx(0.25, abs=0.02)
        assert torch.allclose(out[~skipped], x[~skipped] + f / 0.75, atol=1e-6)
        assert torch.allclose(out.mean(dim=0, keepdim=True), x[:1] + f, atol=0.02)
        block.eval()
        assert torch.equal(block(x[:1]), x[:1] + f)


@pytest.mark.parametrize("kind, blocks", [("resnet9", 2), ("resnet18", 8)])
def test_stochastic_depth_grows_linearly_with_depth(kind, blocks):
    net = build(kind, {"stochastic_depth": 0.4})
    rates = [m.p for m in net.modules() if isinstance(m, DropPath)]
    assert rates == pytest.approx([0.4 * (i + 1) / blocks for i in range(blocks)])
    assert depth_rates(0.4, blocks) == pytest.approx(rates)


def test_hidden_noise_is_gaussian_in_train_and_absent_in_eval():
    torch.manual_seed(0)
    noise = GaussianNoise(0.5)
    x = torch.randn(100000)
    delta = noise(x) - x
    assert delta.std().item() == pytest.approx(0.5, rel=0.02)
    assert abs(delta.mean().item()) < 0.01
    assert torch.equal(noise.eval()(x), x)
    net = build("mlp", {"hidden_noise_std": 0.5})
    kinds = [type(m) for m in net]
    assert kinds == [
        nn.Flatten, nn.Linear, nn.ReLU, GaussianNoise, nn.Linear, nn.ReLU, GaussianNoise, nn.Linear,
    ]  # fmt: skip


# ---- models --------------------------------------------------------------------------------------


def test_default_mlp_is_unchanged():
    # Same modules in the same order as before these options existed, so old seeds still give
    # the same weights.
    net = build("mlp")
    torch.manual_seed(0)
    old = nn.Sequential(
        nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 10)
    )
    assert str(net) == str(old)
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), old.parameters(), strict=True))


def test_mlp_takes_any_widths():
    net = build_model(ModelSettings(kind="mlp", hidden=(120, 80)), {}, (1, 28, 28), 10)
    shapes = [(m.in_features, m.out_features) for m in net if isinstance(m, nn.Linear)]
    assert shapes == [(784, 120), (120, 80), (80, 10)]


@pytest.mark.parametrize("shape, pools", [((1, 8, 8), 3), ((1, 28, 28), 3), ((3, 32, 32), 3)])
def test_resnet9_layout_and_image_sizes(shape, pools):
    net = build_model(ModelSettings(kind="resnet9", channels=(64, 128, 256, 512)), {}, shape, 10)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 8  # Page's ResNet-9: 8 conv layers and 1 linear
    assert [m.out_channels for m in convs] == [64, 128, 128, 128, 256, 512, 512, 512]
    assert convs[0].in_channels == shape[0]
    assert sum(isinstance(m, Residual) for m in net) == 2
    assert sum(isinstance(m, nn.MaxPool2d) for m in net) == pools
    assert isinstance(net[-4], nn.AdaptiveMaxPool2d)
    net.eval()
    with torch.no_grad():
        assert net(torch.randn(2, *shape)).shape == (2, 10)


def test_resnet9_with_one_width_is_stem_and_head():
    net = build_model(ModelSettings(kind="resnet9", channels=(16,)), {}, DIGITS, 10)
    assert sum(isinstance(m, nn.Conv2d) for m in net.modules()) == 1
    assert net(torch.randn(2, *DIGITS)).shape == (2, 10)


def test_invalid_choices_are_rejected():
    bad = [
        ({"norm": "instance"}, "`norm` must be one of"),
        ({"norm_position": "middle"}, "`norm_position` must be one of"),
        ({"dropout": 1.0}, r"`dropout` must be a float in \[0, 1\)"),
        ({"group_norm_groups": 0}, "`group_norm_groups` must be an int >= 1"),
        ({"hidden_noise_std": -0.1}, "`hidden_noise_std` must be a float >= 0"),
        ({"init_std": 0.0}, "`init_std` must be a float > 0"),
        ({"init": "he"}, "`init` must be one of"),
    ]
    for params, message in bad:
        with pytest.raises(ValueError, match=message):
            build_model(MODEL["mlp"], params, DIGITS, 10)


def test_new_options_default_to_off():
    hp = resolve_params({})
    assert hp["init"] == "default" and hp["norm"] == "default"
    for name in STOCHASTIC:
        assert hp[name] == 0.0, name
    assert all(HYPERPARAMETERS[name].doc for name in (*STOCHASTIC, "norm", "init_std"))


# ---- real training ---------------------------------------------------------------------------------


def train(model: ModelSettings, params: dict, epochs: int) -> float:
    settings = FitSettings(max_epochs=epochs, seed=0, device="cpu")
    return fit(DataSettings(dataset="digits"), model, params, settings).history[-1].val_acc


def test_resnet9_learns_digits():
    model = ModelSettings(kind="resnet9", channels=(16, 32, 64))
    assert train(model, {"lr": 3e-3}, epochs=3) > 0.9


def test_mlp_trains_with_every_option_on():
    params = {
        "lr": 3e-3,
        "init": "lecun_normal",
        "activation": "selu",
        "norm": "layer",
        "norm_position": "after",
        "input_dropout": 0.1,
        "dropout": 0.2,
        "dropconnect": 0.1,
        "hidden_noise_std": 0.1,
    }
    assert train(ModelSettings(kind="mlp", hidden=(120, 80)), params, epochs=4) > 0.85


def test_residual_cnn_trains_with_every_option_on():
    params = {
        "lr": 3e-3,
        "init": "kaiming_normal",
        "activation": "prelu",
        "norm": "group",
        "group_norm_groups": 4,
        "spatial_dropout": 0.1,
        "stochastic_depth": 0.2,
        "dropconnect": 0.1,
        "hidden_noise_std": 0.05,
    }
    assert train(ModelSettings(kind="resnet9", channels=(16, 32, 64)), params, epochs=3) > 0.8
