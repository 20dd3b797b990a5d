"""The live progress view: a bar with an ETA, clocks that tick, one duration for the run."""

from __future__ import annotations

import doctest
import io
import time

import pytest
from rich.console import Console

from sweeplab.studies import _clock, asha
from sweeplab.studies._tune.progress import LOG_HEARTBEAT_S, ProgressView


class _Searcher:
    def __init__(self) -> None:
        self.events: list[tuple[str, int, dict]] = []


def _view(terminal: bool, **kwargs) -> tuple[ProgressView, _Searcher, io.StringIO]:
    out = io.StringIO()
    console = Console(file=out, force_terminal=terminal, width=140, color_system=None)
    searcher = _Searcher()
    view = ProgressView(
        searcher, console=console, n_trials=10, objective="val_acc", maximize=True,
        already={}, expected_epochs=asha.expected_epochs(2, 3, 18), **kwargs,
    )  # fmt: skip
    return view, searcher, out


def test_the_eta_is_the_epochs_left_over_the_pace_seen() -> None:
    view, searcher, _ = _view(terminal=False)
    assert view.eta_s() is None, "no estimate before the first epoch"
    searcher.events += [("start", 0, {"lr": 0.1}), ("start", 1, {"lr": 0.01})]
    searcher.events += [("epoch", 0, {"epoch": 1, "value": 0.5})]
    searcher.events += [("epoch", 0, {"epoch": 2, "value": 0.6})]
    searcher.events += [("epoch", 1, {"epoch": 1, "value": 0.4})]
    view.drain()
    now = view.first_start + 3.0  # 3 epochs in 3 s: 1 epoch/s
    per_trial = 2 + 4 / 3 + 12 / 9  # ASHA's expectation for grace 2, eta 3, 18 epochs
    lacking = (per_trial - 2) + (per_trial - 1)
    assert view.eta_s(now) == pytest.approx(8 * per_trial + lacking)
    # Once 3 trials of this run have finished, their own average replaces the expectation when
    # it is larger (the first to finish are those stopped early).
    for number, epochs in ((2, 18), (3, 18), (4, 6)):
        searcher.events += [
            ("start", number, {}),
            ("complete", number, {"epochs_run": epochs, "value": 0.9}),
        ]
    view.drain()
    waiting = 10 - 3 - 2
    lacking = (14 - 2) + (14 - 1)
    assert view.eta_s(now) == pytest.approx(waiting * 14 + lacking)


def test_a_running_trial_is_expected_to_reach_at_least_its_next_rung() -> None:
    view, searcher, _ = _view(terminal=False, rungs=(2, 6, 18), max_epochs=18)
    searcher.events += [("start", 0, {}), ("epoch", 0, {"epoch": 7, "value": 0.9})]
    view.drain()
    now = view.first_start + 7.0  # 1 epoch/s
    per_trial = 2 + 4 / 3 + 12 / 9
    assert view.eta_s(now) == pytest.approx(9 * per_trial + (18 - 7))


def test_on_a_terminal_the_clocks_tick_while_a_first_epoch_runs() -> None:
    view, searcher, _ = _view(terminal=True)
    try:
        searcher.events.append(("start", 7, {"lr": 0.1}))
        view.drain()
        width = Console(file=io.StringIO(), width=140, color_system=None)

        def shown() -> str:
            with width.capture() as captured:
                width.print(view._render())
            return captured.get()

        first = shown()
        time.sleep(1.2)
        later = shown()
        assert first != later, "a frame later the trial's clock has moved"
        assert "0/10 trials done" in later and "ETA estimating" in later
        assert "━" in later, "the progress bar is drawn"
        assert "1s" in later.splitlines()[-1], later
    finally:
        view.stop()


def test_in_a_log_a_quiet_minute_gets_a_status_line() -> None:
    view, _, out = _view(terminal=False)
    view.on_step_end(0, [])
    assert out.getvalue() == ""
    view._last_line -= LOG_HEARTBEAT_S + 1
    view.on_step_end(1, [])
    assert "0/10 trials done" in out.getvalue() and "elapsed, ETA" in out.getvalue()


def test_the_view_keeps_the_runs_clock() -> None:
    began = time.monotonic() - 65
    view, _, _ = _view(terminal=False, started=began)
    assert "1m 05s elapsed" in str(view._header()) or "1m 06s elapsed" in str(view._header())


def test_module_examples_run() -> None:
    for module in (_clock, asha):
        assert doctest.testmod(module).failed == 0
