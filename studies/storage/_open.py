"""Opening the study database: an Optuna RDB storage, tuned for several writers.

SQLite gets WAL journaling (readers never block the writer) and a long busy timeout, so
concurrent drivers, reports and ``optuna-dashboard`` wait their turn instead of failing with
"database is locked". Every URL or message shown to a person goes through :func:`mask_secrets`.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote

import optuna
import sqlalchemy
from sqlalchemy.engine import make_url

from sweeplab.studies.errors import DatabaseFault, StorageError, StudyNotFound
from sweeplab.studies.storage._optuna import backend_of, optuna_tables

# Heartbeats let a later driver tell a trial that is still running elsewhere from one whose
# driver died: a RUNNING trial whose heartbeat is older than the grace period is stale.
HEARTBEAT_INTERVAL_S = 10
HEARTBEAT_GRACE_S = 60
_SQLITE_BUSY_TIMEOUT_S = 60
_SCHEMA_RACE_RETRIES = 5
_WAL_RETRIES = 40  # about 40 s of waiting in all
_SCHEMA_RACE_SIGNS = ("already exists", "UNIQUE constraint failed", "duplicate key")
_DAMAGE_SIGNS = ("malformed", "not a database", "file is encrypted")

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


#: The tables every Optuna RDB storage has; a SQLite file without them is someone else's.
_OPTUNA_TABLES = frozenset({"studies", "trials", "version_info"})


def is_in_memory(url: str) -> bool:
    """Whether ``url`` is a SQLite database in memory (``sqlite://``, ``sqlite:///:memory:``),
    which lives in one process: Ray's workers cannot reach it.

    Example:
        >>> is_in_memory("sqlite://"), is_in_memory("sqlite:///study.db")
        (True, False)
    """
    try:
        parsed = make_url(url)
    except sqlalchemy.exc.ArgumentError:
        return False
    if parsed.get_backend_name() != "sqlite":
        return False
    database = parsed.database or ""
    return database in ("", ":memory:") or "mode=memory" in database


def _sqlite_tables(path: Path, url: str) -> set[str] | None:
    """The tables of an existing SQLite file, read without writing anything; ``None`` for an
    empty file (SQLite's new database).

    Raises:
        DatabaseFault: the file is not a SQLite database, or is damaged.
    """
    import sqlite3

    if path.stat().st_size == 0:
        return None
    for query in ("mode=ro", "immutable=1"):  # immutable: read-only media, no -shm possible
        try:
            with contextlib.closing(sqlite3.connect(f"file:{path}?{query}", uri=True)) as db:
                rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                return {name for (name,) in rows}
        except sqlite3.OperationalError as e:
            if query == "immutable=1" or "unable to open" not in str(e):
                raise StorageError(
                    f"cannot read the study database {mask_secrets(url)}: {e}"
                ) from e
        except sqlite3.DatabaseError as e:
            raise DatabaseFault(damaged_message(url, str(e))) from e
    return None  # unreachable: the loop returns or raises


def root_cause(error: BaseException) -> str:
    """The first line of the deepest cause of ``error``: the driver's own words ("database or
    disk is full"), not the wrapper's last line (Optuna's "invalid data in the commit").

    Example:
        >>> try:
        ...     try:
        ...         raise OSError("database or disk is full")
        ...     except OSError as inner:
        ...         raise RuntimeError("invalid data in the commit") from inner
        ... except RuntimeError as outer:
        ...     root_cause(outer)
        'database or disk is full'
    """
    deepest = _chain(error)[-1]
    text = str(deepest).strip()
    return text.splitlines()[0] if text else type(deepest).__name__


def damaged_message(url: str, cause: str) -> str:
    """What to say about a damaged (or foreign) SQLite file, and what to do."""
    return (
        f"the study database {mask_secrets(url)} is damaged ({cause}); restore it from a "
        "backup, or salvage its rows with `sqlite3 FILE .recover | sqlite3 NEW.db`"
    )


def open_storage(
    url: str, *, create: bool = True, read_only: bool = False
) -> optuna.storages.RDBStorage:
    """Open the Optuna RDB storage at ``url``, creating it unless ``create`` is false.

    Commands that write to an existing study pass ``create=False`` so that a mistyped SQLite
    path is reported instead of leaving an empty database behind; read-only commands also pass
    ``read_only``: a SQLite file is then opened read-only (``mode=ro``, or ``immutable`` on
    read-only media), no table is created and its journal mode stays as it is, so its bytes do
    not change. A SQLite file that holds other tables than Optuna's is refused either way,
    before anything is written to it.

    Example:
        >>> storage = open_storage("sqlite:///:memory:")
        >>> type(storage).__name__
        'RDBStorage'

    Raises:
        StorageError: a malformed URL, an unreachable server, refused credentials, a SQLite
            path in a folder that cannot be created, or a file that is not an Optuna database.
        DatabaseFault: a damaged SQLite file.
    """
    try:
        parsed = make_url(url)
    except sqlalchemy.exc.ArgumentError as e:
        raise StorageError(
            f"storage URL {mask_secrets(url)!r} is not a database URL; expected e.g. "
            "'sqlite:///sweeplab.db' or 'postgresql+psycopg://user:password@host/dbname'"
        ) from e
    engine_kwargs: dict = {}
    target = url
    sqlite_file = parsed.get_backend_name() == "sqlite" and not is_in_memory(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if sqlite_file:
            path = Path(database).expanduser().resolve()
            if (not create or read_only) and not path.exists():
                raise StorageError(f"no study database at {mask_secrets(url)} (looked for {path})")
            if path.exists():
                tables = _sqlite_tables(path, url)
                if tables is None and read_only:
                    raise StorageError(
                        f"{mask_secrets(url)} is an empty file, not a study database"
                    )
                # Another driver may be creating Optuna's tables right now: only a table that
                # is not Optuna's, or (to read or continue a study) a missing one, is refused.
                foreign = tables is not None and bool(tables - optuna_tables())
                incomplete = tables is not None and not tables >= _OPTUNA_TABLES
                if foreign or (incomplete and (read_only or not create)):
                    listed = ", ".join(sorted(tables or ())[:5]) or "none"
                    raise StorageError(
                        f"{mask_secrets(url)} is not an Optuna study database (its tables: "
                        f"{listed}); sweeplab does not write into it: use a new file or an Optuna "
                        "database as the storage"
                    )
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StorageError(f"cannot create the folder of {mask_secrets(url)}: {e}") from e
            if read_only:
                # The path as a URI: read-only, and immutable where the medium is (no -shm file
                # can be created next to a WAL database there).
                mode = "mode=ro" if os.access(path.parent, os.W_OK) else "immutable=1"
                target = f"sqlite:///file:{quote(str(path))}?{mode}&uri=true"
        engine_kwargs = {"connect_args": {"timeout": _SQLITE_BUSY_TIMEOUT_S}}
    else:
        engine_kwargs = {"pool_pre_ping": True}
    for attempt in range(_SCHEMA_RACE_RETRIES + 1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.RDBStorage(
                    target,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=HEARTBEAT_INTERVAL_S,
                    grace_period=HEARTBEAT_GRACE_S,
                    skip_table_creation=read_only,
                )
            break
        except (
            sqlalchemy.exc.SQLAlchemyError,
            optuna.exceptions.StorageInternalError,
            ImportError,
            ModuleNotFoundError,
        ) as e:
            reason = root_cause(e)
            # Drivers started together on a new database both create its tables; the loser of
            # that race sees "table ... already exists" or a unique-constraint failure on the
            # schema version (PostgreSQL: a duplicate key) and finds the schema complete when it
            # tries again.
            racing = any(sign in reason for sign in _SCHEMA_RACE_SIGNS)
            if racing and attempt < _SCHEMA_RACE_RETRIES:
                time.sleep(0.2 * (attempt + 1))
                continue
            if sqlite_file and any(sign in reason for sign in _DAMAGE_SIGNS):
                raise DatabaseFault(damaged_message(url, reason)) from e
            raise StorageError(
                f"cannot open the study database {mask_secrets(url)}: {mask_secrets(reason)}"
            ) from e
    if read_only:
        return storage
    if sqlite_file:
        # synchronous=NORMAL is safe under WAL and avoids an fsync per commit, but it is a
        # setting of each connection: every connection the pool opens gets it (the heartbeat
        # thread's too), so the ones Optuna opened while creating the storage are closed first.
        sqlalchemy.event.listen(storage.engine, "connect", _sqlite_normal_sync)
        storage.engine.dispose()
        _set_wal(storage.engine)
    return storage


def _set_wal(engine: sqlalchemy.engine.Engine) -> None:
    """Switch the file to WAL journaling (kept in the file), retrying while others hold it.

    The switch needs the file to itself, and SQLite answers "database is locked" at once rather
    than waiting out the busy timeout when another driver opening the same new database holds a
    lock on it; once any of them has switched, the others find the file in WAL already.
    """
    for attempt in range(_WAL_RETRIES + 1):
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            return
        except sqlalchemy.exc.OperationalError as e:
            if "locked" not in str(e) or attempt == _WAL_RETRIES:
                raise StorageError(
                    f"cannot switch the study database {mask_secrets(str(engine.url))} "
                    f"to WAL journaling: {mask_secrets(root_cause(e))}"
                ) from e
            time.sleep(0.05 * (attempt + 1))


def _sqlite_normal_sync(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    """Names of the studies in the storage, sorted."""
    return sorted(s.study_name for s in storage.get_all_studies())


def load_study(
    storage: str | optuna.storages.BaseStorage, name: str, *, read_only: bool = False
) -> optuna.Study:
    """Load an existing study; never create a database or a study as a side effect.

    Args:
        storage: a database URL (opened with ``create=False``) or an opened storage.
        name: the study's name in it.
        read_only: open a URL read-only (see :func:`open_storage`): for commands that only
            read, which then never change the database's bytes.

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
        storage = open_storage(storage, create=False, read_only=read_only)
    names = study_names(storage)
    if name not in names:
        listing = ", ".join(names) if names else "none"
        raise StudyNotFound(
            f"no study named {name!r} in {describe_storage(storage)} (studies there: {listing})"
        )
    return optuna.load_study(study_name=name, storage=storage)


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and its causes, outermost first: a driver's error (``orig``), the explicit
    cause, else the exception being handled; each once."""
    chain, seen = [], set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        inner = getattr(current, "orig", None) or current.__cause__ or current.__context__
        current = inner if isinstance(inner, BaseException) else None
    return chain


def is_database_error(error: BaseException) -> bool:
    """Whether the database failed somewhere down ``error``'s chain (a driver error, or
    Optuna's wrapper of one)."""
    kinds = (sqlalchemy.exc.DBAPIError, optuna.exceptions.StorageInternalError)
    return any(isinstance(e, kinds) for e in _chain(error))


def database_fault(error: BaseException) -> str | None:
    """One sentence for a database that failed under a command (disk full, a damaged file, a
    server gone), with its cause and the fix; ``None`` when ``error`` is no database failure.

    The cause is the driver's own words, found down the exception chain: Optuna's last line
    ("invalid data in the commit, e.g. exceeding max length") is the wrapper, not the cause.

    Example:
        >>> import sqlite3
        >>> try:
        ...     raise sqlalchemy.exc.OperationalError("COMMIT", {}, sqlite3.OperationalError(
        ...         "database or disk is full"))
        ... except sqlalchemy.exc.OperationalError as e:
        ...     print(database_fault(e)[:63])
        the study database failed: database or disk is full; free space
    """
    if not is_database_error(error):
        return None
    cause = root_cause(error)
    lowered = cause.lower()
    if "full" in lowered:
        fix = (
            "free space where the database lives, then `sweeplab resume NAME`: the trials that "
            "were running are recovered and run again"
        )
    elif any(sign in lowered for sign in _DAMAGE_SIGNS):
        fix = "restore it from a backup, or salvage its rows with `sqlite3 FILE .recover`"
    elif "readonly" in lowered or "read-only" in lowered:
        fix = "run it where the database can be written, or copy the database to such a place"
    else:
        fix = "check that the database is reachable and intact, then run the command again"
    return f"the study database failed: {cause}; {fix}"
