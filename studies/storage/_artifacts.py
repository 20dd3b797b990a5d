"""A study's artifacts (checkpoints, final weights): files in an Optuna artifact store.

The files live in an :class:`optuna.artifacts.FileSystemArtifactStore` folder, by default beside
the SQLite database (``study.db`` -> ``study-artifacts/``), or where ``[study] artifacts`` says
(a folder every node of a cluster sees). The database stays the one index: a trial's user
attributes point at its files (:class:`~sweeplab.studies.records.ArtifactRecord`, with size and
digest), and the study's :data:`~sweeplab.studies.records.ARTIFACTS` attribute at the folder.
Files are written atomically (a temporary file, then a rename): a reader, or a run killed
mid-write, never sees half a checkpoint under a recorded id; what a kill does leave is a
``.tmp`` file no record names, which :func:`delete_study_files` removes with the study.

Example:
    >>> import tempfile
    >>> from sweeplab.studies import storage
    >>> folder = tempfile.mkdtemp()
    >>> store = storage.open_artifact_store(folder)
    >>> record = storage.put_artifact(store, storage.artifact_id("demo", 3, "checkpoint", 4, 0),
    ...                               b"state", kind="checkpoint", epoch=4)
    >>> record.artifact_id.startswith("demo/trial-00003/checkpoint-e4-s0-"), record.size
    (True, 5)
    >>> storage.get_artifact(store, record)
    b'state'
    >>> storage.remove_artifact(store, record); storage.remove_artifact(store, record)  # idempotent
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

from optuna.artifacts import FileSystemArtifactStore
from optuna.artifacts.exceptions import ArtifactNotFound
from sqlalchemy.engine import make_url

from sweeplab.studies import records
from sweeplab.studies.errors import StorageError
from sweeplab.studies.records import ArtifactRecord


class ArtifactUnusable(StorageError):
    """A recorded artifact is missing, or its bytes are not the ones recorded (a truncated or
    overwritten file)."""


class AtomicFileSystemArtifactStore(FileSystemArtifactStore):
    """Optuna's file-system artifact store, writing each file atomically.

    Optuna's own ``write`` opens the final path and copies into it: a process killed mid-copy
    leaves a truncated file under the id. Here the bytes go to a temporary file in the same
    folder and replace the final name in one ``os.replace``; folders are created as needed.
    """

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        path = self._get_filepath(artifact_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                shutil.copyfileobj(content_body, f)
            # No fsync: it would cost a short trial more than its training (tens of ms on a
            # plain disk). The rename is atomic against a killed process, which is what
            # checkpoints are for; a file cut short by a power loss fails its digest and the
            # trial starts over instead.
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def default_location(url: str) -> str | None:
    """Where a study on ``url`` keeps artifacts unless its spec says: beside a SQLite file
    (``sweeplab.db`` -> ``sweeplab-artifacts``); ``None`` (none kept) for other databases,
    whose drivers may run on machines that share no folder.

    Example:
        >>> default_location("sqlite:////tmp/runs/sweeplab.db")
        '/tmp/runs/sweeplab-artifacts'
        >>> default_location("postgresql://u@h/db") is None
        True
    """
    try:
        parsed = make_url(url)
    except Exception:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    db = Path(parsed.database).expanduser().resolve()
    return str(db.with_name(f"{db.stem}-artifacts"))


def resolve_location(url: str, artifacts: str | bool | None) -> str | None:
    """The absolute artifact folder of a study: ``[study] artifacts`` when given (``false``:
    none), else :func:`default_location`.

    Example:
        >>> resolve_location("sqlite:////tmp/a.db", None), resolve_location("sqlite:///a.db", False)
        ('/tmp/a-artifacts', None)
    """
    if artifacts is False:
        return None
    if artifacts is None or artifacts is True:
        return default_location(url)
    return str(Path(artifacts).expanduser().resolve())


def check_writable(location: str) -> None:
    """Raise :class:`StorageError` unless files can be created in ``location`` (made if
    missing, as a run would); what a run checks before it touches the database."""
    path = Path(location)
    # Probed in the deepest folder that exists, creating none: a run refused later leaves
    # nothing behind (the store makes the folders on its first write), and drivers starting
    # together cannot remove a folder from under each other.
    existing = next((p for p in (path, *path.parents) if p.exists()), path)
    try:
        if not existing.is_dir():
            raise NotADirectoryError(20, "Not a directory", str(existing))
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".sweeplab-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        why = e.strerror or type(e).__name__
        raise StorageError(
            f"[study] artifacts: cannot write checkpoints to {location!r} ({why}); give a "
            "writable folder, or artifacts = false to keep no checkpoints"
        ) from None


def open_artifact_store(location: str) -> AtomicFileSystemArtifactStore:
    """The artifact store of the folder ``location`` (created on the first write)."""
    return AtomicFileSystemArtifactStore(Path(location))


def artifact_id(study_name: str, number: int, kind: str, epoch: int, step: int = 0) -> str:
    """A fresh id for one saved file of trial ``number``: unique per save, so a new checkpoint
    never overwrites the one the database still points at."""
    tag = uuid.uuid4().hex[:8]
    return f"{study_name}/trial-{number:05d}/{kind}-e{epoch}-s{step}-{tag}.pt"


def put_artifact(
    store: FileSystemArtifactStore,
    artifact: str,
    data: bytes,
    *,
    kind: str,
    epoch: int,
    step: int = 0,
) -> ArtifactRecord:
    """Write ``data`` under ``artifact``; the record to point a trial at it.

    Raises:
        OSError: the file could not be written (a full disk, a folder gone read-only).
    """
    store.write(artifact, io.BytesIO(data))
    digest = hashlib.sha256(data).hexdigest()
    return ArtifactRecord(
        artifact_id=artifact, kind=kind, epoch=epoch, step=step, size=len(data), sha256=digest
    )


def get_artifact(store: FileSystemArtifactStore, record: ArtifactRecord) -> bytes:
    """The bytes of a recorded artifact, checked against its record.

    Raises:
        ArtifactUnusable: the file is missing, unreadable, or not the bytes recorded.
    """
    try:
        with store.open_reader(record.artifact_id) as f:
            data = f.read()
    except (ArtifactNotFound, OSError, ValueError) as e:
        raise ArtifactUnusable(f"{record.kind} {record.artifact_id!r} cannot be read: {e}") from e
    if record.sha256 and hashlib.sha256(data).hexdigest() != record.sha256:
        raise ArtifactUnusable(
            f"{record.kind} {record.artifact_id!r} is damaged: {len(data)} bytes whose digest "
            f"is not the one recorded ({record.size} bytes)"
        )
    return data


def remove_artifact(store: FileSystemArtifactStore, record: ArtifactRecord | None) -> None:
    """Delete a recorded artifact; one already gone (or none) is fine."""
    if record is None:
        return
    with contextlib.suppress(ArtifactNotFound, FileNotFoundError, ValueError):
        store.remove(record.artifact_id)


def delete_study_files(location: str | None, study_name: str) -> int:
    """Delete every file of one study in the artifact folder ``location``; return the bytes
    freed (0 when there were none)."""
    if not location:
        return 0
    folder = Path(location) / study_name
    if not folder.is_dir():
        return 0
    freed = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    shutil.rmtree(folder, ignore_errors=True)
    return freed


def live_artifacts(trials: Iterable[Any], kept: Iterable[int]) -> dict[str, ArtifactRecord]:
    """The files a study's records still need, by id: the kept weights (trial numbers
    ``kept``), the checkpoints of running trials and the checkpoints queued trials continue
    from."""
    kept = set(kept)
    live: dict[str, ArtifactRecord] = {}
    for trial in trials:
        state = trial.state.name
        keys = []
        if trial.number in kept:
            keys.append(records.WEIGHTS)
        if state == "RUNNING":
            keys += [records.CHECKPOINT, records.RESUME_FROM]
        if state == "WAITING":
            keys.append(records.RESUME_FROM)
        for key in keys:
            record = ArtifactRecord.from_attr(trial.user_attrs.get(key))
            if record is not None:
                live.setdefault(record.artifact_id, record)
    return live


def sweep_study_files(
    location: str, study_name: str, trials: Iterable[Any], kept: Iterable[int]
) -> int:
    """Delete the files of the study's finished trials that no record needs: what a killed
    run saved but never recorded, and ``.tmp`` files of writes a kill cut short. Folders of
    trials that may still write (running, waiting) are left alone. Returns the files deleted.
    """
    trials = list(trials)
    live = live_artifacts(trials, kept)
    finished = {t.number for t in trials if t.state.is_finished()}
    root = Path(location)
    deleted = 0
    for folder in (root / study_name).glob("trial-*"):
        try:
            number = int(folder.name.removeprefix("trial-"))
        except ValueError:
            continue
        if number not in finished or not folder.is_dir():
            continue
        for path in folder.iterdir():
            if path.is_file() and str(path.relative_to(root)) not in live:
                path.unlink(missing_ok=True)
                deleted += 1
        with contextlib.suppress(OSError):
            folder.rmdir()  # only when empty
    return deleted
