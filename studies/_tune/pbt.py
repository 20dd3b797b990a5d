"""Population based training (``[search] scheduler = "pbt"``) on Ray Tune's own scheduler.

Jaderberg et al. (2017), "Population Based Training of Neural Networks": a population of
trials trains side by side; every ``interval`` epochs the bottom ``quantile`` of them takes over
("exploit") the state of one in the top ``quantile`` and perturbs ("explore") the hyperparameters
named in ``[search.pbt] mutate``. Ray's ``PopulationBasedTraining`` does the ranking, the copying
(a paused trial restarts from the donor's Ray checkpoint) and the perturbing (synchronous mode:
the whole population reaches each interval before anyone is copied, so the schedule does not
depend on which worker is faster). :class:`StudyPBT` adds what sweeplab needs around it:

- the sampler's trials: the population is the study's first ``concurrency`` trials, sampled by
  the study's searcher (Ray refuses a searcher beside PBT only because its own searchers would
  not see the perturbed configurations; ours records them itself);
- a trial keeps its identity: Ray copies the donor's whole config, so the trial's own Optuna
  number and seed are put back, and the copy is recorded (:data:`records.PBT_SCHEDULE`);
- the perturbed values stay within the space's ranges (:func:`within_space`).

In the worker, :func:`take_checkpoint` and :func:`checkpoint_for_tune` carry the trainer's
checkpoint bytes in and out of Ray's checkpoints.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune.schedulers import PopulationBasedTraining

from sweeplab import searchspace
from sweeplab.studies._tune import messages

#: Ray perturbs a float or an int by one of these factors (when it does not draw anew).
PERTURBATION_FACTORS = (1.2, 0.8)
# The files of a Ray checkpoint of one trial: the trainer's bytes, and whose they are.
_STATE_FILE, _OWNER_FILE = "state.pt", "owner.json"


def mutations(space: searchspace.SearchSpace, names: list[str]) -> dict[str, Any]:
    """Ray's ``hyperparam_mutations`` for ``names`` of ``space``: what a resample draws from.

    Example:
        >>> space = searchspace.parse_space({"lr": {"type": "float", "low": 1e-4, "high": 0.1,
        ...                                          "log": True}})
        >>> type(mutations(space, ["lr"])["lr"]).__name__
        'Float'
    """
    by_name = {p.name: p for p in space}
    out: dict[str, Any] = {}
    for name in names:
        p = by_name[name]
        if isinstance(p, searchspace.CategoricalParam):
            out[name] = list(p.choices)
        elif isinstance(p, searchspace.IntParam):
            draw = tune.lograndint if p.log else tune.randint
            out[name] = draw(p.low, p.high + 1)  # Ray's upper bound is exclusive
        elif isinstance(p, searchspace.FloatParam):
            out[name] = (tune.loguniform if p.log else tune.uniform)(p.low, p.high)
        else:  # the spec validator lets only ranges and choices through
            raise ValueError(f"{name}: population based training perturbs ranges and choices")
    return out


def within_space(
    params: Mapping[str, Any], space: searchspace.SearchSpace, names: list[str]
) -> dict[str, Any]:
    """``params`` with each of ``names`` brought back into its range: a perturbed value is
    clipped to ``[low, high]`` and put on the range's step (ints are rounded).

    Example:
        >>> space = searchspace.parse_space({"lr": {"type": "float", "low": 0.001, "high": 0.1}})
        >>> within_space({"lr": 0.12}, space, ["lr"])
        {'lr': 0.1}
    """
    by_name = {p.name: p for p in space}
    out = dict(params)
    for name in names:
        p = by_name[name]
        if not isinstance(p, searchspace.FloatParam | searchspace.IntParam):
            continue
        value = min(max(float(out[name]), p.low), p.high)
        if p.step is not None:
            value = p.low + round((value - p.low) / p.step) * p.step
            value = min(value, p.high)
        out[name] = round(value) if isinstance(p, searchspace.IntParam) else float(value)
    return out


class _WithoutSearcher:
    """A Tune controller that shows PBT no searcher: Ray's PBT refuses any (``on_trial_add``),
    since its searchers would not learn the perturbed configurations. The study's searcher
    records every trial's perturbations itself, so it may stand beside PBT."""

    search_alg = None

    def __init__(self, controller: Any) -> None:
        self._controller = controller

    def __getattr__(self, name: str) -> Any:
        return getattr(self._controller, name)


class _WithoutFailed:
    """A Tune controller that shows PBT only the trials still in the population. Ray keeps a
    trial that errored (its worker died) among its live trials, so synchronous PBT would wait
    for it at every interval, forever: the study would hang. Its retry, a new trial, joins the
    population in its place."""

    def __init__(self, controller: Any) -> None:
        self._controller = controller

    def get_live_trials(self) -> set:
        return {t for t in self._controller.get_live_trials() if not t.is_finished()}

    def get_trials(self) -> list:
        return [t for t in self._controller.get_trials() if t.status != "ERROR"]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._controller, name)


class StudyPBT(PopulationBasedTraining):
    """Ray Tune's synchronous PBT over a study's trials (module docstring).

    Args:
        metric, mode: the study's objective and ``"max"`` or ``"min"``.
        interval: epochs between two exploit/explore steps (``[search.pbt] interval``).
        epochs: the epochs at which the population is ranked, where each trial reports a
            checkpoint (:func:`~sweeplab.studies.asha.judged_rungs`: the multiples of
            ``interval`` below ``max_epochs``; a trial at its last epoch is finishing, not copied).
        quantile: the bottom share copies from the top share (``quantile_fraction``).
        resample_probability: chance that a perturbed value is drawn anew from its range.
        space, mutate: the search space, and the names of it that are perturbed.
        on_exploit: told ``(ray_trial_id, entry)`` for each copy; ``entry`` is one item of
            :data:`~sweeplab.studies.records.PBT_SCHEDULE`.

    Example (Ray's scheduler, built without running anything)::

        pbt = StudyPBT(metric="val_acc", mode="max", interval=2, quantile=0.25,
                       resample_probability=0.25, space=spec.space, mutate=["lr"],
                       on_exploit=lambda trial_id, entry: print(trial_id, entry))
    """

    def __init__(
        self,
        *,
        metric: str,
        mode: str,
        interval: int,
        epochs: frozenset[int],
        quantile: float,
        resample_probability: float,
        space: searchspace.SearchSpace,
        mutate: list[str],
        on_exploit: Callable[[str, dict[str, Any]], None],
    ) -> None:
        def explore(config: dict[str, Any]) -> dict[str, Any]:
            return {**config, messages.PARAMS: within_space(config[messages.PARAMS], space, mutate)}

        super().__init__(
            time_attr=messages.EPOCH,
            metric=metric,
            mode=mode,
            perturbation_interval=interval,
            hyperparam_mutations={messages.PARAMS: mutations(space, mutate)},
            quantile_fraction=quantile,
            resample_probability=resample_probability,
            perturbation_factors=PERTURBATION_FACTORS,
            custom_explore_fn=explore,
            log_config=False,
            # Reports without an epoch or the objective (a checkpoint saved mid-epoch, a
            # failure) are no result to rank.
            require_attrs=False,
            synch=True,
        )
        self.mutate = list(mutate)
        self.epochs = frozenset(epochs)
        self.on_exploit = on_exploit
        self.own: dict[Any, dict[str, Any]] = {}  # Ray trial -> its config, as it started

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        self.own[trial] = dict(trial.config)
        super().on_trial_add(_WithoutSearcher(tune_controller), trial)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if result.get(messages.EPOCH) not in self.epochs or result.get(messages.IS_LAST):
            # Only an interval's report carries a checkpoint to copy; the rest are not ranked.
            return self.CONTINUE
        before = {t: dict(t.config[messages.PARAMS]) for t in self.own}
        decision = super().on_trial_result(_WithoutFailed(tune_controller), trial, result)
        by_number = {own[messages.NUMBER]: t for t, own in self.own.items()}
        for copier, own in self.own.items():
            donor_number = copier.config.get(messages.NUMBER)
            if donor_number == own[messages.NUMBER]:
                continue
            # Ray copied the donor's whole config: the trial keeps its own number and seed.
            params = dict(copier.config[messages.PARAMS])
            copier.set_config({**own, messages.PARAMS: params})
            donor = by_number.get(donor_number)
            last = result if donor is trial else getattr(donor, "last_result", None) or {}
            entry = {
                "epoch": last.get(messages.EPOCH),
                "from": donor_number,
                "params": {name: params[name] for name in self.mutate},
                "was": {name: before[copier].get(name) for name in self.mutate},
                # Every hyperparameter from here on (the donor's, the mutated ones perturbed):
                # what a retry of this trial after a worker death trains with.
                "all_params": params,
            }
            self.on_exploit(copier.trial_id, entry)
        return decision


# ---- in the worker -------------------------------------------------------------------------------


def take_checkpoint(number: int) -> tuple[bytes, bool] | None:
    """The trainer checkpoint Ray restarted this trial from, and whether it is another trial's
    (an exploit); ``None``: Ray gave none (the trial's first start)."""
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        data = (Path(folder) / _STATE_FILE).read_bytes()
        owner = json.loads((Path(folder) / _OWNER_FILE).read_text())["number"]
    return data, int(owner) != number


def checkpoint_for_tune(data: bytes, number: int) -> tuple[Any, Callable[[], None]]:
    """A Ray checkpoint holding the trainer's bytes, and what removes its folder once
    ``tune.report`` has copied it into the run's storage."""
    folder = tempfile.TemporaryDirectory(prefix="sweeplab-pbt-")
    (Path(folder.name) / _STATE_FILE).write_bytes(data)
    (Path(folder.name) / _OWNER_FILE).write_text(json.dumps({"number": number}))
    return tune.Checkpoint.from_directory(folder.name), folder.cleanup
