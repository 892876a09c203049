"""``hp``: the functions that build search-space nodes, with hyperopt's signatures.

Each validates its arguments at once and raises ``SpaceError`` naming the label and the
problem, so a bad space fails where it is written rather than deep inside a sampler.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

import numpy as np

from ..errors import SpaceError
from .nodes import Choice, Expr, Param

__all__ = [
    "uniform", "quniform", "loguniform", "qloguniform", "normal", "qnormal",
    "lognormal", "qlognormal", "randint", "uniformint", "choice", "pchoice",
]


def _label(label: Any) -> str:
    if not isinstance(label, str) or not label:
        raise SpaceError(f"a hyperparameter label must be a non-empty string, got {label!r}")
    return label


def _number(label: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise SpaceError(f"hyperparameter {label!r}: {name} must be a number, got {value!r}")
    f = float(value)
    if not math.isfinite(f):
        raise SpaceError(f"hyperparameter {label!r}: {name} must be finite, got {value!r}")
    return f


def _bounds(label: str, low: Any, high: Any) -> tuple[float, float]:
    lo, hi = _number(label, "low", low), _number(label, "high", high)
    if not lo < hi:
        raise SpaceError(
            f"hyperparameter {label!r}: low should be less than high: {low} is not smaller than {high}"
        )
    return lo, hi


def _q(label: str, q: Any) -> float:
    qf = _number(label, "q", q)
    if qf <= 0:
        raise SpaceError(f"hyperparameter {label!r}: q must be positive, got {q!r}")
    return qf


def _sigma(label: str, sigma: Any) -> float:
    s = _number(label, "sigma", sigma)
    if s <= 0:
        raise SpaceError(f"hyperparameter {label!r}: sigma must be positive, got {sigma!r}")
    return s


def uniform(label: str, low: float, high: float) -> Param:
    label = _label(label)
    return Param(label, "uniform", _bounds(label, low, high))


def quniform(label: str, low: float, high: float, q: float) -> Param:
    label = _label(label)
    return Param(label, "quniform", (*_bounds(label, low, high), _q(label, q)))


def loguniform(label: str, low: float, high: float) -> Param:
    """exp(uniform(low, high)): the bounds are in log space, as in hyperopt."""
    label = _label(label)
    return Param(label, "loguniform", _bounds(label, low, high))


def qloguniform(label: str, low: float, high: float, q: float) -> Param:
    label = _label(label)
    return Param(label, "qloguniform", (*_bounds(label, low, high), _q(label, q)))


def normal(label: str, mu: float, sigma: float) -> Param:
    label = _label(label)
    return Param(label, "normal", (_number(label, "mu", mu), _sigma(label, sigma)))


def qnormal(label: str, mu: float, sigma: float, q: float) -> Param:
    label = _label(label)
    return Param(label, "qnormal", (_number(label, "mu", mu), _sigma(label, sigma), _q(label, q)))


def lognormal(label: str, mu: float, sigma: float) -> Param:
    label = _label(label)
    return Param(label, "lognormal", (_number(label, "mu", mu), _sigma(label, sigma)))


def qlognormal(label: str, mu: float, sigma: float, q: float) -> Param:
    label = _label(label)
    return Param(label, "qlognormal", (_number(label, "mu", mu), _sigma(label, sigma), _q(label, q)))


def _integer(label: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and float(value).is_integer():
            return int(value)
        raise SpaceError(f"hyperparameter {label!r}: {name} must be an integer, got {value!r}")
    return int(value)


def randint(label: str, low: int, high: int | None = None) -> Expr:
    """An integer in [0, low) (one argument) or [low, high) (two), as in hyperopt."""
    label = _label(label)
    if high is None:
        lo, hi = 0, _integer(label, "upper", low)
    else:
        lo, hi = _integer(label, "low", low), _integer(label, "high", high)
    if not lo < hi:
        raise SpaceError(
            f"hyperparameter {label!r}: randint needs low < high (an empty range), got [{lo}, {hi})"
        )
    return Expr("int", (Param(label, "randint", (float(lo), float(hi))),))


def uniformint(label: str, low: float, high: float, q: float = 1.0) -> Expr:
    """An integer drawn like ``quniform(low, high, q=1)``, as hyperopt defines it."""
    return Expr("int", (quniform(label, low, high, 1.0),))


def choice(label: str, options: Sequence[Any]) -> Choice:
    label = _label(label)
    if isinstance(options, np.ndarray) and options.ndim == 1:
        options = options.tolist()  # e.g. hp.choice("depth", np.arange(1, 14)), as hyperopt allows
    if isinstance(options, (str, bytes)) or not isinstance(options, Sequence):
        raise SpaceError(f"hp.choice {label!r}: options must be a list, tuple or 1-D array, got {options!r}")
    if len(options) == 0:
        raise SpaceError(f"hp.choice {label!r}: options is empty; give at least one option")
    return Choice(label, tuple(options), None)


def pchoice(label: str, p_options: Sequence[tuple[float, Any]]) -> Choice:
    """A weighted choice from ``[(probability, option), ...]``; probabilities sum to 1."""
    label = _label(label)
    if isinstance(p_options, (str, bytes)) or not isinstance(p_options, Sequence) or len(p_options) == 0:
        raise SpaceError(
            f"hp.pchoice {label!r}: give a non-empty list of (probability, option) pairs, got {p_options!r}"
        )
    probs, options = [], []
    for item in p_options:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise SpaceError(f"hp.pchoice {label!r}: each entry must be a (probability, option) pair, got {item!r}")
        p = _number(label, "probability", item[0])
        if p < 0:
            raise SpaceError(f"hp.pchoice {label!r}: probability {item[0]!r} is negative")
        probs.append(p)
        options.append(item[1])
    total = sum(probs)
    if abs(total - 1.0) > 1e-6:
        raise SpaceError(f"hp.pchoice {label!r}: probabilities must sum to 1, they sum to {total:g}")
    return Choice(label, tuple(options), tuple(probs))
