"""``sweeplab ablate``: components and their off values, the variants of each mode, resuming from
the database, and one real leave-one-out ablation through Ray Tune."""

from __future__ import annotations

import doctest
import io
import warnings
from pathlib import Path

import optuna
import pytest
from conftest import run_cli as _sweeplab
from conftest import tiny_spec
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial
from rich.console import Console

import sweeplab.studies.ablation.plan
import sweeplab.studies.ablation.study
from sweeplab import searchspace
from sweeplab.studies import (
    SpecConflict,
    UsageError,
    load_spec,
    open_storage,
    open_study,
    records,
    run_study,
)
from sweeplab.studies._recovery import driver_identity, recover_interrupted
from sweeplab.studies.ablation.plan import (
    MAX_GRID_COMPONENTS,
    default_config,
    find_components,
    optuna_params,
    plan_ablation,
)
from sweeplab.studies.ablation.study import (
    AblationProposer,
    Baseline,
    ablation_study_name,
    check_trials_match,
    open_ablation,
    remaining_pairs,
)
from sweeplab.studies.cli import main

# study.ask() on a storage with heartbeats warns that heartbeats are meant for optimize().
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")

SPACE = searchspace.parse_space(
    {
        "lr": {"type": "float", "low": 1e-4, "high": 0.3, "log": True},
        "optimizer": {"type": "categorical", "choices": ["sgd", "adam", "adamw"]},
        "momentum": {"type": "float", "low": 0.5, "high": 0.99, "when": {"optimizer": "sgd"}},
        "beta2": {
            "type": "categorical",
            "choices": [0.99, 0.999],
            "when": {"optimizer": ["adam", "adamw"]},
        },
        "dropout": {"type": "float", "low": 0.0, "high": 0.5},
        "weight_decay": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True},
        "augment": {"type": "subset", "choices": ["crop", "noise", "mixup"]},
        "crop_padding": {"type": "int", "low": 1, "high": 2, "when": {"augment": "crop"}},
        "mixup_alpha": {"type": "float", "low": 0.1, "high": 0.4, "when": {"augment": "mixup"}},
        "activation": "tanh",
    }
)
# Every value differs from the catalog default (lr unset = the optimizer's PyTorch default, adam,
# momentum 0, dropout 0, weight decay 0, no augmentation, crop_padding 2, mixup_alpha 1); noise
# is off.
BASELINE = {
    "lr": 0.01,
    "optimizer": "sgd",
    "momentum": 0.8,
    "dropout": 0.2,
    "weight_decay": 1e-4,
    "augment": ["crop", "mixup"],
    "crop_padding": 1,
    "mixup_alpha": 0.3,
    "activation": "tanh",
}
DEFAULTS = {
    "lr": None,
    "optimizer": "adam",
    "beta2": 0.999,
    "dropout": 0.0,
    "weight_decay": 0.0,
    "augment": [],
    "activation": "tanh",
}


def _names(plan) -> list[str]:
    return [v.name for v in plan.variants]


def _config(plan, name: str) -> dict:
    return next(v.config for v in plan.variants if v.name == name)


# --- components and variants (pure) --------------------------------------------------------------


def test_components_are_searched_entries_and_subset_elements_not_conditional_children() -> None:
    assert [c.name for c in find_components(SPACE)] == [
        "lr", "optimizer", "dropout", "weight_decay",
        "augment.crop", "augment.noise", "augment.mixup",
    ]  # fmt: skip
    quickstart = load_spec("quickstart").space
    assert [c.name for c in find_components(quickstart)] == [
        "lr", "batch_size", "init", "optimizer", "dropout", "weight_decay",
        "augment.crop", "augment.noise", "augment.mixup",
    ]  # fmt: skip


def test_a_child_of_a_fixed_entry_is_a_component_of_its_own() -> None:
    space = searchspace.parse_space(
        {
            "optimizer": "sgd",
            "momentum": {"type": "float", "low": 0.5, "high": 0.9, "when": {"optimizer": "sgd"}},
        }
    )
    assert [c.name for c in find_components(space)] == ["momentum"]
    plan = plan_ablation(space, {"optimizer": "sgd", "momentum": 0.6}, mode="loo", seeds=[0])
    assert _config(plan, "-momentum") == {"optimizer": "sgd", "momentum": 0.0}


def test_default_config_is_the_catalog_defaults_with_children_of_the_defaults() -> None:
    assert default_config(SPACE) == DEFAULTS


def test_leave_one_out_reverts_each_component_and_its_children() -> None:
    plan = plan_ablation(SPACE, BASELINE, mode="loo", seeds=[0, 1, 2])
    assert plan.reference == "baseline"
    assert plan.unchanged == ("augment.noise",)  # off in the baseline: nothing to revert
    assert _names(plan) == [
        "baseline", "-lr", "-optimizer", "-dropout", "-weight_decay",
        "-augment.crop", "-augment.mixup",
    ]  # fmt: skip
    assert _config(plan, "baseline") == BASELINE
    assert _config(plan, "-lr") == {**BASELINE, "lr": None}
    assert _config(plan, "-dropout") == {**BASELINE, "dropout": 0.0}
    # Reverting the optimizer drops SGD's momentum and brings Adam's beta2 at its default.
    reverted = {k: v for k, v in BASELINE.items() if k != "momentum"}
    assert _config(plan, "-optimizer") == {**reverted, "optimizer": "adam", "beta2": 0.999}
    # An augmentation's magnitude leaves with it.
    without_mixup = {k: v for k, v in BASELINE.items() if k != "mixup_alpha"}
    assert _config(plan, "-augment.mixup") == {**without_mixup, "augment": ["crop"]}
    without_crop = {k: v for k, v in BASELINE.items() if k != "crop_padding"}
    assert _config(plan, "-augment.crop") == {**without_crop, "augment": ["mixup"]}
    # Seed-major: every variant once per seed, the first seed first.
    assert [(v.name, s) for v, s in plan.pairs[:2]] == [("baseline", 0), ("-lr", 0)]
    assert len(plan.pairs) == 7 * 3


def test_add_one_in_switches_each_component_on_alone_from_the_defaults() -> None:
    plan = plan_ablation(SPACE, BASELINE, mode="add", seeds=[0])
    assert plan.reference == "default"
    assert _names(plan) == [
        "default", "+lr", "+optimizer", "+dropout", "+weight_decay",
        "+augment.crop", "+augment.mixup",
    ]  # fmt: skip
    assert _config(plan, "default") == DEFAULTS
    assert _config(plan, "+lr") == {**DEFAULTS, "lr": 0.01}
    # Switched on, the optimizer brings its children at the baseline's values.
    sgd = {k: v for k, v in DEFAULTS.items() if k != "beta2"}
    assert _config(plan, "+optimizer") == {**sgd, "optimizer": "sgd", "momentum": 0.8}
    assert _config(plan, "+augment.crop") == {**DEFAULTS, "augment": ["crop"], "crop_padding": 1}


def test_grid_is_the_factorial_of_the_named_components_the_rest_at_the_baseline() -> None:
    plan = plan_ablation(
        SPACE, BASELINE, mode="grid", seeds=[0, 1], components=["weight_decay", "augment.crop"]
    )
    # Named in space order, whatever order they were given in, so a re-run finds its variants.
    assert _names(plan) == [
        "baseline",
        "weight_decay=on,augment.crop=off",
        "weight_decay=off,augment.crop=on",
        "weight_decay=off,augment.crop=off",
    ]
    assert _config(plan, "weight_decay=off,augment.crop=on") == {**BASELINE, "weight_decay": 0.0}
    assert _config(plan, "weight_decay=off,augment.crop=off")["augment"] == ["mixup"]
    assert _config(plan, "weight_decay=off,augment.crop=off")["lr"] == 0.01
    assert len(plan.pairs) == 8


def test_a_grid_over_too_many_components_is_refused() -> None:
    everything = {**BASELINE, "augment": ["crop", "noise", "mixup"]}  # 7 components that differ
    with pytest.raises(
        UsageError, match=r"grid over 7 components makes 128 variants; name at most 6"
    ):
        plan_ablation(SPACE, everything, mode="grid", seeds=[0])
    names = [c.name for c in find_components(SPACE)][:MAX_GRID_COMPONENTS]
    plan = plan_ablation(SPACE, everything, mode="grid", seeds=[0], components=names)
    assert len(plan.variants) == 2**MAX_GRID_COMPONENTS


def test_components_restrict_the_plan_and_unknown_names_list_the_valid_ones() -> None:
    plan = plan_ablation(SPACE, BASELINE, mode="loo", seeds=[0], components=["dropout", "lr"])
    assert _names(plan) == ["baseline", "-lr", "-dropout"]
    with pytest.raises(UsageError) as e:
        plan_ablation(SPACE, BASELINE, mode="loo", seeds=[0], components=["droput"])
    message = str(e.value)
    assert "unknown component 'droput'; did you mean `dropout`?" in message
    assert "lr, optimizer, dropout, weight_decay, augment.crop, augment.noise" in message
    with pytest.raises(UsageError, match=r"^mode: must be one of loo, add, grid, seeds"):
        plan_ablation(SPACE, BASELINE, mode="path", seeds=[0])


def test_variant_params_are_stored_the_way_a_search_stores_them() -> None:
    """The baseline's parameters are exactly what searchspace records for that configuration."""
    plan = plan_ablation(SPACE, BASELINE, mode="loo", seeds=[0])
    study = optuna.create_study()
    study.enqueue_trial(plan.variants[0].params)
    trial = study.ask()
    assert searchspace.sample(trial, SPACE) == BASELINE
    assert trial.params == plan.variants[0].params
    assert optuna_params(SPACE, BASELINE)["augment.noise"] is False
    # One categorical distribution per parameter: every value a variant can give it.
    assert plan.choices["lr"] == (None, 0.01)
    assert plan.choices["momentum"] == (0.0, 0.8)
    assert plan.choices["beta2"] == (0.999,)
    assert plan.choices["augment.crop"] == (False, True)


def test_the_study_name_is_deterministic() -> None:
    trial = Baseline(label="trial7", trial=7, config={})
    assert ablation_study_name("quickstart", "loo", trial) == "quickstart.ablation-loo-trial7"
    default = Baseline(label="default", trial=None, config={})
    assert ablation_study_name("q", "grid", default) == "q.ablation-grid-default"


def test_module_examples_run() -> None:
    for module in (sweeplab.studies.ablation.plan, sweeplab.studies.ablation.study):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module.__name__


# --- the linked study in the database (plain Optuna, no Ray) ----------------------------------

E2E_SPACE = """
[space.lr]
type = "float"
low = 3e-3
high = 3e-2
log = true

[space.optimizer]
type = "categorical"
choices = ["sgd", "adamw"]

[space.momentum]
type = "float"
low = 0.5
high = 0.9
when = { optimizer = "sgd" }

[space.dropout]
type = "float"
low = 0.05
high = 0.3
"""


def _parent(tmp_path: Path, values: tuple[float, ...] = (0.5, 0.9, 0.7)) -> str:
    """A study 'tiny' with finished trials of the given values, written without Ray."""
    spec = load_spec(tiny_spec(tmp_path, space=E2E_SPACE))
    study = open_study(spec, open_storage(spec.study.storage))
    for value in values:
        trial = study.ask()
        searchspace.sample(trial, spec.space)
        study.tell(trial, value)
    return spec.study.storage


def test_the_linked_study_carries_the_parent_spec_and_the_plan(tmp_path: Path) -> None:
    url = _parent(tmp_path)
    ablation = open_ablation("tiny", storage=url, seeds=2, components=["optimizer", "lr"])
    parent = optuna.load_study(study_name="tiny", storage=url)
    assert ablation.study.study_name == f"tiny.ablation-loo-trial{parent.best_trial.number}"
    attrs = ablation.study.user_attrs
    assert attrs["sweeplab_parent"] == "tiny"
    assert attrs["sweeplab_ablation"]["mode"] == "loo"
    assert attrs["sweeplab_ablation"]["baseline"] == "best"
    assert attrs["sweeplab_ablation"]["components"] == ["lr", "optimizer"]
    assert attrs["sweeplab_ablation"]["seeds"] == 2
    assert attrs["sweeplab_ablation"]["baseline_config"] == ablation.baseline.config
    stored = attrs[records.SPEC]
    assert stored["space"] == parent.user_attrs[records.SPEC]["space"]
    assert stored["search"]["scheduler"] == "none" and stored["budget"]["n_trials"] == 6
    assert ablation.study.direction == parent.direction
    # The defaults give their own study; opening again loads the same one.
    default = open_ablation("tiny", storage=url, baseline="default", mode="add", seeds=1)
    assert default.study.study_name == "tiny.ablation-add-default"
    again = open_ablation("tiny", storage=url, seeds=2, components=["optimizer", "lr"])
    assert again.study._study_id == ablation.study._study_id


def test_resume_runs_the_pairs_without_a_complete_trial_and_retries_interrupted_ones(
    tmp_path: Path,
) -> None:
    url = _parent(tmp_path)
    ablation = open_ablation("tiny", storage=url, seeds=2, components=["lr", "optimizer"])
    study, plan = ablation.study, ablation.plan
    assert [(v.name, s) for v, s in plan.pairs] == [
        ("baseline", 1),
        ("-lr", 1),
        ("-optimizer", 1),
        ("baseline", 2),
        ("-lr", 2),
        ("-optimizer", 2),
    ]  # fmt: skip  (tiny_spec's study seed is 1)
    propose = AblationProposer(study, plan.pairs, plan.choices)
    done, failed, running = study.ask(), study.ask(), study.ask()
    for trial in (done, failed, running):
        propose(trial)
    study.tell(done, 0.9)
    study.tell(failed, state=TrialState.FAIL)
    # A driver that died mid-trial: this host, a process id no process has.
    dead = {**driver_identity(), "pid": 2**22 + 1, "start": None}
    study._storage.set_trial_system_attr(running._trial_id, records.DRIVER, dead)

    assert [r.number for r in recover_interrupted(study)] == [running.number]
    pending = remaining_pairs(plan, study.get_trials())
    assert [(v.name, s) for v, s in pending] == [
        ("-lr", 1), ("-optimizer", 1), ("baseline", 2), ("-lr", 2), ("-optimizer", 2),
    ]  # fmt: skip

    # The retry recovery queued takes its own pair, not the first pending one.
    propose = AblationProposer(study, pending, plan.choices)
    retry = study.ask()
    config = propose(retry)
    assert retry.user_attrs == {"retry_of": running.number, "seed": 1, "variant": "-optimizer"}
    assert config == _config(plan, "-optimizer")
    assert config["optimizer"] == "adam"  # outside the parent's choices, stored all the same
    assert "momentum" not in config
    nxt = study.ask()
    propose(nxt)
    assert (nxt.user_attrs["variant"], nxt.user_attrs["seed"]) == ("-lr", 1)
    assert propose.remaining() == 3
    frozen = {t.number: t for t in study.get_trials()}
    assert frozen[retry.number].params == frozen[running.number].params
    assert frozen[nxt.number].params["lr"] is None

    # More seeds later: the finished pairs stay, the new seed's pairs join the plan.
    more = open_ablation("tiny", storage=url, seeds=3, components=["lr", "optimizer"])
    study.tell(retry, 0.8)
    left = remaining_pairs(more.plan, study.get_trials())
    assert ("baseline", 1) not in [(v.name, s) for v, s in left]
    assert ("-optimizer", 1) not in [(v.name, s) for v, s in left]
    assert len(left) == 9 - 2 - 1  # two complete, one running (nxt)


def test_a_finished_variant_that_ran_other_values_is_refused() -> None:
    plan = plan_ablation(SPACE, BASELINE, mode="loo", seeds=[0])
    params = plan.variants[1].params  # -lr
    distributions = {k: CategoricalDistribution(plan.choices[k]) for k in params}

    def finished(**changed: float) -> optuna.trial.FrozenTrial:
        return create_trial(
            params={**params, **changed},
            distributions={**distributions, **{k: FloatDistribution(0.0, 1.0) for k in changed}},
            user_attrs={"variant": "-lr", "seed": 0},
            value=0.9,
        )

    check_trials_match(plan, [finished()], "ablation study 'x'")
    with pytest.raises(SpecConflict) as e:
        check_trials_match(plan, [finished(lr=0.5)], "ablation study 'x'")
    assert "of variant '-lr' ran with lr=0.5, but that variant now has lr=None" in str(e.value)


def test_usage_errors_are_one_line_exit_2(capsys, tmp_path: Path) -> None:
    url = _parent(tmp_path)
    storage = ["--storage", url]
    cases = [
        (["--components", "lr,nope"], "unknown component 'nope' (components of this study: lr,"),
        (["--baseline", "99"], "study 'tiny' has no trial 99 (its trials are numbered 0 to 2)"),
        (["--baseline", "last"], "--baseline: must be best, default or a trial number"),
        (["--mode", "walk"], "'walk' is not one of 'loo', 'add', 'path', 'grid', 'seeds'"),
        (["--seeds", "0"], "0 is not in the range x>=1"),
    ]
    for args, expected in cases:
        code, _, err = _sweeplab(capsys, "ablate", "tiny", *storage, *args)
        assert code == 2 and expected in err, (args, err)
        assert "Traceback" not in err
    assert optuna.get_all_study_names(url) == ["tiny"], "a refused ablation writes nothing"

    code, _, err = _sweeplab(capsys, "ablate", "nope", *storage)
    assert code == 2 and "no study named 'nope'" in err


def test_a_pruned_baseline_is_refused_unless_forced(capsys, tmp_path: Path) -> None:
    url = _parent(tmp_path)
    study = optuna.load_study(study_name="tiny", storage=url)
    trial = study.ask()
    searchspace.sample(trial, load_spec(tiny_spec(tmp_path, space=E2E_SPACE)).space)
    trial.report(0.4, 1)
    trial.report(0.5, 2)
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)  # trial 3: stopped at epoch 2
    code, _, err = _sweeplab(capsys, "ablate", "tiny", "--storage", url, "--baseline", "3")
    assert code == 2 and "Traceback" not in err
    assert "trial 3 of study 'tiny' is PRUNED after 2 epoch(s)" in err and "--force" in err
    assert optuna.get_all_study_names(url) == ["tiny"], "a refused ablation writes nothing"
    # --force accepts it: the plan is made from the pruned trial's configuration.
    ablation = open_ablation(
        "tiny", storage=url, baseline="3", seeds=1, components=["lr"], allow_pruned=True
    )
    assert ablation.baseline.trial == 3
    assert ablation.baseline.config["lr"] == study.trials[3].params["lr"]


def test_no_complete_trial_to_ablate(capsys, tmp_path: Path) -> None:
    url = _parent(tmp_path, values=())
    code, _, err = _sweeplab(capsys, "ablate", "tiny", "--storage", url)
    assert code == 2 and "no complete trial to ablate yet" in err


def test_an_ablation_study_is_neither_searched_nor_ablated(capsys, tmp_path: Path) -> None:
    url = _parent(tmp_path)
    name = open_ablation("tiny", storage=url, seeds=2, components=["lr"]).study.study_name
    code, _, err = _sweeplab(capsys, "resume", name, "--storage", url)
    assert code == 2
    assert "is an ablation of study 'tiny', not a search; continue it with: sweeplab ablate " in err
    assert "--mode loo --baseline" in err and "--seeds 2 --components lr" in err
    code, _, err = _sweeplab(capsys, "ablate", name, "--storage", url)
    assert code == 2 and "is itself an ablation (of 'tiny')" in err
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert optuna.load_study(study_name=name, storage=url).trials == []


# --- end to end: a real ablation through Ray Tune ------------------------------------------------


@pytest.fixture(scope="module")
def ablated(ray_local, tmp_path_factory):
    """A 3-trial parent study, then `sweeplab ablate` of it: loo, 2 seeds, 2 components."""
    tmp = tmp_path_factory.mktemp("ablate")
    spec = load_spec(tiny_spec(tmp, n_trials=3, max_epochs=3, scheduler="none", space=E2E_SPACE))
    run_study(spec, console=_quiet())
    url = spec.study.storage
    args = ["ablate", "tiny", "--storage", url, "--seeds", "2", "--components", "lr,optimizer"]
    with pytest.raises(SystemExit) as code:
        main(args)
    return spec, url, args, code.value.code


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


@pytest.mark.slow
def test_ablate_trains_every_variant_with_every_seed_in_a_linked_study(ablated) -> None:
    spec, url, _, code = ablated
    assert code == 0
    parent = optuna.load_study(study_name="tiny", storage=url)
    best = parent.best_trial
    name = f"tiny.ablation-loo-trial{best.number}"
    study = optuna.load_study(study_name=name, storage=url)
    assert study.user_attrs["sweeplab_parent"] == "tiny"
    assert study.user_attrs["sweeplab_ablation"]["components"] == ["lr", "optimizer"]
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 6
    pairs = sorted((t.user_attrs["variant"], t.user_attrs["seed"]) for t in trials)
    assert pairs == sorted((v, s) for v in ("baseline", "-lr", "-optimizer") for s in (1, 2))
    for t in trials:
        # Full budget, no pruning; trained with the variant's seed.
        assert t.user_attrs["epochs_run"] == spec.budget.max_epochs
        assert sorted(t.intermediate_values) == [1, 2, 3]
        assert 0.0 < t.user_attrs["test_acc"] <= 1.0
        variant = t.user_attrs["variant"]
        if variant == "baseline":
            assert t.params == best.params
        elif variant == "-lr":
            assert t.params == {**best.params, "lr": None}
        else:
            assert t.params["optimizer"] == "adam" and "momentum" not in t.params
            assert t.params["lr"] == best.params["lr"]


@pytest.mark.slow
def test_ablate_prints_the_table_and_running_it_again_runs_nothing(ablated, capsys) -> None:
    _, url, args, _ = ablated
    (name,) = [n for n in optuna.get_all_study_names(url) if ".ablation-" in n]
    before = [
        (t.number, t.state, t.value) for t in optuna.load_study(study_name=name, storage=url).trials
    ]
    code, out, err = _sweeplab(capsys, *args)
    assert code == 0, err
    assert "nothing to run" in err and "this run started 0 trial(s)" in out
    # The ablation table (analysis.ablation_table as Markdown): one row per variant.
    for variant in ("baseline", "-lr", "-optimizer"):
        assert f"| `{variant}` | 2 |" in out
    assert "Δ test acc (pp)" in out and "difference of the mean test accuracy" in out
    after = [
        (t.number, t.state, t.value) for t in optuna.load_study(study_name=name, storage=url).trials
    ]
    assert after == before
