"""The README's examples run as written, in a fresh folder: the five-minute tour, the Python API
and the own-code example."""

from __future__ import annotations

import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
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


def _tour_lines() -> list[str]:
    text = README.read_text(encoding="utf-8")
    body = text.split("\n## A five-minute tour\n", 1)[1].split("\n## ", 1)[0]
    block = re.findall(r"```bash\n(.*?)```", body, flags=re.S)[0]
    return [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]


@pytest.mark.slow  # the quickstart's 20 trials through Ray Tune, then its report (~1 min)
def test_the_five_minute_tour_runs_as_written_top_to_bottom(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    lines = _tour_lines()
    assert lines[0].startswith("sweeplab presets") and lines[-1].startswith("optuna-dashboard")
    for line in lines[:-1]:
        argv = shlex.split(line)
        done = subprocess.run(
            [str(bin_dir / argv[0]), *argv[1:]], cwd=tmp_path, capture_output=True, text=True,
            timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, f"{line}: {done.stderr[-2000:]}"
    assert (tmp_path / "trials.csv").read_text().count("\n") == 21  # header + 20 trials
    assert (tmp_path / "report" / "report.html").exists()
    # The dashboard (the dashboard extra) serves the same database.
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 8080)) == 0:
            pytest.skip("port 8080 is taken: the dashboard line cannot be tried here")
    argv = shlex.split(lines[-1])
    server = subprocess.Popen(
        [str(bin_dir / argv[0]), *argv[1:]], cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen("http://127.0.0.1:8080/api/studies", timeout=5) as r:
                    assert "study" in r.read().decode()
                    break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(timeout=30)
