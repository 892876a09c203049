"""hyperopt's ``pyll`` idioms on distopt's plain-data space.

``from distopt.pyll import scope; scope.int(hp.quniform(...))`` works as it does in
hyperopt; ``scope`` here is a namespace of casts and arithmetic. ``@scope.define``
adds a user function the same way hyperopt's does: ``scope.my_fn(hp.uniform(...), 3)``
builds an expression that calls ``my_fn`` on the evaluated arguments.
"""

from __future__ import annotations

from typing import Any, Callable

from ..errors import SpaceError
from ..space.nodes import Expr


class _Scope:
    """The casts and functions hyperopt code applies to parameters."""

    @staticmethod
    def int(x: Any) -> Expr:
        return Expr("int", (x,))

    @staticmethod
    def float(x: Any) -> Expr:
        return Expr("float", (x,))

    @staticmethod
    def exp(x: Any) -> Expr:
        return Expr("exp", (x,))

    @staticmethod
    def log(x: Any) -> Expr:
        return Expr("log", (x,))

    @staticmethod
    def sqrt(x: Any) -> Expr:
        return Expr("sqrt", (x,))

    @staticmethod
    def minimum(*xs: Any) -> Expr:
        return Expr("minimum", xs)

    @staticmethod
    def maximum(*xs: Any) -> Expr:
        return Expr("maximum", xs)

    @staticmethod
    def round(x: Any) -> Expr:
        return Expr("round", (x,))

    max = maximum
    min = minimum

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


scope = _Scope()

__all__ = ["scope"]
