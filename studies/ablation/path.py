"""The greedy ablation path (Fawcett & Hoos 2016), planned one step at a time.

Fawcett & Hoos, "Analysing differences between algorithm configurations through ablation"
(J. Heuristics 22, 2016), walk from a *source* configuration to a *target* one: at each step
every parameter still at its source value is flipped to its target value, one at a time, and the
flip that helps the objective most is kept. Here:

- the source is the default configuration (every component off: ``default``);
- the target is the baseline (``--baseline``, normally the best trial) with the chosen
  components on, the others off; with no ``--components`` that is the baseline itself;
- a component is what :mod:`.plan` says (a searched entry, or one element of a
  subset), and flipping it brings its conditional children: ``optimizer`` to ``sgd`` brings the
  target's ``momentum`` and drops Adam's ``beta2``.

The state after step i is the set of i components switched on, so a configuration is named by
that set in component order (``default``, ``+lr``, ``+lr+optimizer``): the order the path took
them in changes nothing about the configuration. Its trials carry user attributes ``variant``,
``seed``, ``step`` (the set's size), ``component`` (the one flipped), ``source`` (the variant it
was flipped from) and ``change`` (the entries it changed: name -> new value, ``None`` for one
dropped).

Which candidate wins a step is decided by :func:`analysis.greedy_path` from the trials in the
database, by the runner (:mod:`.run`) and by the report alike, so the two cannot
disagree and a crashed run picks up where the database says it stopped.

Cost: with d components, ``1 + d (d + 1) / 2`` configurations (the source, then d, d - 1, ...,
1 candidates), each trained K times.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sweeplab import searchspace
from sweeplab.studies import records
from sweeplab.studies.ablation.plan import (
    AblationPlan,
    Variant,
    optuna_params,
    parameter_choices,
    select_components,
    variant_config,
)
from sweeplab.studies.errors import InvalidArgument, UsageError

#: The name of the path's first configuration, every component off.
SOURCE = "default"


def path_cost(d: int) -> int:
    """Configurations on a full path over ``d`` components: the source and d + (d-1) + ... + 1.

    Example:
        >>> [path_cost(d) for d in (0, 1, 2, 3, 9)]
        [1, 2, 4, 7, 46]
    """
    return 1 + d * (d + 1) // 2


def path_name(on: frozenset[str], order: Sequence[str]) -> str:
    """A path configuration's variant name: the components it has on, in component order.

    Example:
        >>> path_name(frozenset({"optimizer", "lr"}), ["lr", "optimizer", "dropout"])
        '+lr+optimizer'
        >>> path_name(frozenset(), ["lr"])
        'default'
    """
    return "".join(f"+{c}" for c in order if c in on) or SOURCE


def path_components(
    space: searchspace.SearchSpace,
    target: Mapping[str, Any],
    components: Sequence[str] | None,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The components the path flips, and those asked for that the target has off already.

    Raises:
        InvalidArgument: an unknown component name.
    """
    chosen = [c.name for c in select_components(space, components)]
    source = variant_config(space, target, ())  # every component off
    differs = {c: variant_config(space, target, {c}) != source for c in chosen}
    return (
        tuple(c for c in chosen if differs[c]),
        tuple(c for c in chosen if not differs[c]),
    )


def _change(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    # In configuration order: the flipped entry first, then its children.
    changed = {k: v for k, v in after.items() if k not in before or before[k] != v}
    changed.update({k: None for k in before if k not in after})
    return changed


def _variant(
    space: searchspace.SearchSpace,
    target: Mapping[str, Any],
    on: frozenset[str],
    order: Sequence[str],
    attrs: dict[str, Any],
) -> Variant:
    config = variant_config(space, target, on)
    return Variant(
        name=path_name(on, order),
        on=on,
        config=config,
        params=optuna_params(space, config),
        attrs={records.STEP: len(on), **attrs},
    )


def source_variant(
    space: searchspace.SearchSpace, target: Mapping[str, Any], order: Sequence[str]
) -> Variant:
    """Step 0: the default configuration."""
    return _variant(space, target, frozenset(), order, {})


def path_candidates(
    space: searchspace.SearchSpace,
    target: Mapping[str, Any],
    order: Sequence[str],
    current: frozenset[str],
) -> tuple[Variant, ...]:
    """The candidates of the step after ``current``: each remaining component flipped alone.

    Example:
        >>> from sweeplab.searchspace import parse_space
        >>> space = parse_space({
        ...     "optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
        ...     "momentum": {"type": "float", "low": 0.5, "high": 0.99,
        ...                  "when": {"optimizer": "sgd"}},
        ...     "dropout": {"type": "float", "low": 0.0, "high": 0.5}})
        >>> target = {"optimizer": "sgd", "momentum": 0.8, "dropout": 0.2}
        >>> first, second = path_candidates(space, target, ["optimizer", "dropout"], frozenset())
        >>> first.name, first.config, first.attrs
        ('+optimizer', {'optimizer': 'sgd', 'dropout': 0.0, 'momentum': 0.8}, \
{'step': 1, 'component': 'optimizer', 'source': 'default', 'change': {'optimizer': 'sgd', \
'momentum': 0.8}})
        >>> [v.name for v in path_candidates(space, target, ["optimizer", "dropout"],
        ...                                  frozenset({"dropout"}))]
        ['+optimizer+dropout']
    """
    before = variant_config(space, target, current)
    source = path_name(current, order)
    out = []
    for component in order:
        if component in current:
            continue
        on = current | {component}
        after = variant_config(space, target, on)
        attrs = {
            records.COMPONENT: component,
            records.SOURCE: source,
            records.CHANGE: _change(before, after),
        }
        out.append(_variant(space, target, on, order, attrs))
    return tuple(out)


def path_so_far(
    space: searchspace.SearchSpace,
    target: Mapping[str, Any],
    order: Sequence[str],
    flipped: Sequence[str],
) -> list[tuple[Variant, ...]]:
    """Every configuration of the path up to the step after ``flipped``, grouped by step.

    Args:
        space: the parent study's space.
        target: the target configuration (the baseline).
        order: the components the path flips, in component order.
        flipped: the winners of the decided steps, in the order they won.

    Returns:
        ``[(source,), step 1's candidates, ..., the candidates of step len(flipped) + 1]``; the
        last group is empty once every component has been flipped.
    """
    unknown = [c for c in flipped if c not in order]
    if unknown:
        raise UsageError(f"the path flipped {unknown}, which are not among {list(order)}")
    steps: list[tuple[Variant, ...]] = [(source_variant(space, target, order),)]
    current: frozenset[str] = frozenset()
    for component in [*flipped, None]:
        steps.append(path_candidates(space, target, order, current))
        if component is not None:
            current = current | {component}
    return steps


def plan_path(
    space: searchspace.SearchSpace,
    target: Mapping[str, Any],
    *,
    seeds: Sequence[int],
    components: Sequence[str] | None = None,
) -> AblationPlan:
    """The path's first round: the default configuration and the candidates of step 1.

    Later rounds depend on the results (:func:`path_so_far`); the plan's ``components`` are
    the ones the path flips, in component order, which is also the order that breaks ties.

    Raises:
        InvalidArgument: an unknown component, no seed, or a target that differs from the
            default in none of the components.
    """
    if not seeds:
        raise InvalidArgument("seeds", "an ablation needs at least one seed")
    order, unchanged = path_components(space, target, components)
    if not order:
        raise InvalidArgument(
            "baseline",
            "mode path: the target configuration has every component"
            + (f" of {', '.join(components)}" if components else "")
            + " at its default, so there is no path to walk; pick another baseline",
        )
    steps = path_so_far(space, target, order, [])
    return AblationPlan(
        mode="path",
        reference=SOURCE,
        components=order,
        unchanged=unchanged,
        variants=(*steps[0], *steps[1]),
        seeds=tuple(seeds),
        choices=parameter_choices(space, target),
    )
