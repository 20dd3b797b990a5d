"""The trials this driver runs, kept alive in the database by a heartbeat thread.

Trials run under Ray are driven by ask/tell, which Optuna's own heartbeat thread does not cover,
so the driver beats for them itself: a trial's heartbeat tells any later driver (or recovery on
another machine) that its driver is alive. A trial is registered when the searcher hands it to
Ray and removed when it is told; the beat thread reads the registry under a lock, since Ray Tune
calls the searcher from its own event loop.
"""

from __future__ import annotations

import contextlib
import threading

import optuna

from sweeplab.studies import storage


class LiveTrials:
    """A registry of running trials, by Ray key, with a daemon thread that beats for them.

    Args:
        study: the study the trials belong to.
        interval_s: seconds between heartbeats.
    """

    def __init__(self, study: optuna.Study, interval_s: float) -> None:
        self.study = study
        self.interval_s = interval_s
        self._trials: dict[str, optuna.Trial] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="sweeplab-heartbeat", daemon=True)
        self._thread.start()

    def add(self, key: str, trial: optuna.Trial) -> None:
        with self._lock:
            self._trials[key] = trial

    def get(self, key: str) -> optuna.Trial | None:
        return self._trials.get(key)

    def pop(self, key: str) -> optuna.Trial | None:
        with self._lock:
            return self._trials.pop(key, None)

    def keys_with_prefix(self, prefix: str) -> list[str]:
        with self._lock:
            return [key for key in self._trials if key.startswith(prefix)]

    def close(self) -> list[optuna.Trial]:
        """Stop beating and return the trials still registered (they never finished)."""
        self._stop.set()
        with self._lock:
            left, self._trials = list(self._trials.values()), {}
        return left

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            with self._lock:
                live = list(self._trials.values())
            for trial in live:
                with contextlib.suppress(Exception):  # a missed beat is retried next interval
                    storage.record_heartbeat(self.study, trial)
