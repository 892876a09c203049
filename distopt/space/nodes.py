"""The search space as plain frozen data.

A space is any nesting of dicts, lists and tuples whose leaves are constants or nodes:
``Param`` (one numeric hyperparameter), ``Choice`` (a categorical whose options are
sub-spaces) and ``Expr`` (arithmetic on nodes, e.g. ``1 + hp.lognormal(...)`` or
``scope.int(...)``). There is no registry and no interpreter: ``compile.py`` flattens a
space to a list of parameters, ``evaluate.py`` turns an assignment back into a value.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from typing import Any, Callable

import numpy as np


def _rng(rng: Any) -> np.random.Generator:
    """The generator a stochastic op draws from: the one the space names, else a fresh one."""
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, np.random.RandomState):
        return np.random.default_rng(rng.randint(2**31 - 1))
    return np.random.default_rng(rng)


def _q(value: float, q: float) -> float:
    return float(np.round(value / q) * q)


#: hyperopt's stochastic scope functions (``scope.normal(0, 1, rng=...)``): a fresh draw
#: each time the space is evaluated, from the generator given as their last argument.
STOCHASTIC: dict[str, Callable[..., Any]] = {
    "uniform": lambda low, high, rng=None: float(_rng(rng).uniform(low, high)),
    "quniform": lambda low, high, q, rng=None: _q(_rng(rng).uniform(low, high), q),
    "loguniform": lambda low, high, rng=None: float(np.exp(_rng(rng).uniform(low, high))),
    "qloguniform": lambda low, high, q, rng=None: _q(np.exp(_rng(rng).uniform(low, high)), q),
    "normal": lambda mu, sigma, rng=None: float(_rng(rng).normal(mu, sigma)),
    "qnormal": lambda mu, sigma, q, rng=None: _q(_rng(rng).normal(mu, sigma), q),
    "lognormal": lambda mu, sigma, rng=None: float(np.exp(_rng(rng).normal(mu, sigma))),
    "qlognormal": lambda mu, sigma, q, rng=None: _q(np.exp(_rng(rng).normal(mu, sigma)), q),
    "randint": lambda low, high=None, rng=None: int(
        _rng(rng).integers(0, low) if high is None else _rng(rng).integers(low, high)),
    "categorical": lambda p, rng=None: int(_rng(rng).choice(len(p), p=np.asarray(p, dtype=float) / np.sum(p))),
}

#: Operators an ``Expr`` may apply. Only arithmetic and type casts: comparisons are
#: deliberately not overloaded, so ``a < b`` on nodes stays a plain Python error.
OPS: dict[str, Callable[..., Any]] = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "truediv": operator.truediv,
    "floordiv": operator.floordiv,
    "pow": operator.pow,
    "neg": operator.neg,
    "abs": abs,
    "int": int,
    "float": float,
    "exp": math.exp,
    "log": math.log,
    "sqrt": math.sqrt,
    "minimum": min,
    "maximum": max,
    "round": round,
    "getitem": operator.getitem,
    "literal": lambda value: value,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "arcsin": math.asin,
    "arccos": math.acos,
    "arctan": math.atan,
    "sinh": math.sinh,
    "cosh": math.cosh,
    "tanh": math.tanh,
    "log1p": math.log1p,
    "expm1": math.expm1,
    "sum": lambda *xs: sum(xs),
    "len": len,
    "bool": bool,
    "str": str,
    **STOCHASTIC,
}
#: Ops evaluated lazily: ``switch(index, *options)`` evaluates only the chosen option.
LAZY_OPS = frozenset({"switch"})


class Node:
    """Base of space nodes; gives them the arithmetic hyperopt users write."""

    def __add__(self, other: Any) -> "Expr":
        return Expr("add", (self, other))

    def __radd__(self, other: Any) -> "Expr":
        return Expr("add", (other, self))

    def __sub__(self, other: Any) -> "Expr":
        return Expr("sub", (self, other))

    def __rsub__(self, other: Any) -> "Expr":
        return Expr("sub", (other, self))

    def __mul__(self, other: Any) -> "Expr":
        return Expr("mul", (self, other))

    def __rmul__(self, other: Any) -> "Expr":
        return Expr("mul", (other, self))

    def __truediv__(self, other: Any) -> "Expr":
        return Expr("truediv", (self, other))

    def __rtruediv__(self, other: Any) -> "Expr":
        return Expr("truediv", (other, self))

    def __floordiv__(self, other: Any) -> "Expr":
        return Expr("floordiv", (self, other))

    def __pow__(self, other: Any) -> "Expr":
        return Expr("pow", (self, other))

    def __rpow__(self, other: Any) -> "Expr":
        return Expr("pow", (other, self))

    def __neg__(self) -> "Expr":
        return Expr("neg", (self,))

    def __abs__(self) -> "Expr":
        return Expr("abs", (self,))

    def __pos__(self) -> "Node":
        return self

    def __getitem__(self, key: Any) -> "Expr":
        """``node[i]``: the item of the node's value, as hyperopt's nodes index (e.g.
        ``hp.choice('o', [(-3, 1.), (3, 2.)])[0]`` or ``as_apply([1, 2])[choice]``)."""
        return Expr("getitem", (self, key))

    def __iter__(self) -> Any:
        # __getitem__ would otherwise make every node an endless sequence
        raise TypeError(f"{type(self).__name__} nodes are not iterable; index them (node[i]) instead")


@dataclasses.dataclass(frozen=True, eq=True)
class Param(Node):
    """One numeric hyperparameter.

    ``dist`` is hyperopt's distribution name; ``args`` its arguments in hyperopt's order
    (for ``loguniform`` the bounds are in log space, as in hyperopt).
    """

    label: str
    dist: str
    args: tuple[float, ...]

    def __repr__(self) -> str:
        return f"hp.{self.dist}({self.label!r}, {', '.join(map(repr, self.args))})"


@dataclasses.dataclass(frozen=True, eq=True)
class Choice(Node):
    """A categorical hyperparameter; its value selects one of ``options`` (sub-spaces).

    ``probs`` is None for ``hp.choice`` (uniform) and the weights for ``hp.pchoice``.
    """

    label: str
    options: tuple[Any, ...]
    probs: tuple[float, ...] | None = None

    def __repr__(self) -> str:
        kind = "pchoice" if self.probs is not None else "choice"
        return f"hp.{kind}({self.label!r}, <{len(self.options)} options>)"

    __hash__ = None  # type: ignore[assignment]  # options may hold dicts


@dataclasses.dataclass(frozen=True, eq=True)
class Expr(Node):
    """``op`` applied to ``args`` (nodes, constants or nested spaces): the name of one
    of ``OPS``, or a function the user registered with ``scope.define`` (such a space has
    no JSON form, like a space holding any other function)."""

    op: str | Callable[..., Any]
    args: tuple[Any, ...]

    __hash__ = None  # type: ignore[assignment]


def children(node: Any) -> tuple[Any, ...]:
    """What a walk over a space descends into from ``node``: a choice's options, an
    expression's arguments, a container's items; nothing below a parameter or a constant.
    One rule, so every walk over a space (compiling, label checks, export) sees the same nodes."""
    if isinstance(node, Choice):
        return tuple(node.options)
    if isinstance(node, Expr):
        return tuple(node.args)
    if isinstance(node, dict):
        return tuple(node.values())
    if isinstance(node, (list, tuple)):
        return tuple(node)
    return ()
