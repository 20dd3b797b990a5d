"""Opening a study read-only-in-spirit, and keeping database passwords out of what we write.

Everything in :mod:`analysis` reads a study through :func:`load_study`, so a missing SQLite file or
a misspelt study name fails here, once, with a message that says what exists instead.
"""

from __future__ import annotations

import re
from pathlib import Path

import optuna

__all__ = ["StudyNotFoundError", "describe_storage", "load_study", "mask_secrets"]

# ``scheme://user:password@host`` (SQLAlchemy URLs, also inside error messages) and
# ``?password=...`` query arguments. The user name stays readable; only the secret goes.
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)(?P<secret>[^@\s/]+)@")
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&](?:password|passwd|pwd)=)(?P<secret>[^&\s#]+)", re.I)
MASK = "***"


class StudyNotFoundError(LookupError):
    """The storage holds no study of the requested name (or the SQLite file does not exist)."""


def mask_secrets(text: str) -> str:
    """Replace every password found in database URLs inside ``text`` with ``***``.

    Args:
        text: any text: a storage URL, an error message, a whole report.

    Returns:
        ``text`` with ``scheme://user:SECRET@`` and ``?password=SECRET`` masked.

    Example:
        >>> mask_secrets("postgresql://user:secret@host/db")
        'postgresql://user:***@host/db'
    """
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@", text)
    return _QUERY_PASSWORD.sub(lambda m: f"{m['head']}{MASK}", text)


def describe_storage(storage: str | optuna.storages.BaseStorage) -> str:
    """A human-readable, password-free name of a storage (its URL where it has one).

    Example:
        >>> describe_storage("postgresql://me:pw@db.local/sweeps")
        'postgresql://me:***@db.local/sweeps'
    """
    if isinstance(storage, str):
        return mask_secrets(storage)
    # get_storage() wraps RDBStorage in a private caching layer; the URL lives on the backend.
    backend = getattr(storage, "_backend", storage)
    url = getattr(backend, "url", None)
    if isinstance(url, str):
        return mask_secrets(url)
    return type(storage).__name__


def _sqlite_path(url: str) -> Path | None:
    """The file behind a ``sqlite:///`` URL, ``None`` for in-memory or non-SQLite URLs."""
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///") :].split("?", 1)[0]
    if path in ("", ":memory:"):
        return None
    return Path(path)


def load_study(storage: str | optuna.storages.BaseStorage, study_name: str) -> optuna.Study:
    """Load an existing study; never create a database or a study as a side effect.

    Args:
        storage: an Optuna storage URL (``sqlite:///runs/study.db``, ``postgresql://...``) or a
            storage object.
        study_name: the study's name in that storage.

    Returns:
        The loaded :class:`optuna.Study`.

    Raises:
        StudyNotFoundError: the SQLite file does not exist, or no study has that name (the message
            lists the names that do exist).

    Example:
        >>> import optuna
        >>> s = optuna.storages.InMemoryStorage()
        >>> _ = optuna.create_study(storage=s, study_name="demo")
        >>> load_study(s, "demo").study_name
        'demo'
    """
    where = describe_storage(storage)
    if isinstance(storage, str):
        path = _sqlite_path(storage)
        if path is not None and not path.exists():
            # Opening a missing SQLite file would silently create an empty database.
            raise StudyNotFoundError(
                f"SQLite database {str(path)!r} (from storage {where!r}) does not exist; "
                "check the path (sqlite:/// + relative path, sqlite://// + absolute path)."
            )
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError as e:
        names = sorted(optuna.get_all_study_names(storage=storage))
        raise StudyNotFoundError(
            f"study {study_name!r} not found in storage {where!r}; "
            f"studies there: {names if names else 'none'}."
        ) from e
