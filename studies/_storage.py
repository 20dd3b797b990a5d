"""Opening the study database: an Optuna RDB storage, tuned for several writers.

SQLite gets WAL journaling (readers never block the writer) and a long busy timeout, so
concurrent drivers, reports and ``optuna-dashboard`` wait their turn instead of failing with
"database is locked". Every URL shown to a person goes through :func:`mask_url`.
"""

from __future__ import annotations

import re
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from sqlalchemy.engine import make_url

from sweeplab.studies._errors import StorageError, StudyNotFound

# Heartbeats let a later driver tell a trial that is still running elsewhere from one whose
# driver died: a RUNNING trial whose heartbeat is older than the grace period is stale.
HEARTBEAT_INTERVAL_S = 10
HEARTBEAT_GRACE_S = 60
_SQLITE_BUSY_TIMEOUT_S = 60
_SCHEMA_RACE_RETRIES = 5
_SCHEMA_RACE_SIGNS = ("already exists", "UNIQUE constraint failed", "duplicate key")


def mask_url(url: str) -> str:
    """Hide the password of a database URL: ``postgresql://u:secret@h/db`` -> ``u:***@h``.

    Strings SQLAlchemy cannot parse are masked too: anything between the user name's ``:``
    and the last ``@``.
    """
    try:
        parsed = make_url(url)
    except Exception:
        return re.sub(r"^((?:[^:/@]*://)?[^:/@]*:)[^@]*@", r"\1***@", url)
    if parsed.password is None:
        return url
    return parsed.render_as_string(hide_password=True)


def open_storage(url: str, *, create: bool = True) -> optuna.storages.RDBStorage:
    """Open the Optuna RDB storage at ``url``, creating it unless ``create`` is false.

    Read-only commands pass ``create=False`` so that a mistyped SQLite path is reported
    instead of leaving an empty database behind.

    Example:
        >>> storage = open_storage("sqlite:///:memory:")
        >>> type(storage).__name__
        'RDBStorage'

    Raises:
        StorageError: a malformed URL, an unreachable server, refused credentials, or a
            SQLite path in a folder that cannot be created.
    """
    try:
        parsed = make_url(url)
    except sqlalchemy.exc.ArgumentError as e:
        raise StorageError(
            f"storage URL {mask_url(url)!r} is not a database URL; expected e.g. "
            "'sqlite:///sweeplab.db' or 'postgresql+psycopg://user:password@host/dbname'"
        ) from e
    engine_kwargs: dict = {}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            if not create and not Path(database).expanduser().exists():
                raise StorageError(
                    f"no study database at {mask_url(url)} "
                    f"(looked for {Path(database).expanduser().resolve()})"
                )
            try:
                Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StorageError(f"cannot create the folder of {mask_url(url)}: {e}") from e
        engine_kwargs = {"connect_args": {"timeout": _SQLITE_BUSY_TIMEOUT_S}}
    else:
        engine_kwargs = {"pool_pre_ping": True}
    for attempt in range(_SCHEMA_RACE_RETRIES + 1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=HEARTBEAT_INTERVAL_S,
                    grace_period=HEARTBEAT_GRACE_S,
                )
            break
        except (sqlalchemy.exc.SQLAlchemyError, ImportError, ModuleNotFoundError) as e:
            reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
            # Drivers started together on a new database both create its tables; the loser of
            # that race sees "table ... already exists" or a unique-constraint failure on the
            # schema version (PostgreSQL: a duplicate key) and finds the schema complete when it
            # tries again.
            racing = any(sign in reason for sign in _SCHEMA_RACE_SIGNS)
            if racing and attempt < _SCHEMA_RACE_RETRIES:
                time.sleep(0.2 * (attempt + 1))
                continue
            raise StorageError(f"cannot open the study database {mask_url(url)}: {reason}") from e
    if parsed.get_backend_name() == "sqlite":
        # synchronous=NORMAL is safe under WAL and avoids an fsync per commit, but it is a
        # setting of each connection: every connection the pool opens gets it (the heartbeat
        # thread's too), so the ones Optuna opened while creating the storage are closed first.
        sqlalchemy.event.listen(storage.engine, "connect", _sqlite_normal_sync)
        storage.engine.dispose()
        with storage.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")  # kept in the file
    return storage


def _sqlite_normal_sync(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    """Names of the studies in the storage, sorted."""
    return sorted(s.study_name for s in storage.get_all_studies())


def load_study(storage: optuna.storages.BaseStorage, name: str, url: str) -> optuna.Study:
    """Load an existing study, or say which ones exist.

    Raises:
        StudyNotFound: listing the studies the storage does hold.
    """
    names = study_names(storage)
    if name not in names:
        listing = ", ".join(names) if names else "none"
        raise StudyNotFound(
            f"no study named {name!r} in {mask_url(url)} (studies there: {listing})"
        )
    return optuna.load_study(study_name=name, storage=storage)
