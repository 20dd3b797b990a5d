"""TPE over a bounded window of the history (``[search] history_window``, studies/_tpe.py)."""

from __future__ import annotations

import optuna
import pytest
from optuna.samplers._tpe.sampler import _split_trials, default_gamma
from optuna.trial import TrialState

import sweeplab
from sweeplab.studies._study import make_sampler
from sweeplab.studies._tpe import BoundedTPESampler

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _study(n: int, pruned_every: int = 0) -> optuna.Study:
    """``n`` finished trials of x in [0, 1], maximised, with older trials better (so a window of
    the latest alone would miss the best ones); every ``pruned_every``-th one pruned."""
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    for i in range(n):
        trial = study.ask()
        x = trial.suggest_float("x", 0.0, 1.0)
        value = x - i / n
        if pruned_every and i % pruned_every == 0:
            trial.report(value, step=1 + i % 3)
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, value)
    return study


def _below(study: optuna.Study, trials: list) -> list[int]:
    n = sum(t.state != TrialState.RUNNING for t in trials)
    below, _ = _split_trials(study, trials, default_gamma(n))
    return sorted(t.number for t in below)


@pytest.mark.parametrize("pruned_every", [0, 3])
def test_the_good_group_is_the_one_of_the_whole_history(pruned_every: int) -> None:
    study = _study(1200, pruned_every)
    sampler = BoundedTPESampler(window=300, seed=0)
    modelled = sampler.modelled(study)
    assert len(modelled) == 300
    everything = study._get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    # TPE's own split (Optuna's private function, the thing the window must not change).
    assert _below(study, modelled) == _below(study, everything)


def test_the_rest_of_the_window_is_the_latest_trials() -> None:
    study = _study(1000)
    sampler = BoundedTPESampler(window=200, seed=0)
    modelled = {t.number for t in sampler.modelled(study)}
    ranked = sorted(study.trials, key=lambda t: -t.value)
    best = {t.number for t in ranked[:50]}
    assert best <= modelled
    assert set(range(1000 - 150, 1000)) - best <= modelled
    assert len(modelled) == 200


def test_window_zero_and_short_histories_are_optunas_tpe() -> None:
    study = _study(150)
    assert len(BoundedTPESampler(window=0, seed=0).modelled(study)) == 150
    assert len(BoundedTPESampler(window=1000, seed=0).modelled(study)) == 150

    def draws(sampler: optuna.samplers.BaseSampler) -> list[float]:
        s = optuna.create_study(sampler=sampler)
        s.optimize(lambda t: (t.suggest_float("x", -3, 3) - 1) ** 2, n_trials=40)
        return [t.params["x"] for t in s.trials]

    stock = optuna.samplers.TPESampler(seed=3, n_startup_trials=5)
    assert draws(BoundedTPESampler(window=1000, seed=3, n_startup_trials=5)) == draws(stock)


def test_sweeplabs_tpe_draws_what_optunas_draws_on_a_conditional_space() -> None:
    """With sweeplab's TPE settings (multivariate, group, constant liar) and pending trials: the
    one-read snapshot and the once-per-trial decomposition change no draw."""
    settings = {"multivariate": True, "group": True, "constant_liar": True}

    def draws(sampler: optuna.samplers.BaseSampler) -> list[dict]:
        study = optuna.create_study(sampler=sampler)
        pending = []
        for i in range(60):
            trial = study.ask()
            optimizer = trial.suggest_categorical("optimizer", ["sgd", "adam"])
            lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
            momentum = trial.suggest_float("momentum", 0.0, 0.99) if optimizer == "sgd" else 0
            value = (lr - 0.01) ** 2 + (momentum - 0.9) ** 2 + (optimizer == "adam") * 0.1
            pending.append((trial, value))
            if i % 3 != 1:  # two at a time now and then: the constant liar's pending trials
                for t, v in pending:
                    study.tell(t, v if i % 7 else None, state=None if i % 7 else TrialState.PRUNED)
                pending = []
        return [t.params for t in study.trials]

    stock = optuna.samplers.TPESampler(seed=5, n_startup_trials=8, **settings)
    ours = BoundedTPESampler(window=0, seed=5, n_startup_trials=8, **settings)
    assert draws(ours) == draws(stock)


def test_pending_trials_are_always_modelled() -> None:
    study = _study(500)
    running = study.ask()
    running.suggest_float("x", 0.0, 1.0)
    sampler = BoundedTPESampler(window=100, seed=0)
    view = sampler._view(study)
    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    trials = view._get_trials(deepcopy=False, states=states)
    assert running.number in {t.number for t in trials}
    assert len(trials) == 101


def test_the_window_bounds_a_running_study() -> None:
    """Through the spec: a study past its window still optimises, modelling only the window."""
    spec = sweeplab.spec_from_dict(
        {
            "study": {"name": "w", "direction": "minimize", "objective": "loss"},
            "data": {"dataset": "digits"},
            "trainable": {"function": "m:f"},
            "search": {"history_window": 60, "n_startup_trials": 10},
            "space": {"x": {"type": "float", "low": -5.0, "high": 5.0}},
        }
    )
    sampler = make_sampler(spec, 0)
    assert isinstance(sampler, BoundedTPESampler)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: (t.suggest_float("x", -5, 5) - 2) ** 2, n_trials=200)
    assert len(sampler.modelled(study)) == 60
    assert study.best_value < 0.05


def test_a_negative_window_is_refused(tmp_path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        '[study]\nname = "w"\n[data]\ndataset = "digits"\n[search]\nhistory_window = -1\n'
        '[space]\nlr = { type = "float", low = 1e-3, high = 1e-1, log = true }\n'
    )
    with pytest.raises(sweeplab.SpecError, match=r"search\.history_window.*greater than or equal"):
        sweeplab.load_spec(path)


def _multi_fidelity_study() -> optuna.Study:
    """40 trials judged at epochs 1, 3, 9 as ASHA would: a third go on at each rung; the
    value at each epoch is the trial's x scaled by the epoch (so rungs disagree in scale)."""
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(1))
    for i in range(40):
        trial = study.ask()
        x = trial.suggest_float("x", 0.0, 1.0)
        last = 9 if i % 9 == 0 else 3 if i % 3 == 0 else 1
        for epoch in range(1, last + 1):
            trial.report(x * epoch, step=epoch)
        if last == 9:
            study.tell(trial, x * 9)
        else:
            study.tell(trial, state=TrialState.PRUNED)
    return study


def test_the_rung_model_values_trials_at_the_highest_well_populated_rung() -> None:
    study = _multi_fidelity_study()  # 5 reach epoch 9, 14 reach epoch 3, all reach 1
    sampler = BoundedTPESampler(window=1000, rungs=(1, 3, 9), min_points=6, seed=0)
    modelled = sampler.modelled(study)
    at_rung = [t for t in modelled if t.state == TrialState.COMPLETE]
    reached = [t for t in study.trials if 3 in t.intermediate_values]
    assert len(reached) == 14
    assert sorted(t.number for t in at_rung) == sorted(t.number for t in reached)
    assert all(t.value == t.intermediate_values[3] for t in at_rung)
    assert sum(t.state == TrialState.PRUNED for t in modelled) == 40 - 14
    # The study's own records are untouched (the model sees copies).
    assert sum(t.state == TrialState.COMPLETE for t in study.trials) == 5
    # With enough trials at the top rung, that one is modelled.
    top = BoundedTPESampler(window=1000, rungs=(1, 3, 9), min_points=5, seed=0)
    assert all(t.value == t.intermediate_values[9] for t in top.modelled(study)
               if t.state == TrialState.COMPLETE)  # fmt: skip
    # No rungs: TPE's own view.
    plain = BoundedTPESampler(window=1000, seed=0).modelled(study)
    assert sum(t.state == TrialState.COMPLETE for t in plain) == 5


def test_rung_model_in_the_spec() -> None:
    raw = {
        "study": {"name": "r"},
        "data": {"dataset": "digits"},
        "budget": {"max_epochs": 9},
        "search": {"rung_model": True, "grace_period": 1, "reduction_factor": 3},
        "space": {"lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}},
    }
    sampler = make_sampler(sweeplab.spec_from_dict(raw), 0)
    assert sampler._rungs == (9, 3, 1)
    assert sampler._min_points == 2
    raw["search"]["scheduler"] = "none"
    with pytest.raises(sweeplab.SpecError, match=r"search\.rung_model: .*scheduler = \"none\""):
        sweeplab.spec_from_dict(raw)
