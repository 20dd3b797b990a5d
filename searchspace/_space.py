"""A validated search space: parameters in dependency order, and what it looks like to Optuna."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from sweeplab.searchspace._params import FixedParam, Param, SubsetParam


@dataclass(frozen=True)
class SearchSpace:
    """Parameters in dependency order (every condition's parent comes before its child).

    Build one with :func:`searchspace.parse_space`; sample it with :func:`searchspace.sample`.
    """

    params: tuple[Param, ...]

    def __iter__(self) -> Iterator[Param]:
        return iter(self.params)

    def __contains__(self, name: object) -> bool:
        return any(p.name == name for p in self.params)

    def __getitem__(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @property
    def searched(self) -> tuple[Param, ...]:
        """The parameters the sampler chooses (all but the fixed ones)."""
        return tuple(p for p in self.params if not isinstance(p, FixedParam))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description, stored with the study and compared on resume."""
        out = {}
        for p in self.params:
            entry = {"type": type(p).__name__.removesuffix("Param").lower(), **asdict(p)}
            entry.pop("name")
            entry["when"] = {c["parent"]: list(c["values"]) for c in entry["when"]}
            if entry.get("log") or entry.get("step", 0) is None:
                entry.pop("step")  # a log range has no step; an unset float step is absent
            if entry.get("default") is None:
                entry.pop("default", None)  # none declared
            for key, value in entry.items():
                if isinstance(value, tuple):
                    entry[key] = list(value)
            out[p.name] = entry
        return out

    def config_from_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Rebuild a trial's configuration from the flat parameters Optuna stored.

        Subset flags (``augment.flip = true``...) become the list of elements switched on, fixed
        values are added back, and inactive entries stay absent.
        """
        config: dict[str, Any] = {}
        for p in self.params:
            if not p.is_active(config):
                continue
            if isinstance(p, FixedParam):
                config[p.name] = list(p.value) if isinstance(p.value, tuple) else p.value
            elif isinstance(p, SubsetParam):
                config[p.name] = [c for c in p.choices if params.get(p.flag(c), False)]
            elif p.name in params:
                config[p.name] = params[p.name]
        return config
