"""Ablation plans: the components of a search space, their "off" values, and the variants.

Pure functions of a space and a baseline configuration; :mod:`.run` runs a plan.

What a component is, and its "off" value, comes from the study's stored spec alone:

- every searched entry of ``[space]`` is a component (``lr``, ``optimizer``, ``dropout``...),
  switched off by setting the trainer's catalog default (``trainer.HYPERPARAMETERS``: dropout 0,
  weight decay 0, init ``default``, optimizer ``adam``...). Entries whose default is no real
  "off" (``lr`` 0.001, ``batch_size`` 64) are components too: off means the default value;
- each element of a ``subset`` entry is its own on/off component (``augment.crop``);
- a conditional entry follows the component(s) of its parents and is no component itself: with
  ``optimizer`` reverted, ``momentum`` is dropped and ``beta2`` (active for Adam) takes its
  default. It keeps the baseline's value only while all of its parents' components do.

The modes (Fawcett & Hoos 2016, "Analysing differences between algorithm configurations through
ablation", call the first two leave-one-out and add-one-in):

- ``loo``: ``baseline`` (the configuration itself), then ``-C`` for each component C reverted;
- ``add``: ``default`` (every component off), then ``+C`` for each component C switched on
  alone, at the baseline's value;
- ``grid``: every on/off combination of the named components, the others at the baseline's
  value: ``baseline`` (all on), ``augment.crop=on,weight_decay=off``...
- ``seeds``: the baseline alone, K times: the run-to-run noise every other difference is to be
  set against.

Fawcett & Hoos's greedy ablation ``path`` is planned step by step from the results of the step
before (:mod:`.path`), not here.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sweeplab import searchspace, trainer
from sweeplab.studies.errors import InvalidArgument
from sweeplab.studies.records import ABLATION_MODES

#: The modes :func:`plan_ablation` plans up front (of :data:`~records.ABLATION_MODES`; the path
#: is planned step by step in :mod:`.path`).
PLANNED_MODES = tuple(mode for mode in ABLATION_MODES if mode != "path")
#: A grid over more components than this (2^6 = 64 variants x seeds) is refused.
MAX_GRID_COMPONENTS = 6

# The variant every other one is compared with, per mode.
_REFERENCE = {"loo": "baseline", "add": "default", "grid": "baseline", "seeds": "baseline"}


@dataclass(frozen=True, kw_only=True)
class Component:
    """One on/off switch of an ablation: a searched space entry, or one element of a subset.

    Attributes:
        name: ``lr``, or ``augment.crop`` for an element of the subset ``augment``.
        param: the space entry it sets (``augment``).
        element: the subset element (``crop``); ``None`` for an entry of its own.
    """

    name: str
    param: str
    element: str | None = None


@dataclass(frozen=True, kw_only=True)
class Variant:
    """One configuration of an ablation.

    Attributes:
        name: ``baseline``, ``-dropout``, ``+augment.mixup``, ``augment.crop=on,lr=off``.
        on: the components at the baseline's value; every other one is off.
        config: what the trainer gets (subset entries as a list, inactive entries absent).
        params: the same as stored Optuna parameters (subset elements as booleans).
        attrs: further user attributes its trials carry (a path step's ``step``...).
    """

    name: str
    on: frozenset[str]
    config: dict[str, Any]
    params: dict[str, Any]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class AblationPlan:
    """The variants of an ablation and the seeds each one is trained with.

    Example:
        >>> from sweeplab.searchspace import parse_space
        >>> space = parse_space({
        ...     "lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True},
        ...     "dropout": {"type": "float", "low": 0.0, "high": 0.5},
        ...     "augment": {"type": "subset", "choices": ["crop", "noise"]},
        ... })
        >>> baseline = {"lr": 0.01, "dropout": 0.2, "augment": ["crop"]}
        >>> plan = plan_ablation(space, baseline, mode="loo", seeds=[0, 1])
        >>> [v.name for v in plan.variants]
        ['baseline', '-lr', '-dropout', '-augment.crop']
        >>> plan.unchanged, plan.variants[2].config
        (('augment.noise',), {'lr': 0.01, 'dropout': 0.0, 'augment': ['crop']})
        >>> len(plan.pairs), plan.pairs[1][0].name, plan.pairs[1][1]
        (8, '-lr', 0)

    Attributes:
        mode: ``loo``, ``add``, ``grid``, ``seeds`` (or ``path``, one step at a time).
        reference: the variant the others are compared with (``baseline``; ``default`` in add).
        components: the components ablated, in space order.
        unchanged: components asked for that the baseline already has off (nothing to ablate).
        variants: the reference first.
        seeds: the training seeds, the same for every variant (paired comparisons).
        choices: per Optuna parameter, the values it takes in any variant (its default and its
            baseline value): the categorical distribution it is stored with.
    """

    mode: str
    reference: str
    components: tuple[str, ...]
    unchanged: tuple[str, ...]
    variants: tuple[Variant, ...]
    seeds: tuple[int, ...]
    choices: dict[str, tuple[Any, ...]]

    @property
    def pairs(self) -> list[tuple[Variant, int]]:
        """Every (variant, seed), seed-major: an interrupted run has whole seeds first."""
        return [(v, s) for s in self.seeds for v in self.variants]


# --- components and their values ----------------------------------------------------------------


def _has_default(p: searchspace.Param) -> bool:
    """Whether an entry has an "off" value: the trainer's catalog default, a declared
    ``default``, or (a subset) no element at all."""
    return (
        p.name in trainer.HYPERPARAMETERS
        or p.default is not None
        or isinstance(p, searchspace.SubsetParam)
    )


def _default(p: searchspace.Param, baseline: Mapping[str, Any]) -> Any:
    """An entry's "off" value. A user's own hyperparameter declared without ``default`` has
    none: it keeps the baseline's value in every variant (and is no component)."""
    row = trainer.HYPERPARAMETERS.get(p.name)
    if row is not None:  # None (lr, rho): unset, so the trainer takes the optimizer's own
        return list(row.default) if isinstance(row.default, tuple) else row.default
    value = p.default
    if value is None and isinstance(p, searchspace.SubsetParam):
        value = ()
    if value is None:
        if p.name not in baseline:
            raise InvalidArgument(
                "baseline",
                f"`{p.name}` has no default to start from: declare one in its [space.{p.name}] "
                'entry (`default = ...`, its "off" value), or ablate a trial\'s configuration',
            )
        return baseline[p.name]
    return list(value) if isinstance(value, tuple) else value


def _owners(space: searchspace.SearchSpace) -> dict[str, frozenset[str]]:
    """For each non-subset entry, the components whose state it follows.

    A conditional entry follows the components of its searched parents (for a subset parent,
    the elements its condition names); an entry with no searched parent is its own component.
    """
    owners: dict[str, frozenset[str]] = {}
    for p in space:  # dependency order: parents first
        if isinstance(p, (searchspace.FixedParam, searchspace.SubsetParam)):
            owners[p.name] = frozenset()
            continue
        inherited: set[str] = set()
        for condition in p.when:
            parent = space[condition.parent]
            if isinstance(parent, searchspace.SubsetParam):
                inherited |= {parent.flag(v) for v in condition.values if v in parent.choices}
            else:
                inherited |= owners[parent.name]
        owners[p.name] = frozenset(inherited) or frozenset({p.name})
    return owners


def find_components(space: searchspace.SearchSpace) -> tuple[Component, ...]:
    """The components of a space, in space order (subset elements in their listed order)."""
    owners = _owners(space)
    out: list[Component] = []
    for p in space.searched:
        if isinstance(p, searchspace.SubsetParam):
            out += [Component(name=p.flag(c), param=p.name, element=c) for c in p.choices]
        elif owners[p.name] == {p.name} and _has_default(p):
            out.append(Component(name=p.name, param=p.name))
    return tuple(out)


def variant_config(
    space: searchspace.SearchSpace, baseline: Mapping[str, Any], on: Iterable[str]
) -> dict[str, Any]:
    """The configuration with the components ``on`` at the baseline's value, the rest off.

    Entries are walked in dependency order, so a child exists only where its parents' values
    make it active; it takes the baseline's value when all of its owning components are on,
    else its catalog default.
    """
    on = frozenset(on)
    owners = _owners(space)
    config: dict[str, Any] = {}
    for p in space:
        if not p.is_active(config):
            continue
        if isinstance(p, searchspace.FixedParam):
            config[p.name] = list(p.value) if isinstance(p.value, tuple) else p.value
        elif isinstance(p, searchspace.SubsetParam):
            chosen, off = baseline.get(p.name, []), _default(p, baseline)
            config[p.name] = [
                c for c in p.choices if (c in chosen if p.flag(c) in on else c in off)
            ]
        elif p.name in baseline and owners[p.name] <= on:
            config[p.name] = baseline[p.name]
        else:
            config[p.name] = _default(p, baseline)
    return config


def default_config(space: searchspace.SearchSpace) -> dict[str, Any]:
    """Every searched entry at its catalog default (fixed entries at their value)."""
    return variant_config(space, {}, ())


def optuna_params(space: searchspace.SearchSpace, config: Mapping[str, Any]) -> dict[str, Any]:
    """A configuration as the flat parameters :func:`searchspace.sample` stores.

    Example:
        >>> from sweeplab.searchspace import parse_space
        >>> space = parse_space({"augment": {"type": "subset", "choices": ["crop", "noise"]},
        ...                      "activation": "tanh"})
        >>> optuna_params(space, {"augment": ["noise"], "activation": "tanh"})
        {'augment.crop': False, 'augment.noise': True}
    """
    params: dict[str, Any] = {}
    for p in space.searched:
        if p.name not in config:
            continue
        if isinstance(p, searchspace.SubsetParam):
            params.update({p.flag(c): c in config[p.name] for c in p.choices})
        else:
            params[p.name] = config[p.name]
    return params


def parameter_choices(
    space: searchspace.SearchSpace, baseline: Mapping[str, Any]
) -> dict[str, tuple]:
    # Optuna refuses a categorical parameter whose choices differ between trials of a study, so
    # each parameter gets one distribution: every value any variant can give it.
    out: dict[str, tuple] = {}
    for p in space.searched:
        if isinstance(p, searchspace.SubsetParam):
            out.update({p.flag(c): (False, True) for c in p.choices})
            continue
        values = [_default(p, baseline)]
        if p.name in baseline and baseline[p.name] not in values:
            values.append(baseline[p.name])
        out[p.name] = tuple(values)
    return out


# --- the plan ------------------------------------------------------------------------------------


def select_components(
    space: searchspace.SearchSpace, names: Sequence[str] | None
) -> tuple[Component, ...]:
    """The named components in space order (all of them for ``None``).

    Raises:
        InvalidArgument: an unknown name, with the closest match and the valid names.
    """
    known = find_components(space)
    if not names:
        return known
    valid = [c.name for c in known]
    for name in names:
        if name not in valid:
            raise InvalidArgument(
                "components",
                f"unknown component {name!r}{searchspace.closest(name, valid)} "
                f"(components of this study: {', '.join(valid)})",
            )
    return tuple(c for c in known if c.name in set(names))


def plan_ablation(
    space: searchspace.SearchSpace,
    baseline: Mapping[str, Any],
    *,
    mode: str,
    seeds: Sequence[int],
    components: Sequence[str] | None = None,
) -> AblationPlan:
    """The variants of an ablation of ``baseline`` (see the module docstring for the modes).

    A component the baseline already has off changes nothing in its mode; it is left out and
    listed in ``unchanged``.

    Raises:
        InvalidArgument: an unknown mode or component name, no seed, or a grid over more than
            :data:`MAX_GRID_COMPONENTS` components.
    """
    if mode not in PLANNED_MODES:
        raise InvalidArgument("mode", f"must be one of {', '.join(PLANNED_MODES)}; got {mode!r}")
    if not seeds:
        raise InvalidArgument("seeds", "an ablation needs at least one seed")
    every = frozenset(c.name for c in find_components(space))
    chosen = [c.name for c in select_components(space, components)]

    def config(on: Iterable[str]) -> dict[str, Any]:
        return variant_config(space, baseline, on)

    if mode == "seeds":
        if components:
            raise InvalidArgument(
                "components", "mode seeds re-runs the baseline as it is; name no components"
            )
        # Nothing is switched: the baseline, once per seed.
        cfg = config(every)
        return AblationPlan(
            mode=mode,
            reference=_REFERENCE[mode],
            components=(),
            unchanged=(),
            variants=(
                Variant(name="baseline", on=every, config=cfg, params=optuna_params(space, cfg)),
            ),
            seeds=tuple(seeds),
            choices=parameter_choices(space, baseline),
        )
    if mode == "add":
        changes = {c: config({c}) != config(()) for c in chosen}
    else:
        changes = {c: config(every - {c}) != config(every) for c in chosen}
    ablated = tuple(c for c in chosen if changes[c])
    unchanged = tuple(c for c in chosen if not changes[c])

    named: list[tuple[str, frozenset[str]]]
    if mode == "loo":
        named = [("baseline", every), *((f"-{c}", every - {c}) for c in ablated)]
    elif mode == "add":
        named = [("default", frozenset()), *((f"+{c}", frozenset({c})) for c in ablated)]
    else:
        if len(ablated) > MAX_GRID_COMPONENTS:
            raise InvalidArgument(
                "components",
                f"mode grid over {len(ablated)} components makes {2 ** len(ablated)} variants; "
                f"name at most {MAX_GRID_COMPONENTS} (of: {', '.join(ablated)})",
            )
        named = []
        for flags in itertools.product((True, False), repeat=len(ablated)):
            state = dict(zip(ablated, flags, strict=True))
            on = (every - set(ablated)) | {c for c, f in state.items() if f}
            cells = ",".join(f"{c}={'on' if f else 'off'}" for c, f in state.items())
            named.append(("baseline" if all(flags) else cells, frozenset(on)))
    variants = []
    for name, on in named:
        cfg = config(on)
        variants.append(Variant(name=name, on=on, config=cfg, params=optuna_params(space, cfg)))
    return AblationPlan(
        mode=mode,
        reference=_REFERENCE[mode],
        components=ablated,
        unchanged=unchanged,
        variants=tuple(variants),
        seeds=tuple(seeds),
        choices=parameter_choices(space, baseline),
    )
