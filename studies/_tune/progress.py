"""The live view of a running study: counts, best so far, and the trials in flight.

On a terminal it is a rich live table redrawn as results arrive; in a log (CI, a pipe) it is
one line per finished trial, so progress stays readable without control characters.
"""

from __future__ import annotations

import time
from typing import Any

from ray.tune import Callback
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text


class ProgressView(Callback):
    """A Ray Tune callback that drains the searcher's events into a rich display."""

    def __init__(
        self,
        searcher: Any,
        *,
        console: Console,
        n_trials: int,
        objective: str,
        maximize: bool,
        already: dict[str, int],
    ) -> None:
        self.searcher = searcher
        self.console = console
        self.n_trials = n_trials
        self.objective = objective
        self.maximize = maximize
        self.counts = {"complete": 0, "pruned": 0, "fail": 0, **already}
        self.running: dict[int, dict[str, Any]] = {}
        self.best: tuple[float, int] | None = None
        self.started = time.monotonic()
        self._live: Live | None = None
        if console.is_terminal:
            self._live = Live(
                self._render(), console=console, refresh_per_second=4, transient=False
            )
            self._live.start()

    def __getstate__(self) -> dict:
        return {}  # Tune pickles its callbacks for its own restore; a live view has nothing to keep

    def __setstate__(self, state: dict) -> None:
        self._live = None

    # Ray Tune calls this once per step of its event loop.
    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        self.drain()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.drain()
        self.stop()

    def drain(self) -> None:
        events, self.searcher.events = self.searcher.events, []
        for kind, number, info in events:
            if kind == "start":
                self.running[number] = {"epoch": 0, "value": None, "params": info}
            elif kind == "epoch":
                self.running.setdefault(number, {"params": {}})
                self.running[number].update(epoch=info["epoch"], value=info["value"])
            else:
                self.running.pop(number, None)
                self.counts[kind] = self.counts.get(kind, 0) + 1
                value = info.get("value")
                improves = self.best is None or (
                    value is not None and (value > self.best[0]) == self.maximize
                )
                if kind == "complete" and value is not None and improves:
                    self.best = (value, number)
                if self._live is None:
                    self.console.print(self._line(kind, number, info), highlight=False)
        if self._live is not None and events:
            self._live.update(self._render())

    def stop(self) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.stop()
            self._live = None

    # --- rendering -------------------------------------------------------------------------------
    def _header(self) -> Text:
        done = self.counts["complete"] + self.counts["pruned"]
        best = (
            f"best {self.objective} {self.best[0]:.4f} (trial {self.best[1]})"
            if self.best
            else "no result yet"
        )
        elapsed = time.monotonic() - self.started
        return Text(
            f"{done}/{self.n_trials} trials done: {self.counts['complete']} complete, "
            f"{self.counts['pruned']} pruned, {self.counts['fail']} failed; "
            f"{len(self.running)} running; {best}; {elapsed:.0f}s"
        )

    def _render(self) -> Group:
        table = Table(title=None, expand=False, show_edge=False)
        for column in ("trial", "epoch", self.objective, "parameters"):
            table.add_column(column)
        for number, row in sorted(self.running.items()):
            value = row.get("value")
            table.add_row(
                str(number),
                str(row.get("epoch", 0)),
                "" if value is None else f"{value:.4f}",
                _short_params(row.get("params", {})),
            )
        return Group(self._header(), table) if self.running else Group(self._header())

    def _line(self, kind: str, number: int, info: dict[str, Any]) -> str:
        value = info.get("value")
        if kind == "complete":
            what = f"complete  {self.objective}={value:.4f}"
        elif kind == "pruned":
            curve = info.get(self.objective) or []
            last = (
                f" (last {self.objective}={curve[-1]:.4f})"
                if curve and curve[-1] is not None
                else ""
            )
            what = f"pruned at epoch {info.get('epochs_run', '?')}{last}"
        else:
            what = f"failed: {info.get('error', '')}"
        return f"trial {number:>4}  {what}   [{self._header()}]"


def _short_params(params: dict[str, Any]) -> str:
    parts = []
    for key, value in params.items():
        if isinstance(value, float):
            value = f"{value:.3g}"
        elif isinstance(value, list):
            value = "+".join(value) or "none"
        parts.append(f"{key}={value}")
    return " ".join(parts)
