"""The live view of a running study: a progress bar with an ETA, counts, best so far, and the
trials in flight.

On a terminal it is a rich live table redrawn four times a second, so its clocks tick while a
long first epoch runs; in a log (CI, a pipe) it is one line per finished trial, and a status line
when nothing else was printed for a minute, so progress stays readable without control
characters. Its clock is the run's own: the summary gives the same duration.

The ETA: the epochs still to train (trials not started times the epochs a trial is expected to
get, :func:`~sweeplab.studies.asha.expected_epochs` until finished trials give their own
average, plus what the running ones still lack) over the epochs per second seen so far.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ray.tune import Callback
from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from sweeplab.studies._clock import format_duration

#: In a log, a status line after this long without any line.
LOG_HEARTBEAT_S = 60.0
#: Finished trials of this run before their average epochs replace ASHA's expectation.
_OBSERVED_AFTER = 3


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
        expected_epochs: float,
        rungs: tuple[int, ...] = (),
        max_epochs: int | None = None,
        started: float | None = None,
    ) -> None:
        self.searcher = searcher
        self.console = console
        self.n_trials = n_trials
        self.objective = objective
        self.maximize = maximize
        self.counts = {"complete": 0, "pruned": 0, "fail": 0, **already}
        self.running: dict[int, dict[str, Any]] = {}
        self.best: tuple[float, int] | None = None
        # The run's clock (time.monotonic() when it began), so the summary's duration is this one.
        self.started = time.monotonic() if started is None else started
        self.expected_epochs = expected_epochs
        # A running trial goes on at least to its next rung (the last: max_epochs).
        self.stops = tuple(sorted(set(rungs) | ({max_epochs} if max_epochs else set())))
        self.first_start: float | None = None  # when this run's first trial started
        self.epochs_seen = 0  # epochs reported by this run's trials
        self.finished_epochs: list[int] = []  # epochs of each trial this run finished
        self._last_line = time.monotonic()
        self._lock = threading.Lock()  # rich refreshes from its own thread
        self._live: Live | None = None
        if console.is_terminal:
            self._live = Live(
                console=console,
                refresh_per_second=4,
                transient=False,
                get_renderable=self._render,  # re-rendered on every refresh: clocks tick
            )
            self._live.start()

    def __getstate__(self) -> dict:
        return {}  # Tune pickles its callbacks for its own restore; a live view has nothing to keep

    def __setstate__(self, state: dict) -> None:
        self._live = None

    # Ray Tune calls this once per step of its event loop.
    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        self.drain()
        if self._live is None and time.monotonic() - self._last_line > LOG_HEARTBEAT_S:
            self._print(f"[{self._header()}]")

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.drain()
        self.stop()

    def drain(self) -> None:
        events, self.searcher.events = self.searcher.events, []
        with self._lock:
            self._apply(events)
        if self._live is not None and events:
            self._live.refresh()

    def _apply(self, events: list[tuple[str, int, dict]]) -> None:
        now = time.monotonic()
        for kind, number, info in events:
            if kind == "start":
                self.running[number] = {"epoch": 0, "value": None, "params": info, "since": now}
                self.first_start = self.first_start or now
            elif kind == "epoch":
                row = self.running.setdefault(number, {"params": {}, "since": now})
                self.epochs_seen += max(0, info["epoch"] - row.get("epoch", 0))
                row.update(epoch=info["epoch"], value=info["value"])
            else:
                row = self.running.pop(number, None)
                if row is not None and kind in ("complete", "pruned"):
                    self.finished_epochs.append(int(info.get("epochs_run") or row["epoch"]))
                self.counts[kind] = self.counts.get(kind, 0) + 1
                value = info.get("value")
                improves = self.best is None or (
                    value is not None and (value > self.best[0]) == self.maximize
                )
                if kind == "complete" and value is not None and improves:
                    self.best = (value, number)
                if self._live is None:
                    self._print(self._line(kind, number, info))

    def _print(self, line: str) -> None:
        self.console.print(line, highlight=False)
        self._last_line = time.monotonic()

    def stop(self) -> None:
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
            self._live = None

    # --- the estimate ----------------------------------------------------------------------------
    def eta_s(self, now: float | None = None) -> float | None:
        """Seconds until the budget is met at the pace seen so far; ``None`` before any epoch."""
        now = time.monotonic() if now is None else now
        if not self.epochs_seen or self.first_start is None or now <= self.first_start:
            return None
        per_trial = self.expected_epochs
        if len(self.finished_epochs) >= _OBSERVED_AFTER:
            # The first to finish are the ones stopped early: never below the expectation.
            per_trial = max(per_trial, sum(self.finished_epochs) / len(self.finished_epochs))
        done = self.counts["complete"] + self.counts["pruned"]
        waiting = max(0, self.n_trials - done - len(self.running))
        lacking = sum(
            self._lacking(row.get("epoch", 0), per_trial) for row in self.running.values()
        )
        rate = self.epochs_seen / (now - self.first_start)
        return (waiting * per_trial + lacking) / rate

    # --- rendering -------------------------------------------------------------------------------
    def _lacking(self, epoch: int, per_trial: float) -> float:
        """The epochs a running trial at ``epoch`` is still expected to train."""
        next_stop = next((s for s in self.stops if s > epoch), epoch)
        return max(per_trial - epoch, next_stop - epoch, 0.0)

    def _header(self) -> Text:
        done = self.counts["complete"] + self.counts["pruned"]
        best = (
            f"best {self.objective} {self.best[0]:.4f} (trial {self.best[1]})"
            if self.best
            else "no result yet"
        )
        now = time.monotonic()
        eta = self.eta_s(now)
        clock = f"{format_duration(now - self.started)} elapsed"
        if done < self.n_trials:
            clock += ", ETA " + ("estimating" if eta is None else f"~{format_duration(eta)}")
        return Text(
            f"{done}/{self.n_trials} trials done: {self.counts['complete']} complete, "
            f"{self.counts['pruned']} pruned, {self.counts['fail']} failed; "
            f"{len(self.running)} running; {best}; {clock}"
        )

    def _render(self) -> Group:
        with self._lock:
            done = self.counts["complete"] + self.counts["pruned"]
            now = time.monotonic()
            bar = ProgressBar(
                total=max(self.n_trials, 1), completed=min(done, self.n_trials), width=30
            )
            line = Table.grid(padding=(0, 1))  # the bar, then the counts and clocks beside it
            line.add_row(bar, self._header())
            table = Table(title=None, expand=False, show_edge=False)
            for column in ("trial", "epoch", "for", self.objective, "parameters"):
                table.add_column(column)
            for number, row in sorted(self.running.items()):
                value = row.get("value")
                table.add_row(
                    str(number),
                    str(row.get("epoch", 0)),
                    format_duration(now - row.get("since", now)),
                    "" if value is None else f"{value:.4f}",
                    _short_params(row.get("params", {})),
                )
            parts = [line] + ([table] if self.running else [])
        return Group(*parts)

    def _line(self, kind: str, number: int, info: dict[str, Any]) -> str:
        value = info.get("value")
        if kind == "complete" and info.get("values"):  # several objectives: all of them
            what = "complete  " + " ".join(f"{k}={v:.4g}" for k, v in info["values"].items())
        elif kind == "complete":
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
