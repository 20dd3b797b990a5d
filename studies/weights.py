"""A study's trained models and the disk its artifacts take, read from the database.

Trials of sweeplab's own loop save their final weights (the best epoch's, when
``restore_best_weights``) into the study's artifact store; the ``[study] keep_best`` best complete
trials keep them (:data:`~sweeplab.studies.records.KEPT_WEIGHTS`). :func:`load_model` rebuilds
one as an ``nn.Module`` ready for inference; :func:`weights_bytes` gives the raw file. Nothing
here writes, except :func:`delete_study`.

Example (needs a finished study, so not run as a doctest)::

    import sweeplab

    net = sweeplab.load_model("sqlite:///sweeplab.db", "quickstart")  # the best trial's
    net(torch.zeros(1, 64)).argmax(dim=1)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial

from sweeplab.studies import records, storage
from sweeplab.studies.errors import UsageError

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class ArtifactUsage:
    """The files a study's records point at, and their size.

    Attributes:
        location: the artifact folder (``None``: the study keeps no artifacts).
        weights: files of kept weights; checkpoints: of unfinished and queued trials.
        bytes: their total size.
    """

    location: str | None
    weights: int
    checkpoints: int
    bytes: int


def artifact_usage(study: optuna.Study) -> ArtifactUsage:
    """What the study's artifacts take on disk, from its records (read-only): the kept weights,
    and the checkpoints of running trials and of trials queued to continue from one."""
    location = study.user_attrs.get(records.ARTIFACTS)
    live = storage.live_artifacts(study.get_trials(deepcopy=False), _kept(study))
    n_weights = sum(r.kind == "weights" for r in live.values())
    total = sum(r.size for r in live.values())
    return ArtifactUsage(location, n_weights, len(live) - n_weights, total)


def _kept(study: optuna.Study) -> list[int]:
    return [int(n) for n in study.user_attrs.get(records.KEPT_WEIGHTS) or []]


def kept_trial(study: optuna.Study, number: int | None = None) -> FrozenTrial:
    """The trial whose weights to load: ``number``, or the best trial that kept weights.

    Raises:
        UsageError: no such trial, or it kept no weights (saying which trials did).
    """
    kept = _kept(study)
    name = study.study_name
    if number is None:
        if not kept:
            raise UsageError(
                f"study {name!r} kept no trained weights: its trials trained as a pack, with a "
                "training function, with [study] artifacts = false or keep_best = 0, or none "
                "completed yet"
            )
        number = kept[0]
    elif number not in kept:
        which = ", ".join(map(str, kept)) or "none"
        raise UsageError(
            f"trial {number} of study {name!r} kept no weights (trials that did: {which}; "
            "[study] keep_best keeps the best complete ones)"
        )
    return storage.trial_by_number(study, number)


def weights_bytes(study: optuna.Study, trial: FrozenTrial) -> bytes:
    """The bytes of a trial's kept weights, checked against their record.

    Raises:
        UsageError: the study has no artifact folder recorded, or the file is missing or
            damaged.
    """
    location = study.user_attrs.get(records.ARTIFACTS)
    record = records.ArtifactRecord.from_attr(trial.user_attrs.get(records.WEIGHTS))
    if not location or record is None:
        raise UsageError(f"trial {trial.number} of study {study.study_name!r} has no weights")
    try:
        return storage.get_artifact(storage.open_artifact_store(location), record)
    except storage.ArtifactUnusable as e:
        raise UsageError(f"the weights of trial {trial.number} ({location}): {e}") from None


def load_model(
    storage_url: str | optuna.storages.BaseStorage,
    name: str,
    trial: int | None = None,
    *,
    model: Callable[..., Any] | None = None,
    device: str = "cpu",
) -> nn.Module:
    """The trained network of one trial of a study, in eval mode, ready for inference.

    Args:
        storage_url: the study database (URL or opened storage).
        name: the study.
        trial: the trial number; ``None``: the best trial that kept weights.
        model: the study's own network factory (``build(input_shape, n_classes, hp)``), in
            place of importing the spec's ``[model] factory`` from the working directory.
        device: where the module's tensors go.

    Raises:
        StudyNotFound: no such study.
        UsageError: the trial kept no weights, or its file is missing or damaged.
    """
    from sweeplab import trainer
    from sweeplab.studies._study import stored_spec

    study = storage.load_study(storage_url, name)
    frozen = kept_trial(study, trial)
    data = weights_bytes(study, frozen)
    try:
        weights = trainer.read_weights(data)
    except trainer.CheckpointError as e:
        raise UsageError(f"the weights of trial {frozen.number}: {e}") from None
    factory = model
    if factory is None and weights.own_model:
        spec = stored_spec(storage.storage_of(study), name)
        factory = _import_factory(spec.model.factory)
    try:
        return trainer.model_from_weights(weights, factory=factory, device=device)
    except trainer.CheckpointError as e:
        raise UsageError(f"the weights of trial {frozen.number}: {e}") from None


def _import_factory(reference: str | None) -> Callable[..., Any]:
    """``module:attr`` imported from the working directory (as a run imports it)."""
    if not reference:
        raise UsageError("the study's spec names no [model] factory; pass model=... instead")
    module_name, _, attribute = reference.partition(":")
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise UsageError(
            f"[model] factory {reference!r} cannot be imported from {cwd} ({e}); run from the "
            "study's folder, or pass the factory: load_model(..., model=build)"
        ) from None
    return obj


def delete_study(storage_url: str | optuna.storages.BaseStorage, name: str) -> int:
    """Delete a study from its database, and its artifacts; return the bytes freed on disk.

    Raises:
        StudyNotFound: no such study.
    """
    study = storage.load_study(storage_url, name)
    location = study.user_attrs.get(records.ARTIFACTS)
    optuna.delete_study(study_name=name, storage=storage.storage_of(study))
    return storage.delete_study_files(location, name)
