"""The study spec: a TOML file validated into small frozen objects.

What to search (``[space]``) is kept apart from how to run it (``[search]``, ``[budget]``), in
the manner of Ray Tune's ``TuneConfig``/``RunConfig``. Every validation error names the file,
the dotted key and what was expected, and is raised as :class:`SpecError` (exit code 2).
The format is data only: nothing in a spec is ever executed.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import tomllib
from pydantic import BaseModel, ConfigDict, Field, field_validator

from sweeplab import searchspace, trainer
from sweeplab.studies.errors import SpecError

#: A spec is a page of TOML; anything far larger is the wrong file (and would take minutes to
#: reject key by key).
MAX_SPEC_BYTES = 1_000_000
#: The deepest nesting of tables and arrays a spec may have (its own is 3 or 4).
MAX_SPEC_DEPTH = 32
#: The largest ``[study] seed``: trial seeds (seed + trial number) stay within int32.
MAX_SEED = 2**31 - 1


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# ``module:attribute`` of a user's own code: a module importable from the spec's folder (dotted
# names allowed on both sides: ``nets.cnn:build``, ``train:Trainer.run``).
_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"
Reference = Annotated[str, Field(pattern=f"^{_DOTTED}:{_DOTTED}$")]
# A metric's name: what the trainer or the user's function reports it under.
MetricName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")]
_METRIC_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")
Direction = Literal["maximize", "minimize"]
_DIRECTIONS = ("maximize", "minimize")


def inferred_direction(metric: str) -> str:
    """The direction of a metric given without one: losses and costs are minimised, the rest
    (accuracies) maximised.

    Example:
        >>> [inferred_direction(m) for m in ("val_loss", "params", "val_acc")]
        ['minimize', 'minimize', 'maximize']
    """
    return "minimize" if metric.endswith("loss") or metric in trainer.COST_METRICS else "maximize"


class StudySection(_Section):
    """``[study]``: identity and objective."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")] = "study"
    storage: str = "sqlite:///sweeplab.db"
    # Any metric the training reports: the built-in loop's four (and its costs: epochs, params,
    # train_time), or a user function's own. A list of 2+ names: a multi-objective study.
    objective: MetricName | list[MetricName] = "val_acc"
    # None: inferred from the objective; a list: one per objective.
    direction: Direction | list[Direction] | None = None
    # Trial i trains with seed + i, which numpy and torch must both take: an int32 leaves room.
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] = 0
    # Where checkpoints and final weights go: a folder (shared by every node of a cluster);
    # None: beside a SQLite database (``x.db`` -> ``x-artifacts/``), none for other databases;
    # false: keep none.
    artifacts: str | bool | None = None
    # Complete trials whose final weights are kept, best first (0: none).
    keep_best: Annotated[int, Field(ge=0)] = 3
    # Bit-identical trials on CPU (torch's deterministic algorithms); a resumed trial then
    # repeats an uninterrupted one exactly.
    deterministic: bool = False

    @field_validator("objective", mode="before")
    @classmethod
    def _objective(cls, value: Any) -> Any:
        # One message per mistake: pydantic would report each arm of the union separately.
        if not isinstance(value, list):
            if isinstance(value, str) and not _METRIC_NAME.match(value):
                raise ValueError(_PATTERN_MESSAGES["objective"])
            if not isinstance(value, str):
                raise ValueError("must be a metric name or a list of 2 or more metric names")
            return value
        if len(value) < 2:
            raise ValueError(
                "a list of objectives needs 2 or more metric names (one objective: give it as "
                'a string, objective = "val_acc")'
            )
        for i, name in enumerate(value):
            if not isinstance(name, str) or not _METRIC_NAME.match(name):
                raise ValueError(f"entry {i}: {_PATTERN_MESSAGES['objective']}")
        repeated = sorted({n for n in value if value.count(n) > 1})
        if repeated:
            raise ValueError(f"each objective once; {', '.join(repeated)} is given twice")
        return value

    @field_validator("direction", mode="before")
    @classmethod
    def _direction(cls, value: Any) -> Any:
        if value is None or value in _DIRECTIONS:
            return value
        if isinstance(value, list) and value and all(v in _DIRECTIONS for v in value):
            return value
        bad = (
            next((v for v in value if v not in _DIRECTIONS), None)
            if isinstance(value, list)
            else value
        )
        raise ValueError(
            'must be "maximize" or "minimize", or a list of them (one per objective); '
            f"{json.dumps(bad, default=str)} is neither"
        )

    @pydantic.model_validator(mode="after")
    def _one_direction_per_objective(self) -> StudySection:
        if not isinstance(self.direction, list):
            if self.direction is not None and isinstance(self.objective, list):
                raise ValueError(
                    f"direction: {len(self.objective)} objectives need a list of "
                    f"{len(self.objective)} directions (or none: inferred per objective); "
                    f"got {json.dumps(self.direction)}"
                )
            return self
        n = len(self.objective) if isinstance(self.objective, list) else 1
        if len(self.direction) != n:
            raise ValueError(
                f"direction: one per objective; {n} objective{'s' * (n > 1)} "
                f"({json.dumps(self.objective)}) and {len(self.direction)} directions "
                f"({json.dumps(self.direction)})"
            )
        if n == 1:
            raise ValueError(
                "direction: one objective takes one direction, as a string (direction = "
                f'"{self.direction[0]}")'
            )
        return self

    @property
    def objectives(self) -> tuple[str, ...]:
        """The objective's metric names: one, or several for a multi-objective study."""
        return tuple(self.objective) if isinstance(self.objective, list) else (self.objective,)

    @property
    def directions(self) -> tuple[str, ...]:
        """Each objective's direction, the inferred ones filled in."""
        if isinstance(self.direction, list):
            return tuple(self.direction)
        if self.direction is not None:
            return (self.direction,)
        return tuple(inferred_direction(m) for m in self.objectives)

    @property
    def multi_objective(self) -> bool:
        """Several objectives: the study has a Pareto front, not one best trial."""
        return len(self.objectives) > 1

    @property
    def primary(self) -> str:
        """The metric sweeplab's loop tracks (best epoch, early stopping, checkpoints kept):
        the objective, or the first of several that training measures (a cost such as
        ``epochs`` does not tell one epoch from another)."""
        if not isinstance(self.objective, list):
            return self.objective
        return next((m for m in self.objectives if m not in trainer.COST_METRICS), "val_loss")

    @field_validator("artifacts", mode="before")
    @classmethod
    def _artifacts(cls, value: Any) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if not isinstance(value, str) or not value.strip():
            raise ValueError("must be a folder path, or false to keep no checkpoints")
        scheme = value.split("://", 1)[0] if "://" in value else None
        if scheme is not None and scheme != "file":
            raise ValueError(
                f"{scheme}:// stores are not supported yet; give a folder that every node "
                "mounts (e.g. on NFS), or false"
            )
        return value.removeprefix("file://")

    @property
    def resolved_direction(self) -> str:
        """The direction of :attr:`primary`."""
        if self.primary in self.objectives:
            return self.directions[self.objectives.index(self.primary)]
        return inferred_direction(self.primary)


class DataSection(_Section):
    """``[data]``: dataset and split."""

    dataset: Literal[trainer.DATASETS] = "digits"  # type: ignore[valid-type]
    root: str = "data"
    download: bool = False
    val_fraction: Annotated[float, Field(gt=0.0, lt=1.0, strict=False)] = 0.2
    subset: Annotated[int, Field(ge=10)] | None = None
    # A user's own data: ``load() -> sweeplab.trainer.Data`` (the dataset keys above then do not
    # apply); ``num_workers`` DataLoader processes for splits given as torch Datasets.
    factory: Reference | None = None
    num_workers: Annotated[int, Field(ge=0)] = 0


class ModelSection(_Section):
    """``[model]``: the network."""

    kind: Literal[trainer.MODELS] = "mlp"  # type: ignore[valid-type]
    hidden: list[Annotated[int, Field(ge=1)]] = [128, 64]
    channels: list[Annotated[int, Field(ge=1)]] = [32, 64]
    activation: Literal[trainer.ACTIVATIONS] = "relu"  # type: ignore[valid-type]
    compile: bool = False  # torch.compile the network (worth it on GPUs)
    # A user's own network: ``build(input_shape, n_classes, hp) -> torch.nn.Module``, trained by
    # sweeplab's loop (``kind``, ``hidden``, ``channels`` then do not apply).
    factory: Reference | None = None


class BudgetSection(_Section):
    """``[budget]``: how much to run.

    ``n_trials`` counts trials with a result (complete or pruned); failed trials are replaced
    until ``max_failures`` of them have failed in one run, then the run stops.
    ``retries``: how many times a trial whose worker process died (killed, out of host memory,
    node lost) is run again with the same parameters and seed; a trial that raised or diverged
    is not retried, it would fail the same way.
    ``time_limit_s``: no new trial starts after this many seconds of a run.
    """

    n_trials: Annotated[int, Field(ge=1)] = 20
    max_epochs: Annotated[int, Field(ge=1)] = 20
    time_limit_s: Annotated[float, Field(gt=0, strict=False)] | None = None
    max_failures: Annotated[int, Field(ge=1)] | None = None
    retries: Annotated[int, Field(ge=0)] = 1
    # A trial saves its whole training state at the end of an epoch once this many seconds have
    # passed since its last save, and within an epoch that runs longer (0: every epoch).
    checkpoint_every_s: Annotated[float, Field(ge=0, strict=False)] = 10.0


class ResourcesSection(_Section):
    """``[search.resources]``: per trial; fractions of a GPU share one device between trials."""

    cpus: Annotated[float, Field(gt=0, strict=False)] = 1.0
    gpus: Annotated[float, Field(ge=0, strict=False)] = 0.0


class PbtSection(_Section):
    """``[search.pbt]``: population based training (Jaderberg et al., 2017), with
    ``scheduler = "pbt"``.

    Every ``interval`` epochs the population's trials are ranked on the objective; each trial in
    the bottom ``quantile`` takes over ("exploit") the model and optimizer state of one in the
    top ``quantile`` and perturbs ("explore") the hyperparameters named in ``mutate``: each is
    drawn anew from its range with ``resample_probability``, else multiplied by 0.8 or 1.2
    (a categorical moves to a neighbouring choice), and kept within its range.
    """

    # None: budget.max_epochs // 4, at least 1.
    interval: Annotated[int, Field(ge=1)] | None = None
    quantile: Annotated[float, Field(gt=0.0, le=0.5, strict=False)] = 0.25
    resample_probability: Annotated[float, Field(ge=0.0, le=1.0, strict=False)] = 0.25
    # None: the space's hyperparameters that the trainer can change between epochs.
    mutate: list[Annotated[str, Field(min_length=1)]] | None = None


class SearchSection(_Section):
    """``[search]``: sampler, scheduler, parallelism."""

    # nsga2: Optuna's NSGA-II (Deb et al.), a genetic search made for several objectives.
    sampler: Literal["tpe", "random", "grid", "cmaes", "nsga2"] = "tpe"
    n_startup_trials: Annotated[int, Field(ge=0)] = 8
    # TPE (and CMA-ES's fallback TPE) model at most this many finished trials: the best
    # quarter of the whole history and the most recent rest, so a sample's cost stops growing
    # with the study (studies/_tpe.py). 0: the whole history, as Optuna's TPE.
    history_window: Annotated[int, Field(ge=0)] = 1000
    # BOHB's rule on top of TPE: model the trials' values at the highest scheduler rung that
    # d + 1 of them reached. Off: TPE's own rule (complete trials first, then pruned ones by how
    # far they got).
    rung_model: bool = False
    # asha: one bracket of asynchronous successive halving; hyperband: every bracket of
    # asynchronous Hyperband (Li et al.), so a bad grace_period cannot sink the study; pbt:
    # population based training ([search.pbt]).
    scheduler: Literal["asha", "hyperband", "pbt", "none"] = "asha"
    grace_period: Annotated[int, Field(ge=1)] = 2
    reduction_factor: Annotated[float, Field(gt=1, strict=False)] = 3.0
    concurrency: Annotated[int, Field(ge=1)] = 2
    # Optuna trials trained together as one stacked model per Ray trial (MLPs; "auto": 8 on
    # CPU, 32 with a GPU). concurrency then counts packs.
    pack: int | Literal["auto"] = 1
    resources: ResourcesSection = ResourcesSection()
    pbt: PbtSection | None = None

    @field_validator("pack", mode="before")
    @classmethod
    def _pack(cls, value: Any) -> Any:
        # One check, one message: pydantic would report each arm of the union separately.
        if value == "auto" or (type(value) is int and value >= 1):
            return value
        raise ValueError('must be an int >= 1 or "auto"')


class EarlyStoppingSection(_Section):
    """``[early_stopping]``: per trial, on the study objective. No ``patience``: off."""

    patience: Annotated[int, Field(ge=1)] | None = None
    min_delta: Annotated[float, Field(ge=0, strict=False)] = 0.0
    restore_best_weights: bool = True


class TrainableSection(_Section):
    """``[trainable]``: a user's whole training loop, ``train(hp, trial) -> dict | None``, in
    place of sweeplab's (it builds its own model and data and reports through ``trial``)."""

    function: Reference | None = None


#: The sections of a spec, in the order they are stored.
SECTIONS = ("study", "data", "model", "trainable", "budget", "search", "early_stopping")


class _SpecModel(_Section):
    study: StudySection = StudySection()
    data: DataSection = DataSection()
    model: ModelSection = ModelSection()
    trainable: TrainableSection = TrainableSection()
    budget: BudgetSection = BudgetSection()
    search: SearchSection = SearchSection()
    early_stopping: EarlyStoppingSection = EarlyStoppingSection()
    space: dict[str, Any]


@dataclass(frozen=True)
class StudySpec:
    """A validated study: the sections as typed objects plus the parsed search space.

    Example:
        >>> spec = load_spec("quickstart")
        >>> spec.study.name, spec.data.dataset, "lr" in spec.space
        ('quickstart', 'digits', True)
    """

    study: StudySection
    data: DataSection
    model: ModelSection
    budget: BudgetSection
    search: SearchSection
    early_stopping: EarlyStoppingSection
    space: searchspace.SearchSpace
    source: str = "<spec>"
    trainable: TrainableSection = dataclasses.field(default_factory=TrainableSection)
    #: Where the user's own modules (``[model] factory``...) are imported from: the spec file's
    #: folder; ``None`` for a preset, a stored spec or a dict (the working directory then).
    folder: str | None = None
    #: The user's code given as objects in a dict spec, by role (``model``, ``data``,
    #: ``function``); the spec's keys name them.
    objects: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False)

    @property
    def user_code(self) -> bool:
        """Whether a factory or a function of the user's trains the trials."""
        return bool(self.model.factory or self.data.factory or self.trainable.function)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: stored in the study database so ``resume`` needs no spec file."""
        out = {s: getattr(self, s).model_dump(mode="json") for s in SECTIONS}
        out["space"] = self.space.to_dict()
        return out

    def with_overrides(self, **overrides: Any) -> StudySpec:
        """A copy with command-line overrides (``name``, ``storage``, ``seed``, ``n_trials``,
        ``max_epochs``) applied and re-validated. ``None`` values are ignored."""
        where = {
            "name": "study", "storage": "study", "seed": "study",
            "n_trials": "budget", "max_epochs": "budget",
        }  # fmt: skip
        if all(value is None for value in overrides.values()):
            return self
        raw = self.to_dict()
        raw["study"].pop("direction") if raw["study"]["direction"] is None else None
        for key, value in overrides.items():
            if value is not None:
                raw[where[key]][key] = value
        spec = spec_from_dict(raw, source=f"{self.source} (with command-line options)")
        return dataclasses.replace(spec, folder=self.folder)

    # --- the trainer's view of the spec -----------------------------------------------------------
    def data_settings(self) -> trainer.DataSettings:
        d = self.data
        return trainer.DataSettings(
            dataset=d.dataset, root=d.root, download=d.download,
            val_fraction=d.val_fraction, subset=d.subset, split_seed=self.study.seed,
            num_workers=d.num_workers,
        )  # fmt: skip

    def model_settings(self) -> trainer.ModelSettings:
        m = self.model
        return trainer.ModelSettings(
            kind=m.kind, hidden=tuple(m.hidden), channels=tuple(m.channels),
            activation=m.activation,
        )  # fmt: skip

    def fit_settings(self, *, seed: int, num_threads: int | None) -> trainer.FitSettings:
        es = self.early_stopping
        return trainer.FitSettings(
            max_epochs=self.budget.max_epochs,
            objective=self.study.primary,
            direction=self.study.resolved_direction,
            early_stopping=trainer.EarlyStopping(
                patience=es.patience,
                min_delta=es.min_delta,
                restore_best_weights=es.restore_best_weights,
            ),
            seed=seed,
            num_threads=num_threads,
            compile=self.model.compile,
            deterministic=self.study.deterministic,
        )


# --- loading ----------------------------------------------------------------------------------


def preset_names() -> list[str]:
    """The specs shipped inside the package (``sweeplab run quickstart`` works anywhere)."""
    folder = resources.files("sweeplab.studies.presets")
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


def preset_text(name: str) -> str:
    """The TOML text of a shipped preset."""
    return (
        resources.files("sweeplab.studies.presets")
        .joinpath(f"{name}.toml")
        .read_text(encoding="utf-8")
    )


def load_spec(spec: str | Path) -> StudySpec:
    """Read and validate a spec file, or a preset by name when no such file exists.

    Raises:
        SpecError: unreadable file, malformed TOML (with its line), or any invalid value.
    """
    path = Path(spec)
    if path.is_file():
        try:
            size = path.stat().st_size
            if size > MAX_SPEC_BYTES:
                raise SpecError(
                    f"{path}: the spec file is {size:,} bytes; a spec is at most "
                    f"{MAX_SPEC_BYTES:,} (is this the right file?)"
                )
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise SpecError(f"{path}: cannot read the spec file: {e}") from e
        source = str(path)
    elif str(spec) in preset_names():
        text, source = preset_text(str(spec)), f"preset '{spec}'"
    else:
        names = preset_names()
        raise SpecError(
            f"{spec}: no such spec file, and not a preset "
            f"(presets: {', '.join(names)}){searchspace.closest(str(spec), names)}"
        )
    spec = parse_spec(text, source=source)
    if path.is_file():
        spec = dataclasses.replace(spec, folder=str(path.resolve().parent))
    return spec


def parse_spec(text: str, *, source: str = "<spec>") -> StudySpec:
    """Validate TOML text into a :class:`StudySpec`."""
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError(
            f"{source}: the spec is {len(text):,} characters; at most {MAX_SPEC_BYTES:,}"
        )
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{source}: not valid TOML: {e}") from e
    except RecursionError:  # tomllib recurses once per nesting level
        raise SpecError(
            f"{source}: not valid TOML for a spec: tables or arrays nested too deep"
        ) from None
    if _depth(raw) > MAX_SPEC_DEPTH:
        raise SpecError(
            f"{source}: tables or arrays nested deeper than {MAX_SPEC_DEPTH} levels; a spec's "
            "deepest value is a few levels down ([space.lr] low = ...)"
        )
    spec = spec_from_dict(raw, source=source)
    check_names(spec)  # a spec file names all its code: an unknown name is a typo
    return spec


def _depth(value: Any, level: int = 0) -> int:
    """How deep ``value`` nests tables and arrays (iteratively: no recursion limit to hit)."""
    deepest, stack = level, [(value, level)]
    while stack:
        item, at = stack.pop()
        deepest = max(deepest, at)
        if isinstance(item, dict):
            stack.extend((v, at + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, at + 1) for v in item)
    return deepest


#: The spec keys that name a user's own code, and the role each plays.
CODE_KEYS = {"model": ("model", "factory"), "data": ("data", "factory"),
             "function": ("trainable", "function")}  # fmt: skip


def reference_of(obj: Any) -> str:
    """How a spec names a Python object given in its place: ``module:qualified.name`` (a
    function defined in another one gets its outer names: ``tests:outer.locals.train``).

    Example:
        >>> reference_of(json.dumps)
        'json:dumps'
    """
    qualname = re.sub(r"[^A-Za-z0-9_.]", "", getattr(obj, "__qualname__", type(obj).__name__))
    return f"{getattr(obj, '__module__', None) or '__main__'}:{qualname or 'code'}"


def spec_from_dict(raw: dict[str, Any], *, source: str = "<spec>") -> StudySpec:
    """Validate an already-parsed spec table (from TOML, or stored in a study database).

    In Python, the user's code may stand in the table as the objects themselves
    (``{"trainable": {"function": train}, ...}``): the spec then names them
    (:func:`reference_of`) and :func:`~sweeplab.studies.run_study` uses the objects. Names in
    ``[space]`` that the catalog does not know are taken for the user's own hyperparameters here,
    and checked when a run starts, once it is known whose code trains (the objects may come
    with ``run_study``).
    """
    raw, objects = _take_objects(raw)
    if "space" not in raw:
        raise SpecError(
            f"{source}: [space]: missing; a spec needs at least one searched hyperparameter, "
            'e.g. [space.lr] type = "float", low = 1e-4, high = 0.1, log = true'
        )
    try:
        model = _SpecModel.model_validate(raw)
    except pydantic.ValidationError as e:
        raise SpecError(f"{source}: {_describe_pydantic(e, raw)}") from e
    try:
        space = searchspace.parse_space(model.space)
        _check_against_catalog(space, own_code=True)
    except searchspace.SpaceError as e:
        raise SpecError(f"{source}: {e}") from e
    spec = StudySpec(
        study=model.study, data=model.data, model=model.model, budget=model.budget,
        search=model.search, early_stopping=model.early_stopping, space=space, source=source,
        trainable=model.trainable, objects=objects,
    )  # fmt: skip
    _check_combinations(spec)
    return spec


def _take_objects(raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The table with the code objects in it replaced by their names, and the objects."""
    objects: dict[str, Any] = {}
    for role, (section, key) in CODE_KEYS.items():
        value = (raw.get(section) or {}).get(key) if isinstance(raw.get(section), dict) else None
        if value is not None and not isinstance(value, str) and callable(value):
            raw = {**raw, section: {**raw[section], key: reference_of(value)}}
            objects[role] = value
    return raw, objects


def check_names(spec: StudySpec) -> None:
    """What only the user's own code can read: every ``[space]`` entry is the trainer's own
    hyperparameter unless the user's model or training function is there to take it, and the
    objective is one sweeplab's loop reports unless a training function reports it.

    Raises:
        SpecError: an unknown name (with the closest one and the known ones) or objective.
    """
    try:
        _check_against_catalog(
            spec.space, own_code=bool(spec.model.factory or spec.trainable.function)
        )
    except searchspace.SpaceError as e:
        raise SpecError(f"{spec.source}: {e}") from e
    reported = (*trainer.METRICS, *trainer.COST_METRICS)
    for i, objective in enumerate(spec.study.objectives):
        if spec.trainable.function or objective in reported:
            continue
        where = f"study.objective[{i}]" if spec.study.multi_objective else "study.objective"
        raise SpecError(
            f"{spec.source}: {where}: sweeplab's training loop reports "
            f"{', '.join(reported)}; got {json.dumps(objective)}"
            + searchspace.closest(objective, reported)
            + " (a metric of your own needs your own training function: [trainable] function)"
        )


def _check_against_catalog(space: searchspace.SearchSpace, *, own_code: bool = False) -> None:
    """Every entry must be a hyperparameter the trainer knows, with values it can build.

    With the user's own model or training function, a name the catalog does not know is the
    user's own hyperparameter: it reaches their code in ``hp`` as sampled, and its declared
    ``default`` is its "off" value in an ablation.
    """
    catalog = trainer.HYPERPARAMETERS
    for p in space:
        key = f"space.{p.name}"
        row = catalog.get(p.name)
        if row is None and own_code:
            continue
        if row is None:
            raise searchspace.SpaceError(
                key,
                "unknown hyperparameter"
                + searchspace.closest(p.name, catalog)
                + f" (known: {', '.join(sorted(catalog))}; your own hyperparameters reach your"
                " own code: [model] factory or [trainable] function)",
            )
        if p.default is not None:
            default = list(row.default) if isinstance(row.default, tuple) else row.default
            shown = "the optimizer's PyTorch default" if default is None else json.dumps(default)
            raise searchspace.SpaceError(
                f"{key}.default",
                f"`{p.name}` is the trainer's own hyperparameter: its default "
                f"({shown}) comes from its catalog; remove `default`",
            )
        if isinstance(p, searchspace.FixedParam):
            value = list(p.value) if isinstance(p.value, tuple) else p.value
            if not row.accepts(value):
                raise searchspace.SpaceError(
                    key, f"must be {row.describe_range()}; got {json.dumps(value)}"
                )
        elif isinstance(p, searchspace.SubsetParam):
            if row.kind != "subset":
                raise searchspace.SpaceError(f"{key}.type", f"must be {row.kind} for `{p.name}`")
            for i, c in enumerate(p.choices):
                if c not in row.choices:
                    raise searchspace.SpaceError(
                        f"{key}.choices[{i}]",
                        f'unknown {p.name} "{c}"{searchspace.closest(c, row.choices)} '
                        f"(known: {', '.join(row.choices)})",
                    )
        elif isinstance(p, searchspace.CategoricalParam):
            for i, c in enumerate(p.choices):
                if not row.accepts(c):
                    hint = searchspace.closest(c, row.choices) if row.choices else ""
                    raise searchspace.SpaceError(
                        f"{key}.choices[{i}]",
                        f"must be {row.describe_range()}; got {json.dumps(c)}{hint}",
                    )
        else:  # a numeric range
            if row.kind not in ("float", "int") or (
                row.kind == "int" and isinstance(p, searchspace.FloatParam)
            ):
                raise searchspace.SpaceError(
                    f"{key}.type", f"`{p.name}` is {row.describe_range()}, not a float range"
                )
            for bound in ("low", "high"):
                value = getattr(p, bound)
                if not row.accepts(value):
                    raise searchspace.SpaceError(
                        f"{key}.{bound}", f"must be {row.describe_range()}; got {value!r}"
                    )


def _check_combinations(spec: StudySpec) -> None:
    """Cross-section rules that no single field can express."""
    _check_user_code(spec)
    _check_multi_objective(spec)
    if spec.search.sampler == "grid":
        try:
            searchspace.grid(spec.space)
        except searchspace.NotGridError as e:
            raise SpecError(f'{spec.source}: {e} (search.sampler = "grid")') from e
    if spec.search.pack not in (1, "auto") and spec.user_code:
        raise SpecError(
            f"{spec.source}: search.pack: packed trials train sweeplab's built-in MLPs only; "
            f"got pack = {json.dumps(spec.search.pack)} with your own model, data or training "
            "function (set pack = 1)"
        )
    if spec.search.pack not in (1, "auto") and spec.model.kind != "mlp":
        raise SpecError(
            f"{spec.source}: search.pack: only MLPs train as packs; got pack = "
            f'{spec.search.pack} with model.kind = "{spec.model.kind}" (set pack = 1 or "auto")'
        )
    if spec.search.scheduler == "hyperband" and spec.search.pack not in (1, "auto"):
        raise SpecError(
            f"{spec.source}: search.pack: packed trials judge their members with ASHA's one "
            f'bracket; scheduler = "hyperband" needs pack = 1 (got pack = {spec.search.pack})'
        )
    if spec.search.rung_model and (
        spec.search.scheduler not in ("asha", "hyperband") or spec.search.sampler != "tpe"
    ):
        raise SpecError(
            f"{spec.source}: search.rung_model: models the trials at a scheduler's rungs with "
            f'TPE; it needs scheduler = "asha" or "hyperband" and sampler = "tpe" (got '
            f'scheduler = "{spec.search.scheduler}", sampler = "{spec.search.sampler}")'
        )
    _check_pbt(spec)
    if (
        spec.search.scheduler in ("asha", "hyperband")
        and spec.search.grace_period > spec.budget.max_epochs
    ):
        raise SpecError(
            f"{spec.source}: search.grace_period: must be <= budget.max_epochs "
            f"({spec.budget.max_epochs}); got {spec.search.grace_period}"
        )


@dataclass(frozen=True, kw_only=True)
class PbtSettings:
    """``[search.pbt]`` with its defaults resolved (:func:`pbt_settings`)."""

    interval: int  # epochs between two exploit/explore steps
    quantile: float
    resample_probability: float
    mutate: tuple[str, ...]  # the names of [space] that explore perturbs


def pbt_settings(spec: StudySpec) -> PbtSettings:
    """``[search.pbt]`` with its defaults resolved: ``interval`` (``max_epochs // 4``, at least
    1) and ``mutate`` (the space's names the trainer can change between epochs) filled in.

    Example:
        >>> spec = spec_from_dict({"budget": {"n_trials": 4, "max_epochs": 8}, "search": {
        ...     "scheduler": "pbt", "concurrency": 4}, "space": {"lr": {"type": "float",
        ...     "low": 1e-4, "high": 0.1, "log": True}, "batch_size": {"type": "categorical",
        ...     "choices": [32, 64]}}})
        >>> settings = pbt_settings(spec)
        >>> settings.interval, settings.mutate
        (2, ('lr',))
    """
    given = spec.search.pbt or PbtSection()
    mutate = given.mutate
    if mutate is None:
        mutate = [p.name for p in spec.space if _mutable(p) is None]
    return PbtSettings(
        interval=given.interval or max(1, spec.budget.max_epochs // 4),
        quantile=given.quantile,
        resample_probability=given.resample_probability,
        mutate=tuple(mutate),
    )


def _mutable(p: searchspace.Param) -> str | None:
    """Why population based training cannot change ``p`` between epochs (``None``: it can)."""
    if p.name not in trainer.MUTABLE_BETWEEN_EPOCHS:
        return (
            "the trainer cannot change it between epochs without rebuilding the network or "
            f"the optimizer (it can: {', '.join(sorted(trainer.MUTABLE_BETWEEN_EPOCHS))})"
        )
    if isinstance(p, searchspace.FixedParam | searchspace.SubsetParam):
        return "it is not searched as a range or a set of choices"
    if p.when:
        # A trial without it (its condition false) would have no value to perturb.
        return "it is conditional (`when`): only some trials have it"
    if p.name in trainer.MUTABLE_ABOVE_ZERO:
        values = p.choices if isinstance(p, searchspace.CategoricalParam) else (p.low,)
        if any(v == 0 for v in values):
            return (
                "its 0 removes the layer, which cannot come and go mid-training; give it a range "
                "above 0 (low > 0)"
            )
    return None


def _check_pbt(spec: StudySpec) -> None:
    """Population based training's rules: one population, sweeplab's loop, names it can change."""
    where, search, budget = spec.source, spec.search, spec.budget
    if search.scheduler != "pbt":
        if search.pbt is not None:
            raise SpecError(
                f'{where}: [search.pbt]: applies to scheduler = "pbt" only; got scheduler = '
                f'"{search.scheduler}" (set scheduler = "pbt", or remove [search.pbt])'
            )
        return
    if search.pack != 1:
        raise SpecError(
            f'{where}: search.pack: scheduler = "pbt" copies single trials\' states; set '
            f"pack = 1 (got pack = {json.dumps(search.pack)})"
        )
    if spec.trainable.function:
        raise SpecError(
            f'{where}: search.scheduler: "pbt" copies the state of sweeplab\'s own training '
            "loop between trials; a training function ([trainable] function) keeps its own "
            'state (use scheduler = "asha", "hyperband" or "none")'
        )
    if budget.n_trials != search.concurrency or search.concurrency < 2:
        raise SpecError(
            f'{where}: budget.n_trials: scheduler = "pbt" trains one population of '
            "search.concurrency trials side by side, so n_trials must equal concurrency, at "
            f"least 2; got n_trials = {budget.n_trials}, concurrency = {search.concurrency}"
        )
    pbt = pbt_settings(spec)
    if pbt.interval >= budget.max_epochs:
        raise SpecError(
            f"{where}: search.pbt.interval: must be < budget.max_epochs "
            f"({budget.max_epochs}), or no trial is ever copied; got {pbt.interval}"
        )
    by_name = {p.name: p for p in spec.space}
    for i, name in enumerate(pbt.mutate):
        key = f"search.pbt.mutate[{i}]"
        if name not in by_name:
            raise SpecError(
                f"{where}: {key}: {json.dumps(name)} is not in [space]"
                + searchspace.closest(name, list(by_name))
                + f" (searched: {', '.join(by_name)})"
            )
        why = _mutable(by_name[name])
        if why is not None:
            raise SpecError(f"{where}: {key}: population based training cannot change "
                            f"{json.dumps(name)}: {why}")  # fmt: skip
    if not pbt.mutate:
        raise SpecError(
            f"{where}: search.pbt.mutate: none of [space] can change between epochs "
            f"({', '.join(by_name)}); search one of "
            f"{', '.join(sorted(trainer.MUTABLE_BETWEEN_EPOCHS))} (e.g. lr)"
        )


def _check_user_code(spec: StudySpec) -> None:
    """The rules of the user's own code: what replaces what, and which objectives exist."""
    where = spec.source
    function = spec.trainable.function
    if function and (spec.model.factory or spec.data.factory):
        which = "model.factory" if spec.model.factory else "data.factory"
        raise SpecError(
            f"{where}: {which}: a training function ([trainable] function = "
            f"{json.dumps(function)}) builds its own model and data; remove {which}, or the "
            "function"
        )
    if function and spec.early_stopping.patience is not None:
        raise SpecError(
            f"{where}: early_stopping.patience: early stopping is part of sweeplab's own training "
            "loop; a training function stops itself (return from it); remove patience"
        )
    for objective in spec.study.objectives:
        known = objective in trainer.METRICS or objective in trainer.COST_METRICS
        if not known and spec.study.direction is None:
            raise SpecError(
                f'{where}: study.direction: must be "maximize" or "minimize" for the objective '
                f"{json.dumps(objective)} (sweeplab cannot tell whether more is better)"
                + (" (a list: one per objective)" if spec.study.multi_objective else "")
            )


def _check_multi_objective(spec: StudySpec) -> None:
    """What several objectives rule out: a single ranking of the trials."""
    if not spec.study.multi_objective:
        cost = spec.study.objective
        if cost in trainer.COST_METRICS and not spec.trainable.function:
            raise SpecError(
                f'{spec.source}: study.objective: "{cost}" is a cost, minimised beside what '
                f'training measures: objective = ["val_acc", "{cost}"]'
            )
        return
    search, where = spec.search, f"{spec.source}: search"
    shown = json.dumps(spec.study.objective)
    if search.scheduler == "hyperband":
        raise SpecError(
            f'{where}.scheduler: "hyperband" ranks trials by one objective; with several '
            f'({shown}) use "asha" (multi-objective ASHA: Pareto order at each rung) or "none"'
        )
    if search.scheduler == "pbt":
        raise SpecError(
            f'{where}.scheduler: "pbt" copies the trials that rank best by one objective; with '
            f'several ({shown}) use "asha" (multi-objective ASHA) or "none"'
        )
    if search.rung_model:
        raise SpecError(
            f"{where}.rung_model: models one objective at the rungs; with several ({shown}) "
            "remove rung_model"
        )
    if search.sampler == "cmaes":
        raise SpecError(
            f'{where}.sampler: "cmaes" optimises one objective; with several ({shown}) use '
            '"tpe", "nsga2", "random" or "grid"'
        )
    if search.pack not in (1, "auto"):
        raise SpecError(
            f"{where}.pack: packed trials are judged by one objective; with several ({shown}) "
            "set pack = 1"
        )


# --- turning pydantic's errors into one sentence --------------------------------------------


def _describe_pydantic(error: pydantic.ValidationError, raw: dict[str, Any]) -> str:
    first = error.errors()[0]
    loc = [str(x) for x in first["loc"]]
    key = ".".join(loc)
    kind = first["type"]
    if kind == "extra_forbidden":
        section_model = _model_at(loc[:-1])
        known = list(section_model.model_fields) if section_model else []
        where = f"[{'.'.join(loc[:-1])}]" if loc[:-1] else "the top level"
        return (
            f"{key}: unknown key in {where}" + searchspace.closest(loc[-1], known)
            + (f" (known: {', '.join(known)})" if known else "")
        )  # fmt: skip
    got = _value_at(raw, first["loc"])
    msg = first["msg"]
    if kind == "literal_error":
        msg = "must be " + msg.removeprefix("Input should be ")
        msg += searchspace.closest(got, re.findall(r"'([^']+)'", first["msg"]))
    elif kind == "value_error":
        msg = msg.removeprefix("Value error, ")
        if loc == ["study"]:  # a rule across the section's keys names its key itself
            return f"study.{msg}"
    elif kind == "string_pattern_mismatch":
        msg = _PATTERN_MESSAGES.get(
            loc[-1],
            "must be 1-100 letters, digits, '_', '.' or '-', starting with a letter or digit",
        )
    else:
        msg = "must be " + msg.removeprefix("Input should be ").removeprefix("Input ")
    return f"{key}: {msg}; got {json.dumps(got, default=str)}"


_PATTERN_MESSAGES = {
    "objective": "must be a metric name: letters, digits, '_', '.' or '-', starting with a letter",
    **dict.fromkeys(
        ("factory", "function"),
        'must be "module:attribute" naming your own code, e.g. "mynets:build" (mynets.py beside '
        "the spec)",
    ),
}


def _model_at(loc: list[str]) -> type[BaseModel] | None:
    model: type[BaseModel] = _SpecModel
    for part in loc:
        field = model.model_fields.get(part)
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def _value_at(raw: Any, loc: tuple[Any, ...]) -> Any:
    for part in loc:
        try:
            raw = raw[part]
        except (KeyError, IndexError, TypeError):
            return None
    return raw
