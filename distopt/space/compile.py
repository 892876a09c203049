"""Flatten a space into the list of its parameters and their activation conditions.

The sampler works on this flat, ordered list: each parameter has a kind the maths
understands (bounded/normal continuous, integer, categorical), its transform (log,
quantization) and the conditions under which it is active. Parents come before their
children, so a sampler can draw parameters in order and decide activity as it goes.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterator, Mapping

from ..errors import DuplicateLabel, SpaceError
from .nodes import Choice, Expr, Param, children

#: A condition is a conjunction of (choice label, option index); a parameter is active
#: when any of its alternative conditions holds (the same parameter may appear in
#: several branches).
Condition = tuple[tuple[str, int], ...]


@dataclasses.dataclass(frozen=True)
class ParamSpec:
    """One flat parameter as the sampler sees it.

    kind: ``"float"`` (uniform prior on [low, high] in the internal scale),
    ``"normal"`` (normal prior N(mu, sigma) in the internal scale), ``"int"``
    (integers in [low, high)), ``"cat"`` (index into ``n_options`` with prior ``probs``).
    ``log`` means the internal scale is log(value); ``q`` quantizes the *value*.
    """

    label: str
    dist: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    mu: float = 0.0
    sigma: float = 1.0
    log: bool = False
    q: float | None = None
    n_options: int = 0
    probs: tuple[float, ...] | None = None
    conditions: tuple[Condition, ...] = ((),)

    @property
    def conditional(self) -> bool:
        return self.conditions != ((),)

    def is_active(self, vals: Mapping[str, Any]) -> bool:
        return any(all(label in vals and int(vals[label]) == idx for label, idx in cond) for cond in self.conditions)

    def admits(self, value: Any) -> bool:
        """Whether a flat value lies in this parameter's support (a quantum of slack for q):
        which values of a trial evaluated over another space the sampler may learn from."""
        try:
            v = float(value[0] if isinstance(value, (list, tuple)) else value)
        except (TypeError, ValueError):
            return False
        if not math.isfinite(v):
            return False
        if self.kind == "cat":
            return v.is_integer() and 0 <= v < self.n_options
        if self.kind == "int":
            return v.is_integer() and self.low <= v < self.high
        if self.kind == "float":  # low/high are in the internal (log) scale; q rounds the value
            lo, hi = (math.exp(self.low), math.exp(self.high)) if self.log else (self.low, self.high)
            slack = self.q or 0.0
            return lo - slack <= v <= hi + slack
        return not self.log or v > 0


def _spec_for(node: Param | Choice, conditions: tuple[Condition, ...]) -> ParamSpec:
    if isinstance(node, Choice):
        n = len(node.options)
        probs = node.probs if node.probs is not None else tuple([1.0 / n] * n)
        return ParamSpec(node.label, "pchoice" if node.probs else "choice", "cat", n_options=n, probs=probs, conditions=conditions)
    d, a = node.dist, node.args
    if d in ("uniform", "quniform", "loguniform", "qloguniform"):
        return ParamSpec(node.label, d, "float", low=a[0], high=a[1], log=d.endswith("loguniform"),
                         q=a[2] if d.startswith("q") else None, conditions=conditions)
    if d in ("normal", "qnormal", "lognormal", "qlognormal"):
        return ParamSpec(node.label, d, "normal", mu=a[0], sigma=a[1], log=d.endswith("lognormal"),
                         q=a[2] if d.startswith("q") else None, conditions=conditions)
    if d == "randint":
        return ParamSpec(node.label, d, "int", low=a[0], high=a[1], conditions=conditions)
    raise SpaceError(f"hyperparameter {node.label!r}: unknown distribution {d!r}")


@dataclasses.dataclass(frozen=True)
class CompiledSpace:
    """The flat parameter list of a space, in sampling order (parents first)."""

    params: tuple[ParamSpec, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {p.label: i for i, p in enumerate(self.params)})

    @property
    def labels(self) -> list[str]:
        return [p.label for p in self.params]

    def index(self, label: str) -> int:
        return self._index[label]  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return len(self.params)

    def __iter__(self) -> Iterator[ParamSpec]:
        return iter(self.params)

    def __getitem__(self, label: str) -> ParamSpec:
        return self.params[self.index(label)]

    def __contains__(self, label: object) -> bool:
        return label in self._index  # type: ignore[attr-defined]

    def active_labels(self, vals: Mapping[str, Any]) -> list[str]:
        """Labels active under ``vals`` (choice values decide the branches)."""
        return [p.label for p in self.params if p.is_active(vals)]


def _walk(space: Any, cond: Condition, found: dict[str, tuple[Any, list[Condition]]], order: list[str]) -> None:
    if isinstance(space, (Param, Choice)):
        prev = found.get(space.label)
        if prev is None:
            found[space.label] = (space, [cond])
            order.append(space.label)
        elif prev[0] != space:
            raise DuplicateLabel(
                f"duplicate label {space.label!r}: two different hyperparameters use it "
                f"({prev[0]!r} and {space!r}); give each a unique label"
            )
        elif cond not in prev[1]:
            prev[1].append(cond)
        if isinstance(space, Choice):
            for i, option in enumerate(space.options):
                _walk(option, cond + ((space.label, i),), found, order)
    else:
        for child in children(space):
            _walk(child, cond, found, order)


def check_labels(space: Any) -> None:
    """``DuplicateLabel`` when two separately built hyperparameters share a label, even
    identical ones (``[hp.uniform('x', 0, 1), hp.uniform('x', 0, 1)]``), as hyperopt
    rejects them; one node used in several places is one hyperparameter. This looks at
    object identity, so it applies to a space as the user built it, not to one read back
    from JSON (where a shared node becomes several equal ones)."""
    seen: dict[str, int] = {}
    visited: set[int] = set()

    def walk(node: Any) -> None:
        if isinstance(node, (Param, Choice)):
            prev = seen.setdefault(node.label, id(node))
            if prev != id(node):
                raise DuplicateLabel(
                    f"duplicate label {node.label!r}: two hyperparameters are built with it ({node!r}); "
                    "give each a unique label, or build it once and use that node in both places")
        if id(node) in visited:
            return
        if isinstance(node, (Param, Choice, Expr, dict, list, tuple)):
            visited.add(id(node))
        for child in children(node):
            walk(child)

    walk(space)


def _simplify(conds: list[Condition]) -> tuple[Condition, ...]:
    """Drop alternatives implied by a shorter one (``()`` means always active)."""
    if () in conds:
        return ((),)
    keep = [c for c in conds if not any(o != c and set(o) <= set(c) for o in conds)]
    return tuple(keep)


def compile_space(space: Any) -> CompiledSpace:
    """Compile a space; ``SpaceError`` for duplicate labels or a space with no parameter."""
    if isinstance(space, CompiledSpace):
        return space
    found: dict[str, tuple[Any, list[Condition]]] = {}
    order: list[str] = []
    _walk(space, (), found, order)
    specs = tuple(_spec_for(found[label][0], _simplify(found[label][1])) for label in order)
    return CompiledSpace(specs)
