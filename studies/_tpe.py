"""TPE whose cost per sample stops growing with the study: it models a bounded window of history.

Optuna's TPE reads every finished trial on every sample (the search-space decomposition, the
good/bad split, one Parzen kernel per trial), so a sample costs ~4 ms at trial 100 and ~60 ms at
trial 5000 here, and a study of thousands of short trials spends its time sampling (optuna #2172).

The window keeps what TPE's choice rests on and drops what it barely moves:

- the best quarter of the window, ranked over the *whole* history as TPE ranks trials (complete
  ones by value, then pruned ones by the last epoch reached and their value there), so TPE's
  "good" group (its best ``min(10 %, 25)`` trials) is exactly the one it would have chosen from
  the whole history whenever the window holds at least 250 trials;
- the most recent other finished trials, to fill the window: the "bad" group becomes the recent
  part of the history rather than all of it;
- every unfinished trial (the constant liar's pending ones).

Multi-objective studies are modelled on the whole history (their "good" group is a share of all
trials, not a capped count, so no window leaves it unchanged). Their pruned trials are shown
without their curves: Optuna's TPE ranks a pruned trial by its last intermediate value in the
study's one direction, which a multi-objective study has not (it raises), and a curve of one
objective says nothing of the vector; so pruned trials all rank alike, below the complete ones.

With ``rungs`` (BOHB's rule, Falkner et al. 2018, on top of TPE) the model is fitted on the
highest rung that at least ``d + 1`` trials reached (``d``: the space's parameters), each judged by
its value *at that rung*: more comparable observations early in a study than TPE's own rule
(complete trials first, then pruned ones by how far they got and their value there, values of
different rungs side by side). Trials stopped below that rung stay in the "bad" group.
"""

from __future__ import annotations

import copy
import heapq
import math
from collections.abc import Container
from typing import Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState


class BoundedTPESampler(optuna.samplers.TPESampler):
    """:class:`optuna.samplers.TPESampler` modelling at most ``window`` finished trials.

    Args:
        window: finished trials TPE models at most; 0 models the whole history (Optuna's TPE).
        rungs: the epochs at which a scheduler judges trials (increasing) to model the highest
            one reached by ``min_points`` trials at; empty: TPE's own multi-fidelity rule.
        min_points: trials a rung needs to be modelled (BOHB's default is ``d + 1``).
        **kwargs: :class:`~optuna.samplers.TPESampler`'s own arguments.

    Example:
        >>> import optuna
        >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
        >>> sampler = BoundedTPESampler(window=40, n_startup_trials=5, seed=0)
        >>> study = optuna.create_study(sampler=sampler)
        >>> study.optimize(lambda t: (t.suggest_float("x", -5, 5) - 2) ** 2, n_trials=80)
        >>> abs(study.best_params["x"] - 2) < 0.5
        True
        >>> len(sampler.modelled(study))  # the window, not the 80 trials
        40
    """

    def __init__(
        self, *, window: int, rungs: tuple[int, ...] = (), min_points: int = 2, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if window < 0:
            raise ValueError(f"window must be >= 0, got {window}")
        self._window = window
        self._rungs = tuple(sorted(set(rungs), reverse=True))
        self._min_points = min_points
        self._at_rung: dict[tuple[int, int], FrozenTrial] = {}
        self._keys: dict[int, tuple[float, ...]] = {}  # finished trials' ranks, computed once
        self._kept: set[int] = set()
        self._decomposed: set[int] = set()  # finished trials the group decomposition has seen

    def modelled(self, study: optuna.Study) -> list[FrozenTrial]:
        """The finished trials (complete or pruned) the next sample models."""
        states = (TrialState.COMPLETE, TrialState.PRUNED)
        # Read afresh: outside a sample, the study's snapshot may be an earlier trial's.
        view = _Windowed(study, self, curveless=study._is_multi_objective(), snapshot=False)
        return view._get_trials(deepcopy=False, states=states)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, optuna.distributions.BaseDistribution]:
        view = self._view(study)
        if self._group:
            # The group decomposition keeps what it has seen and a trial seen again changes
            # nothing, so each finished trial is shown to it once, not on every sample.
            view = _Unseen(view, self._decomposed)  # type: ignore[assignment]
        return super().infer_relative_search_space(view, trial)

    def sample_relative(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        search_space: dict[str, optuna.distributions.BaseDistribution],
    ) -> dict[str, Any]:
        return super().sample_relative(self._view(study), trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: optuna.distributions.BaseDistribution,
    ) -> Any:
        return super().sample_independent(self._view(study), trial, param_name, param_distribution)

    def _view(self, study: optuna.Study) -> optuna.Study:
        if study._is_multi_objective():
            return _Windowed(study, self, curveless=True)  # type: ignore[return-value]
        return _Windowed(study, self)  # type: ignore[return-value]

    def _without_curves(self, trials: list[FrozenTrial]) -> list[FrozenTrial]:
        """Pruned trials without their intermediate values (see the module docstring)."""
        out = []
        for t in trials:
            if t.state == TrialState.PRUNED and t.intermediate_values:
                key = (t.number, -1)
                if key not in self._at_rung:  # finished trials do not change: copy each once
                    bare = copy.copy(t)
                    bare.intermediate_values = {}
                    self._at_rung[key] = bare
                t = self._at_rung[key]
            out.append(t)
        return out

    def _judged_at_rung(self, trials: list[FrozenTrial]) -> list[FrozenTrial]:
        """Trials that reached the highest well-populated rung, as complete ones valued there."""
        for rung in self._rungs:
            reached = sum(rung in t.intermediate_values for t in trials if t.state.is_finished())
            if reached >= self._min_points:
                break
        else:
            return trials
        out = []
        for t in trials:
            value = t.intermediate_values.get(rung) if t.state.is_finished() else None
            if value is None:
                out.append(t)
                continue
            key = (t.number, rung)
            if key not in self._at_rung:  # finished trials do not change: copy each once
                judged = copy.copy(t)
                judged.state, judged.value = TrialState.COMPLETE, value
                self._at_rung[key] = judged
            out.append(self._at_rung[key])
        return out

    def _window_of(self, study: optuna.Study, trials: list[FrozenTrial]) -> list[FrozenTrial]:
        if self._window == 0 or len(trials) <= self._window:
            return trials
        # One pass for what is new, one to filter: the history is long, and this runs three
        # times per sample (the space's decomposition, the split, the Parzen estimators).
        keys = self._keys
        new = [t for t in trials if t.number not in keys and t.state.is_finished()]
        if new:
            sign = -1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0
            for t in new:
                keys[t.number] = _rank_key(t, sign)
            self._kept = self._choose()
        kept = self._kept
        # Unfinished trials (never ranked) are always modelled.
        return [t for t in trials if (n := t.number) in kept or n not in keys]

    def _choose(self) -> set[int]:
        """The finished trials' numbers in the window: the best quarter, then the latest."""
        keys = self._keys
        if len(keys) <= self._window:
            return set(keys)
        n_best = self._window // 4
        kept = set(heapq.nsmallest(n_best, keys, key=keys.__getitem__))
        kept.update(heapq.nlargest(self._window - n_best, (n for n in keys if n not in kept)))
        return kept


def _rank_key(trial: FrozenTrial, sign: float) -> tuple[float, ...]:
    """Smaller is better, in the order of TPE's own split (``optuna.samplers._tpe.sampler``):
    complete trials by value, then pruned ones by the last step reached, then their value there
    (NaN last), then everything else."""
    if trial.state == TrialState.COMPLETE and trial.value is not None:
        return (0.0, sign * trial.value)
    if trial.state == TrialState.PRUNED:
        if not trial.intermediate_values:
            return (1.0, 1.0, 0.0)
        step, value = max(trial.intermediate_values.items())
        return (1.0, -float(step), math.inf if math.isnan(value) else sign * value)
    return (2.0,)


class _View:
    """A study whose every attribute is the study's own except the trials, which :meth:`_shown`
    filters from the study's own read (``use_cache`` as :meth:`_use_cache` decides)."""

    def __init__(self, study: optuna.Study) -> None:
        self._study = study

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _get_trials(
        self,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
        use_cache: bool = False,
    ) -> list[FrozenTrial]:
        cached = self._use_cache(use_cache)
        return self._shown(
            self._study._get_trials(deepcopy=deepcopy, states=states, use_cache=cached)
        )

    def _use_cache(self, asked: bool) -> bool:
        return asked

    def _shown(self, trials: list[FrozenTrial]) -> list[FrozenTrial]:
        return trials


class _Windowed(_View):
    """A study as the window shows it: every attribute is the study's own except the trials.

    Every read of the trials is served from the study's own snapshot, which ``Study.ask`` drops
    for each new trial: TPE reads the history three times per sample (the space's decomposition,
    the split, the Parzen estimators), and with the constant liar two of them from the database.
    One snapshot taken after this trial's ask is as fresh for a driver that asks one trial at a
    time, and costs one read. ``curveless``: no window, pruned trials without their curves (a
    multi-objective study's view).
    """

    def __init__(
        self,
        study: optuna.Study,
        sampler: BoundedTPESampler,
        curveless: bool = False,
        snapshot: bool = True,
    ) -> None:
        super().__init__(study)
        self._sampler = sampler
        self._curveless = curveless
        self._snapshot = snapshot

    def _use_cache(self, asked: bool) -> bool:
        return self._snapshot

    def _shown(self, trials: list[FrozenTrial]) -> list[FrozenTrial]:
        if self._curveless:
            return self._sampler._without_curves(trials)
        trials = self._sampler._window_of(self._study, trials)
        return self._sampler._judged_at_rung(trials) if self._sampler._rungs else trials


class _Unseen(_View):
    """A study whose finished trials each appear once: those not in ``seen`` (then added)."""

    def __init__(self, study: optuna.Study, seen: set[int]) -> None:
        super().__init__(study)
        self._seen = seen

    def _shown(self, trials: list[FrozenTrial]) -> list[FrozenTrial]:
        new = [t for t in trials if t.number not in self._seen]
        self._seen.update(t.number for t in new if t.state.is_finished())
        return new
