"""hyperopt's ``pyll`` idioms on distopt's plain-data space.

``from distopt.pyll import scope; scope.int(hp.quniform(...))`` works as it does in
hyperopt: ``scope`` is a namespace of functions that build expression nodes (casts,
arithmetic, math functions, ``switch``, and the stochastic ``normal``/``uniform``/...
that draw anew each time the space is evaluated). ``@scope.define`` adds a user function
the same way hyperopt's does. ``as_apply(value)`` makes a constant a node, so it can be
indexed by a choice (``as_apply([1, 2])[hp.choice('i', [0, 1])]``).
"""

from __future__ import annotations

from typing import Any, Callable

from ..errors import SpaceError
from ..space.nodes import OPS, STOCHASTIC, Expr, Node


def as_apply(value: Any) -> Node:
    """``value`` as a node: a node stays itself; a constant, list, tuple or dict (which
    may hold nodes) becomes a node whose value is that object (lists as tuples, as
    ``space_eval`` gives every sequence)."""
    if isinstance(value, Node):
        return value
    return Expr("literal", (value,))


def _builder(op: str) -> Callable[..., Expr]:
    def build(*args: Any) -> Expr:
        return Expr(op, args)

    build.__name__ = build.__qualname__ = op
    return build


def _stochastic(op: str) -> Callable[..., Expr]:
    def build(*args: Any, rng: Any = None, size: Any = ()) -> Expr:
        if size not in ((), None, 1, (1,)):
            raise SpaceError(f"scope.{op}(size={size!r}): distopt draws one value per evaluation; drop size")
        return Expr(op, args + ((rng,) if rng is not None else ()))

    build.__name__ = build.__qualname__ = op
    build.__doc__ = f"A fresh {op} draw each time the space is evaluated (from ``rng`` when given)."
    return build


class _Scope:
    """The functions hyperopt code applies to parameters and constants."""

    def __init__(self) -> None:
        for op in OPS:
            setattr(self, op, _stochastic(op) if op in STOCHASTIC else _builder(op))
        aliases = {"max": "maximum", "min": "minimum", "div": "truediv", "abs_": "abs"}
        for alias, op in aliases.items():
            setattr(self, alias, getattr(self, op))
        for name, op in (("add", "add"), ("sub", "sub"), ("mul", "mul"), ("pow", "pow"), ("neg", "neg")):
            setattr(self, name, _builder(op))

    @staticmethod
    def switch(index: Any, *options: Any) -> Expr:
        """``options[index]``, evaluating only the chosen option."""
        if not options:
            raise SpaceError("scope.switch needs at least one option after the index")
        return Expr("switch", (index,) + options)

    @staticmethod
    def one_of(*options: Any) -> Expr:
        """One of ``options`` drawn uniformly each time the space is evaluated."""
        if not options:
            raise SpaceError("scope.one_of needs at least one option")
        return Expr("switch", (Expr("randint", (len(options),)),) + options)

    @staticmethod
    def pos_args(*args: Any) -> Expr:
        return Expr("literal", (tuple(args),))

    @staticmethod
    def identity(x: Any) -> Expr:
        return as_apply(x)

    def define(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Register ``fn`` as ``scope.<fn.__name__>`` (hyperopt's decorator); returns
        ``fn`` unchanged so it can still be called directly."""
        if not callable(fn):
            raise SpaceError(f"scope.define needs a function, got {fn!r}")
        name = getattr(fn, "__name__", None)
        if not name or name == "<lambda>":
            raise SpaceError(f"scope.define needs a named function (def ...), got {fn!r}")

        def build(*args: Any) -> Expr:
            return Expr(fn, args)

        build.__name__ = build.__qualname__ = name
        build.__doc__ = fn.__doc__
        setattr(self, name, build)
        return fn

    define_pure = define
    define_info = define


scope = _Scope()

__all__ = ["scope", "as_apply"]
