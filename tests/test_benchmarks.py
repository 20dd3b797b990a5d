"""The benchmark scripts: they start, their last line parses, and their arithmetic is right.

The scripts' figures are only meaningful on a quiet machine, so no test runs them for timing;
these tests check what can be checked quickly: ``--help`` works without starting Ray, the
machine-readable last line round-trips, and the pure functions that turn a study's records into
figures (search efficiency's replay, the overhead formula) compute what their docstrings say.
"""

from __future__ import annotations

import math
import subprocess
import sys

import optuna
import pytest
from conftest import BENCHMARKS, load_benchmark
from optuna.trial import TrialState

SCRIPTS = [
    "trial_overhead.py",
    "search_efficiency.py",
    "scaling.py",
    "startup.py",
    "checkpoint_cost.py",
    "search_peers.py",
    "trainer_throughput.py",
]


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_help_works(script) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


@pytest.mark.parametrize(
    "args, expected",
    [
        (
            ["--cases", "mlp,cnn_fast"],
            "'cnn_fast' is not one of mlp, mlp_aug, mlp_compile, cnn, cnn_nchw, cnn_compile",
        ),
        (["--rounds", "0"], "--rounds must be an int >= 1; got 0"),
    ],
)
def test_trainer_throughput_rejects_bad_arguments_before_training(args, expected) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "trainer_throughput.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2 and expected in done.stderr, done.stderr


def test_startup_runs_and_its_last_line_parses() -> None:
    common = load_benchmark("_common")
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "startup.py"), "--runs", "1"],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    figures = common.parse_pairs(done.stdout)
    assert {"help_s", "status_s", "init_s", "status_vs_import_optuna"} <= set(figures)
    assert all(figures[k] > 0 for k in ("help_s", "status_s", "init_s"))


def test_last_line_round_trips() -> None:
    common = load_benchmark("_common")
    line = common.format_pairs(
        {"ratio": 3.14159, "trials": 200, "work": "cpu", "ok": True, "gpu": "skipped"}
    )
    assert line == "ratio=3.142 trials=200 work=cpu ok=1 gpu=skipped"
    parsed = common.parse_pairs(f"some figures\n{line}\n\n")
    assert parsed == {"ratio": 3.142, "trials": 200.0, "work": "cpu", "ok": 1.0, "gpu": "skipped"}
    assert next(iter(parsed)) == "ratio"


@pytest.mark.parametrize("bad", ["", "figures only\nratio 3", "ratio=3 =4", "ratio="])
def test_last_line_parser_rejects_what_is_not_pairs(bad) -> None:
    common = load_benchmark("_common")
    with pytest.raises(ValueError):
        common.parse_pairs(bad)


def test_format_refuses_values_that_would_not_parse() -> None:
    common = load_benchmark("_common")
    with pytest.raises(ValueError):
        common.format_pairs({"note": "two words"})


def test_overhead_is_wall_minus_compute_per_concurrency_per_trial() -> None:
    overhead = load_benchmark("trial_overhead")
    args = type("Args", (), {"seconds": 0.5, "epochs": 5, "concurrency": 2})()
    # 10 trials, 40 epochs of 0.1 s run = 4 s of work, 2 at a time = 2 s; wall 3 s.
    result = {"wall_s": 3.0, "epochs": 40, "trials": 10}
    assert overhead.overhead_ms(result, args) == pytest.approx(100.0)


def _study_with(trials: list[dict]) -> optuna.Study:
    """An in-memory study whose trials carry the records a sweeplab run leaves."""
    study = optuna.create_study(direction="maximize")
    for t in trials:
        attrs = {"run_started_at": t["start"], "epoch_seconds": [1.0] * t["epochs"]}
        frozen = optuna.trial.create_trial(
            state=t["state"],
            value=t.get("value"),
            user_attrs=attrs,
            params={},
            distributions={},
            intermediate_values={},
        )
        study.add_trial(frozen)
    return study


def test_replay_counts_every_epoch_in_time_order_and_only_completed_values() -> None:
    efficiency = load_benchmark("search_efficiency")
    study = _study_with(
        [
            # pruned after 2 epochs (ends at t=2): its epochs count, it is never "found"
            {"start": 0.0, "epochs": 2, "state": TrialState.PRUNED},
            # complete at t=4 with 0.9: by then 2 + 4 = 6 epochs ran... minus the pruned
            # trial's overlap: epochs end at 1, 2 (pruned) and 1, 2, 3, 4 (this one)
            {"start": 0.0, "epochs": 4, "state": TrialState.COMPLETE, "value": 0.9},
            # starts at 2, complete at 5 with 0.95 (epochs end at 3, 4, 5)
            {"start": 2.0, "epochs": 3, "state": TrialState.COMPLETE, "value": 0.95},
            {"start": 3.0, "epochs": 1, "state": TrialState.FAIL},  # 1 epoch, ends at 4
        ]
    )
    r = efficiency.replay(study, "random", 0)
    # events by time: 1,1 | 2,2 | 3,3 | 4,4,4 (+0.9 after the epochs at 4) | 5 (+0.95)
    assert r.epochs == [9, 10]
    assert r.best == [0.9, 0.95]
    assert r.seconds == [4.0, 5.0]
    assert (r.total_epochs, r.total_seconds) == (10, 5.0)
    assert r.cost_to(0.9) == (9, 4.0, True)
    assert r.cost_to(0.93) == (10, 5.0, True)
    assert r.cost_to(0.99) == (10, 5.0, False)  # censored at the study's total


def test_bootstrap_interval_brackets_the_ratio_of_means() -> None:
    efficiency = load_benchmark("search_efficiency")
    num, den = [300.0, 360.0, 330.0, 310.0, 350.0], [90.0, 120.0, 100.0, 110.0, 105.0]
    low, high = efficiency.bootstrap_ratio(num, den)
    ratio = (sum(num) / 5) / (sum(den) / 5)
    assert low < ratio < high
    assert math.isclose(ratio, 3.1, rel_tol=0.02)
