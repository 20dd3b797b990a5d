"""sweeplab's errors: each one is a sentence a user can act on, and carries its exit code.

The command line prints such an error as one line and exits with :attr:`SweeplabError.exit_code`
(1: the work failed; 2: the request was wrong), without a traceback. The Python API raises them
as they are.
"""

from __future__ import annotations


class SweeplabError(Exception):
    """Base of every error sweeplab reports to the user without a traceback."""

    exit_code = 1


class UsageError(SweeplabError):
    """The user asked for something that cannot be done as asked (exit code 2)."""

    exit_code = 2


class InvalidArgument(UsageError):
    """One argument of a sweeplab function has a value it cannot take.

    The message names the argument as the Python API spells it (``baseline: must be best,
    default or a trial number; got 'x'``); the command line re-words it with its own option
    (``--baseline: ...``), so library code never speaks in command-line flags.

    Attributes:
        argument: the parameter's name (``baseline``, ``mode``, ``components``, ``seeds``).
        problem: what is wrong with its value and what is expected.

    Example:
        >>> str(InvalidArgument("seeds", "an ablation needs at least one seed"))
        'seeds: an ablation needs at least one seed'
    """

    def __init__(self, argument: str, problem: str) -> None:
        self.argument = argument
        self.problem = problem
        super().__init__(f"{argument}: {problem}")

    def __reduce__(self) -> tuple:
        return (type(self), (self.argument, self.problem))


class SpecError(UsageError):
    """The study spec is invalid: the message names the file, the key and what was expected."""


class StudyNotFound(UsageError, LookupError):
    """No study of that name in the storage; the message lists the ones that exist."""


class SpecConflict(UsageError):
    """The spec differs from the one the stored study was started with."""


class StorageError(UsageError):
    """The study database cannot be opened (unreachable, wrong password, unreadable file)."""


class DatasetMissing(UsageError):
    """The dataset's files are not where the spec says, and downloading is off."""


class DatabaseFault(SweeplabError):
    """The study database failed under the run: disk full, a damaged file (exit code 1). The
    message gives the cause and the fix; running trials are left for ``resume`` to recover."""
