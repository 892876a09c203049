"""A mixture of samplers: each suggestion comes from one drawn with its probability
(hyperopt's ``mix.suggest``), e.g. ``partial(mix.suggest, p_suggest=[(0.1, rand.suggest),
(0.9, tpe.suggest)])`` keeps a tenth of the search exploring at random."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..errors import AlgoError
from ..space.compile import CompiledSpace
from .history import History


def _checked(p_suggest: Any) -> tuple[np.ndarray, list[Callable[..., list]]]:
    if not isinstance(p_suggest, Sequence) or len(p_suggest) == 0:
        raise AlgoError(f"mix.suggest needs p_suggest=[(probability, suggest), ...], got {p_suggest!r}")
    probs, algos = [], []
    for item in p_suggest:
        if not isinstance(item, (tuple, list)) or len(item) != 2 or not callable(item[1]):
            raise AlgoError(f"mix.suggest: each p_suggest entry must be (probability, suggest), got {item!r}")
        p = float(item[0])
        if not p >= 0:
            raise AlgoError(f"mix.suggest: probability {item[0]!r} must be >= 0")
        probs.append(p)
        algos.append(item[1])
    total = sum(probs)
    if abs(total - 1.0) > 1e-6:
        raise AlgoError(f"mix.suggest: the probabilities of p_suggest must sum to 1, they sum to {total:g}")
    return np.asarray(probs) / total, algos


def suggest(
    space: CompiledSpace,
    history: History,
    pending: np.ndarray,
    n: int,
    rng: np.random.Generator,
    p_suggest: Sequence[tuple[float, Callable[..., list]]] = (),
) -> list[dict[str, Any]]:
    """``n`` suggestions, each from a sampler drawn from ``p_suggest``; later ones see the
    earlier ones of this call as pending."""
    probs, algos = _checked(p_suggest)
    pend = np.empty((0, len(space))) if pending is None else np.asarray(pending, dtype=float).reshape(-1, len(space))
    out: list[dict[str, Any]] = []
    for _ in range(int(n)):
        algo = algos[int(rng.choice(len(algos), p=probs))]
        (vals,) = algo(space, history, pend, 1, rng)
        out.append(vals)
        pend = np.vstack([pend, history.encode(vals)[None, :]])
    return out
