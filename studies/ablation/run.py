"""Running an ablation: ``sweeplab ablate NAME`` (:func:`run_ablation`).

The (variant, seed) pairs the linked study lacks (:mod:`.study`) are trained with the same K
seeds, at the full budget, without pruning, through the same Ray Tune machinery as ``run``
(:func:`sweeplab.studies._run.tune_study`), an
:class:`~sweeplab.studies.ablation.study.AblationProposer` in the sampler's place: one round
(:func:`run_pairs`) for the modes planned up front, one round per step for the greedy path
(:func:`run_path`).

The path keeps nothing in memory between rounds: the decided steps are replayed from the study's
trials by :func:`sweeplab.analysis.greedy_path`, so a run killed in any round continues, when the
same command is given again, with the pairs that round still lacks. A round whose trials failed
leaves its step undecided; the run stops there and the next ``ablate`` retries them.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from rich.console import Console

from sweeplab.analysis import greedy_path, path_trials_frame
from sweeplab.studies._code import UserCode
from sweeplab.studies._run import (
    RunSummary,
    count_states,
    quiet_optuna,
    ray_session,
    recover,
    summarize,
    tune_study,
)
from sweeplab.studies._spec import StudySpec
from sweeplab.studies.ablation.path import path_cost, path_so_far
from sweeplab.studies.ablation.plan import AblationPlan, Variant
from sweeplab.studies.ablation.study import (
    Ablation,
    AblationProposer,
    Baseline,
    check_trials_match,
    open_ablation,
    remaining_pairs,
)
from sweeplab.studies.storage import describe_storage


@dataclass(frozen=True, kw_only=True)
class AblationSummary:
    """What ``run_ablation`` did, and where the ablation study stands."""

    parent: str
    baseline: Baseline
    plan: AblationPlan
    run: RunSummary

    @property
    def study_name(self) -> str:
        return self.run.study_name


def run_pairs(
    spec: StudySpec,
    study: optuna.Study,
    pending: Sequence[tuple[Variant, int]],
    choices: Mapping[str, tuple[Any, ...]],
    *,
    counts: dict[str, int],
    address: str | None,
    console: Console,
    code: UserCode | None = None,
) -> tuple[int, str | None]:
    """One Ray Tune round that trains the ``pending`` (variant, seed) pairs of an ablation.

    Returns what :func:`tune_study` returns.
    """
    # The searcher's budget: what the study has now plus every pending pair; the proposer
    # ends the run when it has handed out the last pair (a failed one is not replaced).
    budget = counts["complete"] + counts["pruned"] + counts["running"] + len(pending)
    return tune_study(
        spec.with_overrides(n_trials=budget),
        study,
        address=address,
        console=console,
        counts=counts,
        proposer=AblationProposer(study, pending, choices),
        code=code,
    )


@dataclass(frozen=True, kw_only=True)
class PathRound:
    """Where a path stands in the database, and what its next round trains.

    Attributes:
        decided: steps decided (0: not even the default has a result for every seed; d + 1:
            the path has reached the target).
        flipped: the components flipped by the decided steps, in order.
        step: the step the next round decides (the default's step 0 rides along with step 1).
        plan: the round's variants (the default and step 1's candidates, or step i's).
        pending: the round's (variant, seed) pairs without a COMPLETE or RUNNING trial.
    """

    decided: int
    flipped: tuple[str, ...]
    step: int
    plan: AblationPlan
    pending: tuple[tuple[Variant, int], ...]

    @property
    def done(self) -> bool:
        return self.step > len(self.plan.components)


def next_round(ablation: Ablation) -> PathRound:
    """Replay the decided steps from the study's trials and plan the round after them.

    Raises:
        SpecConflict: a trial on the path ran with values its configuration no longer has.
    """
    plan, spec, study = ablation.plan, ablation.spec, ablation.study
    trials = study.get_trials(deepcopy=False)
    path = greedy_path(
        path_trials_frame(trials),
        components=plan.components,
        direction=spec.study.resolved_direction,
        seeds=plan.seeds,
    )
    flipped = tuple(str(p) for p in path["parameter"].iloc[1:])
    steps = path_so_far(spec.space, ablation.baseline.config, plan.components, flipped)
    everything = tuple(v for step in steps for v in step)
    where = f"ablation study {spec.study.name!r}"
    check_trials_match(dataclasses.replace(plan, variants=everything), trials, where)
    # Step 0 (the default) needs no result of any other, so it shares step 1's round.
    this_round = (*(steps[0] if len(path) == 0 else ()), *steps[len(flipped) + 1])
    round_plan = dataclasses.replace(plan, variants=this_round)
    return PathRound(
        decided=len(path),
        flipped=flipped,
        step=len(flipped) + 1,
        plan=round_plan,
        pending=tuple(remaining_pairs(round_plan, trials)),
    )


def run_path(
    ablation: Ablation, *, address: str | None, console: Console
) -> tuple[int, str | None]:
    """Walk the path until the target is reached, a round leaves its step undecided, or the
    searcher stops (time limit, failures).

    Returns:
        The number of trials started, and why the walk stopped short (``None``: it did not).
    """
    plan, spec, study = ablation.plan, ablation.spec, ablation.study
    d, k = len(plan.components), len(plan.seeds)
    console.print(
        f"path over {d} component(s) ({', '.join(plan.components)}): at most {path_cost(d)} "
        f"configurations x {k} seed(s) = {path_cost(d) * k} trials",
        highlight=False,
    )
    ran = 0
    with ray_session(address, ablation.code):
        while True:
            now = next_round(ablation)
            if now.done:
                console.print(f"the path has reached the target in {d} step(s)")
                return ran, None
            if not now.pending:
                return ran, f"step {now.step}'s trials are running in another driver"
            candidates = len(now.plan.variants) - (1 if now.decided == 0 else 0)
            console.print(
                f"step {now.step} of {d}: {candidates} candidate(s)"
                + (" and the default" if now.decided == 0 else "")
                + f" x {k} seed(s): {len(now.pending)} trial(s) to run",
                highlight=False,
            )
            started, stop_reason = run_pairs(
                spec,
                study,
                now.pending,
                plan.choices,
                counts=count_states(study),
                address=address,
                console=console,
                code=ablation.code,
            )
            ran += started
            if stop_reason is not None:  # a signal too (studies._signals): no next round
                return ran, stop_reason
            missing = remaining_pairs(now.plan, study.get_trials(deepcopy=False))
            if missing:
                return ran, (
                    f"step {now.step} is undecided: {len(missing)} trial(s) of it did not "
                    "complete (see `sweeplab status`); run the same command again to retry them"
                )


def run_ablation(
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
    address: str | None = None,
    console: Console | None = None,
    allow_pruned: bool = False,
) -> AblationSummary:
    """Create (or continue) the ablation of study ``name`` and run what it still lacks.

    Example (starts local Ray, so not run as a doctest)::

        summary = run_ablation("quickstart", storage="sqlite:///sweeplab.db", seeds=3)
        print(summary.study_name, [v.name for v in summary.plan.variants])

    Args:
        name: the parent study, created by sweeplab (its spec is read from the database).
        storage: the database URL; the ablation study is created in the same database.
        mode: ``loo``, ``add``, ``path`` (the greedy path from the defaults to the baseline,
            one round per step: see :mod:`.path`), ``grid`` or ``seeds``.
        baseline: ``best``, ``default`` or a trial number of the parent.
        seeds: trials per variant; seed i trains with seed ``[study] seed + i``.
        components: the component names to ablate (default: all of them).
        model, data, function: the study's own code as Python objects (as given to
            :func:`~sweeplab.studies.run_study`); by default it is imported as the study's spec
            names it, from the working directory.
        address: a Ray cluster to attach to (see :func:`studies.run_study`).
        console: where progress goes.
        allow_pruned: accept a PRUNED trial number as ``baseline`` (refused by default: it was
            never trained to the full budget).

    Raises:
        StudyNotFound, StorageError, UsageError, SpecConflict, DatasetMissing: before anything
            runs.
    """
    with quiet_optuna():
        return _run_ablation(
            name, storage=storage, mode=mode, baseline=baseline, seeds=seeds,
            components=components, objects={"model": model, "data": data, "function": function},
            address=address, console=console, allow_pruned=allow_pruned,
        )  # fmt: skip


def _run_ablation(
    name: str,
    *,
    storage: str,
    mode: str,
    baseline: str,
    seeds: int,
    components: Sequence[str] | None,
    objects: Mapping[str, Callable[..., Any] | None],
    address: str | None,
    console: Console | None,
    allow_pruned: bool = False,
) -> AblationSummary:
    console = console or Console(stderr=True, emoji=False)
    started = time.monotonic()
    ablation = open_ablation(
        name, storage=storage, mode=mode, baseline=baseline, seeds=seeds, components=components,
        allow_pruned=allow_pruned, **objects,
    )  # fmt: skip
    plan, spec, study = ablation.plan, ablation.spec, ablation.study
    console.print(
        f"ablation [bold]{spec.study.name}[/bold] of {name} in {describe_storage(storage)}: "
        f"{mode} from {ablation.baseline}; "
        + ("the greedy path" if mode == "path" else f"{len(plan.variants)} variant(s)")
        + f" x {len(plan.seeds)} seed(s) x "
        f"{spec.budget.max_epochs} epochs, no pruning, concurrency {spec.search.concurrency}"
    )
    if plan.unchanged:
        console.print(
            f"not ablated, {ablation.baseline} has them off already: {', '.join(plan.unchanged)}",
            highlight=False,
        )
    recovered = recover(study, console)
    pending = remaining_pairs(plan, study.get_trials(deepcopy=False))
    counts = count_states(study)
    ran, stop_reason = 0, None
    if mode == "path":
        ran, stop_reason = run_path(ablation, address=address, console=console)
        counts = count_states(study)
    elif pending:
        console.print(f"{len(plan.pairs) - len(pending)} of {len(plan.pairs)} pairs done")
        ran, stop_reason = run_pairs(
            spec, study, pending, plan.choices, counts=counts, address=address, console=console,
            code=ablation.code,
        )  # fmt: skip
        counts = count_states(study)
    else:
        console.print(
            f"every one of the {len(plan.pairs)} (variant, seed) pairs has a complete trial: "
            "nothing to run"
        )
    run = summarize(spec, study, counts, ran, recovered, started, stop_reason)
    return AblationSummary(parent=name, baseline=ablation.baseline, plan=plan, run=run)
