"""The package's shape, checked from the code itself: names, boundaries, imports, start-up cost.

sweeplab is one installed package whose subpackages are the repository's four folders (see
``docs/architecture.md``). These tests read every product module's imports with ``ast`` and hold
them to the design: one name per module (``sweeplab.*``, never a bare ``trainer``), data flowing
one way (trainer and searchspace import no other part, analysis reads only the database layer),
no import cycle, no reaching into another module's private names or another part's private
modules, Optuna's private storage API in one module, library errors that never speak in command-
line flags, and commands that pay only for what they use.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("studies", "searchspace", "trainer", "analysis")
# What analysis may read of studies: the database layer, none of the run machinery.
DATABASE_LAYER = (
    "sweeplab.studies.storage",
    "sweeplab.studies.records",
    "sweeplab.studies.asha",
    "sweeplab.studies.errors",
)
# The one module allowed to touch Optuna's private storage API.
OPTUNA_INTERNALS = "sweeplab.studies.storage._optuna"


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(["sweeplab", *parts])


def _product_files() -> dict[str, Path]:
    files = {"sweeplab": ROOT / "__init__.py"}
    for part in PARTS:
        for path in sorted((ROOT / part).rglob("*.py")):
            files[_module_name(path)] = path
    return files


MODULES = _product_files()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _imports(name: str) -> list[tuple[int, str, list[str], bool]]:
    """``(line, module, names, typing_only)`` for every import in a module, absolute names."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                out.append((node.lineno, alias.name, [], id(node) in typing_only))
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: resolve against this module's package
                base = name.split(".") if _is_package(name) else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            names = [a.name for a in node.names]
            out.append((node.lineno, module, names, id(node) in typing_only))
    return out


def _targets(module: str, names: list[str]) -> list[str]:
    """The product modules an import statement uses: ``from pkg import sub`` uses ``pkg.sub``
    (``pkg`` runs too, as the parent of any of its modules, so it counts only when a name is
    taken from it)."""
    subs = [f"{module}.{n}" for n in names if f"{module}.{n}" in MODULES]
    from_face = module in MODULES and (not names or len(subs) < len(names))
    return [module] * from_face + subs


def _graph(*, runtime_only: bool = True) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for name in MODULES:
        for _, module, names, typing_only in _imports(name):
            if runtime_only and typing_only:
                continue
            graph[name] |= {t for t in _targets(module, names) if t != name}
    return graph


def _part(name: str) -> str:
    return name.split(".")[1] if name.count(".") >= 1 else ""


# ---- names -----------------------------------------------------------------------------------------


def test_every_product_module_is_imported_under_sweeplab_and_absolutely() -> None:
    bad = []
    for name in MODULES:
        for line, module, _, _ in _imports(name):
            if module.split(".")[0] in PARTS:
                bad.append(f"{MODULES[name].relative_to(ROOT)}:{line} imports {module}")
        source = MODULES[name].read_text(encoding="utf-8")
        if "from ." in source:
            bad.append(f"{MODULES[name].relative_to(ROOT)}: a relative import")
    assert bad == []


def test_pyproject_installs_every_subpackage_and_only_under_sweeplab() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    setuptools = config["tool"]["setuptools"]
    packages = {n for n in MODULES if _is_package(n)}
    assert set(setuptools["packages"]) == packages
    assert setuptools["package-dir"] == {"sweeplab": "."}
    assert config["project"]["scripts"] == {"sweeplab": "sweeplab.studies.cli:main"}


# ---- boundaries ------------------------------------------------------------------------------------


def test_trainer_and_searchspace_import_no_other_part() -> None:
    bad = []
    for name in MODULES:
        if _part(name) not in ("trainer", "searchspace"):
            continue
        for line, module, _, _ in _imports(name):
            if module.startswith("sweeplab") and not module.startswith(f"sweeplab.{_part(name)}"):
                bad.append(f"{name}:{line} imports {module}")
    assert bad == []


def test_analysis_reads_only_the_database_layer() -> None:
    bad = []
    for name in MODULES:
        if _part(name) != "analysis":
            continue
        for line, module, names, _ in _imports(name):
            top = module.split(".")[0]
            if top in ("torch", "torchvision", "ray"):
                bad.append(f"{name}:{line} imports {module}")
            if not module.startswith("sweeplab") or module.startswith("sweeplab.analysis"):
                continue
            loaded = _targets(module, names) or [module]
            for target in loaded:
                if not target.startswith(DATABASE_LAYER):
                    bad.append(f"{name}:{line} imports {target}")
    assert bad == []


def test_no_import_cycle() -> None:
    graph = _graph()
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for name in sorted(MODULES):
        if name not in state:
            visit(name, [name])
    # A package's face importing its own modules is no cycle of ideas: it is how a face works;
    # a module importing its package's face back (and so, through it, its siblings) is one.
    real = [c for c in cycles if not any(_is_package(m) and c[i + 1].startswith(m + ".")
                                         for i, m in enumerate(c[:-1]))]  # fmt: skip
    assert real == []


def test_no_module_imports_another_modules_private_names() -> None:
    bad = []
    for name in MODULES:
        for line, module, names, _ in _imports(name):
            if not module.startswith("sweeplab"):
                continue
            private = [n for n in names if n.startswith("_") and f"{module}.{n}" not in MODULES]
            if private:
                bad.append(f"{name}:{line} imports {private} from {module}")
    assert bad == []


def test_no_part_imports_another_parts_private_modules() -> None:
    bad = []
    for name in MODULES:
        for line, module, names, _ in _imports(name):
            for target in _targets(module, names):
                private = any(p.startswith("_") for p in target.split(".")[2:])
                if private and _part(target) != _part(name):
                    bad.append(f"{name}:{line} imports {target}")
    assert bad == []


def test_optunas_private_storage_api_is_used_in_one_module() -> None:
    """``study._storage``, ``trial._trial_id``, the RDB models and scoped sessions: all behind
    ``sweeplab.studies.storage``, so an Optuna upgrade that moves them breaks one file."""
    signs = ("._storage", "._backend", "._trial_id", "._study_id", "_get_stale_trial_ids",
             "optuna.storages._", "scoped_session")  # fmt: skip
    bad = []
    for name, path in MODULES.items():
        if name == OPTUNA_INTERNALS:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if any(sign in code for sign in signs) and "self._storage" not in code:
                bad.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert bad == []


def test_library_errors_do_not_speak_in_command_line_flags() -> None:
    """Only the command line knows its options; the library names its Python arguments
    (:class:`~sweeplab.studies.errors.InvalidArgument`), which the command line re-words."""
    flag = re.compile(r"(^|[\s(:'\"`])--[a-z][a-z-]+")
    bad = []
    for name, path in MODULES.items():
        if name == "sweeplab.studies.cli":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Raise):
                continue
            for part in ast.walk(node):
                text = part.value if isinstance(part, ast.Constant) else None
                if isinstance(text, str) and flag.search(text):
                    bad.append(f"{path.relative_to(ROOT)}:{part.lineno}: {text!r}")
    assert bad == []


# ---- start-up --------------------------------------------------------------------------------------


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    return set(out.stdout.split())


HEAVY = ("torch", "torchvision", "ray", "pandas", "sklearn", "matplotlib")


@pytest.mark.parametrize(
    "code",
    [
        "import sweeplab",
        "from sweeplab.studies.cli import cli",
        "from sweeplab.studies.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass",
        "from sweeplab import load_spec\nload_spec('quickstart')",  # spec validation
        "from sweeplab.trainer import HYPERPARAMETERS, resolve_params\nresolve_params({})",
        "from sweeplab.studies import records, errors\nfrom sweeplab.studies import ablation",
    ],
    ids=["face", "cli", "help", "spec", "catalog", "records"],
)
def test_what_needs_no_training_imports_no_torch_or_ray(code: str) -> None:
    loaded = _loaded_after(code)
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY and m.split(".")[0] != "pandas")
    assert heavy == []


def test_help_and_init_import_no_optuna_either(tmp_path: Path) -> None:
    spec = tmp_path / "study.toml"
    for argv in (["--help"], ["init", "quickstart", "-o", str(spec)], ["presets"]):
        loaded = _loaded_after(
            "from sweeplab.studies.cli import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit as e:\n    assert e.code == 0, e"
        )
        heavy = sorted({m.split(".")[0] for m in loaded} & {*HEAVY, "optuna", "sqlalchemy"})
        assert heavy == [], argv
    assert spec.read_text(encoding="utf-8").startswith("#")


def test_the_faces_list_what_they_export() -> None:
    code = (
        "import importlib\n"
        "for name in ('sweeplab', 'sweeplab.studies', 'sweeplab.trainer', 'sweeplab.analysis',"
        " 'sweeplab.studies.storage', 'sweeplab.studies.ablation', 'sweeplab.searchspace'):\n"
        "    m = importlib.import_module(name)\n"
        "    missing = [n for n in m.__all__ if not hasattr(m, n)]\n"
        "    assert not missing, (name, missing)\n"
        "    assert set(m.__all__) <= set(dir(m)), name\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
