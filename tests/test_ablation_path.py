"""``sweeplab ablate --mode path`` and ``--mode seeds``: the path's plan, the greedy replay on
hand-computed data, the round the database says comes next, and one real path through Ray Tune."""

from __future__ import annotations

import doctest
import io
import json
import math
import warnings
from pathlib import Path

import optuna
import pandas as pd
import pytest
from conftest import tiny_spec
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial
from rich.console import Console
from test_ablate import BASELINE, E2E_SPACE, SPACE, _parent, _sweeplab

import sweeplab.analysis.ablation.path
import sweeplab.analysis.ablation.seeds
import sweeplab.studies.ablation.path
from sweeplab import analysis
from sweeplab.studies import UsageError, load_spec, run_study
from sweeplab.studies.ablation.path import path_candidates, path_cost, path_so_far, plan_path
from sweeplab.studies.ablation.plan import default_config, plan_ablation
from sweeplab.studies.ablation.run import next_round
from sweeplab.studies.ablation.study import AblationProposer, open_ablation

pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")


# --- the plan (pure) -----------------------------------------------------------------------------


def test_path_candidates_flip_one_component_with_its_conditional_children() -> None:
    order = ["lr", "optimizer", "dropout"]
    first = {v.name: v for v in path_candidates(SPACE, BASELINE, order, frozenset())}
    assert list(first) == ["+lr", "+optimizer", "+dropout"]
    defaults = default_config(SPACE)
    # optimizer -> sgd brings the target's momentum and drops Adam's beta2.
    sgd = {k: v for k, v in defaults.items() if k != "beta2"}
    assert first["+optimizer"].config == {**sgd, "optimizer": "sgd", "momentum": 0.8}
    assert first["+optimizer"].attrs == {
        "step": 1,
        "component": "optimizer",
        "source": "default",
        "change": {"optimizer": "sgd", "momentum": 0.8, "beta2": None},
    }
    # From a later state: the remaining components, named by the set they have on.
    second = path_candidates(SPACE, BASELINE, order, frozenset({"optimizer"}))
    assert [v.name for v in second] == ["+lr+optimizer", "+optimizer+dropout"]
    assert second[0].attrs["source"] == "+optimizer" and second[0].attrs["step"] == 2
    assert second[0].config["momentum"] == 0.8 and second[0].config["lr"] == 0.01
    assert second[0].attrs["change"] == {"lr": 0.01}


def test_the_path_so_far_grows_one_step_per_winner_and_ends_at_the_target() -> None:
    order = ["lr", "optimizer", "dropout"]
    steps = path_so_far(SPACE, BASELINE, order, ["dropout", "lr"])
    assert [[v.name for v in s] for s in steps] == [
        ["default"],
        ["+lr", "+optimizer", "+dropout"],
        ["+lr+dropout", "+optimizer+dropout"],
        ["+lr+optimizer+dropout"],
    ]
    target = steps[-1][0].config
    # The target: the baseline's three components, every other one at its default.
    assert target["lr"] == 0.01 and target["optimizer"] == "sgd" and target["dropout"] == 0.2
    assert target["weight_decay"] == 0.0 and target["augment"] == []
    assert path_so_far(SPACE, BASELINE, order, ["dropout", "lr", "optimizer"])[-1] == ()
    with pytest.raises(UsageError, match="not among"):
        path_so_far(SPACE, BASELINE, order, ["momentum"])


def test_plan_path_flips_only_what_differs_and_counts_the_cost() -> None:
    plan = plan_path(SPACE, BASELINE, seeds=[0, 1])
    # augment.noise is off in the baseline: nothing to flip.
    assert plan.components == (
        "lr", "optimizer", "dropout", "weight_decay", "augment.crop", "augment.mixup",
    )  # fmt: skip
    assert plan.unchanged == ("augment.noise",)
    assert [v.name for v in plan.variants][:3] == ["default", "+lr", "+optimizer"]
    assert len(plan.variants) == 1 + 6 and plan.reference == "default"
    assert [path_cost(d) for d in (1, 2, 6)] == [2, 4, 22]
    with pytest.raises(UsageError, match="no path to walk"):
        plan_path(SPACE, default_config(SPACE), seeds=[0])
    with pytest.raises(UsageError, match="unknown component 'droput'"):
        plan_path(SPACE, BASELINE, seeds=[0], components=["droput"])


def test_seeds_mode_is_the_baseline_alone() -> None:
    plan = plan_ablation(SPACE, BASELINE, mode="seeds", seeds=[3, 4, 5])
    assert [v.name for v in plan.variants] == ["baseline"]
    assert plan.variants[0].config == BASELINE
    assert [s for _, s in plan.pairs] == [3, 4, 5]
    with pytest.raises(UsageError, match=r"^components: mode seeds re-runs the baseline as it is"):
        plan_ablation(SPACE, BASELINE, mode="seeds", seeds=[0], components=["lr"])


# --- the greedy replay on fixed data -----------------------------------------------------------

# (variant, step, component, source, change, seed, value, test_acc). Hand-computed:
# default 0.52; step 1: +a 0.61, +b 0.72 (wins), +c 0.55; step 2 from +b: +a+b 0.81 (wins),
# +b+c 0.74; step 3: +a+b+c 0.82. Total gain 0.30: shares 0.20/0.30, 0.09/0.30, 0.01/0.30.
ROWS = [
    ("default", 0, None, None, None, 0, 0.50, 0.49),
    ("default", 0, None, None, None, 1, 0.54, 0.51),
    ("+a", 1, "a", "default", {"a": 0.01}, 0, 0.10, 0.10),  # re-run below: the last one counts
    ("+a", 1, "a", "default", {"a": 0.01}, 0, 0.60, 0.58),
    ("+a", 1, "a", "default", {"a": 0.01}, 1, 0.62, 0.60),
    ("+b", 1, "b", "default", {"b": "sgd", "momentum": 0.8}, 0, 0.70, 0.69),
    ("+b", 1, "b", "default", {"b": "sgd", "momentum": 0.8}, 1, 0.74, 0.71),
    ("+c", 1, "aug.c", "default", {"aug": ["c"]}, 0, 0.55, 0.50),
    ("+c", 1, "aug.c", "default", {"aug": ["c"]}, 1, 0.55, 0.52),
    ("+a+b", 2, "a", "+b", {"a": 0.01}, 0, 0.80, 0.78),
    ("+a+b", 2, "a", "+b", {"a": 0.01}, 1, 0.82, 0.80),
    ("+b+c", 2, "aug.c", "+b", {"aug": ["c"]}, 0, 0.73, 0.70),
    ("+b+c", 2, "aug.c", "+b", {"aug": ["c"]}, 1, 0.75, 0.72),
    ("+a+c", 2, "aug.c", "+a", {"aug": ["c"]}, 0, 0.99, 0.99),  # off the path: ignored
    ("+a+b+c", 3, "aug.c", "+a+b", {"aug": ["c"]}, 0, 0.81, 0.79),
    ("+a+b+c", 3, "aug.c", "+a+b", {"aug": ["c"]}, 1, 0.83, 0.81),
    ("+a+b+c", 3, "aug.c", "+a+b", {"aug": ["c"]}, 7, 0.10, 0.10),  # a seed not asked for
]


def _frame(rows=ROWS, failed: tuple[str, int] | None = None) -> pd.DataFrame:
    out = pd.DataFrame(
        [
            {
                "state": "COMPLETE", "variant": v, "step": st, "component": c, "source": src,
                "change": None if ch is None else json.dumps(ch), "seed": s, "value": x,
                "test_acc": t,
            }
            for v, st, c, src, ch, s, x, t in rows
        ]
    )  # fmt: skip
    if failed is not None:
        hit = (out["variant"] == failed[0]) & (out["seed"] == failed[1])
        out.loc[hit, "state"] = "FAIL"
    return out


def test_greedy_path_matches_hand_computed_steps_and_shares() -> None:
    path = analysis.greedy_path(_frame(), components=["a", "b", "aug.c"], seeds=[0, 1])
    assert list(path["step"]) == [0, 1, 2, 3]
    assert list(path["parameter"].fillna("-")) == ["-", "b", "a", "aug.c"]
    assert list(path["variant"]) == ["default", "+b", "+a+b", "+a+b+c"]
    assert list(path["value"].fillna("-")) == ["-", "sgd (momentum 0.8)", "0.01", "on"]
    assert list(path["candidates"]) == [1, 3, 2, 1]
    assert list(path["n"]) == [2, 2, 2, 2]
    assert path["objective_mean"].tolist() == pytest.approx([0.52, 0.72, 0.81, 0.82])
    assert path["objective_std"].tolist() == pytest.approx([math.sqrt(0.0008)] * 2 + [
        math.sqrt(0.0002), math.sqrt(0.0002)])  # fmt: skip
    assert path["delta"].tolist()[1:] == pytest.approx([0.20, 0.09, 0.01])
    assert path["gain_share"].tolist()[1:] == pytest.approx([2 / 3, 0.3, 1 / 30])
    assert path["cumulative_share"].tolist() == pytest.approx([0.0, 2 / 3, 29 / 30, 1.0])
    assert path["test_acc_mean"].tolist() == pytest.approx([0.50, 0.70, 0.79, 0.80])
    assert path.attrs["complete"] is True


def test_an_unfinished_step_ends_the_path_and_leaves_the_shares_undefined() -> None:
    path = analysis.greedy_path(
        _frame(failed=("+a+b+c", 1)), components=["a", "b", "aug.c"], seeds=[0, 1]
    )
    assert list(path["variant"]) == ["default", "+b", "+a+b"]
    assert path.attrs["complete"] is False
    assert path["gain_share"].isna().all() and path["cumulative_share"].isna().all()
    # One candidate of step 2 short of a seed: step 2 is undecided too.
    path = analysis.greedy_path(
        _frame(failed=("+b+c", 0)), components=["a", "b", "aug.c"], seeds=[0, 1]
    )
    assert list(path["variant"]) == ["default", "+b"]
    # No default for every seed: no step at all.
    empty = analysis.greedy_path(
        _frame(failed=("default", 1)), components=["a", "b", "aug.c"], seeds=[0, 1]
    )
    assert empty.empty and list(empty.columns) == list(sweeplab.analysis.ablation.path.PATH_COLUMNS)


def test_ties_go_to_the_first_component_and_minimising_takes_the_lowest() -> None:
    rows = [
        ("default", 0, None, None, None, 0, 0.5, 0.5),
        ("+a", 1, "a", "default", {"a": 1}, 0, 0.7, 0.7),
        ("+b", 1, "b", "default", {"b": 1}, 0, 0.7, 0.7),
    ]
    assert analysis.greedy_path(_frame(rows), components=["a", "b"])["parameter"][1] == "a"
    assert analysis.greedy_path(_frame(rows), components=["b", "a"])["parameter"][1] == "b"
    rows[2] = ("+b", 1, "b", "default", {"b": 1}, 0, 0.3, 0.7)
    lowest = analysis.greedy_path(_frame(rows), components=["a", "b"], direction="minimize")
    assert lowest["parameter"][1] == "b"
    highest = analysis.greedy_path(_frame(rows), components=["a", "b"], direction="maximize")
    assert highest["parameter"][1] == "a"


def _path_study(storage, name: str = "toy.ablation-path-trial3", rows=ROWS) -> optuna.Study:
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize")
    study.set_user_attr("objective", "val_acc")
    study.set_user_attr("sweeplab_parent", "toy")
    study.set_user_attr(
        "sweeplab_ablation",
        {"mode": "path", "baseline": "best", "baseline_trial": 3, "components": ["a", "b", "aug.c"],
         "seeds": 2, "seed_values": [0, 1], "reference": "default"},
    )  # fmt: skip
    for v, st, c, src, ch, s, x, t in rows:
        attrs = {"variant": v, "step": st, "seed": s, "test_acc": t, "epochs_run": 2}
        if c is not None:
            attrs.update(component=c, source=src, change=ch)
        study.add_trial(
            create_trial(
                value=x,
                params={"x": 0.5},
                distributions={"x": FloatDistribution(0.0, 1.0)},
                user_attrs=attrs,
            )
        )
    return study


def test_ablation_path_reads_the_study_and_renders_the_same_numbers() -> None:
    storage = optuna.storages.InMemoryStorage()
    _path_study(storage)
    path = analysis.ablation_path(storage, "toy.ablation-path-trial3")
    assert list(path["parameter"].fillna("-")) == ["-", "b", "a", "aug.c"]
    assert path.attrs["objective"] == "val_acc" and path.attrs["parent"] == "toy"
    md = analysis.path_to_markdown(path).splitlines()
    assert md[0].startswith(
        "| Step | Parameter | New value | n | Validation accuracy (%) | Δ test acc (pp)"
    )
    assert md[2] == "| 0 | (default) | – | 2 | 52.0 ± 2.8 | – | – | 0.0 | 50.0 ± 1.4 |"
    assert (
        md[3]
        == "| 1 | `b` | sgd (momentum 0.8) | 2 | 72.0 ± 2.8 | +20.0 | +66.7 | 66.7 | 70.0 ± 1.4 |"
    )
    assert md[5] == "| 3 | `aug.c` | on | 2 | 82.0 ± 1.4 | +1.0 | +3.3 | 100.0 | 80.0 ± 1.4 |"
    assert "Greedy ablation path (Fawcett & Hoos 2016)" in md[-1] and "2 seeds" in md[-1]
    tex = analysis.path_to_latex(path)
    assert "1 & b & sgd (momentum 0.8) & 2 & 72.0 $\\pm$ 2.8 & +20.0 & +66.7 & 66.7" in tex
    assert "\\toprule" in tex and "Fawcett \\& Hoos" in tex
    assert "&plusmn;" in analysis.path_to_html(path)
    with pytest.raises(ValueError, match="not a path ablation"):
        optuna.create_study(storage=storage, study_name="other")
        analysis.ablation_path(storage, "other")


def test_the_path_chart_is_png_and_svg_and_deterministic(tmp_path: Path) -> None:
    storage = optuna.storages.InMemoryStorage()
    _path_study(storage)
    path = analysis.ablation_path(storage, "toy.ablation-path-trial3")
    png, svg = analysis.ablation_path_chart(path, tmp_path / "a" / "path.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and svg.suffix == ".svg"
    text = svg.read_text()
    assert "<svg" in text and "<dc:date>" not in text  # no date stamp (reproducible bytes)
    again = analysis.ablation_path_chart(path, tmp_path / "b" / "path.png")
    assert again[0].read_bytes() == png.read_bytes()
    assert again[1].read_bytes() == svg.read_bytes()
    paths = analysis.write_path_tables(path, tmp_path / "t")
    assert sorted(p.name for p in paths.values()) == [
        "path.csv",
        "path.html",
        "path.md",
        "path.tex",
    ]


def test_seed_variance_matches_hand_computed_values() -> None:
    trials = pd.DataFrame(
        {
            "state": ["COMPLETE", "COMPLETE", "COMPLETE", "FAIL", "COMPLETE"],
            "variant": ["baseline"] * 5,
            "seed": [1, 2, 3, 4, 3],
            "value": [0.90, 0.93, 0.50, math.nan, 0.96],  # seed 3 re-run: 0.96 counts
            "test_acc": [0.89, 0.91, 0.50, math.nan, 0.93],
            "val_acc": [0.90, 0.93, 0.50, math.nan, 0.96],
            "train_acc": [1.0, 1.0, 0.5, math.nan, 0.99],
        }
    )
    spread = analysis.seed_variance(trials, objective="val_acc")
    assert list(spread["metric"]) == ["val_acc", "test_acc", "train_acc"]
    row = spread.iloc[0]
    assert (row["n"], row["mean"], row["min"], row["max"]) == (3, pytest.approx(0.93), 0.90, 0.96)
    assert row["std"] == pytest.approx(0.03) and row["range"] == pytest.approx(0.06)
    assert spread.iloc[1]["std"] == pytest.approx(0.02)
    md = analysis.seed_variance_markdown(spread).splitlines()
    assert (
        md[2] == "| validation accuracy (objective) (%) | 3 | 93.00 | 3.00 | 90.00 | 96.00 | 6.00 |"
    )


def test_module_examples_run() -> None:
    for module in (
        sweeplab.studies.ablation.path,
        sweeplab.analysis.ablation.path,
        sweeplab.analysis.ablation.seeds,
    ):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module.__name__


# --- the round the database says comes next (plain Optuna, no Ray) ----------------------------


def _finish(ablation, pairs, value_of) -> None:
    """Run the given (variant, seed) pairs the way the searcher does, with made-up values."""
    study = ablation.study
    propose = AblationProposer(study, pairs, ablation.plan.choices)
    for _ in range(len(pairs)):
        trial = study.ask()
        propose(trial)
        study.tell(trial, value_of(trial.user_attrs["variant"], trial.user_attrs["seed"]))


def test_each_round_is_derived_from_the_database_and_a_crash_resumes_it(tmp_path: Path) -> None:
    url = _parent(tmp_path)
    ablation = open_ablation(
        "tiny", storage=url, mode="path", seeds=2, components=["optimizer", "lr"]
    )
    study = ablation.study
    assert study.study_name.startswith("tiny.ablation-path-trial")
    how = study.user_attrs["sweeplab_ablation"]
    assert how["mode"] == "path" and how["components"] == ["lr", "optimizer"]
    assert study.user_attrs["sweeplab_spec"]["budget"]["n_trials"] == path_cost(2) * 2

    # Made-up objective: the optimizer matters most, lr a little.
    def value(variant: str, seed: int) -> float:
        return 0.5 + 0.3 * ("optimizer" in variant) + 0.05 * ("lr" in variant) + 0.01 * seed

    first = next_round(ablation)
    assert (first.decided, first.step, first.flipped) == (0, 1, ())
    assert [v.name for v in first.plan.variants] == ["default", "+lr", "+optimizer"]
    assert len(first.pending) == 6
    # A crash after four of the six trials: the same round again, only what it lacks.
    _finish(ablation, list(first.pending[:4]), value)
    again = next_round(ablation)
    assert again.step == 1 and list(again.pending) == list(first.pending[4:])
    _finish(ablation, list(again.pending), value)

    second = next_round(ablation)
    assert (second.decided, second.step, second.flipped) == (2, 2, ("optimizer",))
    (target,) = second.plan.variants
    # The target: the baseline's lr and optimizer; dropout, not asked for, stays at its default.
    assert target.name == "+lr+optimizer"
    assert target.config == {**ablation.baseline.config, "dropout": 0.0}
    assert target.attrs["source"] == "+optimizer" and target.attrs["component"] == "lr"
    trials = study.get_trials()
    flip = next(t for t in trials if t.user_attrs["variant"] == "+optimizer")
    assert flip.user_attrs["step"] == 1 and flip.user_attrs["component"] == "optimizer"
    assert flip.user_attrs["change"]["optimizer"] == ablation.baseline.config["optimizer"]
    _finish(ablation, list(second.pending), value)
    assert next_round(ablation).done

    path = analysis.ablation_path(url, study.study_name)
    assert list(path["parameter"].fillna("-")) == ["-", "optimizer", "lr"]
    assert path["objective_mean"].tolist() == pytest.approx([0.515, 0.815, 0.865])
    assert path["gain_share"].tolist()[1:] == pytest.approx([0.3 / 0.35, 0.05 / 0.35])


# --- end to end: a real path through Ray Tune -------------------------------------------------


@pytest.mark.slow
def test_ablate_path_walks_to_the_target_and_prints_the_path(ray_local, tmp_path, capsys) -> None:
    spec = load_spec(
        tiny_spec(tmp_path, n_trials=3, max_epochs=2, scheduler="none", space=E2E_SPACE)
    )
    run_study(spec, console=Console(file=io.StringIO(), width=200))
    url = spec.study.storage
    args = ["ablate", "tiny", "--storage", url, "--mode", "path", "--seeds", "2",
            "--components", "lr,optimizer"]  # fmt: skip
    code, out, err = _sweeplab(capsys, *args)
    assert code == 0, err
    assert "at most 4 configurations x 2 seed(s) = 8 trials" in err
    (name,) = [n for n in optuna.get_all_study_names(url) if ".ablation-path-" in n]
    study = optuna.load_study(study_name=name, storage=url)
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 8
    assert all(t.user_attrs["epochs_run"] == 2 for t in trials)
    path = analysis.ablation_path(url, name)
    assert path.attrs["complete"] and sorted(path["parameter"].dropna()) == ["lr", "optimizer"]
    assert path["cumulative_share"].iloc[-1] == pytest.approx(1.0)
    best = optuna.load_study(study_name="tiny", storage=url).best_trial
    last = [t for t in trials if t.user_attrs["variant"] == path["variant"].iloc[-1]]
    # The path ends at the best trial's lr and optimizer; dropout was not asked for.
    assert all(t.params == {**best.params, "dropout": 0.0} for t in last)
    for step in path.itertuples():
        assert f"| {step.step} | " in out
    assert "Share of gain (%)" in out

    code, out, err = _sweeplab(capsys, *args)
    assert code == 0 and "the path has reached the target in 2 step(s)" in err
    assert "this run started 0 trial(s)" in out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert len(optuna.load_study(study_name=name, storage=url).trials) == 8


def test_seeds_and_path_studies_are_named_by_mode_and_refuse_bad_input(capsys, tmp_path) -> None:
    url = _parent(tmp_path)
    seeds = open_ablation("tiny", storage=url, mode="seeds", seeds=4)
    assert seeds.study.study_name.startswith("tiny.ablation-seeds-trial")
    assert [(v.name, s) for v, s in seeds.plan.pairs] == [("baseline", s) for s in (1, 2, 3, 4)]
    assert seeds.study.user_attrs["sweeplab_spec"]["budget"]["n_trials"] == 4
    before = optuna.get_all_study_names(url)
    for args, expected in [
        (
            ["--mode", "seeds", "--components", "lr"],
            "--components: mode seeds re-runs the baseline",
        ),
        (["--mode", "path", "--baseline", "default"], "there is no path to walk"),
        (["--mode", "path", "--components", "lr,nope"], "unknown component 'nope'"),
    ]:
        code, _, err = _sweeplab(capsys, "ablate", "tiny", "--storage", url, *args)
        assert code == 2 and expected in err and "Traceback" not in err, (args, err)
    assert optuna.get_all_study_names(url) == before, "a refused ablation writes nothing"


# A path whose whole default-to-target gain (1.2 pp of test accuracy) is within the seed noise
# (std about 1 pp): the shares would read +140 %, −40 %; they must not be shown as if certain.
NOISY = [
    ("default", 0, None, None, None, 0, 0.900, 0.890),
    ("default", 0, None, None, None, 1, 0.910, 0.905),
    ("default", 0, None, None, None, 2, 0.920, 0.915),
    ("+a", 1, "a", "default", {"a": 0.01}, 0, 0.930, 0.900),
    ("+a", 1, "a", "default", {"a": 0.01}, 1, 0.935, 0.925),
    ("+a", 1, "a", "default", {"a": 0.01}, 2, 0.940, 0.935),
    ("+b", 1, "b", "default", {"b": 1}, 0, 0.905, 0.895),
    ("+b", 1, "b", "default", {"b": 1}, 1, 0.915, 0.905),
    ("+b", 1, "b", "default", {"b": 1}, 2, 0.925, 0.915),
    ("+a+b", 2, "b", "+a", {"b": 1}, 0, 0.925, 0.905),
    ("+a+b", 2, "b", "+a", {"b": 1}, 1, 0.930, 0.915),
    ("+a+b", 2, "b", "+a", {"b": 1}, 2, 0.935, 0.926),
]


def test_shares_of_a_gain_within_the_seed_noise_are_not_shown() -> None:
    frame = _frame(NOISY)
    frame["metric"] = frame["test_acc"]
    path = analysis.greedy_path(frame, components=["a", "b"], seeds=[0, 1, 2], metric="test_acc")
    total = path.attrs["total"]
    assert path.attrs["metric"] == "test_acc"
    assert total["delta"] == pytest.approx(0.012, abs=1e-9) and not total["significant"]
    assert total["ci_low"] < 0 < total["ci_high"] and total["p_value"] > 0.05
    assert path["gain_share"].isna().all() and path["cumulative_share"].isna().all()
    # Δ is measured on the held-out test accuracy; the steps are still chosen on the objective.
    assert path["delta"].iloc[1] == pytest.approx(0.920 - 0.9033333, abs=1e-6)
    path.attrs["objective"] = "val_acc"
    md = analysis.path_to_markdown(path)
    assert "**The total change, +1.2 pp (95% CI [" in md and "is not significant**" in md
    assert "the shares are not shown" in md and "Welch's two-sided t test" in md
    assert "test accuracy (the held-out test split)" in md
    rows = md.splitlines()[2:5]
    assert all(row.split(" | ")[6] == "–" for row in rows), rows  # share column empty


def test_a_significant_total_gain_shows_its_shares_and_interval() -> None:
    frame = _frame(ROWS)
    frame["metric"] = frame["test_acc"]
    path = analysis.greedy_path(
        frame, components=["a", "b", "aug.c"], seeds=[0, 1], metric="test_acc"
    )
    assert path.attrs["total"]["significant"]
    assert path["cumulative_share"].iloc[-1] == pytest.approx(1.0)
    path.attrs["objective"] = "val_acc"
    assert "Total change: +30.0 pp (95% CI [" in analysis.path_to_markdown(path)
