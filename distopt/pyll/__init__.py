"""hyperopt's ``pyll`` idioms on distopt's plain-data space.

``from distopt.pyll import scope; scope.int(hp.quniform(...))`` works as it does in
hyperopt; ``scope`` here is a namespace of casts and arithmetic, not a registry.
"""

from __future__ import annotations

from typing import Any

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


scope = _Scope()

__all__ = ["scope"]
