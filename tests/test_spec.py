"""Spec validation: every bad input gives one message naming the file, key and expectation."""

from __future__ import annotations

import pytest

from sweeplab.studies import SpecError, load_spec, parse_spec, preset_names, spec_from_dict

GOOD_SPACE = """
[space.lr]
type = "float"
low = 1e-4
high = 0.1
log = true
"""


def _error(text: str) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(text, source="bad.toml")
    message = str(info.value)
    assert message.startswith("bad.toml: "), message
    assert "Traceback" not in message
    return message


def test_every_preset_validates() -> None:
    assert "quickstart" in preset_names()
    for name in preset_names():
        spec = load_spec(name)
        assert spec.study.name == name
        assert spec.space.searched


def test_quickstart_searches_the_seven_dimensions() -> None:
    names = set(load_spec("quickstart").space.names)
    assert {"lr", "batch_size", "init", "optimizer", "dropout", "weight_decay", "augment"} <= names


def test_defaults_and_inferred_direction() -> None:
    spec = parse_spec(GOOD_SPACE)
    assert spec.study.storage == "sqlite:///sweeplab.db"
    assert spec.study.objective == "val_acc" and spec.study.resolved_direction == "maximize"
    assert spec.search.sampler == "tpe" and spec.search.scheduler == "asha"
    loss = parse_spec('[study]\nobjective = "val_loss"\n' + GOOD_SPACE)
    assert loss.study.resolved_direction == "minimize"


def test_round_trip_through_the_stored_dict() -> None:
    spec = load_spec("quickstart")
    again = spec_from_dict(spec.to_dict())
    assert again.to_dict() == spec.to_dict()


def test_overrides_are_validated() -> None:
    spec = load_spec("quickstart").with_overrides(n_trials=3, max_epochs=2, name="other", seed=None)
    assert (spec.budget.n_trials, spec.budget.max_epochs, spec.study.name) == (3, 2, "other")
    with pytest.raises(SpecError, match=r"budget\.n_trials"):
        load_spec("quickstart").with_overrides(n_trials=0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[study\nname = 1", "not valid TOML"),
        (
            "[budget]\nn_trails = 3\n" + GOOD_SPACE,
            "budget.n_trails: unknown key in [budget]; did you mean `n_trials`?",
        ),
        (
            "[budget]\nn_trials = 0\n" + GOOD_SPACE,
            "budget.n_trials: must be greater than or equal to 1; got 0",
        ),
        ("[budget]\nn_trials = -5\n" + GOOD_SPACE, "budget.n_trials"),
        (
            '[budget]\nn_trials = "ten"\n' + GOOD_SPACE,
            'budget.n_trials: must be a valid integer; got "ten"',
        ),
        (
            '[data]\ndataset = "mnsit"\n' + GOOD_SPACE,
            "data.dataset: must be 'digits', 'mnist', 'fashion_mnist', 'cifar10' or 'cifar100'; did you mean `mnist`?",
        ),
        ('[model]\nkind = "transformer"\n' + GOOD_SPACE, "model.kind: must be"),
        ("[data]\nval_fraction = 1.5\n" + GOOD_SPACE, "data.val_fraction: must be less than 1"),
        (
            '[search]\nsampler = "bayes"\n' + GOOD_SPACE,
            "search.sampler: must be 'tpe', 'random', 'grid', 'cmaes' or 'nsga2'",
        ),
        ("[search.resources]\ngpus = -1\n" + GOOD_SPACE, "search.resources.gpus"),
        (
            "[search]\ngrace_period = 50\n" + GOOD_SPACE,
            "search.grace_period: must be <= budget.max_epochs",
        ),
        ("[study]\nname = 'a b'\n" + GOOD_SPACE, "study.name: must be 1-100 letters"),
        ("[nonsense]\nx = 1\n" + GOOD_SPACE, "nonsense: unknown key in the top level"),
        ("[study]\nname = 'x'\n", "[space]: missing"),
        ("[space]\n", "the search space is empty"),
        (
            "[space.lr]\ntype = 'float'\nlow = 0.1\nhigh = 0.01\n",
            "space.lr.low: must be < high (0.01); got 0.1",
        ),
        (
            "[space.lr]\ntype = 'float'\nlow = 0.05\nhigh = 0.05\n",
            "space.lr.low: must be < high (0.05); got 0.05",
        ),
        (
            "[space.lr]\ntype = 'float'\nlow = -0.1\nhigh = 0.1\nlog = true\n",
            "space.lr.low: must be > 0 when `log = true`; got -0.1",
        ),
        (
            "[space.lr]\ntype = 'float'\nlow = 0.0\nhigh = 0.1\nlog = true\n",
            "space.lr.low: must be > 0 when `log = true`; got 0.0",
        ),
        (
            "[space.optimizer]\ntype = 'categorical'\nchoices = []\n",
            "space.optimizer.choices: must be a non-empty list",
        ),
        (
            "[space.optimizer]\ntype = 'categorical'\nchoices = ['sgd', 'adamm']\n",
            "space.optimizer.choices[1]: must be one of",
        ),
        ("[space.init]\ntype = 'categorical'\nchoices = ['he_normal']\n", "space.init.choices[0]"),
        (
            "[space.learning_rate]\ntype = 'float'\nlow = 0.1\nhigh = 0.2\n",
            "space.learning_rate: unknown hyperparameter",
        ),
        ("[space.lrr]\ntype = 'float'\nlow = 0.1\nhigh = 0.2\n", "did you mean `lr`?"),
        (
            "[space.augment]\ntype = 'subset'\nchoices = ['flip', 'cutmixx']\n",
            'space.augment.choices[1]: unknown augment "cutmixx"',
        ),
        (
            "[space.lr]\ntype = 'float'\nlow = 0.01\nhigh = 0.1\nlgo = true\n",
            "space.lr.lgo: unknown key for a float parameter",
        ),
        ("[space.lr]\ntype = 'normal'\nlow = 0.01\nhigh = 0.1\n", "space.lr.type: must be one of"),
        (
            "[space.momentum]\ntype = 'float'\nlow = 0.1\nhigh = 0.9\nwhen = { optimiser = 'sgd' }\n",
            "space.momentum.when.optimiser: the condition names `optimiser`, which is not in the space",
        ),
        (
            "[space.optimizer]\nchoices=['adam']\n[space.momentum]\ntype = 'float'\nlow = 0.1\nhigh = 0.9\nwhen = { optimizer = 'sgd' }\n",
            '"sgd" is never a value of `optimizer`',
        ),
        (
            "[space.dropout]\ntype = 'float'\nlow = 0.5\nhigh = 1.0\n",
            "space.dropout.high: must be a float in [0, 1)",
        ),
        ("[space.batch_size]\ntype = 'float'\nlow = 8.0\nhigh = 64.0\n", "space.batch_size.type"),
        (
            "[space]\nlr = -1.0\noptimizer = { choices = ['sgd', 'adam'] }\n",
            "space.lr: must be a float > 0; got -1.0",
        ),
        ("[search]\nsampler = 'grid'\n" + GOOD_SPACE, "the grid sampler needs a finite grid"),
    ],
)
def test_bad_input_names_key_and_expectation(text: str, expected: str) -> None:
    assert expected in _error(text)


def test_malformed_toml_reports_the_line() -> None:
    message = _error('[study]\nname = "x"\nseed = = 3\n' + GOOD_SPACE)
    assert "line 3" in message


def test_missing_file_lists_presets(tmp_path) -> None:
    with pytest.raises(SpecError, match=r"no such spec file, and not a preset") as info:
        load_spec(str(tmp_path / "nope.toml"))
    assert "quickstart" in str(info.value)
    with pytest.raises(SpecError, match="did you mean `quickstart`"):
        load_spec("quikstart")


def test_spec_is_data_only(tmp_path) -> None:
    """A spec cannot run code: a value that looks like Python stays a string and is rejected."""
    marker = tmp_path / "pwned"
    text = f"[space]\nlr = \"__import__('os').system('touch {marker}')\"\noptimizer = {{ choices = ['sgd'] }}\n"
    assert "space.lr: must be a float" in _error(text)
    assert not marker.exists()


def test_readme_documents_every_hyperparameter() -> None:
    """The README's catalog table is the user's reference: no hyperparameter may be missing."""
    from pathlib import Path

    from sweeplab import trainer

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    missing = [name for name in trainer.HYPERPARAMETERS if f"| `{name}` |" not in readme]
    assert not missing, f"README catalog lacks {missing}"
    for name in (*trainer.DATASETS, *trainer.MODELS):
        assert f"`{name}`" in readme
