"""Reserving a slot of a study's budget, one driver at a time, across processes and machines.

Several drivers may run one study against one database (``sweeplab run`` on each machine).
Each counts the study's trials in the database before it starts one, but two drivers that
count at the same moment both see a free slot, and the study would end with up to
``concurrency`` trials more than its budget. So the count and the start are one critical
section, guarded by a lock the database's users share (:func:`budget_lock`):

- SQLite: an exclusive ``flock`` on a file beside the database (``<db>.sweeplab-lock``).
  SQLite is one machine's database, so a file lock reaches every driver; a crashed driver's
  lock is released by the kernel.
- PostgreSQL: a transaction-level advisory lock keyed by the study name
  (``pg_advisory_xact_lock``); a driver whose connection drops releases it.
- MySQL: ``GET_LOCK`` on the study name.

Inside the section a driver counts COMPLETE + PRUNED + RUNNING trials and starts a new one
(``study.ask()``, then stamps it with its identity) only if that sum is below ``n_trials``.
A RUNNING trial of a driver that died still holds its slot until some driver recovers it
(recovery: its driver process is gone, or its heartbeat is older than the
grace period); a driver that finds the budget spoken for runs that recovery, so the slot is
freed and its parameters are queued to run again. Hence the study ends with exactly
``n_trials`` finished trials: no driver ever starts a trial that could take it over budget,
and every slot a trial gives up (failed, interrupted) is filled again.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path

import optuna
import sqlalchemy

from sweeplab.studies.storage._optuna import engine_of, storage_of

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX: one driver per SQLite file
    fcntl = None  # type: ignore[assignment]

LOCK_SUFFIX = ".sweeplab-lock"
_LOCK_TIMEOUT_S = 120


def _key(study_name: str) -> int:
    """A stable signed 64-bit key for the study (PostgreSQL advisory locks take a bigint)."""
    digest = hashlib.blake2b(f"sweeplab:{study_name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_path(storage: optuna.storages.BaseStorage) -> Path | None:
    """The lock file of a SQLite study database; ``None`` for servers and in-memory SQLite."""
    engine = engine_of(storage)
    if engine is None or engine.dialect.name != "sqlite":
        return None
    database = engine.url.database or ""
    if not database or database == ":memory:":
        return None
    db = Path(database).expanduser().resolve()
    return db.with_name(db.name + LOCK_SUFFIX)


@contextlib.contextmanager
def budget_lock(study: optuna.Study) -> Iterator[None]:
    """Hold the study's budget lock (see the module docstring) for the ``with`` block."""
    storage, study_name = storage_of(study), study.study_name
    engine = engine_of(storage)
    dialect = engine.dialect.name if engine is not None else None
    if dialect == "sqlite":
        path = lock_path(storage)
        if path is None or fcntl is None:
            yield  # in-memory SQLite: one process, Tune calls the searcher from one thread
            return
        with open(path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    if dialect == "postgresql":
        with engine.begin() as conn:  # the lock ends with this transaction
            conn.execute(
                sqlalchemy.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _key(study_name)}
            )
            yield
        return
    if dialect in ("mysql", "mariadb"):
        name = f"sweeplab:{_key(study_name)}"
        with engine.connect() as conn:
            conn.execute(
                sqlalchemy.text("SELECT GET_LOCK(:name, :timeout)"),
                {"name": name, "timeout": _LOCK_TIMEOUT_S},
            )
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text("SELECT RELEASE_LOCK(:name)"), {"name": name})
        return
    yield  # pragma: no cover - other storages: no cross-driver guard
