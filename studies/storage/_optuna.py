"""The one module that touches Optuna's private storage API.

Optuna's public API covers ``Study.optimize``; sweeplab drives studies by ask/tell from a Ray
Tune searcher and writes many records per trial, which needs a trial's storage id, the RDB
backend behind Optuna's caching wrapper, its models and scoped sessions. Every such use is here,
each function the size of one idea, so an Optuna upgrade that moves them breaks one file, and
``tests/test_storage.py`` pins each function against a real SQLite database.

Everything else in sweeplab speaks of studies and trials (``optuna.Study``, ``optuna.Trial``,
``FrozenTrial``) and calls these functions.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

Trial = optuna.Trial | FrozenTrial


def optuna_tables() -> set[str]:
    """Every table an Optuna RDB storage may have (alembic's version table included)."""
    from optuna.storages._rdb import models

    return set(models.BaseModel.metadata.tables) | {"alembic_version"}


def backend_of(storage: optuna.storages.BaseStorage) -> optuna.storages.BaseStorage:
    """The storage behind Optuna's caching wrapper (``optuna.storages.get_storage`` adds one
    around every RDB storage), or ``storage`` itself."""
    return getattr(storage, "_backend", storage)


def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage a study was loaded from."""
    return study._storage


def study_id(study: optuna.Study) -> int:
    """The study's id in its storage."""
    return study._study_id


def trial_id(trial: Trial) -> int:
    """A trial's id in its storage (not its number, which counts within the study)."""
    return trial._trial_id


def engine_of(storage: optuna.storages.BaseStorage) -> Any:
    """The SQLAlchemy engine of an RDB storage; ``None`` for other storages."""
    return getattr(backend_of(storage), "engine", None)


def _rdb(study: optuna.Study) -> optuna.storages.RDBStorage | None:
    backend = backend_of(storage_of(study))
    return backend if isinstance(backend, optuna.storages.RDBStorage) else None


def write_user_attrs(study: optuna.Study, trial: Trial, attrs: Mapping[str, Any]) -> None:
    """Write several user attributes of a trial in one transaction where the storage allows it.

    A finished trial brings ~20 attributes (curves, facts), which Optuna's per-key path turns into
    two statements each, all on the driver's event loop; here it is one read of the trial and its
    attributes, then one batch of inserts.

    Raises:
        optuna.exceptions.UpdateFinishedTrialError: the trial has finished.
    """
    write_trial_records(study, trial, user_attrs=attrs)


#: A parameter as ``suggest_*`` stores it: name, internal value, distribution.
Param = tuple[str, float, optuna.distributions.BaseDistribution]


class _ParamBuffer:
    """A trial's storage while it is sampled: parameters are held, everything else goes through.

    ``Trial.suggest_*`` writes each parameter in its own transaction (a commit, a lookup of the
    trial, a check against the study's distributions); held here, they are written together by
    :func:`write_trial_records`.
    """

    def __init__(self, storage: optuna.storages.BaseStorage) -> None:
        self._storage = storage
        self.params: list[Param] = []

    def set_trial_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: optuna.distributions.BaseDistribution,
    ) -> None:
        self.params.append((param_name, param_value_internal, distribution))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)


@contextlib.contextmanager
def held_params(trial: optuna.Trial) -> Iterator[list[Param]]:
    """Hold the parameters ``trial.suggest_*`` stores inside the block, in the list it yields.

    The trial itself sees them at once (Optuna's ``Trial`` keeps its own copy); the database gets
    them when the caller passes the list to :func:`write_trial_records`.
    """
    real = trial.storage
    buffer = _ParamBuffer(real)
    trial.storage = buffer
    try:
        yield buffer.params
    finally:
        trial.storage = real


def write_trial_records(
    study: optuna.Study,
    trial: Trial,
    *,
    params: Sequence[Param] = (),
    user_attrs: Mapping[str, Any] | None = None,
    values: Mapping[int, float] | None = None,
) -> None:
    """Write a running trial's parameters, user attributes and intermediate values (``{step:
    value}``) in one transaction where the storage allows it.

    What ``suggest_*``, ``set_user_attr`` and ``report`` store, each checked as Optuna checks it
    (a parameter against the study's earlier distributions of that name), one commit for all.

    Raises:
        optuna.exceptions.UpdateFinishedTrialError: the trial has finished.
        ValueError: a parameter's distribution is incompatible with the study's.
    """
    rdb = _rdb(study)
    if rdb is None:
        storage = storage_of(study)
        for name, internal, distribution in params:
            storage.set_trial_param(trial_id(trial), name, internal, distribution)
        for key, value in (user_attrs or {}).items():
            storage.set_trial_user_attr(trial_id(trial), key, value)
        for step, value in (values or {}).items():
            storage.set_trial_intermediate_value(trial_id(trial), step, value)
        return
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    tid = trial_id(trial)
    with _create_scoped_session(rdb.scoped_session, True) as session:
        # The state alone, as Optuna checks it: loading the whole trial row costs more.
        found = (
            session.query(models.TrialModel.state)
            .filter(models.TrialModel.trial_id == tid)
            .one_or_none()
        )
        if found is None:
            raise KeyError(models.NOT_FOUND_MSG)
        rdb.check_trial_is_updatable(tid, found[0])
        for name, internal, distribution in params:
            _add_param(study, session, tid, name, internal, distribution)
        if user_attrs:
            _add_user_attrs(session, tid, user_attrs)
        if values:
            _add_intermediate_values(session, tid, values)


def _add_param(
    study: optuna.Study,
    session: Any,
    trial: int,
    name: str,
    internal: float,
    distribution: optuna.distributions.BaseDistribution,
) -> None:
    """What Optuna's ``set_trial_param`` adds, for the trial of id ``trial`` already checked.

    The distribution is checked against the study's earlier one of that name as Optuna's
    caching wrapper checks it: against the distribution the wrapper keeps per study, so the
    study's parameters are queried only for a name it has not seen, not once per parameter
    of every trial.
    """
    from optuna.distributions import (
        check_distribution_compatibility,
        distribution_to_json,
        json_to_distribution,
    )
    from optuna.storages._rdb import models

    seen = _seen_distributions(study)
    earlier = seen.get(name)
    if earlier is None:
        row = (
            session.query(models.TrialParamModel.distribution_json)
            .join(models.TrialModel)
            .filter(models.TrialModel.study_id == study_id(study))
            .filter(models.TrialParamModel.param_name == name)
            .first()
        )
        earlier = None if row is None else json_to_distribution(row[0])
    if earlier is not None:
        check_distribution_compatibility(earlier, distribution)
    seen.setdefault(name, earlier or distribution)
    session.add(
        models.TrialParamModel(
            trial_id=trial,
            param_name=name,
            param_value=internal,
            distribution_json=distribution_to_json(distribution),
        )
    )


def _seen_distributions(
    study: optuna.Study,
) -> dict[str, optuna.distributions.BaseDistribution]:
    """The distributions per parameter name Optuna's caching wrapper keeps for the study (what
    its own ``set_trial_param`` checks against); a throwaway dict where there is no wrapper."""
    cache = getattr(storage_of(study), "_studies", None)
    info = None if cache is None else cache.get(study_id(study))
    return getattr(info, "param_distribution", {})


def _add_user_attrs(session: Any, trial_id: int, attrs: Mapping[str, Any]) -> None:
    from optuna.storages._rdb import models

    model = models.TrialUserAttributeModel
    # Only the keys being written: a trial's other attributes (its curves among them) are
    # large, and loading them on every epoch's write cost more than the write.
    rows = session.query(model).filter(model.trial_id == trial_id, model.key.in_(list(attrs)))
    existing = {r.key: r for r in rows}
    for key, value in attrs.items():
        text = json.dumps(value)
        if key in existing:
            existing[key].value_json = text
        else:
            session.add(model(trial_id=trial_id, key=key, value_json=text))


def _add_intermediate_values(session: Any, trial_id: int, values: Mapping[int, float]) -> None:
    from optuna.storages._rdb import models

    model = models.TrialIntermediateValueModel
    existing = {
        r.step: r
        for r in session.query(model).filter(
            model.trial_id == trial_id, model.step.in_(list(values))
        )
    }
    for step, value in values.items():
        stored, kind = model.intermediate_value_to_stored_repr(value)
        if step in existing:
            existing[step].intermediate_value = stored
            existing[step].intermediate_value_type = kind
        else:
            session.add(
                model(
                    trial_id=trial_id,
                    step=step,
                    intermediate_value=stored,
                    intermediate_value_type=kind,
                )
            )


def write_intermediate_values(
    study: optuna.Study, trial: Trial, values: Mapping[int, float]
) -> None:
    """Write several epochs' objective values (``{step: value}``) in one transaction.

    What ``Trial.report`` stores, one commit for a batch of epochs instead of one per epoch.
    """
    write_trial_records(study, trial, values=values)


def count_by_state(study: optuna.Study) -> dict[TrialState, int]:
    """Trials per state, every state present, in one ``COUNT ... GROUP BY`` where possible.

    One statement, so the counts are one snapshot: counting state by state, a trial that another
    driver finishes between two reads is counted in neither. Optuna's ``get_n_trials`` would also
    load every unfinished trial (parameters, curves, attributes) once per state.
    """
    rdb = _rdb(study)
    if rdb is None:
        storage = storage_of(study)
        return {state: storage.get_n_trials(study_id(study), state) for state in TrialState}
    import sqlalchemy
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    counts = dict.fromkeys(TrialState, 0)
    with _create_scoped_session(rdb.scoped_session) as session:
        rows = (
            session.query(models.TrialModel.state, sqlalchemy.func.count())
            .filter(models.TrialModel.study_id == study_id(study))
            .group_by(models.TrialModel.state)
        )
        for state, n in rows:
            counts[state] = n
    return counts


def ask_new(study: optuna.Study) -> optuna.Trial:
    """``study.ask()`` for a caller that has counted no enqueued (WAITING) trial in the study.

    Optuna's ``ask`` first reads every waiting trial of the study (a query, and a trial object
    for each unfinished trial); a budget that has just counted the states under the study's lock
    knows there is none. Like ``ask``, it drops the study's trial cache, so the sampler reads the
    history once, afresh, for this trial.
    """
    study._thread_local.cached_all_trials = None
    storage = storage_of(study)
    new_id = storage.create_new_trial(study_id(study))
    # Optuna's caching wrapper keeps the trial it just created; ``optuna.Trial`` would read it
    # back from the database all the same (the cache answers only for finished trials).
    cached = _cached_trial(storage, new_id)
    if cached is None:
        return optuna.Trial(study, new_id)
    study._storage = _Knowing(storage, cached)
    try:
        trial = optuna.Trial(study, new_id)
    finally:
        study._storage = storage
    trial.storage = storage
    return trial


def _cached_trial(storage: optuna.storages.BaseStorage, trial_id: int) -> FrozenTrial | None:
    """A copy of the trial as Optuna's caching wrapper holds it, or ``None``."""
    known = getattr(storage, "_trial_id_to_study_id_and_number", None)
    studies = getattr(storage, "_studies", None)
    if known is None or studies is None or trial_id not in known:
        return None
    sid, number = known[trial_id]
    trial = getattr(studies.get(sid), "trials", {}).get(number)
    # A copy: the new trial changes its own as it is sampled.
    return copy.deepcopy(trial) if trial is not None else None


class _Knowing:
    """A storage that answers ``get_trial`` for one trial from memory, the rest from behind."""

    def __init__(self, storage: optuna.storages.BaseStorage, trial: FrozenTrial) -> None:
        self._storage, self._trial = storage, trial

    def get_trial(self, trial_id: int) -> FrozenTrial:
        if trial_id == self._trial._trial_id:
            return self._trial
        return self._storage.get_trial(trial_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)


def tell(
    study: optuna.Study,
    trial: Trial,
    value: float | Sequence[float] | None = None,
    state: TrialState | None = None,
) -> TrialState:
    """``study.tell(trial, value, state=state, skip_if_finished=True)``, returning the state the
    trial ended in rather than the trial read back.

    Optuna's ``tell`` reads the trial once to check and tell it, then again to return a copy; a
    driver that needs the told trial only now and then reads it with :func:`reload` then.
    """
    from optuna.study._tell import _tell_with_warning

    told, _values, _message = _tell_with_warning(
        study, trial, value, state=state, skip_if_finished=True
    )
    return told


def stamp_started(study: optuna.Study, trial: Trial, system_attrs: Mapping[str, Any]) -> None:
    """Set a new trial's system attributes and its first heartbeat, in one transaction where the
    storage allows it."""
    rdb = _rdb(study)
    if rdb is None:
        for key, value in system_attrs.items():
            set_system_attr(study, trial, key, value)
        record_heartbeat(study, trial)
        return
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(rdb.scoped_session, True) as session:
        for key, value in system_attrs.items():
            rdb._set_trial_attr_without_commit(
                session, models.TrialSystemAttributeModel, trial_id(trial), key, value
            )
        if models.TrialHeartbeatModel.where_trial_id(trial_id(trial), session) is None:
            session.add(models.TrialHeartbeatModel(trial_id=trial_id(trial)))


def set_system_attr(study: optuna.Study, trial: Trial, key: str, value: Any) -> None:
    """Set one system attribute of a trial."""
    storage_of(study).set_trial_system_attr(trial_id(trial), key, value)


def set_param(
    study: optuna.Study,
    trial: Trial,
    name: str,
    value: Any,
    distribution: optuna.distributions.BaseDistribution,
) -> None:
    """Record a parameter value on a running trial, as ``suggest_*`` would, without sampling."""
    internal = distribution.to_internal_repr(value)
    storage_of(study).set_trial_param(trial_id(trial), name, internal, distribution)


def set_state(study: optuna.Study, trial: Trial, state: TrialState) -> bool:
    """Finish a trial with ``state`` and no value; ``False`` if it had finished already."""
    return storage_of(study).set_trial_state_values(trial_id(trial), state=state)


def record_heartbeat(study: optuna.Study, trial: Trial) -> None:
    """Record that the trial's driver is alive now."""
    storage_of(study).record_heartbeat(trial_id(trial))


def reload(study: optuna.Study, trial: Trial) -> FrozenTrial:
    """The trial as the storage has it now."""
    return storage_of(study).get_trial(trial_id(trial))


def trial_by_number(study: optuna.Study, number: int) -> FrozenTrial:
    """The study's trial with that number."""
    storage = storage_of(study)
    return storage.get_trial(
        storage.get_trial_id_from_study_id_trial_number(study_id(study), number)
    )


def stale_trials(study: optuna.Study, running: Collection[FrozenTrial]) -> set[int]:
    """Numbers of the ``running`` trials whose heartbeat is older than the grace period."""
    stale = set(storage_of(study)._get_stale_trial_ids(study_id(study)))
    return {t.number for t in running if trial_id(t) in stale}


def never_beat(study: optuna.Study, running: Collection[FrozenTrial], grace_s: float) -> set[int]:
    """Numbers of the ``running`` trials that started over ``grace_s`` ago and never had a
    heartbeat (Optuna's stale rule only covers trials that had one)."""
    now = datetime.datetime.now()
    grace = datetime.timedelta(seconds=grace_s)
    old = {
        trial_id(t): t.number
        for t in running
        if t.datetime_start and now - t.datetime_start > grace
    }
    rdb = _rdb(study)
    if not old or rdb is None:
        return set()
    from optuna.storages._rdb import models

    model = models.TrialHeartbeatModel
    session = rdb.scoped_session()
    try:
        beating = {i for (i,) in session.query(model.trial_id).filter(model.trial_id.in_(old))}
    finally:
        session.close()
    return {number for i, number in old.items() if i not in beating}
