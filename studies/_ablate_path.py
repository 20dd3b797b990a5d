"""Running the greedy ablation path: one Ray Tune round per step, the database deciding each.

A round trains the candidates of one step (the first round also the default configuration)
with every seed, through :func:`studies._run.tune_study` and an
:class:`~studies._ablate.AblationProposer`. Between rounds nothing is kept in memory: the
decided steps are replayed from the study's trials by :func:`analysis.greedy_path`, so a run
killed in any round continues, when the same command is given again, with the pairs that round
still lacks. A round whose trials failed leaves its step undecided; the run stops there and the
next ``ablate`` retries them.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from sweeplab.analysis import greedy_path, path_trials_frame
from sweeplab.studies._ablate import Ablation, check_trials_match, remaining_pairs, run_pairs
from sweeplab.studies._ablation_path import path_cost, path_so_far
from sweeplab.studies._ablation_plan import AblationPlan, Variant
from sweeplab.studies._run import count_states, ray_session


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


def _tune_handles_sigint() -> bool:
    return threading.current_thread() is threading.main_thread() and not int(
        os.environ.get("TUNE_DISABLE_SIGINT_HANDLER", "0")
    )


def _tune_caught_sigint(before: Any) -> bool:
    """Whether Ray Tune's run just ended on a Ctrl-C.

    Tune swaps in its own SIGINT handler for a run and ends the run gracefully on SIGINT, so
    ``fit`` returns as usual; the one trace it leaves is that its handler has put the previous
    one back (it does so only on SIGINT, Ray 2.x ``tune.tune._setup_signal_catching``). Without
    this, a Ctrl-C would end one round and the path would start the next.
    """
    return _tune_handles_sigint() and signal.getsignal(signal.SIGINT) is before


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
    with ray_session(address):
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
            handler = signal.getsignal(signal.SIGINT)
            try:
                started, stop_reason = run_pairs(
                    spec,
                    study,
                    now.pending,
                    plan.choices,
                    counts=count_states(study),
                    address=address,
                    console=console,
                )
            finally:
                interrupted = _tune_caught_sigint(handler)
                if _tune_handles_sigint():
                    signal.signal(signal.SIGINT, handler)
            ran += started
            if stop_reason is not None:
                return ran, stop_reason
            if interrupted:
                return ran, "interrupted: run the same command again to continue the path"
            missing = remaining_pairs(now.plan, study.get_trials(deepcopy=False))
            if missing:
                return ran, (
                    f"step {now.step} is undecided: {len(missing)} trial(s) of it did not "
                    "complete (see `sweeplab status`); run the same command again to retry them"
                )
