"""What every pruner sees (``Snapshot`` of ``Curve`` arrays) and answers (prune or not)."""

from __future__ import annotations

import abc
import dataclasses
import numbers
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import PrunerError


@dataclasses.dataclass(frozen=True)
class Curve:
    """The intermediate values one attempt of a trial reported: ``steps`` ascending
    integers, ``values`` the value at each (lower is better). ``complete``: the trial ran
    to its end (state OK)."""

    steps: np.ndarray
    values: np.ndarray
    complete: bool = False

    @classmethod
    def of(cls, steps: Sequence[int], values: Sequence[float], complete: bool = False) -> "Curve":
        s = np.asarray(steps, dtype=np.int64).reshape(-1)
        v = np.asarray(values, dtype=float).reshape(-1)
        if len(s) != len(v):
            raise PrunerError(f"a curve needs as many steps as values, got {len(s)} steps and {len(v)} values")
        order = np.argsort(s, kind="stable")
        s, v = s[order], v[order]
        s.setflags(write=False)  # a reporter hands the same curve to the pruner on later reports
        v.setflags(write=False)
        return cls(s, v, bool(complete))

    @property
    def last_step(self) -> int | None:
        return int(self.steps[-1]) if len(self.steps) else None

    @property
    def last_value(self) -> float | None:
        return float(self.values[-1]) if len(self.values) else None

    def first_at_or_after(self, step: int) -> tuple[int, float] | None:
        """(step, value) of the first report at ``step`` or later (None if none)."""
        i = int(np.searchsorted(self.steps, step, side="left"))
        if i >= len(self.steps):
            return None
        return int(self.steps[i]), float(self.values[i])

    def value_at(self, step: int) -> float | None:
        i = int(np.searchsorted(self.steps, step, side="left"))
        if i < len(self.steps) and self.steps[i] == step:
            return float(self.values[i])
        return None


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """The study as one report sees it: ``curves`` of every trial that reported (the
    reporting trial ``tid`` included), ``n_complete`` trials that ended OK, and the
    study's name (Hyperband assigns brackets by it)."""

    tid: int
    curves: Mapping[int, Curve]
    n_complete: int
    study: str = ""

    @property
    def curve(self) -> Curve:
        return self.curves[self.tid]

    def others(self) -> list[Curve]:
        return [c for t, c in self.curves.items() if t != self.tid]


class Pruner(abc.ABC):
    """Decides from a ``Snapshot`` whether the reporting trial stops now."""

    #: The name ``make_pruner`` and ``distopt run --pruner`` know it by.
    name: str = ""

    @abc.abstractmethod
    def prune(self, snap: Snapshot) -> bool:
        """True when the trial that just reported should stop."""

    @abc.abstractmethod
    def options(self) -> dict[str, Any]:
        """The constructor's arguments, JSON-able (the study file and the workers get them)."""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, **self.options()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.options() == self.options()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(map(repr, self.options().items())))))


def check_number(owner: str, name: str, value: Any, low: float, high: float) -> float:
    """A real number in [``low``, ``high``] (not a bool), as a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not low <= float(value) <= high:
        raise PrunerError(f"{owner}: {name} must be a number in [{low:g}, {high:g}], got {value!r}")
    return float(value)


def check_int(owner: str, name: str, value: Any, minimum: int) -> int:
    """An integer >= ``minimum`` (not a bool): the option check every pruner uses."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise PrunerError(f"{owner}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_int_or_auto(owner: str, name: str, value: Any, minimum: int) -> int | None:
    """An integer >= ``minimum``, or None for ``"auto"``."""
    if isinstance(value, str):
        if value != "auto":
            raise PrunerError(f"{owner}: {name} must be an integer >= {minimum} or 'auto', got {value!r}")
        return None
    return check_int(owner, name, value, minimum)


def check_bootstrap(owner: str, count: Any, resource_name: str, resource: int | None) -> int:
    """``bootstrap_count``, an integer >= 0; a positive one needs ``resource_name`` set, not
    'auto' (``resource`` None), since the rungs it waits at must be known from the start."""
    count = check_int(owner, "bootstrap_count", count, 0)
    if count > 0 and resource is None:
        raise PrunerError(f"{owner}: bootstrap_count > 0 needs a {resource_name}, not 'auto'")
    return count
