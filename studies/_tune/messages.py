"""The keys of the messages between the driver and the Ray workers, defined once.

Two messages cross the process boundary, both plain dicts (Ray pickles them):

- a trial's **config**, from the searcher's ``suggest`` to the trainable: :data:`PARAMS` (the
  sampled configuration), :data:`SEED` (its training seed), :data:`NUMBER` (its Optuna trial
  number); a pack's config is :data:`MEMBERS`, a list of such configs, plus the first member's
  :data:`NUMBER`;
- a **report**, from the trainable through ``ray.tune.report`` to the searcher: an epoch's
  metrics (the fields of :class:`sweeplab.trainer.EpochReport`, :data:`EPOCH` and
  :data:`IS_LAST` among them), the worker's facts
  (:func:`~sweeplab.studies._tune.worker.worker_facts`: :data:`PID`, :data:`NODE_IP`...),
  earlier epochs not sent yet (:data:`EARLIER_EPOCHS`), or a failure (:data:`ERROR` and
  :data:`FAIL_REASON`). A pack's report is :data:`MEMBERS`, one such report per member, each
  with its :data:`NUMBER` and, on its last, :data:`MEMBER_DONE`.

Facts and final metrics keep their names when the searcher stores them
(:data:`sweeplab.studies.records.FINAL_KEYS`), so those keys are the records' own.
"""

from __future__ import annotations

from sweeplab.studies import records

# ---- a trial's config (driver -> worker) ---------------------------------------------------------
PARAMS = "params"
SEED = "seed"
NUMBER = "number"
#: A pack: the configs of its members (and, in its reports, one report per member).
MEMBERS = "members"
#: The checkpoint a re-run trial continues from (an ArtifactRecord's dict), when it has one.
RESUME_FROM = records.RESUME_FROM

# ---- a report (worker -> driver) -----------------------------------------------------------------
EPOCH = "epoch"
IS_LAST = "is_last"
BEST_VALUE = "best_value"
#: Earlier epochs of the trial not reported yet, oldest first (each an epoch's metrics).
EARLIER_EPOCHS = "earlier_epochs"
#: A failed trial's message and :class:`~sweeplab.studies.records.FailReason` value.
ERROR = records.ERROR
FAIL_REASON = records.FAIL_REASON
#: The worker process and its node: where an operator (or a fault test) finds the trial.
PID = "pid"
NODE_IP = records.NODE_IP
#: A pack member's final report (it finished, was pruned, or failed).
MEMBER_DONE = "member_done"
#: The names of an epoch's metrics that are curves (a training function's own; the built-in
#: loop's are :data:`~sweeplab.studies.records.CURVE_KEYS`).
CURVE_NAMES = "curve_names"
#: A training function's final metrics, as ``[name, value]`` pairs (Tune flattens a dict).
FINAL_METRICS = records.FINAL_METRICS
#: A failed trial's traceback (the user's code raised).
TRACEBACK = records.TRACEBACK
#: A checkpoint or the final weights the worker saved, as the JSON text of an ArtifactRecord's
#: dict (Tune flattens nested dicts in results). A checkpoint saved in the middle of an epoch
#: comes alone, in a report without :data:`EPOCH`.
CHECKPOINT = records.CHECKPOINT
WEIGHTS = records.WEIGHTS
#: Where a re-run trial continued from (JSON text of ``{"epoch", "step"[, "why"]}``).
RESUMED_AT = records.RESUMED_AT
#: What went wrong with the trial's artifacts (it trained on without them).
ARTIFACT_NOTE = records.ARTIFACT_NOTE
