"""One installed name, really installed and really run.

- A regular (non-editable) install puts exactly one top-level package, ``sweeplab``, on the
  path, with every subpackage and the presets, and it works from any folder.
- A study run from a user's project folder that holds its own ``trainer.py``, ``studies.py``,
  ``searchspace.py`` and ``analysis/`` uses none of them, in the driver or in the Ray workers,
  although Ray's workers do see that folder (the control below imports the user's file there),
  and no module of sweeplab's is loaded under two names.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("studies", "searchspace", "trainer", "analysis")


@pytest.mark.slow  # builds and installs the package (~15 s)
def test_a_regular_install_has_one_top_level_name_and_works_anywhere(tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--target", str(target), str(ROOT)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    top = sorted(p.name for p in target.iterdir() if not p.name.endswith((".dist-info", "bin")))
    assert top == ["sweeplab"]
    assert not any((target / part).exists() for part in PARTS)
    code = textwrap.dedent(
        """
        import importlib, json, sys
        import sweeplab
        names = ["sweeplab.studies.cli", "sweeplab.studies.storage", "sweeplab.studies.ablation",
                 "sweeplab.studies._tune.searcher", "sweeplab.analysis.ablation",
                 "sweeplab.trainer", "sweeplab.searchspace"]
        for name in names:
            importlib.import_module(name)
        spec = sweeplab.load_spec("quickstart")  # a preset: package data
        files = {m.__name__: getattr(m, "__file__", None) for m in list(sys.modules.values())}
        print(json.dumps({"face": sweeplab.__file__, "study": spec.study.name, "files": files}))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, check=True, capture_output=True,
        text=True,
    )  # fmt: skip
    seen = json.loads(out.stdout)
    assert seen["face"] == str(target / "sweeplab" / "__init__.py")
    assert seen["study"] == "quickstart"
    from_checkout = [n for n, f in seen["files"].items() if f and f.startswith(str(ROOT) + "/")]
    assert from_checkout == [], "the installed copy, not the checkout, is what runs"


USER_MODULE = """
import os, pathlib
pathlib.Path(os.environ["SHADOW_MARKS"], "{name}-" + str(os.getpid())).write_text(__file__)
"""

DRIVER = """
import json, os, sys
from pathlib import Path

import ray
from rich.console import Console

import sweeplab

ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
spec = sweeplab.load_spec("study.toml")
summary = sweeplab.run_study(spec, console=Console(file=open(os.devnull, "w")))
trials, _ = sweeplab.frames(spec.study.storage, spec.study.name)
marks_after_run = sorted(os.listdir(os.environ["SHADOW_MARKS"]))

# No sweeplab module under two names: each file loaded once, every name under sweeplab.
root = os.environ["SWEEPLAB_ROOT"] + "/"
by_file = {}
for name, module in list(sys.modules.items()):
    path = getattr(module, "__file__", None)
    if path and path.startswith(root):
        by_file.setdefault(path, []).append(name)

# The control: Ray's workers do run in this folder, so the bare name `trainer` there is the
# user's file (imported by name so that nothing reads as a bare sweeplab import).
@ray.remote
def bare_import():
    import importlib
    return importlib.import_module("trainer").__file__

print(json.dumps({
    "done": summary.counts["complete"] + summary.counts["pruned"],
    "states": sorted(set(trials["state"])),
    "marks_after_run": marks_after_run,
    "twice": {f: n for f, n in by_file.items() if len(n) > 1},
    "not_sweeplab": sorted(n for ns in by_file.values() for n in ns if not n.startswith("sweeplab")),
    "bare_in_worker": ray.get(bare_import.remote()),
}))
"""


@pytest.mark.slow  # a real study through Ray Tune (~30 s)
def test_a_users_own_trainer_studies_searchspace_and_analysis_change_nothing(
    tmp_path: Path,
) -> None:
    project, marks = tmp_path / "project", tmp_path / "marks"
    (project / "analysis").mkdir(parents=True)
    marks.mkdir()
    for name in ("trainer", "studies", "searchspace"):
        (project / f"{name}.py").write_text(USER_MODULE.format(name=name), encoding="utf-8")
    (project / "analysis" / "__init__.py").write_text(
        USER_MODULE.format(name="analysis"), encoding="utf-8"
    )
    (project / "study.toml").write_text(
        textwrap.dedent(
            f"""
            [study]
            name = "shadowed"
            storage = "sqlite:///{tmp_path / "study.db"}"
            [model]
            hidden = [16]
            [budget]
            n_trials = 3
            max_epochs = 2
            [search]
            sampler = "random"
            scheduler = "none"
            [space.lr]
            type = "float"
            low = 1e-3
            high = 1e-1
            log = true
            """
        ),
        encoding="utf-8",
    )
    env = {**os.environ, "SHADOW_MARKS": str(marks), "SWEEPLAB_ROOT": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", DRIVER], cwd=project, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["done"] == 3 and seen["states"] == ["COMPLETE"]
    assert seen["marks_after_run"] == [], "a user's module was imported by the driver or a worker"
    assert seen["twice"] == {} and seen["not_sweeplab"] == []
    # The hazard is real: a bare name in a worker is the user's file.
    assert seen["bare_in_worker"] == str(project / "trainer.py")

    # The command line, from the same folder, reads the study back and imports no user module.
    before = sorted(os.listdir(marks))
    status = subprocess.run(
        [sys.executable, "-m", "sweeplab.studies.cli", "status", "shadowed", "--storage",
         f"sqlite:///{tmp_path / 'study.db'}"],
        cwd=project, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert "3 trials" in status.stdout
    assert sorted(os.listdir(marks)) == before
