"""Start-up: how long the ``sweeplab`` commands that train nothing take, as whole processes.

Each command runs as a fresh process, the way a user types it, ``--runs`` times (after one
warm-up run that is not counted); the figure is the median wall time. The reference, measured in
the same run, is the bare interpreter (``python -c pass``) and the import of Optuna alone (what
any command that reads a study must pay): the ratios say how much of a command's time is
sweeplab's own.

- ``help``: ``sweeplab --help`` (imports no Optuna, Ray, torch or pandas);
- ``init``: ``sweeplab init quickstart -o FILE`` (validates nothing heavier than the spec);
- ``status``: ``sweeplab status`` of a 20-trial Optuna study in a fresh SQLite file (opens the
  database, reads the trials into a frame, prints the table).

Usage::

    python benchmarks/startup.py [--runs 7]

The last line is machine-readable ``key=value`` pairs, the headline figures first.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import format_pairs, machine


def timed(argv: list[str], runs: int) -> float:
    """Median wall seconds of ``argv`` as a fresh process, after one uncounted warm-up."""
    times = []
    for i in range(runs + 1):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def make_study(path: Path) -> str:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{path}"
    study = optuna.create_study(study_name="startup", storage=url, direction="maximize")
    for _ in range(20):
        trial = study.ask()
        x = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        trial.report(x, step=1)
        study.tell(trial, x)
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per command (median)")
    args = parser.parse_args()
    print(f"start-up of sweeplab's commands, {args.runs} runs each (about 30 s)", flush=True)
    print(machine(), flush=True)
    cli = [sys.executable, "-m", "sweeplab.studies.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        url = make_study(Path(tmp) / "study.db")
        figures = {
            "python": timed([sys.executable, "-c", "pass"], args.runs),
            "import_optuna": timed([sys.executable, "-c", "import optuna"], args.runs),
            "help": timed([*cli, "--help"], args.runs),
            "init": timed(
                [*cli, "init", "quickstart", "-o", f"{tmp}/s.toml", "--force"], args.runs
            ),
            "status": timed([*cli, "status", "startup", "--storage", url], args.runs),
        }
    for name, seconds in figures.items():
        print(f"{name:>14}: {seconds:.3f} s")
    print(
        f"status / import optuna: {figures['status'] / figures['import_optuna']:.2f}x; "
        f"help / bare python: {figures['help'] / figures['python']:.2f}x"
    )
    print(
        format_pairs(
            {
                "help_s": figures["help"],
                "status_s": figures["status"],
                "init_s": figures["init"],
                "status_vs_import_optuna": figures["status"] / figures["import_optuna"],
                "help_vs_python": figures["help"] / figures["python"],
                "python_s": figures["python"],
                "import_optuna_s": figures["import_optuna"],
            }
        )
    )


if __name__ == "__main__":
    main()
