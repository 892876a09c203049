"""Pruners by name and as JSON: what ``fmin(pruner=...)``, a study file's ``pruner``,
``distopt run --pruner`` and the job a worker runs name them by."""

from __future__ import annotations

from typing import Any, Mapping

from ..errors import PrunerError
from ._base import Pruner
from ._hyperband import HyperbandPruner
from ._nop import NopPruner
from ._percentile import MedianPruner, PercentilePruner
from ._successive_halving import SuccessiveHalvingPruner

#: name -> class; "successive_halving" and "nop" are aliases of "asha" and "none".
NAMES: dict[str, type[Pruner]] = {
    "none": NopPruner,
    "nop": NopPruner,
    "median": MedianPruner,
    "percentile": PercentilePruner,
    "asha": SuccessiveHalvingPruner,
    "successive_halving": SuccessiveHalvingPruner,
    "hyperband": HyperbandPruner,
}


def pruner_from_json(spec: Mapping[str, Any]) -> Pruner:
    """A pruner from ``{"name": ..., **options}``."""
    if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
        raise PrunerError(f"a pruner spec is a dict with a 'name' (one of {sorted(NAMES)}), got {spec!r}")
    options = {k: v for k, v in spec.items() if k != "name"}
    cls = _class(spec["name"])
    try:
        return cls(**options)
    except TypeError as exc:
        raise PrunerError(f"pruner {spec['name']!r} got options {options!r} it does not take ({exc}); "
                          f"see help(distopt.pruners.{cls.__name__})") from exc


def make_pruner(spec: Pruner | str | Mapping[str, Any] | None) -> Pruner:
    """A pruner from an instance, a name (``"median"``, ``"asha"``, ``"hyperband"``,
    ``"percentile"``, ``"none"``; default options), a JSON spec, or None (``NopPruner``)."""
    if spec is None:
        return NopPruner()
    if isinstance(spec, Pruner):
        return spec
    if isinstance(spec, str):
        return _class(spec)()
    return pruner_from_json(spec)


def _class(name: str) -> type[Pruner]:
    cls = NAMES.get(name.strip().lower()) if isinstance(name, str) else None
    if cls is None:
        raise PrunerError(f"unknown pruner {name!r}; choose one of {', '.join(sorted(NAMES))}")
    return cls
