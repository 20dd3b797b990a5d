"""Opening the study database: an Optuna RDB storage, tuned for several writers.

SQLite gets WAL journaling (readers never block the writer) and a long busy timeout, so
concurrent drivers, reports and ``optuna-dashboard`` wait their turn instead of failing with
"database is locked". Every URL or message shown to a person goes through :func:`mask_secrets`.
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

from sweeplab.studies.errors import StorageError, StudyNotFound
from sweeplab.studies.storage._optuna import backend_of

# Heartbeats let a later driver tell a trial that is still running elsewhere from one whose
# driver died: a RUNNING trial whose heartbeat is older than the grace period is stale.
HEARTBEAT_INTERVAL_S = 10
HEARTBEAT_GRACE_S = 60
_SQLITE_BUSY_TIMEOUT_S = 60
_SCHEMA_RACE_RETRIES = 5
_SCHEMA_RACE_SIGNS = ("already exists", "UNIQUE constraint failed", "duplicate key")

# ``scheme://user:SECRET@host`` (SQLAlchemy URLs, also inside error messages and reports; a
# secret may hold ``/`` or ``@``, so it runs to the last ``@`` of the word), the same without a
# scheme (a URL mistyped as ``user:SECRET@host``), and ``?password=...`` query arguments. The
# user name stays readable; only the secret goes.
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)[^\s'\"]+@")
_BARE_PASSWORD = re.compile(r"(?:^|(?<=[\s'\"(]))(?P<head>[^\s:/@'\"]+:)(?!//)[^\s'\"]+@")
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&](?:password|passwd|pwd)=)[^&\s#'\"]+", re.I)
MASK = "***"


def mask_secrets(text: str) -> str:
    """Replace every password of a database URL inside ``text`` with ``***``.

    Args:
        text: a storage URL, an error message, a whole report.

    Example:
        >>> mask_secrets("postgresql+psycopg://user:hunter2@db:5432/sweeps")
        'postgresql+psycopg://user:***@db:5432/sweeps'
        >>> mask_secrets("x://a:b@c and postgresql://h/d?user=u&password=pw")
        'x://a:***@c and postgresql://h/d?user=u&password=***'
    """
    for pattern in (_URL_PASSWORD, _BARE_PASSWORD):
        text = pattern.sub(lambda m: f"{m['head']}{MASK}@", text)
    return _QUERY_PASSWORD.sub(lambda m: f"{m['head']}{MASK}", text)


def storage_url(storage: str | optuna.storages.BaseStorage) -> str | None:
    """The database URL of a storage, password included (never show it: see
    :func:`describe_storage`); ``None`` for a storage without one (in memory)."""
    if isinstance(storage, str):
        return storage
    url = getattr(backend_of(storage), "url", None)
    return url if isinstance(url, str) else None


def absolute_url(url: str) -> str:
    """A SQLite URL with an absolute path (Ray workers run in their own working directory);
    other URLs as they are.

    Example:
        >>> absolute_url("sqlite:///runs/a.db").startswith("sqlite:////")
        True
        >>> absolute_url("postgresql://u@h/d")
        'postgresql://u@h/d'
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return url
    path = Path(parsed.database).expanduser().resolve()
    return parsed.set(database=str(path)).render_as_string(hide_password=False)


def describe_storage(storage: str | optuna.storages.BaseStorage) -> str:
    """A password-free name of a storage: its URL where it has one, else its class.

    Example:
        >>> describe_storage("postgresql://me:pw@db.local/sweeps")
        'postgresql://me:***@db.local/sweeps'
        >>> describe_storage(optuna.storages.InMemoryStorage())
        'InMemoryStorage'
    """
    url = storage_url(storage)
    return type(storage).__name__ if url is None else mask_secrets(url)


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
            f"storage URL {mask_secrets(url)!r} is not a database URL; expected e.g. "
            "'sqlite:///sweeplab.db' or 'postgresql+psycopg://user:password@host/dbname'"
        ) from e
    engine_kwargs: dict = {}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            if not create and not Path(database).expanduser().exists():
                raise StorageError(
                    f"no study database at {mask_secrets(url)} "
                    f"(looked for {Path(database).expanduser().resolve()})"
                )
            try:
                Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StorageError(f"cannot create the folder of {mask_secrets(url)}: {e}") from e
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
            raise StorageError(
                f"cannot open the study database {mask_secrets(url)}: {mask_secrets(reason)}"
            ) from e
    if parsed.get_backend_name() == "sqlite" and (parsed.database or ":memory:") != ":memory:":
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


def load_study(storage: str | optuna.storages.BaseStorage, name: str) -> optuna.Study:
    """Load an existing study; never create a database or a study as a side effect.

    Args:
        storage: a database URL (opened with ``create=False``) or an opened storage.
        name: the study's name in it.

    Raises:
        StorageError: a URL that cannot be opened, or a SQLite file that does not exist.
        StudyNotFound: no study of that name; the message lists the ones the storage holds.

    Example:
        >>> s = optuna.storages.InMemoryStorage()
        >>> _ = optuna.create_study(storage=s, study_name="demo")
        >>> load_study(s, "demo").study_name
        'demo'
        >>> load_study(s, "dmeo")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        sweeplab.studies.errors.StudyNotFound: no study named 'dmeo' in ... (studies there: demo)
    """
    if isinstance(storage, str):
        storage = open_storage(storage, create=False)
    names = study_names(storage)
    if name not in names:
        listing = ", ".join(names) if names else "none"
        raise StudyNotFound(
            f"no study named {name!r} in {describe_storage(storage)} (studies there: {listing})"
        )
    return optuna.load_study(study_name=name, storage=storage)
