"""The study spec: a TOML file validated into small frozen objects.

What to search (``[space]``) is kept apart from how to run it (``[search]``, ``[budget]``), in
the manner of Ray Tune's ``TuneConfig``/``RunConfig``. Every validation error names the file,
the dotted key and what was expected, and is raised as :class:`SpecError` (exit code 2).
The format is data only: nothing in a spec is ever executed.
"""

from __future__ import annotations

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


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class StudySection(_Section):
    """``[study]``: identity and objective."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")] = "study"
    storage: str = "sqlite:///sweeplab.db"
    objective: Literal["val_acc", "val_loss", "train_acc", "train_loss"] = "val_acc"
    direction: Literal["maximize", "minimize"] | None = None  # None: inferred from the objective
    seed: Annotated[int, Field(ge=0)] = 0

    @property
    def resolved_direction(self) -> str:
        if self.direction is not None:
            return self.direction
        return "minimize" if self.objective.endswith("loss") else "maximize"


class DataSection(_Section):
    """``[data]``: dataset and split."""

    dataset: Literal[trainer.DATASETS] = "digits"  # type: ignore[valid-type]
    root: str = "data"
    download: bool = False
    val_fraction: Annotated[float, Field(gt=0.0, lt=1.0, strict=False)] = 0.2
    subset: Annotated[int, Field(ge=10)] | None = None


class ModelSection(_Section):
    """``[model]``: the network."""

    kind: Literal[trainer.MODELS] = "mlp"  # type: ignore[valid-type]
    hidden: list[Annotated[int, Field(ge=1)]] = [128, 64]
    channels: list[Annotated[int, Field(ge=1)]] = [32, 64]
    activation: Literal[trainer.ACTIVATIONS] = "relu"  # type: ignore[valid-type]
    compile: bool = False  # torch.compile the network (worth it on GPUs)


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


class ResourcesSection(_Section):
    """``[search.resources]``: per trial; fractions of a GPU share one device between trials."""

    cpus: Annotated[float, Field(gt=0, strict=False)] = 1.0
    gpus: Annotated[float, Field(ge=0, strict=False)] = 0.0


class SearchSection(_Section):
    """``[search]``: sampler, scheduler, parallelism."""

    sampler: Literal["tpe", "random", "grid", "cmaes"] = "tpe"
    n_startup_trials: Annotated[int, Field(ge=0)] = 8
    scheduler: Literal["asha", "none"] = "asha"
    grace_period: Annotated[int, Field(ge=1)] = 2
    reduction_factor: Annotated[float, Field(gt=1, strict=False)] = 3.0
    concurrency: Annotated[int, Field(ge=1)] = 2
    # Optuna trials trained together as one stacked model per Ray trial (MLPs; "auto": 8 on
    # CPU, 32 with a GPU). concurrency then counts packs.
    pack: int | Literal["auto"] = 1
    resources: ResourcesSection = ResourcesSection()

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


class _SpecModel(_Section):
    study: StudySection = StudySection()
    data: DataSection = DataSection()
    model: ModelSection = ModelSection()
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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: stored in the study database so ``resume`` needs no spec file."""
        out = {
            s: getattr(self, s).model_dump(mode="json")
            for s in ("study", "data", "model", "budget", "search", "early_stopping")
        }
        out["space"] = self.space.to_dict()
        return out

    def with_overrides(self, **overrides: Any) -> StudySpec:
        """A copy with command-line overrides (``name``, ``storage``, ``seed``, ``n_trials``,
        ``max_epochs``) applied and re-validated. ``None`` values are ignored."""
        where = {
            "name": "study", "storage": "study", "seed": "study",
            "n_trials": "budget", "max_epochs": "budget",
        }  # fmt: skip
        raw = self.to_dict()
        raw["study"].pop("direction") if raw["study"]["direction"] is None else None
        for key, value in overrides.items():
            if value is not None:
                raw[where[key]][key] = value
        return spec_from_dict(raw, source=f"{self.source} (with command-line options)")

    # --- the trainer's view of the spec -----------------------------------------------------------
    def data_settings(self) -> trainer.DataSettings:
        d = self.data
        return trainer.DataSettings(
            dataset=d.dataset, root=d.root, download=d.download,
            val_fraction=d.val_fraction, subset=d.subset, split_seed=self.study.seed,
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
            objective=self.study.objective,
            direction=self.study.resolved_direction,
            early_stopping=trainer.EarlyStopping(
                patience=es.patience,
                min_delta=es.min_delta,
                restore_best_weights=es.restore_best_weights,
            ),
            seed=seed,
            num_threads=num_threads,
            compile=self.model.compile,
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
    return parse_spec(text, source=source)


def parse_spec(text: str, *, source: str = "<spec>") -> StudySpec:
    """Validate TOML text into a :class:`StudySpec`."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{source}: not valid TOML: {e}") from e
    return spec_from_dict(raw, source=source)


def spec_from_dict(raw: dict[str, Any], *, source: str = "<spec>") -> StudySpec:
    """Validate an already-parsed spec table (from TOML, or stored in a study database)."""
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
        _check_against_catalog(space)
    except searchspace.SpaceError as e:
        raise SpecError(f"{source}: {e}") from e
    spec = StudySpec(
        study=model.study, data=model.data, model=model.model, budget=model.budget,
        search=model.search, early_stopping=model.early_stopping, space=space, source=source,
    )  # fmt: skip
    _check_combinations(spec)
    return spec


def _check_against_catalog(space: searchspace.SearchSpace) -> None:
    """Every entry must be a hyperparameter the trainer knows, with values it can build."""
    catalog = trainer.HYPERPARAMETERS
    for p in space:
        key = f"space.{p.name}"
        row = catalog.get(p.name)
        if row is None:
            raise searchspace.SpaceError(
                key,
                "unknown hyperparameter"
                + searchspace.closest(p.name, catalog)
                + f" (known: {', '.join(sorted(catalog))})",
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
    if spec.search.sampler == "grid":
        try:
            searchspace.grid(spec.space)
        except searchspace.NotGridError as e:
            raise SpecError(f'{spec.source}: {e} (search.sampler = "grid")') from e
    if spec.search.pack not in (1, "auto") and spec.model.kind != "mlp":
        raise SpecError(
            f"{spec.source}: search.pack: only MLPs train as packs; got pack = "
            f'{spec.search.pack} with model.kind = "{spec.model.kind}" (set pack = 1 or "auto")'
        )
    if spec.search.scheduler == "asha" and spec.search.grace_period > spec.budget.max_epochs:
        raise SpecError(
            f"{spec.source}: search.grace_period: must be <= budget.max_epochs "
            f"({spec.budget.max_epochs}); got {spec.search.grace_period}"
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
    elif kind == "string_pattern_mismatch":
        msg = "must be 1-100 letters, digits, '_', '.' or '-', starting with a letter or digit"
    else:
        msg = "must be " + msg.removeprefix("Input should be ").removeprefix("Input ")
    return f"{key}: {msg}; got {json.dumps(got, default=str)}"


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
