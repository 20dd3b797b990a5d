"""``[search] pack``: a real Ray Tune study whose trials train four at a time as one model."""

from __future__ import annotations

import io

import optuna
import pytest
from conftest import tiny_spec
from optuna.trial import TrialState
from rich.console import Console

from sweeplab.studies import SpecError, load_spec, run_study
from sweeplab.studies._tune.member_asha import MemberAsha
from sweeplab.studies.asha import asha_rungs, asha_stops
from sweeplab.studies.cli import main

PACKABLE_SPACE = """
[space.lr]
type = "float"
low = 1e-4
high = 0.3
log = true

[space.optimizer]
type = "categorical"
choices = ["adam", "adamw"]

[space.weight_decay]
type = "float"
low = 1e-6
high = 1e-2
log = true

[space.dropout]
type = "float"
low = 0.0
high = 0.5
"""


def test_asha_rule_matches_ray() -> None:
    from ray.tune.schedulers.async_hyperband import _Bracket

    bracket = _Bracket(min_t=1, max_t=8, reduction_factor=2.0, s=0)
    assert asha_rungs(1, 2.0, 8) == [m for m, _ in reversed(bracket._rungs)]
    asha = MemberAsha(
        None, grace_period=1, reduction_factor=2.0, max_epochs=8, maximize=True, pack=range(5)
    )

    class Trial:  # what _Bracket reads of a trial
        def __init__(self, i: int) -> None:
            self.trial_id = str(i)

    values = [0.5, 0.7, 0.4, 0.9, 0.6]
    for i, v in enumerate(values):
        ray_stops = bracket.on_result(Trial(i), 1, v) == "STOP"
        assert asha.should_stop(i, 1, v) == ray_stops
    # Minimising (val_loss): lower is better.
    assert asha_stops(0.5, [0.3, 0.4], 2.0, maximize=False)
    assert not asha_stops(0.2, [0.3, 0.4], 2.0, maximize=False)


@pytest.mark.parametrize(
    ("value", "ok"), [("1", True), ('"auto"', True), ("0", False), ("2.5", False), ('"x"', False)]
)
def test_pack_accepts_the_edge_and_rejects_just_past_it(tmp_path, value, ok) -> None:
    path = tiny_spec(tmp_path, extra=f"pack = {value}")
    if ok:
        load_spec(path)
    else:
        with pytest.raises(SpecError, match=r'search.pack: must be an int >= 1 or "auto"; got'):
            load_spec(path)


def test_pack_needs_an_mlp(tmp_path) -> None:
    path = tiny_spec(tmp_path, extra="pack = 4")
    path.write_text(path.read_text().replace('kind = "mlp"', 'kind = "cnn"'))
    with pytest.raises(SpecError, match=r"search.pack: only MLPs"):
        load_spec(path)
    path.write_text(path.read_text().replace("pack = 4", 'pack = "auto"'))
    assert load_spec(path).search.pack == "auto"


@pytest.mark.slow
def test_a_packed_study_writes_ordinary_trials(ray_local, tmp_path, capsys) -> None:
    spec = load_spec(
        tiny_spec(
            tmp_path, n_trials=8, max_epochs=4, concurrency=1, extra="pack = 4",
            space=PACKABLE_SPACE,
        )
    )  # fmt: skip
    summary = run_study(spec, console=Console(file=io.StringIO()))
    study = optuna.load_study(study_name=spec.study.name, storage=spec.study.storage)
    states = [t.state for t in study.trials]
    assert len(states) == 8 and states.count(TrialState.RUNNING) == 0
    assert states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED) == 8
    assert summary.counts["complete"] >= 1
    assert states.count(TrialState.PRUNED) >= 1, "per-member ASHA (rf 2) stops some members"
    for t in study.trials:
        epochs = t.user_attrs["epochs_run"]
        assert sorted(t.intermediate_values) == list(range(1, epochs + 1))
        values = [t.intermediate_values[e] for e in range(1, epochs + 1)]
        assert values == pytest.approx(t.user_attrs["val_acc"])
        assert len(t.user_attrs["train_loss"]) == epochs
        assert t.user_attrs["seed"] == spec.study.seed + t.number
        if t.state == TrialState.COMPLETE:
            assert epochs == 4 and 0 < t.user_attrs["test_acc"] <= 1
        else:
            assert epochs < 4
    # Two Ray trials of four members each, every member's stack starting with its pack.
    packs = [t.user_attrs["pack_id"] for t in study.trials]
    assert sorted(packs) == [0] * 4 + [4] * 4
    assert {t.user_attrs["pack_size"] for t in study.trials} == {4}
    assert len({t.user_attrs["run_started_at"] for t in study.trials}) == 2

    with pytest.raises(SystemExit) as code:
        main(
            ["report", spec.study.name, "--storage", spec.study.storage, "-o", str(tmp_path / "r")]
        )
    assert code.value.code == 0, capsys.readouterr().err
    assert f"trial #{study.best_trial.number}" in (tmp_path / "r" / "report.md").read_text()


MIXED_SPACE = """
[space.lr]
type = "float"
low = 1e-3
high = 0.1
log = true

[space.optimizer]
type = "categorical"
choices = ["sgd", "rmsprop"]

[space.batch_size]
type = "categorical"
choices = [32, 64]
"""


@pytest.mark.slow
def test_members_that_do_not_stack_together_still_train_in_the_pack(ray_local, tmp_path) -> None:
    # rmsprop cannot be stacked (it trains alone through fit) and two batch sizes make two
    # stacks: one pack of six runs all three paths, ASHA judging each member.
    spec = load_spec(
        tiny_spec(
            tmp_path, name="mixed", n_trials=6, max_epochs=3, concurrency=1, extra="pack = 6",
            space=MIXED_SPACE,
        )
    )  # fmt: skip
    run_study(spec, console=Console(file=io.StringIO()))
    study = optuna.load_study(study_name="mixed", storage=spec.study.storage)
    assert len(study.trials) == 6
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials)
    assert {t.user_attrs["pack_id"] for t in study.trials} == {0}  # one pack
    # Each stack (and each member trained alone) starts when the one before it has ended.
    assert len({t.user_attrs["run_started_at"] for t in study.trials}) >= 3
    # The seeded sampler draws both optimizers and both batch sizes among the stackable ones.
    kinds = {(t.params["optimizer"], t.params["batch_size"]) for t in study.trials}
    assert any(o == "rmsprop" for o, _ in kinds)
    assert {b for o, b in kinds if o == "sgd"} == {32, 64}
    for t in study.trials:
        assert len(t.user_attrs["val_acc"]) == t.user_attrs["epochs_run"] >= 1
        assert t.state == TrialState.PRUNED or t.user_attrs["epochs_run"] == 3
