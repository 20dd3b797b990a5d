"""The names of everything sweeplab records in a study database, defined once.

A sweeplab study is an ordinary single-objective Optuna study: what sweeplab adds lives in
study and trial attributes under the keys below. Writers (the searcher, recovery, the ablation
runner) and readers (:mod:`sweeplab.analysis`, the command line) import these names instead of
typing the strings, so a record cannot be written under one spelling and read under another.
The module imports nothing of sweeplab's, nor torch, Ray or Optuna: every process can afford it.

Example:
    >>> from sweeplab.studies import records
    >>> records.SPEC, records.FailReason.DIVERGED.value
    ('sweeplab_spec', 'diverged')
    >>> record = records.AblationRecord(mode="loo", baseline="best", baseline_trial=7, seeds=3)
    >>> records.AblationRecord.from_attr(record.to_attr()) == record
    True
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# ---- study user attributes -----------------------------------------------------------------------
#: The spec the study was last run with (JSON): all ``resume`` and ``report`` need.
SPEC = "sweeplab_spec"
#: The objective's metric name (``val_acc``...), for readers that have no spec.
OBJECTIVE = "objective"
#: An ablation study: the name of the study it ablates.
PARENT = "sweeplab_parent"
#: An ablation study: how it was planned (an :class:`AblationRecord` as a dict).
ABLATION = "sweeplab_ablation"
#: The absolute folder of the study's artifact store (checkpoints, weights); absent or ``None``:
#: the study keeps no artifacts.
ARTIFACTS = "sweeplab_artifacts"
#: The numbers of the complete trials whose final weights are kept (``[study] keep_best``), best
#: first.
KEPT_WEIGHTS = "sweeplab_kept_weights"

# ---- trial system attributes ---------------------------------------------------------------------
#: Who runs the trial: ``{"host", "pid", "start"}`` of its driver process (recovery reads it).
DRIVER = "sweeplab:driver"
#: Optuna's own: the parameters ``enqueue_trial`` queued for a WAITING trial.
FIXED_PARAMS = "fixed_params"

# ---- trial user attributes: identity and lifecycle -----------------------------------------------
#: The trial's training seed.
SEED = "seed"
#: How many times a worker death has re-run these parameters before this trial (0 first).
ATTEMPT = "attempt"
#: The number of the trial this one re-runs (after an interruption or a worker death).
RETRY_OF = "retry_of"
#: ``True`` on a trial a crash left RUNNING, stored FAIL by recovery.
INTERRUPTED = "interrupted"
#: Why a FAIL trial failed: a :class:`FailReason` value.
FAIL_REASON = "fail_reason"
#: A FAIL trial's message ("diverged at epoch 3 (train loss nan)", "TypeName: message").
ERROR = "error"
#: A FAIL trial's traceback, where the user's own code raised.
TRACEBACK = "traceback"
#: Where the trial runs, written at its first epoch: the worker's process id and node address.
WORKER_PID = "worker_pid"
NODE_IP = "node_ip"
#: Epochs the trial trained.
EPOCHS_RUN = "epochs_run"

# ---- trial user attributes: artifacts ------------------------------------------------------------
#: The trial's latest checkpoint, an :class:`ArtifactRecord` as a dict; ``None`` once deleted.
CHECKPOINT = "checkpoint"
#: A complete trial's final weights (an :class:`ArtifactRecord`), while they are kept.
WEIGHTS = "weights"
#: A re-run trial: the checkpoint (an :class:`ArtifactRecord`) it continues from.
RESUME_FROM = "resume_from"
#: A re-run trial: the epoch and step it continued from (``{"epoch", "step"}``), or why it
#: restarted from scratch (``{"epoch": 0, "step": 0, "why": ...}``).
RESUMED_AT = "resumed_at"
#: Population based training: what the trial copied and changed while it trained, oldest
#: first, each ``{"epoch": e, "from": donor trial number, "params": {name: new value}, "was":
#: {name: old value}, "all_params": {every name: value from then on}}`` (the trial's Optuna
#: params stay those it started with; a retry after a worker death starts from ``all_params``).
PBT_SCHEDULE = "pbt_schedule"
#: Population based training: the learning rate of each epoch, a curve beside
#: :data:`CURVE_KEYS` (it changes when the trial is copied and perturbed).
LR_CURVE = "lr"
#: What went wrong with the trial's artifacts while it trained (a full disk...); the trial went
#: on without them.
ARTIFACT_NOTE = "artifact_note"

# ---- trial user attributes: results --------------------------------------------------------------
#: Per-epoch metrics, one list each (index 0 = epoch 1).
TRAIN_LOSS, TRAIN_ACC, VAL_LOSS, VAL_ACC = "train_loss", "train_acc", "val_loss", "val_acc"
EPOCH_SECONDS = "epoch_seconds"
CURVE_KEYS = (TRAIN_LOSS, TRAIN_ACC, VAL_LOSS, VAL_ACC, EPOCH_SECONDS)
#: The epoch with the best objective, and that objective.
BEST_EPOCH = "best_epoch"
BEST_VALUE = "best_value"
#: Test-split metrics, measured once at the end (on the best epoch's weights where restored).
TEST_ACC = "test_acc"
TEST_LOSS = "test_loss"
#: Accuracy on the training split in eval mode with the weights ``test_acc`` used (the "train
#: accuracy" of papers' tables); ``train_acc`` is measured while training.
FINAL_TRAIN_ACC = "final_train_acc"
#: ``True`` when the trial's own early stopping ended it.
STOPPED_EARLY = "stopped_early"
SWEEPLAB_VERSION = "sweeplab_version"
#: Unix seconds when the trial started and finished training in its worker, and the difference.
RUN_STARTED_AT = "run_started_at"
RUN_FINISHED_AT = "run_finished_at"
WALL_TIME_S = "wall_time_s"
#: A training function's curves: the names of its per-epoch metrics (each a list as above);
#: absent for sweeplab's own loop, whose curves are :data:`CURVE_KEYS`.
CURVE_NAMES = "curve_names"
#: What a training function returned: its final metrics by name.
FINAL_METRICS = "final_metrics"
#: Facts of the finished run, copied from the trial's last report.
FINAL_KEYS = (
    BEST_EPOCH,
    BEST_VALUE,
    TEST_ACC,
    TEST_LOSS,
    FINAL_TRAIN_ACC,
    STOPPED_EARLY,
    "device",
    "torch_version",
    SWEEPLAB_VERSION,
    NODE_IP,
    "node_id",
    "pid",
    RUN_STARTED_AT,
    RUN_FINISHED_AT,
    WALL_TIME_S,
    "pack_id",
    "pack_size",
)

# ---- trial user attributes: ablation studies -----------------------------------------------------
#: The variant a trial trains (``baseline``, ``-dropout``, ``+lr+optimizer``...).
VARIANT = "variant"
#: Path trials: the number of components switched on, the one flipped, the variant it was flipped
#: from, and the entries the flip changed (name -> new value, ``None`` for one dropped).
STEP = "step"
COMPONENT = "component"
SOURCE = "source"
CHANGE = "change"


@dataclass(frozen=True, kw_only=True)
class ArtifactRecord:
    """One file in a study's artifact store, as a trial attribute points at it.

    Attributes:
        artifact_id: the file's id in the store (a path relative to the store's folder).
        kind: ``checkpoint`` (to continue training from) or ``weights`` (a finished model).
        epoch: epochs completed when it was saved (weights: the epoch whose weights they are).
        step: optimizer steps into the next epoch (0 at an epoch boundary).
        size: bytes.
        sha256: the file's digest, checked before it is read back.

    Example:
        >>> record = ArtifactRecord(artifact_id="s/trial-00003/checkpoint-e4.pt",
        ...                         kind="checkpoint", epoch=4, size=10, sha256="ab")
        >>> ArtifactRecord.from_attr(record.to_attr()) == record
        True
        >>> ArtifactRecord.from_attr(None) is None
        True
    """

    artifact_id: str
    kind: str
    epoch: int
    step: int = 0
    size: int = 0
    sha256: str = ""

    def to_attr(self) -> dict[str, Any]:
        """The JSON-ready dict a trial attribute stores."""
        return dataclasses.asdict(self)

    @classmethod
    def from_attr(cls, value: Any) -> ArtifactRecord | None:
        """Read a stored record; ``None`` for none (or one this version cannot read)."""
        if not isinstance(value, Mapping) or "artifact_id" not in value:
            return None
        known = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: v for k, v in value.items() if k in known})
        except TypeError:
            return None


class FailReason(str, enum.Enum):
    """Why a trial is FAIL (its :data:`FAIL_REASON`); the study goes on after every one."""

    #: A crash left it RUNNING; its parameters and seed were queued to run again.
    INTERRUPTED = "interrupted"
    #: Its training loss stopped being finite.
    DIVERGED = "diverged"
    #: The trial raised; :data:`ERROR` says what.
    ERROR = "error"
    #: Its worker process died or was killed (retried up to ``[budget] retries`` times).
    WORKER_DIED = "worker_died"
    #: The device ran out of memory (the message carries a hint).
    OUT_OF_MEMORY = "out_of_memory"
    #: The user's training function broke its contract with sweeplab (reported no epoch, not
    #: the objective, not a number...): every trial would fail so, and the run stops.
    USAGE = "usage"


#: The modes of ``sweeplab ablate``, each with what its variants are.
ABLATION_MODES: dict[str, str] = {
    "loo": "leave-one-out (each component reverted to its default)",
    "add": "add-one-in (each component switched on alone, from the defaults)",
    "path": "greedy ablation path from the defaults to the baseline (Fawcett & Hoos 2016)",
    "grid": "full factorial over the named components",
    "seeds": "seed variance (the baseline re-run once per seed)",
}


@dataclass(frozen=True, kw_only=True)
class AblationRecord:
    """How an ablation study was planned: its :data:`ABLATION` study attribute.

    Attributes:
        mode: one of :data:`ABLATION_MODES`.
        baseline: what was asked for (``best``, ``default`` or a trial number as text).
        baseline_trial: the parent trial it starts from; ``None`` for the defaults.
        baseline_config: that configuration.
        requested_components: the components asked for; ``None``: all of them.
        components: the components ablated (the path: the ones it flips, in order).
        unchanged: components asked for that the baseline already has off.
        seeds: trials per variant.
        seed_values: the training seeds, the same for every variant.
        variants: the planned variants' names (the path: its first round's).
        reference: the variant the others are compared with.
    """

    mode: str
    baseline: str
    baseline_trial: int | None = None
    baseline_config: dict[str, Any] = dataclasses.field(default_factory=dict)
    requested_components: list[str] | None = None
    components: list[str] = dataclasses.field(default_factory=list)
    unchanged: list[str] = dataclasses.field(default_factory=list)
    seeds: int = 0
    seed_values: list[int] = dataclasses.field(default_factory=list)
    variants: list[str] = dataclasses.field(default_factory=list)
    reference: str = "baseline"

    def to_attr(self) -> dict[str, Any]:
        """The JSON-ready dict stored under :data:`ABLATION`."""
        return dataclasses.asdict(self)

    @classmethod
    def from_attr(cls, value: Any) -> AblationRecord | None:
        """Read a stored record; ``None`` when ``value`` is none (not an ablation study).

        Keys this version does not know are ignored and missing ones take their defaults, so a
        record written by another sweeplab version still reads.
        """
        if not isinstance(value, Mapping) or "mode" not in value:
            return None
        known = {f.name for f in dataclasses.fields(cls)}
        fields = {k: v for k, v in value.items() if k in known}
        fields.setdefault("baseline", "best")
        return cls(**fields)


def train_accuracy(attrs: Mapping[str, Any]) -> float | None:
    """A trial's one ``train_acc``, the same in ``best``, ``status``, ``export`` and reports.

    The eval-mode accuracy on the training split (:data:`FINAL_TRAIN_ACC`, papers' "train
    accuracy") where the trial measured it; else the accuracy measured while training the best
    epoch (trials of older versions, training functions that report a ``train_acc`` curve).

    Example:
        >>> train_accuracy({"final_train_acc": 0.99, "train_acc": [0.8, 0.9], "best_epoch": 1})
        0.99
        >>> train_accuracy({"train_acc": [0.8, 0.9], "best_epoch": 1})
        0.8
    """
    final = attrs.get(FINAL_TRAIN_ACC)
    if isinstance(final, (int, float)) and not isinstance(final, bool):
        return float(final)
    curve, at = attrs.get(TRAIN_ACC), attrs.get(BEST_EPOCH)
    if not isinstance(curve, list) or not curve:
        return None
    value = curve[at - 1] if isinstance(at, int) and 1 <= at <= len(curve) else curve[-1]
    return float(value) if isinstance(value, (int, float)) else None
