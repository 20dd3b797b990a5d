"""Running a study: the database decides what remains, Ray Tune runs it, ASHA prunes it.

One entry point, :func:`run_study`. Resume is not a separate code path: every run first recovers
trials a crash left RUNNING, then runs only what the budget still lacks, so running a finished
study again does no work. :func:`tune_study` is the shared Ray Tune part, which
``sweeplab ablate`` (:mod:`sweeplab.studies.ablation`) drives with its own proposer instead of
the sampler.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState
from rich.console import Console

from sweeplab import searchspace, trainer
from sweeplab.studies import records
from sweeplab.studies._code import (
    UserCode,
    check_reach,
    load_user_code,
    runtime_env,
    with_objects,
)
from sweeplab.studies._recovery import recover_interrupted
from sweeplab.studies._signals import INTERRUPTED_BY, end_tune_run, interrupted_by, stop_on_signals
from sweeplab.studies._spec import StudySpec, pbt_settings
from sweeplab.studies._study import open_study
from sweeplab.studies._tune import messages
from sweeplab.studies.asha import (
    expected_epochs,
    hyperband_brackets,
    hyperband_expected_epochs,
    judged_rungs,
)
from sweeplab.studies.errors import DatasetMissing, UsageError
from sweeplab.studies.storage import (
    absolute_url,
    check_writable,
    describe_storage,
    is_database_error,
    is_in_memory,
    open_storage,
    resolve_location,
)

if TYPE_CHECKING:  # the searcher imports Ray, which only a run should pay for
    from sweeplab.studies._tune.searcher import Proposer

# Read by Ray Tune when the run starts. Our database is the record of the study, so Tune's
# per-trial CSV/JSON/TensorBoard loggers are pure overhead; error results carry no objective.
_TUNE_ENV = {
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "1000000",
    "RAY_AIR_NEW_OUTPUT": "0",
    "RAY_TRAIN_V2_ENABLED": "0",
    # sweeplab takes SIGINT itself (studies._signals): a clean stop that says it was interrupted.
    "TUNE_DISABLE_SIGINT_HANDLER": "1",
}


@dataclass(frozen=True)
class RunSummary:
    """What a run did and where the study stands afterwards."""

    study_name: str
    counts: dict[str, int]
    n_trials: int
    ran: int
    recovered: list[int]
    wall_time_s: float
    stop_reason: str | None
    best_number: int | None = None
    best_value: float | None = None
    best_params: dict[str, Any] = field(default_factory=dict)
    best_attrs: dict[str, Any] = field(default_factory=dict)
    #: A multi-objective study's Pareto front (trial numbers), in place of one best trial.
    pareto: list[int] = field(default_factory=list)

    @property
    def interrupted(self) -> str | None:
        """The signal that stopped the run (``"SIGINT"``, ``"SIGTERM"``); ``None``: none did."""
        return interrupted_by(self.stop_reason)


def sweeplab_version() -> str:
    try:
        return metadata.version("sweeplab")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0+unknown"


def count_states(study: optuna.Study) -> dict[str, int]:
    """Trials per state name (lower case), every state present, and ``interrupted``: the FAIL
    trials a stop or a crash interrupted (their parameters were queued again), which ``fail``
    does not count: they are no failure of the configuration."""
    counts = {s.name.lower(): 0 for s in TrialState} | {"interrupted": 0}
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.FAIL and t.user_attrs.get(records.INTERRUPTED):
            counts["interrupted"] += 1
        else:
            counts[t.state.name.lower()] += 1
    return counts


def run_study(
    spec: StudySpec,
    *,
    model: Callable[..., Any] | None = None,
    data: Callable[..., Any] | None = None,
    function: Callable[..., Any] | None = None,
    address: str | None = None,
    console: Console | None = None,
) -> RunSummary:
    """Run (or continue) the study a spec describes until its budget is met.

    Example (starts local Ray, so not run as a doctest)::

        spec = load_spec("quickstart").with_overrides(n_trials=4, max_epochs=3)
        summary = run_study(spec)
        assert summary.counts["complete"] + summary.counts["pruned"] == 4

    Args:
        spec: the validated study spec.
        model, data, function: the user's own code as Python objects, in place of (or instead of
            naming them in) ``[model] factory``, ``[data] factory``, ``[trainable] function``:
            ``build(input_shape, n_classes, hp) -> nn.Module``, ``load() -> trainer.Data``,
            ``train(hp, trial) -> dict | None``.
        address: a Ray cluster to attach to (``ray://...`` or ``host:port``); ``None`` starts a
            local Ray instance, unless Ray is already initialised in this process.
        console: where progress goes (a quiet console for tests).

    Raises:
        SpecError, SpecConflict, StorageError, DatasetMissing: before anything runs or is
            written.
    """
    with quiet_optuna():
        return _run_study(
            spec, model=model, data=data, function=function, address=address, console=console
        )


def _run_study(
    spec: StudySpec,
    *,
    model: Callable[..., Any] | None,
    data: Callable[..., Any] | None,
    function: Callable[..., Any] | None,
    address: str | None,
    console: Console | None,
) -> RunSummary:
    console = console or Console(stderr=True, emoji=False)
    started = time.monotonic()
    spec = with_objects(spec, model=model, data=data, function=function)
    if spec.search.sampler == "grid":
        size = searchspace.grid_size(spec.space)
        if spec.budget.n_trials > size:
            console.print(
                f"the grid has {size} points: n_trials lowered from {spec.budget.n_trials}"
            )
            spec = spec.with_overrides(n_trials=size)
    refuse_in_memory(spec.study.storage)
    # Missing data or broken user code must not leave an empty study (or database) behind.
    code = preflight(spec, model=model, data=data, function=function)
    storage = open_storage(spec.study.storage)
    _refuse_ablation_study(storage, spec)
    study = open_study(spec, storage)
    recovered = recover(study, console)
    counts = count_states(study)
    done = counts["complete"] + counts["pruned"]
    ran, stop_reason = 0, None
    if done < spec.budget.n_trials:
        ran, stop_reason = tune_study(
            spec, study, address=address, console=console, counts=counts, code=code,
            started=started,
        )  # fmt: skip
        counts = count_states(study)
    else:
        console.print(
            f"study {spec.study.name!r} already has {done} finished trials "
            f"(budget {spec.budget.n_trials}): nothing to run"
        )
    return summarize(spec, study, counts, ran, recovered, started, stop_reason)


def refuse_in_memory(url: str) -> None:
    """A database in memory lives in this process alone: Ray's workers write their trials'
    results to the study's database, so it must be a file or a server."""
    if is_in_memory(url):
        raise UsageError(
            f"storage {url!r}: in-memory databases cannot be shared with workers; give a file "
            "(sqlite:///study.db) or a server (postgresql+psycopg://user@host/db)"
        )


def _refuse_ablation_study(storage: optuna.storages.BaseStorage, spec: StudySpec) -> None:
    """Sampling the space into an ablation study would mix search trials into its variants."""
    for summary in storage.get_all_studies():
        how = records.AblationRecord.from_attr(summary.user_attrs.get(records.ABLATION))
        if summary.study_name != spec.study.name or how is None:
            continue
        parent = summary.user_attrs.get(records.PARENT, "?")
        baseline = "default" if how.baseline_trial is None else how.baseline_trial
        command = (
            f"sweeplab ablate {parent} --mode {how.mode} --baseline {baseline} --seeds {how.seeds}"
        )
        if how.requested_components:
            command += f" --components {','.join(how.requested_components)}"
        raise UsageError(
            f"study {spec.study.name!r} in {describe_storage(storage)} is an ablation of "
            f"study {parent!r}, not a search; continue it with: {command}"
        )


def recover(study: optuna.Study, console: Console) -> list[int]:
    """Recover the study's interrupted trials (see :func:`recover_interrupted`) and say so.

    Returns the numbers of the trials found interrupted.
    """
    recovered = recover_interrupted(study)
    if recovered:
        console.print(
            f"recovered {len(recovered)} interrupted trial(s) "
            f"({', '.join(str(r.number) for r in recovered)}): queued to run again"
        )
    return [r.number for r in recovered]


@contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna's INFO lines ("A new study created...", "Trial 3 finished...") off for the block:
    a run says what happened in its own words, on its own console."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(min(max(level, optuna.logging.WARNING), optuna.logging.CRITICAL))
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


def preflight(spec: StudySpec, **objects: Callable[..., Any] | None) -> UserCode:
    """What must hold before a run touches the database: the data is there, and the user's
    code imports and can be called as it will be."""
    code = load_user_code(spec, **objects)
    check_reach(code)
    location = artifact_location(spec)
    if location is not None:
        check_writable(location)
    if spec.data.factory is None and spec.trainable.function is None:
        try:
            trainer.check_dataset(spec.data_settings())
        except trainer.DataError as e:
            raise DatasetMissing(str(e)) from e
    return code


def artifact_location(spec: StudySpec) -> str | None:
    """The absolute folder of the study's checkpoints and weights; ``None``: none kept."""
    return resolve_location(absolute_url(spec.study.storage), spec.study.artifacts)


def tune_study(
    spec: StudySpec,
    study: optuna.Study,
    *,
    address: str | None,
    console: Console,
    counts: dict[str, int],
    proposer: Proposer | None = None,
    code: UserCode | None = None,
    started: float | None = None,
) -> tuple[int, str | None]:
    """Run trials of an opened study through Ray Tune until its budget is met.

    Args:
        spec: the study's spec: budget, scheduler, concurrency, resources, trainer settings.
        study: the opened study (interrupted trials already recovered).
        address: a Ray cluster to attach to; ``None`` starts (and stops) a local Ray instance
            unless Ray is already initialised in this process.
        console: where progress goes.
        counts: the study's trials per state before this run (:func:`count_states`).
        proposer: chooses each trial's configuration instead of the spec's sampler.
        code: the spec's user code, already loaded (else it is loaded from the spec).
        started: the run's ``time.monotonic()`` start, so progress and summary share one clock.

    Returns:
        The number of trials this run started, and why it stopped early (``None``: it did not).

    Raises:
        DatasetMissing: before Ray starts.
    """
    code = code if code is not None else preflight(spec)
    with ray_session(address, code):
        check_resources(spec)
        return _tune(
            spec, study, console=console, counts=counts, proposer=proposer, code=code,
            started=started,
        )  # fmt: skip


def check_resources(spec: StudySpec) -> None:
    """Refuse a per-trial request the cluster can never grant, before any trial starts (Ray
    would otherwise keep the trial pending, silently, for ever).

    Compared with the cluster's total resources, not the free ones: a trial waiting for a busy
    node is normal. A cluster that grows on demand (an autoscaler) is not told apart here.

    Raises:
        UsageError: naming ``[search.resources]``, what was asked and what the cluster has.
    """
    import ray

    total = ray.cluster_resources()
    resources = spec.search.resources
    for key, asked, unit in (("CPU", resources.cpus, "cpus"), ("GPU", resources.gpus, "gpus")):
        has = float(total.get(key, 0.0))
        if asked > has:
            raise UsageError(
                f"{spec.source}: [search.resources] {unit} = {asked:g} per trial, but the Ray "
                f"cluster has {has:g} {key}(s) in all, so no trial could ever start; ask for at "
                f"most {has:g}"
                + (", or run where a GPU is (gpus = 0 trains on the CPU)" if key == "GPU" else "")
            )


@contextmanager
def ray_session(address: str | None, code: UserCode | None = None) -> Iterator[None]:
    """Ray, initialised for the block: attached to ``address`` or a local instance.

    Ray already initialised in this process (a test fixture, an enclosing session) is used as it
    is and left running; otherwise the instance started here is shut down at the end, so several
    :func:`tune_study` calls in one block (the rounds of an ablation path) share one start.

    The user's own modules (``code``) reach every worker on every node as the job's
    ``runtime_env`` ``working_dir``: their folder, minus data, databases and ``.git``. A Ray the
    caller started cannot be given one now (:func:`~sweeplab.studies._code.check_reach` says so
    before anything runs).
    """
    for key, value in _TUNE_ENV.items():
        os.environ.setdefault(key, value)
    import ray

    env = runtime_env(code) if code is not None else None
    started_ray = False
    if not ray.is_initialized():
        ray.init(
            address=address or "local",
            include_dashboard=False,
            log_to_driver=False,
            logging_level="ERROR",
            configure_logging=True,
            runtime_env=env,
        )
        started_ray = True
    try:
        yield
    finally:
        if started_ray:
            ray.shutdown()


def _tune(
    spec: StudySpec,
    study: optuna.Study,
    *,
    console: Console,
    counts: dict[str, int],
    proposer: Proposer | None,
    code: UserCode,
    started: float | None = None,
) -> tuple[int, str | None]:
    from ray import tune

    from sweeplab.studies._tune.progress import ProgressView
    from sweeplab.studies._tune.searcher import StudySearcher

    pack = resolve_pack(spec)
    searcher = StudySearcher(
        study=study,
        space=spec.space,
        n_trials=spec.budget.n_trials,
        seed=spec.study.seed,
        objective=spec.study.primary,
        direction=spec.study.resolved_direction,
        # A training function's value is what it returned (else its last epoch's): the final
        # report's best_value either way.
        use_best_value=spec.early_stopping.restore_best_weights or code.function is not None,
        time_limit_s=spec.budget.time_limit_s,
        max_failures=spec.budget.max_failures,
        # A proposer hands each (variant, seed) pair out once per run; a pair whose worker died
        # stays FAIL and is planned again by the next run instead.
        retries=spec.budget.retries if proposer is None else 0,
        proposer=proposer,
        pack=pack,
        artifacts=artifact_location(spec),
        keep_best=spec.study.keep_best,
        extra_curves=_extra_curves(spec),
        objectives=spec.study.objectives if spec.study.multi_objective else (),
    )
    mode = "max" if spec.study.resolved_direction == "maximize" else "min"
    scheduler = make_scheduler(
        spec, pack, on_exploit=searcher.record_exploit, history=searcher.study
    )
    trainable = make_trainable(spec, pack, code)
    progress = ProgressView(
        searcher,
        console=console,
        n_trials=spec.budget.n_trials,
        objective=spec.study.primary,
        maximize=mode == "max",
        already={k: counts[k] for k in ("complete", "pruned", "fail")},
        expected_epochs=_expected_epochs(spec),
        rungs=judged_rungs(spec),
        max_epochs=spec.budget.max_epochs,
        started=started,
    )
    scratch = tempfile.mkdtemp(prefix="sweeplab-ray-")

    def stop(signal_name: str) -> None:
        # No trial starts any more; Tune ends its loop and stops the running ones, which
        # searcher.close() below requeues.
        searcher.stop_reason = f"{INTERRUPTED_BY}{signal_name}"
        end_tune_run()

    try:
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                scheduler=scheduler,
                # Unbounded: the searcher ends the run when the database says the budget is met.
                num_samples=-1,
                max_concurrent_trials=spec.search.concurrency,
                reuse_actors=True,
                trial_name_creator=_trial_name,
                trial_dirname_creator=_trial_name,
            ),
            run_config=tune.RunConfig(
                name=spec.study.name,
                storage_path=scratch,
                verbose=0,
                callbacks=[progress],
                failure_config=tune.FailureConfig(max_failures=0),
            ),
        )
        with stop_on_signals(stop) as interruption, _database_errors_told_once():
            try:
                tuner.fit()
            except KeyboardInterrupt:  # asked twice, or before Tune took over
                searcher.stop_reason = f"{INTERRUPTED_BY}{interruption.signal or 'SIGINT'}"
    finally:
        progress.stop()
        requeued = searcher.close()
        if requeued:
            console.print(f"trials {requeued} were interrupted and queued to run again")
        shutil.rmtree(scratch, ignore_errors=True)
    ran = searcher.started_this_run
    if searcher.usage_error is not None:
        raise UsageError(
            f"{spec.source}: trainable.function: {spec.trainable.function}: "
            f"{searcher.usage_error}; the run stopped (every trial would fail the same way)"
        )
    return ran, searcher.stop_reason


class _DropDatabaseErrors(logging.Filter):
    """Drops Ray Tune's log of an error whose cause is the database: the command reports that
    failure itself, once, with its cause and fix (instead of Tune's traceback on the way)."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return error is None or not is_database_error(error)


@contextmanager
def _database_errors_told_once() -> Iterator[None]:
    logger = logging.getLogger("ray.tune.execution.tune_controller")
    dropping = _DropDatabaseErrors()
    logger.addFilter(dropping)
    try:
        yield
    finally:
        logger.removeFilter(dropping)


def _extra_curves(spec: StudySpec) -> tuple[str, ...]:
    """Report fields kept as curves beside the loop's own: PBT's learning rate, and a
    multi-objective study's cost objectives (what a resumed MOASHA ranks earlier runs by)."""
    if spec.search.scheduler == "pbt":
        return (records.LR_CURVE,)
    if spec.study.multi_objective:
        from sweeplab.studies._tune.moasha import cost_curves

        return cost_curves(spec.study.objectives)
    return ()


def make_scheduler(
    spec: StudySpec,
    pack: int,
    on_exploit: Callable[[str, dict[str, Any]], None] | None = None,
    history: optuna.Study | None = None,
) -> Any:
    """The Ray Tune scheduler of the spec's ``[search] scheduler``: ASHA (one bracket),
    asynchronous Hyperband (ASHA's every bracket, Ray's ``ASHAScheduler(brackets=...)``),
    population based training (:class:`~sweeplab.studies._tune.pbt.StudyPBT`, which tells
    ``on_exploit`` of each copy), or none; with several objectives, ASHA is multi-objective ASHA
    (:class:`~sweeplab.studies._tune.moasha.MultiObjectiveASHA`), whose rungs start from the
    vectors the trials of ``history`` (the study, on a resume) reached them with. Packs judge
    their members themselves (ASHA, one bracket), so Tune's is FIFO then."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    search = spec.search
    if search.scheduler == "pbt":
        from sweeplab.studies._tune.pbt import StudyPBT

        settings = pbt_settings(spec)
        return StudyPBT(
            metric=spec.study.objective,
            mode="max" if spec.study.resolved_direction == "maximize" else "min",
            interval=settings.interval,
            epochs=frozenset(judged_rungs(spec)),
            quantile=settings.quantile,
            resample_probability=settings.resample_probability,
            space=spec.space,
            mutate=list(settings.mutate),
            on_exploit=on_exploit or (lambda trial_id, entry: None),
        )
    if search.scheduler == "none" or pack > 1:
        return FIFOScheduler()
    if spec.study.multi_objective:  # the spec allows asha only: see _check_multi_objective
        from sweeplab.studies._tune.moasha import MultiObjectiveASHA, rung_history

        rungs = judged_rungs(spec)
        earlier = None
        if history is not None:
            trials = history.get_trials(
                deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)
            )
            earlier = rung_history(trials, spec.study.objectives, rungs)
        return MultiObjectiveASHA(
            objectives=spec.study.objectives,
            directions=spec.study.directions,
            rungs=rungs,
            reduction_factor=search.reduction_factor,
            max_epochs=spec.budget.max_epochs,
            history=earlier,
        )
    brackets = 1
    if search.scheduler == "hyperband":
        brackets = hyperband_brackets(
            search.grace_period, search.reduction_factor, spec.budget.max_epochs
        )
    return ASHAScheduler(
        time_attr="epoch",
        metric=spec.study.primary,
        mode="max" if spec.study.resolved_direction == "maximize" else "min",
        max_t=spec.budget.max_epochs,
        grace_period=search.grace_period,
        reduction_factor=search.reduction_factor,
        brackets=brackets,
    )


def _expected_epochs(spec: StudySpec) -> float:
    search, most = spec.search, spec.budget.max_epochs
    if search.scheduler == "asha":
        return expected_epochs(search.grace_period, search.reduction_factor, most)
    if search.scheduler == "hyperband":
        return hyperband_expected_epochs(search.grace_period, search.reduction_factor, most)
    return float(most)


def resolve_pack(spec: StudySpec) -> int:
    """Optuna trials per Ray trial: ``[search] pack``, with ``"auto"`` resolved.

    ``auto`` packs MLPs 8 to a trial on CPUs and 32 when trials get a GPU (a GPU is idle far
    longer on one small MLP); other models are not packable and run one per trial.
    """
    pack = spec.search.pack
    if pack != "auto":
        return int(pack)
    if spec.study.multi_objective:  # a pack judges its members by one objective
        return 1
    if spec.model.kind != "mlp" or spec.search.scheduler == "hyperband":
        return 1
    return 32 if spec.search.resources.gpus > 0 else 8


def make_trainable(spec: StudySpec, pack: int = 1, code: UserCode | None = None) -> Any:
    """The Ray Tune trainable of the spec's trials, with its per-trial resource request.

    Ray reserves ``[search.resources]`` for each trial as is: a fractional ``gpus`` (e.g. 0.25)
    lets four trials share one GPU; Ray schedules by these numbers and sets
    ``CUDA_VISIBLE_DEVICES`` for each trial. With ``pack`` above 1 a trial trains a pack of
    Optuna trials (:func:`sweeplab.studies._tune.packed.run_pack`), judged by ASHA member by member;
    with a training function, :func:`sweeplab.studies._tune.function.run_function` runs it.
    """
    from ray import tune

    from sweeplab.studies._tune.function import FunctionTemplate, run_function
    from sweeplab.studies._tune.packed import PackTemplate, run_pack
    from sweeplab.studies._tune.trainable import run_trial
    from sweeplab.studies._tune.worker import ArtifactSettings, TrialTemplate

    code = code or UserCode()
    resources = spec.search.resources
    rungs = frozenset(judged_rungs(spec))
    request = {"cpu": resources.cpus, "gpu": resources.gpus}
    location = artifact_location(spec)
    artifacts = None
    if location is not None and pack == 1:  # packed trials keep no checkpoints (README)
        artifacts = ArtifactSettings(
            location=location,
            study_name=spec.study.name,
            every_s=spec.budget.checkpoint_every_s,
            keep_weights=spec.study.keep_best > 0,
        )
    if code.function is not None:
        function_template = FunctionTemplate(
            function=code.function,
            objective=spec.study.primary,
            direction=spec.study.resolved_direction,
            max_epochs=spec.budget.max_epochs,
            cpus=resources.cpus,
            gpus=resources.gpus,
            sweeplab_version=sweeplab_version(),
            rungs=rungs,
            artifacts=artifacts,
        )
        return tune.with_resources(
            tune.with_parameters(run_function, template=function_template), request
        )
    data = spec.data_settings()
    # Workers may run elsewhere (a cluster, or the shipped copy of the user's folder): a data
    # root relative to where the command ran is made absolute here.
    data = dataclasses.replace(
        data, root=str(Path(data.root).expanduser().resolve()), factory=code.data
    )
    template = TrialTemplate(
        data=data,
        model=dataclasses.replace(spec.model_settings(), factory=code.model),
        fit=spec.fit_settings(seed=spec.study.seed, num_threads=None),
        cpus=resources.cpus,
        sweeplab_version=sweeplab_version(),
        rungs=rungs,
        artifacts=artifacts,
        pbt=spec.search.scheduler == "pbt",
    )
    function: Any = tune.with_parameters(run_trial, template=template)
    if pack > 1:
        asha = (spec.search.grace_period, spec.search.reduction_factor)
        function = tune.with_parameters(
            run_pack,
            template=PackTemplate(
                trial=template,
                storage_url=absolute_url(spec.study.storage),
                study_name=spec.study.name,
                asha=asha if spec.search.scheduler == "asha" else None,
            ),
        )
    return tune.with_resources(function, request)


def _trial_name(trial: Any) -> str:
    return f"trial_{trial.config.get(messages.NUMBER, trial.trial_id)}"


def summarize(
    spec: StudySpec,
    study: optuna.Study,
    counts: dict[str, int],
    ran: int,
    recovered: list[int],
    started: float,
    stop_reason: str | None,
) -> RunSummary:
    common = dict(
        study_name=spec.study.name,
        counts=counts,
        n_trials=spec.budget.n_trials,
        ran=ran,
        recovered=recovered,
        wall_time_s=time.monotonic() - started,
        stop_reason=stop_reason,
    )
    if counts["complete"] == 0:
        return RunSummary(**common)
    if spec.study.multi_objective:
        return RunSummary(**common, pareto=sorted(t.number for t in study.best_trials))
    best = study.best_trial
    config = spec.space.config_from_params(best.params)
    return RunSummary(
        **common,
        best_number=best.number,
        best_value=best.value,
        best_params=config,
        best_attrs=dict(best.user_attrs),
    )
