"""Domain errors: each one is a sentence a user can act on, and carries its exit code."""

from __future__ import annotations


class SweeplabError(Exception):
    """Base of every error sweeplab reports to the user without a traceback."""

    exit_code = 1


class UsageError(SweeplabError):
    """The user asked for something that cannot be done as asked (exit code 2)."""

    exit_code = 2


class SpecError(UsageError):
    """The study spec is invalid: the message names the file, the key and what was expected."""


class StudyNotFound(UsageError):
    """No study of that name in the storage; the message lists the ones that exist."""


class SpecConflict(UsageError):
    """The spec differs from the one the stored study was started with."""


class StorageError(UsageError):
    """The study database cannot be opened (unreachable, wrong password, unreadable file)."""


class DatasetMissing(UsageError):
    """The dataset's files are not where the spec says, and downloading is off."""
