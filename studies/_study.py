"""A sweeplab study inside an Optuna storage: create it, reload it, check a spec against it.

The spec a study was started with is stored in the study's user attributes, so ``resume``
and ``report`` need nothing but the database, and a later ``run`` of a changed spec is refused
with a list of what differs (except for how much to run and how: budget size, concurrency,
resources, storage, which may change between runs).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import optuna

from sweeplab import searchspace
from sweeplab.studies import records
from sweeplab.studies._spec import StudySpec, spec_from_dict
from sweeplab.studies._tpe import BoundedTPESampler
from sweeplab.studies.asha import judged_rungs
from sweeplab.studies.errors import SpecConflict
from sweeplab.studies.storage import (
    absolute_url,
    describe_storage,
    load_study,
    resolve_location,
    storage_url,
)

# Parts of a spec that define what a trial *means*; changing them mid-study mixes incomparable
# trials, so a resume with a different value is refused.
_IDENTITY = ("data", "model", "trainable", "space", "early_stopping")
_IDENTITY_KEYS = (("study", "objective"), ("budget", "max_epochs"))


def make_sampler(spec: StudySpec, n_existing: int) -> optuna.samplers.BaseSampler:
    """The spec's sampler, seeded so a resumed run does not replay the first run's draws.

    Its random state is also reseeded for every trial from (seed, trial number): two drivers
    that start one study at the same moment build identically seeded samplers, and would
    otherwise draw the same configurations side by side; trial numbers are unique in a study,
    so their draws differ, and a single driver stays reproducible.
    """
    return _seeded_per_trial(_make_sampler(spec, n_existing), spec.study.seed + n_existing)


def _seeded_per_trial(
    sampler: optuna.samplers.BaseSampler, seed: int
) -> optuna.samplers.BaseSampler:
    # Optuna's samplers keep their draws in ``_rng`` (a lazily built numpy RandomState); the
    # TPE keeps a random sampler for its start-up trials, CMA-ES a TPE for what it cannot model.
    parts, todo = [], [sampler]
    while todo:
        part = todo.pop()
        parts.append(part)
        todo += [getattr(part, n) for n in ("_random_sampler", "_independent_sampler")
                 if getattr(part, n, None) is not None]  # fmt: skip
    states = [p._rng for p in parts if hasattr(getattr(p, "_rng", None), "rng")]
    before_trial = sampler.before_trial

    def reseeding_before_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        entropy = np.random.SeedSequence([seed, trial.number]).generate_state(1)[0]
        for state in states:
            state.rng.seed(int(entropy))
        before_trial(study, trial)

    sampler.before_trial = reseeding_before_trial  # type: ignore[method-assign]
    return sampler


def _make_sampler(spec: StudySpec, n_existing: int) -> optuna.samplers.BaseSampler:
    seed = spec.study.seed + n_existing
    search = spec.search
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if search.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if search.sampler == "grid":
            return _AskTellGridSampler(searchspace.grid(spec.space), seed=seed)
        if search.sampler == "nsga2":
            # Its first generation is random: population_size trials, as n_startup_trials are
            # for TPE (at least 2, Optuna's minimum).
            return optuna.samplers.NSGAIISampler(
                seed=seed, population_size=max(2, search.n_startup_trials)
            )
        rungs: tuple[int, ...] = ()
        if search.rung_model:
            # The scheduler's rungs and the top, where complete trials end (the spec refuses a
            # rung model without a scheduler).
            rungs = (*judged_rungs(spec), spec.budget.max_epochs)
        tpe = BoundedTPESampler(
            window=search.history_window,
            rungs=rungs,
            min_points=len(spec.space.searched) + 1,
            seed=seed,
            n_startup_trials=search.n_startup_trials,
            # Conditional spaces: `group` models each set of co-occurring parameters jointly.
            multivariate=True,
            group=True,
            # Concurrent trials: pending ones count as bad, so parallel asks spread out.
            constant_liar=True,
        )
        if search.sampler == "cmaes":
            return optuna.samplers.CmaEsSampler(
                seed=seed,
                n_startup_trials=search.n_startup_trials,
                independent_sampler=tpe,
                warn_independent_sampling=False,
            )
        return tpe


class _AskTellGridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler, minus its ``study.stop()`` once the grid is covered: that call
    only works inside ``Study.optimize`` and raises under ask/tell. The run caps ``n_trials``
    at the grid's size instead."""

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        return None


def open_study(spec: StudySpec, storage: optuna.storages.BaseStorage) -> optuna.Study:
    """Create the spec's study, or load it after checking the spec still matches it.

    Raises:
        SpecConflict: the stored study was started with a different space/data/model/objective.
    """
    name, directions = spec.study.name, list(spec.study.directions)
    existing = {s.study_name: s for s in storage.get_all_studies()}
    if name in existing:
        stored = existing[name].user_attrs.get(records.SPEC)
        stored_directions = [d.name.lower() for d in existing[name].directions]
        n_existing = len(
            storage.get_all_trials(storage.get_study_id_from_name(name), deepcopy=False)
        )
        if stored is None and (n_existing or existing[name].user_attrs):
            # Not sweeplab's: stamping a spec on it would mislabel its objective and leave it
            # half one thing, half the other. (An empty study with no attributes is one a run
            # created and was stopped before it wrote the spec.)
            raise SpecConflict(
                f"study {name!r} in {describe_storage(storage)} was not created by sweeplab "
                "(it has no stored spec); sweeplab does not run trials into it: give the run "
                "another study name ([study] name)"
            )
        if stored is not None:
            differences = spec_differences(_normalised(stored), spec.to_dict())
            if stored_directions != directions:
                differences.insert(
                    0,
                    f"study.direction: stored {_one_or_list(stored_directions)}, spec "
                    f"{_one_or_list(directions)}",
                )
            if differences:
                raise SpecConflict(
                    f"study {name!r} in {describe_storage(storage)} was started with a "
                    "different spec:\n  " + "\n  ".join(differences)
                    + "\nrun it under another study name ([study] name), or restore those "
                    "values to resume it"
                )  # fmt: skip
    else:
        n_existing = 0
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        directions=directions,
        sampler=make_sampler(spec, n_existing),
        load_if_exists=True,
    )
    study.set_user_attr(records.SPEC, spec.to_dict())
    study.set_user_attr(records.OBJECTIVE, spec.study.objective)
    # Where its checkpoints and weights are: this run's folder (a study moved with its folder
    # finds its files again).
    location = resolve_location(absolute_url(spec.study.storage), spec.study.artifacts)
    study.set_user_attr(records.ARTIFACTS, location)
    # The objective's own name in Optuna's records too: optuna-dashboard labels its plots with it
    # (instead of "Objective 0").
    if study.metric_names != list(spec.study.objectives):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(spec.study.objectives))
    return study


def _one_or_list(directions: list[str]) -> str:
    return directions[0] if len(directions) == 1 else str(directions)


def _normalised(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored spec with every key a spec has now: a study started by an older sweeplab (which
    had no ``[trainable]`` section, no ``factory`` keys) is compared on what it meant."""
    try:
        return spec_from_dict(_drop_nones(stored)).to_dict()
    except Exception:
        return stored


def stored_spec(storage: str | optuna.storages.BaseStorage, name: str) -> StudySpec:
    """The spec a study was last run with, from the database alone.

    Args:
        storage: the database's URL, or the storage opened from it.
        name: the study.

    Raises:
        StorageError, StudyNotFound: see :func:`sweeplab.studies.storage.load_study`.
        SpecConflict: the study was not created by sweeplab.
    """
    study = load_study(storage, name, read_only=True)
    where = describe_storage(storage)
    raw = study.user_attrs.get(records.SPEC)
    if raw is None:
        raise SpecConflict(
            f"study {name!r} in {where} was not created by sweeplab (it has no stored "
            "spec); run it with a spec file instead"
        )
    raw = _drop_nones(raw)
    url = storage_url(storage)
    if url is not None:  # where it is now, which may not be where it was created
        raw["study"]["storage"] = url
    return spec_from_dict(raw, source=f"study {name!r} (stored spec)")


def spec_differences(stored: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The dotted keys where two spec dicts differ in what defines a trial."""
    out: list[str] = []
    for section in _IDENTITY:
        _diff(stored.get(section), new.get(section), section, out)
    for section, key in _IDENTITY_KEYS:
        _diff(
            stored.get(section, {}).get(key), new.get(section, {}).get(key), f"{section}.{key}", out
        )
    return out


def _diff(a: Any, b: Any, path: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            _diff(a.get(key), b.get(key), f"{path}.{key}", out)
    elif a != b:
        out.append(f"{path}: stored {_show(a)}, spec {_show(b)}")


def _show(value: Any) -> str:
    return "(absent)" if value is None else repr(value)


def _drop_nones(value: Any) -> Any:
    """Stored specs are JSON: an unset optional is ``null``, which TOML-shaped validation
    would reject; dropping it restores the default."""
    if isinstance(value, dict):
        return {k: _drop_nones(v) for k, v in value.items() if v is not None}
    return value
