"""Turn a flat assignment ``{label: value}`` into the value the objective receives."""

from __future__ import annotations

from typing import Any, Mapping

from ..errors import SpaceError
from .nodes import LAZY_OPS, OPS, Choice, Expr, Param


def _scalar(value: Any) -> Any:
    """Accept hyperopt's list-valued ``vals`` (``{'x': [0.3]}``) as well as scalars."""
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise SpaceError(f"expected one value, got {value!r}")
        return value[0]
    return value


def space_eval(space: Any, vals: Mapping[str, Any]) -> Any:
    """The point of ``space`` selected by ``vals`` (choice labels map to option indices).

    Gives exactly what hyperopt's ``space_eval`` gives: floats for continuous parameters,
    ints for ``randint``/``uniformint``, the selected option for a choice, and every
    list or tuple of the space as a tuple.
    """
    if isinstance(space, Param):
        if space.label not in vals:
            raise SpaceError(f"no value for hyperparameter {space.label!r}; the assignment has {sorted(vals)}")
        value = _scalar(vals[space.label])
        return int(value) if space.dist == "randint" else float(value)
    if isinstance(space, Choice):
        if space.label not in vals:
            raise SpaceError(f"no value for choice {space.label!r}; the assignment has {sorted(vals)}")
        idx = int(_scalar(vals[space.label]))
        if not 0 <= idx < len(space.options):
            raise SpaceError(
                f"choice {space.label!r} has {len(space.options)} options; index {idx} is out of range"
            )
        return space_eval(space.options[idx], vals)
    if isinstance(space, Expr) and space.op in LAZY_OPS:  # switch(index, *options)
        idx = int(space_eval(space.args[0], vals))
        options = space.args[1:]
        if not 0 <= idx < len(options):
            raise SpaceError(f"switch has {len(options)} options; index {idx} is out of range")
        return space_eval(options[idx], vals)
    if isinstance(space, Expr):
        fn = space.op if callable(space.op) else OPS[space.op]
        return fn(*(space_eval(a, vals) for a in space.args))
    if isinstance(space, dict):
        return {k: space_eval(v, vals) for k, v in space.items()}
    if isinstance(space, (list, tuple)):  # hyperopt returns every sequence as a tuple
        return tuple(space_eval(v, vals) for v in space)
    return space
