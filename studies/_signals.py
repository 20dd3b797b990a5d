"""A clean stop on Ctrl-C (SIGINT) and SIGTERM while trials run.

The first signal asks the run to stop: no trial is started any more, Ray Tune ends its loop and
stops the running trials, and the driver requeues them (FAIL, ``interrupted``, their parameters
and seed queued again), so ``sweeplab resume`` continues exactly where the run stopped. A second
signal stops at once (``KeyboardInterrupt``); the trials still RUNNING are then recovered by the
next run, as after a crash.

SIGTERM gets the same treatment as SIGINT: a scheduler's or ``kill``'s polite stop must not end in
Ray's crash dumps.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

#: How a run's ``stop_reason`` starts when a signal stopped it; the signal's name follows.
INTERRUPTED_BY = "interrupted by "

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class Interruption:
    """The signal that asked the run to stop (``None``: none did)."""

    signal: str | None = None


def interrupted_by(stop_reason: str | None) -> str | None:
    """The signal's name when ``stop_reason`` says a signal stopped the run, else ``None``.

    Example:
        >>> interrupted_by("interrupted by SIGTERM"), interrupted_by("time limit reached")
        ('SIGTERM', None)
    """
    if stop_reason and stop_reason.startswith(INTERRUPTED_BY):
        return stop_reason[len(INTERRUPTED_BY) :].split()[0]
    return None


@contextmanager
def stop_on_signals(on_first: Callable[[str], None]) -> Iterator[Interruption]:
    """SIGINT and SIGTERM call ``on_first(name)`` once for the block; a second one raises
    ``KeyboardInterrupt``. The previous handlers come back at the end.

    Outside the main thread Python cannot take signals: the block runs with the handlers it has.
    """
    state = Interruption()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum: int, frame: object) -> None:
        if state.signal is not None:
            raise KeyboardInterrupt  # asked twice: stop now
        state.signal = signal.Signals(signum).name
        on_first(state.signal)

    previous = {s: signal.getsignal(s) for s in _SIGNALS}
    for s in _SIGNALS:
        signal.signal(s, handler)
    try:
        yield state
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def end_tune_run() -> None:
    """Ask the Ray Tune run in progress to end its loop and stop its trials.

    Tune installs a SIGUSR1 handler for each run (Ray 2.x ``tune.tune._setup_signal_catching``,
    always, unlike its SIGINT one) that does exactly this; calling it ends the run the way Tune's
    own Ctrl-C does, trials stopped and actors cleaned up, also on a cluster sweeplab only
    attached to. ``tests/test_faults.py`` pins the behaviour.
    """
    if not hasattr(signal, "SIGUSR1"):
        return
    handler = signal.getsignal(signal.SIGUSR1)
    if callable(handler):
        handler(signal.SIGUSR1, None)
