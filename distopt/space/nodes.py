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
}


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
