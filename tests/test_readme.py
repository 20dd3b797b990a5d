"""The README's Python API example runs as written, in a fresh folder."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_block(section: str, containing: str = "") -> str:
    text = README.read_text(encoding="utf-8")
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    blocks = [b for b in re.findall(r"```python\n(.*?)```", body, flags=re.S) if containing in b]
    assert blocks, f"no python block under ## {section}"
    return blocks[0]


@pytest.mark.slow  # a real 6-trial study through Ray Tune (~20 s)
def test_the_python_api_example_runs_as_written(tmp_path: Path) -> None:
    code = _python_block("Python API")
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "'complete'" in done.stdout and "test_acc" in done.stdout
    assert (tmp_path / "api-demo-report" / "report.html").exists()
    assert (tmp_path / "sweeplab.db").exists()


@pytest.mark.slow  # a real 8-trial study through Ray Tune (~15 s)
def test_the_own_code_example_runs_as_written(tmp_path: Path) -> None:
    code = _python_block("Your own model, data and training code", containing="spec_from_dict")
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "'test_score'" in done.stdout and "A new study created" not in done.stderr
