"""A space as JSON, so monitors and other processes can ``space_eval`` without the
user's code. Spaces holding non-JSON constants (classes, functions) have no JSON form:
``space_to_json`` returns None for them and callers fall back to stored params."""

from __future__ import annotations

from typing import Any

from ..errors import SpaceError
from .nodes import Choice, Expr, Param


def _enc(space: Any) -> Any:
    if isinstance(space, Param):
        return {"$param": space.label, "dist": space.dist, "args": list(space.args)}
    if isinstance(space, Choice):
        return {"$choice": space.label, "options": [_enc(o) for o in space.options],
                "probs": list(space.probs) if space.probs is not None else None}
    if isinstance(space, Expr):
        if not isinstance(space.op, str):
            raise SpaceError(f"function {space.op!r} (from scope.define) has no JSON form")
        return {"$expr": space.op, "args": [_enc(a) for a in space.args]}
    if isinstance(space, dict):
        if not all(isinstance(k, str) for k in space):
            raise SpaceError("dict keys must be strings to store the space as JSON")
        return {"$dict": {k: _enc(v) for k, v in space.items()}}
    if isinstance(space, tuple):
        return {"$tuple": [_enc(v) for v in space]}
    if isinstance(space, list):
        return [_enc(v) for v in space]
    if space is None or isinstance(space, (bool, int, float, str)):
        return space
    raise SpaceError(f"constant {space!r} of type {type(space).__name__} has no JSON form")


def space_to_json(space: Any) -> Any | None:
    """The JSON form of ``space``, or None when it holds non-JSON constants."""
    try:
        return _enc(space)
    except SpaceError:
        return None


def space_from_json(data: Any) -> Any:
    if isinstance(data, list):
        return [space_from_json(v) for v in data]
    if not isinstance(data, dict):
        return data
    if "$param" in data:
        return Param(data["$param"], data["dist"], tuple(float(a) for a in data["args"]))
    if "$choice" in data:
        probs = tuple(data["probs"]) if data.get("probs") is not None else None
        return Choice(data["$choice"], tuple(space_from_json(o) for o in data["options"]), probs)
    if "$expr" in data:
        return Expr(data["$expr"], tuple(space_from_json(a) for a in data["args"]))
    if "$dict" in data:
        return {k: space_from_json(v) for k, v in data["$dict"].items()}
    if "$tuple" in data:
        return tuple(space_from_json(v) for v in data["$tuple"])
    raise SpaceError(f"not a serialized space: {data!r}")
