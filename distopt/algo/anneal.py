"""Simulated annealing, with hyperopt's ``anneal.suggest`` semantics.

For each active parameter, take the earlier trial picked for this suggestion (so the
parameters move together around one trial); when that trial did not use the parameter,
pick another among those that did: the trials sorted by loss (failed ones last), the rank
drawn from a geometric distribution with mean ``avg_best_idx`` (so usually one of the
best). Sample around its value with a width that
shrinks as the parameter gathers observations: ``1 / (1 + T * shrink_coef)`` of the prior's
range (uniform kinds, clipped to stay inside it), of the prior's sigma (normal kinds), or
of the prior's weight against the picked value (choice and randint). A parameter never
observed is drawn from its prior. Choices are drawn first, so a conditional branch's
parameters follow the branch. Pending trials are not used (they have no loss yet).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import AlgoError
from ..space.compile import CompiledSpace, ParamSpec
from .history import History
from .prior import from_internal, plain_value, sample_prior

DEFAULTS: dict[str, float] = {"avg_best_idx": 2.0, "shrink_coef": 0.1}
_TINY = 1e-300


def suggest(
    space: CompiledSpace,
    history: History,
    pending: np.ndarray,
    n: int,
    rng: np.random.Generator,
    avg_best_idx: float = DEFAULTS["avg_best_idx"],
    shrink_coef: float = DEFAULTS["shrink_coef"],
) -> list[dict[str, Any]]:
    """``n`` suggestions, each sampled around a good earlier trial."""
    if not (isinstance(avg_best_idx, (int, float)) and avg_best_idx >= 1.0):
        raise AlgoError(f"anneal: avg_best_idx must be a number >= 1 (the mean rank picked), got {avg_best_idx!r}")
    if not (isinstance(shrink_coef, (int, float)) and shrink_coef >= 0.0):
        raise AlgoError(f"anneal: shrink_coef must be a number >= 0, got {shrink_coef!r}")
    X = history.X
    losses = np.where(history.ok, history.losses, np.inf)
    return [_one(space, X, losses, rng, float(avg_best_idx), float(shrink_coef)) for _ in range(int(n))]


def _one(space: CompiledSpace, X: np.ndarray, losses: np.ndarray, rng: np.random.Generator,
         avg_best_idx: float, shrink_coef: float) -> dict[str, Any]:
    vals: dict[str, Any] = {}
    picked: list[int] = []  # rows of the trials this suggestion samples around, in pick order
    for i, spec in enumerate(space.params):
        if not spec.is_active(vals):
            continue
        col = X[:, i] if len(X) else np.empty(0)
        seen = ~np.isnan(col)
        if not seen.any():
            value = sample_prior(spec, 1, rng)[0]
        else:
            row = next((r for r in picked if seen[r]), None)
            if row is None:
                rows = np.flatnonzero(seen)
                rank = min(int(rng.geometric(1.0 / avg_best_idx)) - 1, len(rows) - 1)
                row = int(rows[np.argsort(losses[rows], kind="stable")[rank]])
                picked.append(row)
            shrink = 1.0 / (1.0 + int(seen.sum()) * shrink_coef)
            value = _around(spec, float(col[row]), shrink, rng)
        vals[spec.label] = plain_value(spec, value)
    return vals


def _around(spec: ParamSpec, picked: float, shrink: float, rng: np.random.Generator) -> float:
    """One draw near ``picked`` (a user-scale value) with the width shrunk by ``shrink``."""
    if spec.kind == "float":
        mid = math.log(max(picked, _TINY)) if spec.log else picked
        half = 0.5 * (spec.high - spec.low) * shrink
        mid = min(max(mid, spec.low + half), spec.high - half)
        return float(from_internal(spec, np.asarray(rng.uniform(mid - half, mid + half))))
    if spec.kind == "normal":
        mu = math.log(max(picked, _TINY)) if spec.log else picked
        return float(from_internal(spec, np.asarray(rng.normal(mu, spec.sigma * shrink))))
    if spec.kind == "int":
        size = int(spec.high - spec.low)
        p = np.full(size, shrink / size)
        p[int(picked - spec.low)] += 1.0 - shrink
        return float(spec.low + rng.choice(size, p=p / p.sum()))
    probs = np.asarray(spec.probs, dtype=float)
    p = shrink * probs
    p[int(picked)] += 1.0 - shrink
    return float(rng.choice(spec.n_options, p=p / p.sum()))
