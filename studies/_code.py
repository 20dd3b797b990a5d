"""A user's own code: named in a spec, found and checked in the driver, shipped to the workers.

A spec names the user's code as ``module:attribute`` (``[model] factory = "mynets:build"``,
``[data] factory``, ``[trainable] function``); the Python API takes the objects themselves
(``run_study(spec, model=build)``), and the stored spec then names them the same way, so
``status`` and ``report`` say what trained the trials and ``resume`` finds them again.

The module is the user's, not installed anywhere: it is imported from the spec's folder (or the
working directory), and everything is checked before a trial starts or the database is touched
(the module and attribute exist, the object is callable with the right arguments). The folder
then reaches every Ray worker, on every node, as Ray's ``runtime_env`` ``working_dir`` (data,
databases, checkpoints and ``.git`` left out); :func:`runtime_env` says what to ship.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweeplab import searchspace
from sweeplab.studies._spec import CODE_KEYS, StudySpec, check_names, spec_from_dict
from sweeplab.studies.errors import SpecError, UsageError

#: What a study's folder keeps that its trials never need: shipped to no worker.
EXCLUDES = (
    ".git", ".hg", "__pycache__", "*.pyc", ".venv", "venv", ".ipynb_checkpoints",
    "*.db", "*.db-wal", "*.db-shm", "*.sweeplab-lock", "data", "*.pt", "*.pth", "*.ckpt",
    "*.npz", "*.npy", "*.parquet", "*.csv", "*.tar", "*.gz", "*.zip",
)  # fmt: skip

# Each way in (the spec keys are CODE_KEYS'): the arguments it is called with, its shape in words.
_CALLS = {
    "model": (("input_shape", "n_classes", "hp"), "build(input_shape, n_classes, hp) -> nn.Module"),
    "data": ((), "load() -> sweeplab.trainer.Data"),
    "function": (("hp", "trial"), "train(hp, trial) -> dict of final metrics, or None"),
}


def _key(role: str) -> str:
    section, key = CODE_KEYS[role]
    return f"{section}.{key}"


@dataclass(frozen=True, kw_only=True)
class UserCode:
    """The user's code of a study, imported and checked.

    Attributes:
        model: ``build(input_shape, n_classes, hp) -> nn.Module``, or ``None``.
        data: ``load() -> sweeplab.trainer.Data``, or ``None``.
        function: ``train(hp, trial)``, or ``None``.
        folder: the project folder the user's modules live in, shipped to the workers; ``None``
            when none of them does (installed packages, objects defined in a notebook).
        modules: the names of the user's modules found in ``folder``.
    """

    model: Callable[..., Any] | None = None
    data: Callable[..., Any] | None = None
    function: Callable[..., Any] | None = None
    folder: Path | None = None
    modules: tuple[str, ...] = ()

    @property
    def any(self) -> bool:
        return any((self.model, self.data, self.function))


def with_objects(
    spec: StudySpec,
    *,
    model: Callable[..., Any] | None = None,
    data: Callable[..., Any] | None = None,
    function: Callable[..., Any] | None = None,
) -> StudySpec:
    """The spec with the objects the Python API was given in its keys (see
    :func:`~sweeplab.studies.spec_from_dict`), re-validated."""
    given = {"model": model, "data": data, "function": function}
    if not any(given.values()):
        return spec
    raw = spec.to_dict()
    if raw["study"]["direction"] is None:
        raw["study"].pop("direction")
    for role, obj in given.items():
        if obj is None:
            continue
        if not callable(obj):
            raise SpecError(
                f"{spec.source}: {_key(role)}: must be callable, {_CALLS[role][1]}; got {obj!r}"
            )
        section, key = CODE_KEYS[role]
        raw[section][key] = obj
    out = spec_from_dict(raw, source=spec.source)
    return dataclasses.replace(out, folder=spec.folder, objects={**spec.objects, **out.objects})


def load_user_code(
    spec: StudySpec,
    *,
    model: Callable[..., Any] | None = None,
    data: Callable[..., Any] | None = None,
    function: Callable[..., Any] | None = None,
) -> UserCode:
    """Import (or take) the spec's user code and check each object can be called as it will be.

    Objects given here are used as they are; references in the spec are imported from its
    folder (then the working directory and ``sys.path``).

    Raises:
        SpecError: a module or attribute that does not exist, an object that is not callable or
            does not take the arguments sweeplab calls it with; naming the spec key.
    """
    base = Path(spec.folder).resolve() if spec.folder else None
    folder = base or Path.cwd().resolve()
    check_names(spec)
    refs = {
        "model": spec.model.factory,
        "data": spec.data.factory,
        "function": spec.trainable.function,
    }
    given = {"model": model, "data": data, "function": function}
    given = {
        role: obj if obj is not None else spec.objects.get(role) for role, obj in given.items()
    }
    found: dict[str, Any] = {}
    modules: list[str] = []
    ship: Path | None = None
    for role, ref in refs.items():
        if ref is None:
            continue
        key, (arguments, shape) = _key(role), _CALLS[role]
        obj = given[role] if given[role] is not None else _import(ref, key, folder, spec.source)
        _check_callable(obj, ref, key, arguments, shape, spec.source)
        found[role] = obj
        home = _user_folder(obj)
        if home is None:
            continue  # installed, or defined in a script or notebook (pickled by value)
        modules.append(obj.__module__)
        # The spec file's folder when the code is in it, else the folder of the module (or
        # the top package) that defines it.
        ship = ship or (base if base is not None and home.is_relative_to(base) else home)
    code = UserCode(**found, folder=ship, modules=tuple(sorted(set(modules))))
    shape = _try_data(spec, code) if code.data is not None else None
    if code.model is not None:
        _try_model(spec, code, shape)
    return code


def probe_config(space: searchspace.SearchSpace) -> dict[str, Any]:
    """One configuration to call the user's code with before any trial: every entry at its
    default (the catalog's or the declared one), else at its low end or first choice.

    Example:
        >>> space = searchspace.parse_space({"width": {"type": "int", "low": 8, "high": 64},
        ...                                  "depth": {"low": 1, "high": 4, "default": 2}})
        >>> probe_config(space)
        {'width': 8, 'depth': 2}
    """
    from sweeplab import trainer

    config: dict[str, Any] = {}
    for p in space:
        if not p.is_active(config):
            continue
        row = trainer.HYPERPARAMETERS.get(p.name)
        if isinstance(p, searchspace.FixedParam):
            value = p.value
        elif row is not None and row.default is not None:
            value = row.default
        elif p.default is not None:
            value = p.default
        elif isinstance(p, (searchspace.FloatParam, searchspace.IntParam)):
            value = p.low
        elif isinstance(p, searchspace.CategoricalParam):
            value = p.choices[0]
        else:
            value = ()
        config[p.name] = list(value) if isinstance(value, tuple) else value
    return config


def _try_data(spec: StudySpec, code: UserCode) -> tuple[tuple[int, ...], int]:
    """Load the user's data once in the driver (the workers load it again, once each) and hold
    the spec to what it is: returns its ``(input_shape, num_classes)``."""
    from sweeplab import trainer

    key = f"{spec.source}: data.factory: {spec.data.factory}"
    try:
        data = trainer.load_own_data(code.data)
    except (TypeError, ValueError) as e:
        raise SpecError(f"{key}: {e}") from e
    except Exception as e:  # the user's factory raised
        raise SpecError(f"{key} raised {type(e).__name__}: {e}") from e
    accuracy = next((o for o in spec.study.objectives if o.endswith("_acc")), None)
    if data.loss is not None and accuracy is not None:
        raise SpecError(
            f"{spec.source}: study.objective: the data set brings its own loss (not "
            f"cross-entropy on class labels), so there is no accuracy to maximise; got "
            f'"{accuracy}" (use "val_loss")'
        )
    if code.model is None and spec.model.kind != "mlp" and len(data.input_shape) != 3:
        raise SpecError(
            f"{spec.source}: model.kind: {spec.model.kind!r} takes images (C, H, W); the data "
            f'set\'s examples have shape {data.input_shape} (use kind = "mlp", or your own '
            "model: [model] factory)"
        )
    return tuple(data.input_shape), data.num_classes


def _try_model(spec: StudySpec, code: UserCode, shape: tuple[tuple[int, ...], int] | None) -> None:
    """Build the user's network once, and run two examples through it, in the driver."""
    from sweeplab import trainer

    input_shape, n_classes = shape or trainer.dataset_shape(spec.data_settings())
    hp = trainer.resolve_params(probe_config(spec.space), own=True)
    try:
        trainer.check_own_model(code.model, hp, input_shape, n_classes)
    except (TypeError, ValueError) as e:
        raise SpecError(f"{spec.source}: model.factory: {spec.model.factory}: {e}") from e
    except Exception as e:  # the user's factory raised
        raise SpecError(
            f"{spec.source}: model.factory: {spec.model.factory} raised "
            f"{type(e).__name__}: {e} when called with input_shape={input_shape}, "
            f"n_classes={n_classes} and the first configuration of the space"
        ) from e


def _user_folder(obj: Any) -> Path | None:
    """The folder of the user's module that defines ``obj``; ``None`` for ``__main__`` and for
    installed code (site-packages, the standard library, sweeplab itself)."""
    module = sys.modules.get(getattr(obj, "__module__", "") or "")
    path = getattr(module, "__file__", None)
    if module is None or module.__name__ == "__main__" or not path:
        return None
    file = Path(path).resolve()
    installed = [Path(p).resolve() for p in (sys.prefix, sys.base_prefix)]
    if module.__name__.split(".")[0] == "sweeplab" or any(
        file.is_relative_to(p) for p in installed
    ):
        return None
    # A module of a package ships with its package: the folder above the top package.
    depth = module.__name__.count(".")
    return file.parents[depth]


def _import(ref: str, key: str, folder: Path, source: str) -> Any:
    module_name, _, attribute = ref.partition(":")
    if module_name == "__main__":
        raise SpecError(
            f"{source}: {key}: {ref} was given as a Python object of a script or notebook; "
            "give it again: run_study(spec, model=..., data=..., function=...)"
        )
    # The user's project folder first: their module is not installed anywhere.
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and not module_name.startswith(e.name):  # the module imports a missing one
            raise SpecError(
                f"{source}: {key}: importing {module_name!r} failed: {e} (install it, or add "
                "it beside the module)"
            ) from e
        raise SpecError(
            f"{source}: {key}: no module {module_name!r} (looked in {folder}, the working "
            f"directory and sys.path); put {module_name.replace('.', '/')}.py beside the spec"
        ) from e
    except Exception as e:  # the user's module raised on import
        raise SpecError(
            f"{source}: {key}: importing {module_name!r} raised {type(e).__name__}: {e}"
        ) from e
    obj: Any = module
    for part in attribute.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            raise SpecError(
                f"{source}: {key}: {module_name!r} has no {attribute!r}"
                + searchspace.closest(part, names)
                + f" (it defines: {', '.join(names[:12]) or 'nothing public'})"
            )
        obj = getattr(obj, part)
    return obj


def _check_callable(
    obj: Any, ref: str, key: str, arguments: tuple[str, ...], shape: str, source: str
) -> None:
    if not callable(obj):
        raise SpecError(f"{source}: {key}: {ref} is not callable; expected {shape}")
    try:
        inspect.signature(obj).bind(*arguments)
    except TypeError as e:
        raise SpecError(
            f"{source}: {key}: {ref} cannot be called as {shape} ({e}); sweeplab calls it with "
            f"{len(arguments)} positional argument(s)"
            + (f": {', '.join(arguments)}" if arguments else "")
        ) from e
    except ValueError:  # a builtin without a signature: it will tell at the call
        pass


def check_reach(code: UserCode) -> None:
    """Whether the user's modules will reach the workers of a Ray the caller already started.

    Such a Ray cannot be given a ``working_dir`` any more; its workers find the user's modules
    only where they run: a local Ray's in the caller's working directory.

    Raises:
        UsageError: Ray is initialised without a ``working_dir``, and the user's modules live in
            another folder than the working directory.
    """
    ray = sys.modules.get("ray")
    if code.folder is None or ray is None or not ray.is_initialized():
        return
    if ray.get_runtime_context().runtime_env.get("working_dir"):
        return
    if Path.cwd().resolve() != code.folder:
        raise UsageError(
            f"Ray is already initialised in this process, without the folder of your code "
            f"({code.folder}); start it with ray.init(runtime_env={{'working_dir': "
            f"'{code.folder}'}}), or leave starting Ray to sweeplab"
        )


def runtime_env(code: UserCode) -> dict[str, Any] | None:
    """Ray's ``runtime_env`` that ships the user's folder to every worker, or ``None``."""
    if code.folder is None:
        return None
    return {"working_dir": str(code.folder), "excludes": list(EXCLUDES)}
