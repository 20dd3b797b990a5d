"""An ablation study: the linked study ``sweeplab ablate NAME`` trains into, and what it lacks.

The baseline configuration (the parent study's best trial, its defaults, or a trial number) is
resolved (:func:`resolve_baseline`), planned into variants (:mod:`.plan`; the path mode step by
step, :mod:`.path`), and given a study of its own in the parent's database (:func:`open_ablation`)
whose spec is the parent's, without pruning. Its trials are handed out by an
:class:`AblationProposer` in the sampler's place (:mod:`.run` runs them).

Each trial stores user attributes ``variant`` and ``seed``, and its configuration as Optuna
parameters (subset elements as ``NAME.ELEMENT`` booleans, as in a search). The database decides
what remains (:func:`remaining_pairs`): the (variant, seed) pairs without a COMPLETE trial, after
interrupted trials are recovered as ``resume`` does. One driver per ablation study: two at once
would each run the pairs neither has finished.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState

from sweeplab import searchspace
from sweeplab.studies import records
from sweeplab.studies._code import UserCode
from sweeplab.studies._run import preflight
from sweeplab.studies._spec import StudySpec, spec_from_dict
from sweeplab.studies._study import open_study, stored_spec
from sweeplab.studies.ablation.path import path_cost, plan_path
from sweeplab.studies.ablation.plan import AblationPlan, Variant, default_config, plan_ablation
from sweeplab.studies.errors import InvalidArgument, SpecConflict, UsageError
from sweeplab.studies.storage import (
    load_study,
    open_storage,
    set_param,
    trial_by_number,
)


@dataclass(frozen=True, kw_only=True)
class Baseline:
    """The configuration an ablation starts from.

    Attributes:
        label: ``trial7`` or ``default``; part of the ablation study's name.
        trial: the parent trial's number; ``None`` for the default configuration.
        config: the configuration, as :meth:`searchspace.SearchSpace.config_from_params` gives.
        best: whether it was chosen as the parent's best trial.
    """

    label: str
    trial: int | None
    config: dict[str, Any]
    best: bool = False

    def __str__(self) -> str:
        if self.trial is None:
            return "the defaults"
        return f"trial {self.trial}" + (" (the best)" if self.best else "")


def ablation_study_name(parent: str, mode: str, baseline: Baseline) -> str:
    """The linked study's name: ``quickstart.ablation-loo-trial7``.

    The baseline's trial number is part of it, so ``ablate`` resumes the same study until the
    parent's best trial changes, and then starts an ablation of the new best.
    """
    return f"{parent}.ablation-{mode}-{baseline.label}"


def resolve_baseline(
    parent: optuna.Study,
    space: searchspace.SearchSpace,
    baseline: str,
    *,
    allow_pruned: bool = False,
) -> Baseline:
    """``best``, ``default`` or a trial number of the parent study, as a configuration.

    A PRUNED trial stopped after a few epochs: its configuration was never judged at the full
    budget, so it is refused as a baseline unless ``allow_pruned`` (``ablate --force``).

    Raises:
        InvalidArgument: no complete trial for ``best``; no such trial, or one that is not
            COMPLETE (PRUNED without ``allow_pruned``).
    """
    if baseline == "default":
        return Baseline(label="default", trial=None, config=default_config(space))
    name = parent.study_name
    if baseline == "best":
        try:
            trial = parent.best_trial
        except ValueError as e:
            raise InvalidArgument(
                "baseline",
                f"study {name!r} has no complete trial to ablate yet; run it first, or pick "
                "default or a trial number",
            ) from e
    else:
        if not baseline.isdigit():
            raise InvalidArgument(
                "baseline", f"must be best, default or a trial number; got {baseline!r}"
            )
        trials = {t.number: t for t in parent.get_trials(deepcopy=False)}
        if int(baseline) not in trials:
            raise InvalidArgument(
                "baseline",
                f"study {name!r} has no trial {baseline} "
                f"(its trials are numbered 0 to {len(trials) - 1})",
            )
        trial = trials[int(baseline)]
        allowed = (
            (TrialState.COMPLETE, TrialState.PRUNED) if allow_pruned else (TrialState.COMPLETE,)
        )
        if trial.state not in allowed:
            epochs = len(trial.intermediate_values)
            why = (
                f"PRUNED after {epochs} epoch(s), so its configuration was never trained to the "
                "full budget; pick a COMPLETE trial (`sweeplab status` lists them), or pass "
                "--force to ablate it anyway"
                if trial.state == TrialState.PRUNED
                else f"{trial.state.name}; pick a COMPLETE trial (`sweeplab status` lists them)"
            )
            raise InvalidArgument("baseline", f"trial {baseline} of study {name!r} is {why}")
    return Baseline(
        label=f"trial{trial.number}",
        trial=trial.number,
        config=space.config_from_params(trial.params),
        best=baseline == "best",
    )


# --- what remains to run -------------------------------------------------------------------------


def remaining_pairs(plan: AblationPlan, trials: Sequence[FrozenTrial]) -> list[tuple[Variant, int]]:
    """The plan's (variant, seed) pairs with no COMPLETE trial, and none RUNNING elsewhere.

    Call it after :func:`studies._recovery.recover_interrupted`: a trial still RUNNING then
    belongs to a live driver.
    """
    taken = {
        (t.user_attrs.get(records.VARIANT), t.user_attrs.get(records.SEED))
        for t in trials
        if t.state in (TrialState.COMPLETE, TrialState.RUNNING)
    }
    return [(v, s) for v, s in plan.pairs if (v.name, s) not in taken]


def check_trials_match(plan: AblationPlan, trials: Sequence[FrozenTrial], where: str) -> None:
    """Refuse to resume an ablation whose finished variants were run with other values.

    Raises:
        SpecConflict: naming the trial, the variant and the first parameter that differs.
    """
    planned = {v.name: v.params for v in plan.variants}
    for t in trials:
        variant = t.user_attrs.get(records.VARIANT)
        if t.state != TrialState.COMPLETE or variant not in planned or t.params == planned[variant]:
            continue
        key = next(
            k
            for k in sorted(set(t.params) | set(planned[variant]))
            if t.params.get(k) != planned[variant].get(k)
        )
        raise SpecConflict(
            f"{where}: trial {t.number} of variant {variant!r} ran with {key}="
            f"{t.params.get(key)!r}, but that variant now has {key}={planned[variant].get(key)!r} "
            "(the catalog defaults changed since); delete the study with `optuna delete-study` "
            "to start it over"
        )


class AblationProposer:
    """Hands each new trial of an ablation study its next (variant, seed) pair.

    It records the variant's parameters and sets the trial's ``variant`` and ``seed`` user
    attributes (the seed is then the trial's training seed). A retry that recovery queued for
    an interrupted trial takes that trial's own pair.

    Example:
        >>> import optuna
        >>> from sweeplab.searchspace import parse_space
        >>> space = parse_space({"dropout": {"type": "float", "low": 0.1, "high": 0.5}})
        >>> plan = plan_ablation(space, {"dropout": 0.3}, mode="loo", seeds=[7])
        >>> study = optuna.create_study()
        >>> propose = AblationProposer(study, plan.pairs, plan.choices)
        >>> propose(study.ask()), propose(study.ask()), propose.remaining()
        ({'dropout': 0.3}, {'dropout': 0.0}, 0)
        >>> [(t.params, t.user_attrs) for t in study.trials][1]
        ({'dropout': 0.0}, {'variant': '-dropout', 'seed': 7})
    """

    def __init__(
        self,
        study: optuna.Study,
        pending: Sequence[tuple[Variant, int]],
        choices: Mapping[str, tuple[Any, ...]],
    ) -> None:
        self._study = study
        self._pending = list(pending)
        self._choices = dict(choices)

    def remaining(self) -> int:
        """Pairs not handed out yet."""
        return len(self._pending)

    def __call__(self, trial: optuna.Trial) -> dict[str, Any]:
        """Give ``trial`` the next pair: record its parameters, return its configuration."""
        variant, seed = self._take(trial)
        for name, value in variant.params.items():
            distribution = CategoricalDistribution(self._choices[name])
            set_param(self._study, trial, name, value, distribution)
        # Through the trial, whose own copy of its attributes the searcher reads the seed from.
        for key, value in {
            **variant.attrs,
            records.VARIANT: variant.name,
            records.SEED: seed,
        }.items():
            trial.set_user_attr(key, value)
        return copy.deepcopy(variant.config)

    def _take(self, trial: optuna.Trial) -> tuple[Variant, int]:
        retry_of = trial.user_attrs.get(records.RETRY_OF)
        if retry_of is not None:
            original = trial_by_number(self._study, retry_of)
            key = (original.user_attrs.get(records.VARIANT), original.user_attrs.get(records.SEED))
            for i, (variant, seed) in enumerate(self._pending):
                if (variant.name, seed) == key:
                    return self._pending.pop(i)
            # That pair is done: this trial runs another.
            trial.set_user_attr(records.RETRY_OF, None)
        return self._pending.pop(0)


def ablation_spec(parent: StudySpec, name: str, n_trials: int) -> StudySpec:
    """The parent's spec for the linked study: its data, model, space, objective, epochs and
    early stopping, with no pruning and a budget of ``n_trials``."""
    raw = parent.to_dict()
    if raw["study"]["direction"] is None:
        raw["study"].pop("direction")
    raw["study"]["name"] = name
    raw["budget"]["n_trials"] = n_trials
    # The proposer chooses every configuration; the sampler is never asked.
    raw["search"].update(scheduler="none", sampler="random")
    return spec_from_dict(raw, source=f"{parent.source} (ablation {name!r})")


@dataclass(frozen=True, kw_only=True)
class Ablation:
    """An opened ablation study: what it ablates, its plan, and the study itself.

    Attributes:
        parent: the name of the study it ablates.
        baseline: the configuration it starts from.
        plan: its variants and seeds.
        spec: its spec: the parent's, with no pruning and the plan's size as its budget.
        study: the linked study, in the parent's database.
    """

    parent: str
    baseline: Baseline
    plan: AblationPlan
    spec: StudySpec
    study: optuna.Study
    code: UserCode = field(default_factory=UserCode)


def open_ablation(
    name: str,
    *,
    storage: str,
    mode: str = "loo",
    baseline: str = "best",
    seeds: int = 3,
    components: Sequence[str] | None = None,
    model: Callable[..., Any] | None = None,
    data: Callable[..., Any] | None = None,
    function: Callable[..., Any] | None = None,
    allow_pruned: bool = False,
) -> Ablation:
    """Plan the ablation of study ``name`` and create (or load) its linked study.

    The arguments are those of :func:`run_ablation`. Nothing is trained; the user's code a study
    was run with is imported and checked first (from the working directory, or given).

    Raises:
        StudyNotFound, StorageError, UsageError, SpecConflict: before anything is written.
    """
    if mode not in records.ABLATION_MODES:
        modes = ", ".join(records.ABLATION_MODES)
        raise InvalidArgument("mode", f"must be one of {modes}; got {mode!r}")
    if seeds < 1:
        raise InvalidArgument("seeds", f"an ablation needs at least one seed; got {seeds}")
    store = open_storage(storage, create=False)
    parent = load_study(store, name)
    if records.ABLATION in parent.user_attrs:
        raise UsageError(
            f"study {name!r} is itself an ablation (of {parent.user_attrs.get(records.PARENT)!r}); "
            "ablate the study it comes from"
        )
    if len(parent.directions) > 1:
        # An ablation ranks variants by one metric; of several objectives none is the one.
        raise UsageError(
            f"study {name!r} has {len(parent.directions)} objectives "
            f"({', '.join(map(str, parent.user_attrs.get(records.OBJECTIVE) or ()))}); an "
            "ablation compares variants by one, so a multi-objective study is not ablated "
            "(sweeplab best lists its Pareto front; a single-objective study of one of them "
            "can be ablated)"
        )
    parent_spec = stored_spec(store, name)
    base = resolve_baseline(parent, parent_spec.space, baseline, allow_pruned=allow_pruned)
    seed_values = [parent_spec.study.seed + i for i in range(seeds)]
    if mode == "path":
        plan = plan_path(parent_spec.space, base.config, seeds=seed_values, components=components)
        n_trials = path_cost(len(plan.components)) * len(seed_values)
    else:
        plan = plan_ablation(
            parent_spec.space, base.config, mode=mode, seeds=seed_values, components=components
        )
        n_trials = len(plan.pairs)
    study_name = ablation_study_name(name, mode, base)
    spec = ablation_spec(parent_spec, study_name, n_trials=n_trials)
    code = preflight(spec, model=model, data=data, function=function)
    if study_name in {s.study_name for s in store.get_all_studies()}:
        existing = load_study(store, study_name).get_trials(deepcopy=False)
        check_trials_match(plan, existing, f"ablation study {study_name!r}")
    study = open_study(spec, store)
    record = records.AblationRecord(
        mode=mode,
        baseline=baseline,
        baseline_trial=base.trial,
        baseline_config=base.config,
        requested_components=None if components is None else list(components),
        components=list(plan.components),
        unchanged=list(plan.unchanged),
        seeds=len(seed_values),
        seed_values=seed_values,
        variants=[v.name for v in plan.variants],
        reference=plan.reference,
    )
    study.set_user_attr(records.PARENT, name)
    study.set_user_attr(records.ABLATION, record.to_attr())
    return Ablation(parent=name, baseline=base, plan=plan, spec=spec, study=study, code=code)
