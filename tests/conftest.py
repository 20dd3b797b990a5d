"""Shared fixtures: tiny study specs on the bundled digits data, and one Ray per module."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# A trial needs only 1 CPU; keep torch from grabbing both cores in the test process itself.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# The MNIST copy beside the project (../shared/data); SWEEPLAB_TEST_DATA points elsewhere (a git
# worktree one level deeper, a CI cache). Tests that need it skip when it is absent.
SHARED_DATA = Path(
    os.environ.get("SWEEPLAB_TEST_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data"
)

TINY_SPACE = """
[space.lr]
type = "float"
low = 1e-3
high = 3e-2
log = true

[space.optimizer]
type = "categorical"
choices = ["sgd", "adam"]

[space.momentum]
type = "float"
low = 0.5
high = 0.95
when = { optimizer = "sgd" }

[space.augment]
type = "subset"
choices = ["noise", "mixup"]

[space.mixup_alpha]
type = "float"
low = 0.1
high = 0.4
when = { augment = "mixup" }
"""


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str):
    """Import ``benchmarks/<name>.py`` (the scripts are not a package) with its folder on the path
    while it loads, so its own ``_common``-style imports resolve."""
    import importlib.util
    import sys

    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while it executes
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCHMARKS))


def tiny_spec(
    tmp_path: Path,
    *,
    name: str = "tiny",
    n_trials: int = 6,
    max_epochs: int = 4,
    sampler: str = "random",
    scheduler: str = "asha",
    concurrency: int = 2,
    space: str = TINY_SPACE,
    extra: str = "",
    max_failures: int = 20,
    budget_extra: str = "",
) -> Path:
    """Write a small digits study spec and return its path (the database lives beside it)."""
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f"""
[study]
name = "{name}"
storage = "sqlite:///{tmp_path / "study.db"}"
seed = 1

[data]
dataset = "digits"

[model]
kind = "mlp"
hidden = [32]

[budget]
n_trials = {n_trials}
max_epochs = {max_epochs}
max_failures = {max_failures}
{budget_extra}

[search]
sampler = "{sampler}"
scheduler = "{scheduler}"
grace_period = 1
reduction_factor = 2
concurrency = {concurrency}
{extra}
{space}
""",
        encoding="utf-8",
    )
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``sweeplab ARGS`` in this process: its exit status, stdout and stderr."""
    from sweeplab.studies.cli import main

    with pytest.raises(SystemExit) as code:
        main(list(args))
    out = capsys.readouterr()
    return code.value.code, out.out, out.err


def session_processes(leader: int) -> list[int]:
    """Live processes of the session ``leader`` started: the driver, Ray's raylet and GCS, and
    Ray's workers, which put themselves in process groups of their own but stay in it."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == leader and fields[0] != "Z":
            members.append(int(entry))
    return members


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray instance per test module (starting Ray costs seconds)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No module of sweeplab's may be loaded under a bare name in the test process either.

    The tests run from the checkout, whose folders are importable as ``studies``, ``trainer``...
    from there; a test (or product code) that imported one would load a second copy of a module
    beside ``sweeplab.*``. This fails the run if any did.
    """
    import sys

    bare = sorted(
        name
        for name in sys.modules
        if name.split(".")[0] in ("studies", "searchspace", "trainer", "analysis")
        and str(getattr(sys.modules[name], "__file__", "")).startswith(
            str(Path(__file__).parents[1])
        )
    )
    if bare:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(f"\nmodules loaded under a bare name (import them as sweeplab.*): {bare}")
