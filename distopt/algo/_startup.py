"""Start-up design: space-filling draws that also keep away from pending trials.

Before the model has enough finished trials, a suggestion is the best of a few prior
draws: the one farthest (in prior-quantile coordinates) from every trial already
evaluated, running, or suggested earlier in the same batch (Mitchell's best-candidate
rule). With 32 workers and nothing finished yet, this spreads the first wave over the
space instead of letting random draws clump. Categorical values and the tree structure
are drawn straight from the prior first, so ``pchoice`` weights hold exactly; only the
numeric values of the drawn branch compete.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

from ..space.compile import CompiledSpace, ParamSpec
from .prior import plain_value, quantize


def to_unit(spec: ParamSpec, values: np.ndarray) -> np.ndarray:
    """User values -> prior quantiles in [0, 1] (NaN stays NaN)."""
    if spec.kind == "int":
        return (values - spec.low + 0.5) / (spec.high - spec.low)
    z = np.log(np.maximum(values, 1e-300)) if spec.log else values
    if spec.kind == "normal":
        return ndtr((z - spec.mu) / spec.sigma)
    return (z - spec.low) / (spec.high - spec.low)


def from_unit(spec: ParamSpec, u: float) -> float:
    """A prior quantile -> a user value (the prior's inverse CDF)."""
    if spec.kind == "int":
        return float(min(int(spec.low + np.floor(u * (spec.high - spec.low))), int(spec.high) - 1))
    if spec.kind == "normal":
        z = spec.mu + spec.sigma * float(ndtri(min(max(u, 1e-12), 1 - 1e-12)))
    else:
        z = spec.low + u * (spec.high - spec.low)
    v = float(np.exp(z)) if spec.log else z
    return float(quantize(np.asarray(v), spec.q))


def startup_point(
    space: CompiledSpace,
    seen: np.ndarray,
    rng: np.random.Generator,
    n_candidates: int,
) -> dict[str, Any]:
    """One assignment; ``seen`` holds user-scale rows (NaN = inactive) to keep away from."""
    vals: dict[str, Any] = {}
    numeric: list[int] = []
    for i, spec in enumerate(space.params):
        if not spec.is_active(vals):
            continue
        if spec.kind == "cat":
            vals[spec.label] = int(rng.choice(spec.n_options, p=np.asarray(spec.probs)))
        else:
            vals[spec.label] = None
            numeric.append(i)
    if numeric:
        U = rng.random((max(1, n_candidates), len(numeric)))
        best = U[_farthest(space, numeric, U, seen)] if len(U) > 1 and len(seen) else U[0]
        for i, u in zip(numeric, best):
            spec = space.params[i]
            vals[spec.label] = plain_value(spec, from_unit(spec, float(u)))
    return vals


def _farthest(space: CompiledSpace, cols: list[int], U: np.ndarray, seen: np.ndarray) -> int:
    """Index of the candidate whose nearest seen trial is farthest (RMS over the
    dimensions both have active; trials sharing none of them do not count)."""
    S = np.column_stack([to_unit(space.params[c], seen[:, c]) for c in cols])
    active = ~np.isnan(S)
    diff = np.where(active[None], U[:, None, :] - np.nan_to_num(S)[None], 0.0)
    count = active.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        d2 = np.where(count > 0, (diff * diff).sum(axis=2) / count, np.inf)
    return int(np.argmax(d2.min(axis=1)))
