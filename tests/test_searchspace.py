"""The declarative search space: validation, dependency order, define-by-run sampling, grids.

Every sampling test drives a real in-memory Optuna study with a seeded ``RandomSampler``, so the
values are the ones a study would store.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from typing import Any

import optuna
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sweeplab.searchspace import (
    TYPES,
    CategoricalParam,
    FixedParam,
    FloatParam,
    IntParam,
    NotGridError,
    SearchSpace,
    SpaceError,
    SubsetParam,
    grid,
    grid_size,
    parse_space,
    sample,
)

# One entry of every kind, three kinds of condition (single value, list of values, subset
# element) and a chain (`lookahead` needs `nesterov`, which exists only for sgd).
TABLE: dict[str, Any] = {
    "lookahead": {"type": "int", "low": 1, "high": 3, "when": {"nesterov": True}},
    "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    "optimizer": {"type": "categorical", "choices": ["sgd", "adam", "adamw"]},
    "momentum": {"type": "float", "low": 0.5, "high": 0.99, "when": {"optimizer": "sgd"}},
    "nesterov": {"type": "categorical", "choices": [False, True], "when": {"optimizer": "sgd"}},
    "beta2": {
        "type": "categorical",
        "choices": [0.99, 0.999],
        "when": {"optimizer": ["adam", "adamw"]},
    },
    "augment": {"type": "subset", "choices": ["mixup", "flip"]},
    "mixup_alpha": {"type": "float", "low": 0.1, "high": 1.0, "when": {"augment": "mixup"}},
    "aug_prob": {"type": "float", "low": 0.1, "high": 1.0, "when": {"augment": ["mixup", "flip"]}},
    "batch_size": {"type": "int", "low": 16, "high": 128, "step": 16},
    "dropout": {"type": "float", "low": 0.0, "high": 0.5, "step": 0.1},
    "epochs": 5,
    "hidden": {"type": "fixed", "value": [64, 32]},
}


def _study(seed: int = 0) -> optuna.Study:
    return optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))


def _sampled(
    space: SearchSpace, n: int, seed: int = 0
) -> list[tuple[optuna.trial.FrozenTrial, dict[str, Any]]]:
    """``n`` told trials and the configuration ``sample`` returned for each."""
    study = _study(seed)
    configs = []
    for _ in range(n):
        trial = study.ask()
        configs.append(sample(trial, space))
        study.tell(trial, 0.0)
    return list(zip(study.get_trials(deepcopy=False), configs, strict=True))


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    return parse_space(TABLE)


@pytest.fixture(scope="module")
def sampled(space: SearchSpace) -> list[tuple[optuna.trial.FrozenTrial, dict[str, Any]]]:
    return _sampled(space, 80)


# --- conditional parameters -------------------------------------------------------------------

CONDITIONS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "momentum": lambda c: c["optimizer"] == "sgd",
    "nesterov": lambda c: c["optimizer"] == "sgd",
    "beta2": lambda c: c["optimizer"] in ("adam", "adamw"),
    "mixup_alpha": lambda c: "mixup" in c["augment"],
    "aug_prob": lambda c: bool(c["augment"]),  # any of the listed elements
    "lookahead": lambda c: c["optimizer"] == "sgd" and c["nesterov"] is True,
}


@pytest.mark.parametrize("child", sorted(CONDITIONS))
def test_conditional_parameter_exists_exactly_when_its_condition_holds(child, sampled) -> None:
    holds = CONDITIONS[child]
    seen = set()
    for trial, config in sampled:
        assert (child in config) == holds(config), config
        # An inactive parameter is never asked of Optuna, so the sampler never models it.
        assert (child in trial.params) == holds(config), trial.params
        seen.add(holds(config))
    assert seen == {True, False}, "both branches must occur for the test to mean anything"


def test_unconditional_and_fixed_entries_are_always_present(sampled) -> None:
    for _, config in sampled:
        assert {"lr", "optimizer", "augment", "batch_size", "dropout"} <= set(config)
        assert config["epochs"] == 5
        assert config["hidden"] == [64, 32]


def test_a_false_condition_value_is_not_confused_with_absence() -> None:
    space = parse_space(
        {
            "flag": {"type": "categorical", "choices": [False, True]},
            "off_only": {"type": "int", "low": 0, "high": 3, "when": {"flag": False}},
        }
    )
    for _, config in _sampled(space, 30):
        assert ("off_only" in config) == (config["flag"] is False)


# --- subsets ----------------------------------------------------------------------------------


def test_subset_is_one_bool_per_element_and_a_list_in_choice_order(sampled) -> None:
    combos = set()
    for trial, config in sampled:
        flags = {k: v for k, v in trial.params.items() if k.startswith("augment.")}
        assert set(flags) == {"augment.mixup", "augment.flip"}
        assert all(isinstance(v, bool) for v in flags.values())
        # Choice order ("mixup" before "flip"), not alphabetical order.
        assert config["augment"] == [c for c in ("mixup", "flip") if flags[f"augment.{c}"]]
        assert "augment" not in trial.params
        combos.add(tuple(config["augment"]))
    assert combos == {(), ("mixup",), ("flip",), ("mixup", "flip")}


# --- replay and reconstruction ----------------------------------------------------------------


def test_an_enqueued_trial_replays_its_configuration_exactly(space, sampled) -> None:
    """This is how a crashed trial is retried: its stored params are enqueued and re-sampled."""
    replay = _study(seed=12345)  # a different seed: any value not replayed would differ
    for original, config in sampled[:20]:
        replay.enqueue_trial(original.params)
        trial = replay.ask()
        assert sample(trial, space) == config
        assert trial.params == original.params
        replay.tell(trial, 0.0)


def test_config_from_params_rebuilds_the_sampled_configuration(space, sampled) -> None:
    for trial, config in sampled:
        assert space.config_from_params(trial.params) == config


def test_config_from_params_leaves_inactive_entries_out(space) -> None:
    params = {
        "lr": 0.01,
        "optimizer": "adam",
        "momentum": 0.9,  # stale: adam has no momentum
        "beta2": 0.99,
        "augment.mixup": False,
        "augment.flip": True,
        "mixup_alpha": 0.5,  # stale: mixup is off
        "aug_prob": 0.3,
        "batch_size": 32,
        "dropout": 0.1,
    }
    assert space.config_from_params(params) == {
        "lr": 0.01,
        "optimizer": "adam",
        "beta2": 0.99,
        "augment": ["flip"],
        "aug_prob": 0.3,
        "batch_size": 32,
        "dropout": 0.1,
        "epochs": 5,
        "hidden": [64, 32],
    }


# --- dependency order and condition errors ----------------------------------------------------


def test_parents_come_before_children_whatever_the_table_order(space) -> None:
    names = list(space.names)
    for p in space:
        for cond in p.when:
            assert names.index(cond.parent) < names.index(p.name), names
    # Entries without a dependency keep their table order.
    free = [n for n in TABLE if not isinstance(TABLE[n], dict) or "when" not in TABLE[n]]
    assert [n for n in names if n in free] == free
    assert names.index("lookahead") > names.index("nesterov") > names.index("optimizer")


def test_a_cycle_is_an_error_naming_its_members() -> None:
    with pytest.raises(SpaceError) as info:
        parse_space(
            {
                "lr": {"type": "float", "low": 0.1, "high": 0.2},
                "a": {"type": "categorical", "choices": ["x", "y"], "when": {"b": "u"}},
                "b": {"type": "categorical", "choices": ["u", "v"], "when": {"a": "x"}},
            }
        )
    assert info.value.key == "space"
    assert "cycle" in info.value.message
    assert "a, b" in info.value.message and "lr" not in info.value.message


@pytest.mark.parametrize(
    ("table", "key", "message"),
    [
        (
            {"a": {"type": "categorical", "choices": ["x"], "when": {"a": "x"}}},
            "space.a.when.a",
            "cannot depend on itself",
        ),
        (
            {
                "lr": {"type": "float", "low": 0.1, "high": 0.2},
                "m": {"type": "float", "low": 0.1, "high": 0.2, "when": {"lr": 0.1}},
            },
            "space.m.when.lr",
            "`lr` is a continuous range; conditions need a categorical parent",
        ),
        (
            {
                "n": {"type": "int", "low": 1, "high": 4},
                "m": {"type": "float", "low": 0.1, "high": 0.2, "when": {"n": 2}},
            },
            "space.m.when.n",
            "continuous range",
        ),
        (
            {
                "opt": {"type": "categorical", "choices": ["sgd", "adam"]},
                "m": {"type": "float", "low": 0.1, "high": 0.2, "when": {"opt": []}},
            },
            "space.m.when.opt",
            "must name at least one value",
        ),
        (
            {
                "flag": {"type": "categorical", "choices": [0, 1]},
                "m": {"type": "float", "low": 0.1, "high": 0.2, "when": {"flag": True}},
            },
            "space.m.when.flag",
            "true is never a value of `flag`",
        ),
        (
            {
                "aug": {"type": "subset", "choices": ["flip"]},
                "m": {"type": "float", "low": 0.1, "high": 0.2, "when": {"aug": "mixup"}},
            },
            "space.m.when.aug",
            '"mixup" is never a value of `aug`',
        ),
    ],
)
def test_bad_conditions_name_their_key(table, key, message) -> None:
    with pytest.raises(SpaceError) as info:
        parse_space(table)
    assert info.value.key == key
    assert message in info.value.message


# --- numeric ranges ---------------------------------------------------------------------------


def test_log_float_is_log_uniform_within_its_bounds() -> None:
    space = parse_space({"lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}})
    values = [config["lr"] for _, config in _sampled(space, 400)]
    assert all(1e-4 <= v <= 1e-1 for v in values)
    # Log-uniform: the median sits at the geometric mean 10**-2.5 (a linear draw would put it
    # near 0.05, i.e. 10**-1.3). The median's standard error here is about 0.075 decades.
    assert abs(math.log10(statistics.median(values)) - (-2.5)) < 0.3


def test_stepped_int_yields_only_multiples_of_its_step(sampled) -> None:
    values = {config["batch_size"] for _, config in sampled}
    assert values == set(range(16, 129, 16))


def test_stepped_float_stays_on_its_grid(sampled) -> None:
    seen = set()
    for _, config in sampled:
        value = config["dropout"]
        assert 0.0 <= value <= 0.5
        k = round(value / 0.1)
        assert value == pytest.approx(k * 0.1, abs=1e-9)
        seen.add(k)
    assert seen == set(range(6))


def test_log_int_stays_within_its_bounds() -> None:
    space = parse_space({"width": {"type": "int", "low": 1, "high": 1024, "log": True}})
    values = [config["width"] for _, config in _sampled(space, 200)]
    assert all(isinstance(v, int) and 1 <= v <= 1024 for v in values)
    assert statistics.median(values) < 100  # log-uniform: the median is near sqrt(1024) = 32


# --- one boundary per range argument ----------------------------------------------------------

_TINY = 5e-324  # the smallest positive float


@pytest.mark.parametrize(
    ("entry", "error_key"),
    [
        # low < high
        ({"type": "float", "low": math.nextafter(1.0, 0.0), "high": 1.0}, None),
        ({"type": "float", "low": 1.0, "high": 1.0}, "space.x.low"),
        ({"type": "int", "low": 0, "high": 1}, None),
        ({"type": "int", "low": 1, "high": 1}, "space.x.low"),
        # log needs low > 0
        ({"type": "float", "low": _TINY, "high": 1.0, "log": True}, None),
        ({"type": "float", "low": 0.0, "high": 1.0, "log": True}, "space.x.low"),
        ({"type": "int", "low": 1, "high": 8, "log": True}, None),
        ({"type": "int", "low": 0, "high": 8, "log": True}, "space.x.low"),
        ({"type": "float", "low": 1e-3, "high": 1.0, "log": 1}, "space.x.log"),
        # step > 0, and not with log
        ({"type": "float", "low": 0.0, "high": 1.0, "step": 1e-9}, None),  # 1e9 values at most
        ({"type": "float", "low": 0.0, "high": 1.0, "step": 1e-10}, "space.x.step"),
        ({"type": "float", "low": 0.0, "high": 1.0, "step": 0.0}, "space.x.step"),
        ({"type": "int", "low": 0, "high": 8, "step": 1}, None),
        ({"type": "int", "low": 0, "high": 8, "step": 0}, "space.x.step"),
        ({"type": "int", "low": 0, "high": 8, "step": 0.5}, "space.x.step"),
        ({"type": "int", "low": 1, "high": 8, "step": 2, "log": True}, "space.x.step"),
        # bounds are finite numbers of the right kind
        ({"type": "float", "low": 0, "high": 1}, None),
        ({"type": "float", "low": 0.0, "high": math.inf}, "space.x.high"),
        ({"type": "float", "low": math.nan, "high": 1.0}, "space.x.low"),
        ({"type": "int", "low": 0, "high": 1.5}, "space.x.high"),
        ({"type": "int", "low": False, "high": 1}, "space.x.low"),
        ({"type": "float", "high": 1.0}, "space.x.low"),
        # choices: a non-empty list without duplicates
        ({"type": "categorical", "choices": ["a"]}, None),
        ({"type": "categorical", "choices": []}, "space.x.choices"),
        ({"type": "categorical", "choices": [0, False]}, "space.x.choices"),
        ({"type": "categorical", "choices": [1.0, math.inf]}, "space.x.choices[1]"),
        ({"type": "subset", "choices": ["a"]}, None),
        ({"type": "subset", "choices": ["a", 1]}, "space.x.choices[1]"),
    ],
)
def test_range_and_choice_boundaries(entry, error_key) -> None:
    table = {"x": entry}
    if error_key is None:
        assert parse_space(table).names == ("x",)
    else:
        with pytest.raises(SpaceError) as info:
            parse_space(table)
        assert info.value.key == error_key


def test_type_is_inferred_from_the_entry() -> None:
    space = parse_space(
        {
            "a": {"low": 0.0, "high": 1.0},
            "b": {"low": 0, "high": 3},
            "c": {"choices": ["x", "y"]},
            "d": {"value": 3},
            "e": [1, 2],
        }
    )
    assert [type(p) for p in space] == [
        FloatParam,
        IntParam,
        CategoricalParam,
        FixedParam,
        FixedParam,
    ]
    assert space["e"].value == (1, 2)


@pytest.mark.parametrize("step", [math.nan, math.inf])
def test_a_non_finite_step_is_rejected(step) -> None:
    with pytest.raises(SpaceError) as info:
        parse_space({"x": {"type": "float", "low": 0.0, "high": 1.0, "step": step}})
    assert info.value.key == "space.x.step"


def test_an_int_bound_beyond_float_range_is_a_space_error() -> None:
    with pytest.raises(SpaceError) as info:
        parse_space({"x": {"type": "int", "low": 0, "high": 10**400}})
    assert info.value.key == "space.x.high"


@pytest.mark.parametrize(
    "entry",
    [
        {"type": "float", "low": -1e308, "high": 1e308},
        {"type": "float", "low": 0.0, "high": 1.0, "step": _TINY},
    ],
)
def test_a_float_entry_optuna_cannot_sample_is_rejected(entry) -> None:
    try:
        space = parse_space({"x": entry})
    except SpaceError:
        return
    sample(_study().ask(), space)


# --- grids ------------------------------------------------------------------------------------


def test_grid_needs_a_step_on_every_float(space) -> None:
    with pytest.raises(NotGridError, match=r"space\.lr: .*give this float a `step`"):
        grid(space)


def test_grid_values_and_size() -> None:
    space = parse_space(
        {
            "optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
            "nesterov": {
                "type": "categorical",
                "choices": [False, True],
                "when": {"optimizer": "sgd"},
            },
            "augment": {"type": "subset", "choices": ["mixup", "flip"]},
            "batch_size": {"type": "int", "low": 16, "high": 100, "step": 16},
            "dropout": {"type": "float", "low": 0.0, "high": 0.5, "step": 0.1},
            "epochs": 5,
        }
    )
    assert grid(space) == {
        "optimizer": ["sgd", "adam"],
        "nesterov": [False, True],
        "augment.mixup": [False, True],
        "augment.flip": [False, True],
        "batch_size": [16, 32, 48, 64, 80, 96],  # high is not on the step: the last multiple
        "dropout": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5],  # rounded, so 0.30000000000000004 is 0.3
    }
    assert grid_size(space) == 2 * 2 * 2 * 2 * 6 * 6


def test_the_grid_sampler_visits_every_configuration_once() -> None:
    space = parse_space(
        {
            "optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
            "augment": {"type": "subset", "choices": ["mixup", "flip"]},
            "batch_size": {"type": "int", "low": 16, "high": 48, "step": 16},
            "dropout": {"type": "float", "low": 0.0, "high": 0.2, "step": 0.1},
        }
    )
    seen = set()

    def objective(trial: optuna.Trial) -> float:
        seen.add(repr(sorted(sample(trial, space).items())))
        return 0.0

    # optimize(), not ask/tell: GridSampler calls study.stop() once the grid is used up, which
    # Optuna only allows inside optimize().
    study = optuna.create_study(sampler=optuna.samplers.GridSampler(grid(space), seed=0))
    study.optimize(objective, n_trials=grid_size(space))
    assert len(seen) == grid_size(space) == 2 * 4 * 3 * 3


# --- to_dict round trip -----------------------------------------------------------------------


def test_to_dict_parses_back_to_an_equal_space(space) -> None:
    again = parse_space(space.to_dict())
    assert again == space
    assert again.to_dict() == space.to_dict()


def test_a_log_int_survives_the_to_dict_round_trip() -> None:
    space = parse_space({"batch_size": {"type": "int", "low": 16, "high": 256, "log": True}})
    assert parse_space(space.to_dict()) == space


# --- property: any table either parses or says which key is wrong -------------------------------

NAMES = ("a", "b", "c", "d")
KEYS = ("type", "low", "high", "log", "step", "choices", "value", "when", "lgo")

# Only values TOML can hold: 64-bit ints (the TOML spec's range), floats including nan/inf.
toml_scalar = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["x", "y", "sgd", "", "float"]),
)
# Malformed structure but moderate numbers, for tables that must also sample when they parse
# (the non-finite and overflowing numbers are covered by the tests above).
nice_scalar = st.one_of(
    st.booleans(),
    st.sampled_from([-1, 0, 1, 2, 10, -1.0, 0.0, 0.5, 1.0, 2.5]),
    st.sampled_from(["x", "y", "z", "", "float"]),
)


def _values(scalar: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(scalar, st.lists(scalar, max_size=3))


def _junk_entry(scalar: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(
        st.sampled_from(KEYS),
        st.one_of(
            _values(scalar),
            st.sampled_from(TYPES),
            st.dictionaries(st.sampled_from(NAMES), _values(scalar), max_size=2),
        ),
        max_size=5,
    )


# Moderate finite numbers: the space a well-formed spec describes. (The non-finite and
# overflowing cases are covered by the tests above.)
small_float = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
label = st.sampled_from(["x", "y", "z"])


@st.composite
def _valid_entry(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(TYPES))
    if kind == "float":
        low, high = sorted(draw(st.lists(small_float, min_size=2, max_size=2, unique=True)))
        entry: dict[str, Any] = {"type": kind, "low": low, "high": high}
        if low > 0 and draw(st.booleans()):
            entry["log"] = True
        elif draw(st.booleans()):
            entry["step"] = draw(st.floats(1e-3, 1e3))
        return entry
    if kind == "int":
        low, high = sorted(
            draw(st.lists(st.integers(-1000, 1000), min_size=2, max_size=2, unique=True))
        )
        entry = {"type": kind, "low": low, "high": high}
        if low > 0 and draw(st.booleans()):
            entry["log"] = True
        elif draw(st.booleans()):
            entry["step"] = draw(st.integers(1, 50))
        return entry
    if kind in ("categorical", "subset"):
        return {"type": kind, "choices": draw(st.lists(label, min_size=1, max_size=3, unique=True))}
    return {"type": "fixed", "value": draw(st.one_of(label, st.integers(0, 9)))}


@st.composite
def _table(draw: st.DrawFn, entry: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    table = draw(st.dictionaries(st.sampled_from(NAMES), entry, min_size=1, max_size=4))
    for e in table.values():  # conditions, some pointing at real parents and values
        if draw(st.booleans()):
            parent = draw(st.sampled_from(NAMES))
            e["when"] = {parent: draw(st.one_of(label, st.lists(label, max_size=2)))}
    return table


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    table=st.one_of(_table(_junk_entry(toml_scalar)), _table(_valid_entry()), _values(toml_scalar))
)
def test_any_table_parses_or_raises_space_error(table) -> None:
    try:
        parsed = parse_space(table)
    except SpaceError as e:
        assert e.key.startswith("space")
        assert str(e).startswith(f"{e.key}: ")
        return
    assert isinstance(parsed, SearchSpace)
    assert set(parsed.names) == set(table)


@pytest.mark.filterwarnings("ignore:The distribution is specified by:UserWarning")
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    table=st.one_of(_table(_junk_entry(nice_scalar)), _table(_valid_entry())),
    seed=st.integers(0, 2**16),
)
def test_a_parsed_space_samples_only_its_own_names(table, seed) -> None:
    try:
        space = parse_space(table)
    except SpaceError:
        return
    study = _study(seed)
    trial = study.ask()
    config = sample(trial, space)
    assert set(config) <= set(space.names)
    flags = {p.flag(c) for p in space if isinstance(p, SubsetParam) for c in p.choices}
    assert set(trial.params) <= (set(space.names) | flags)
    for p in space:
        assert (p.name in config) == p.is_active(config)
    assert space.config_from_params(trial.params) == config
