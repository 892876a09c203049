"""Random search: every suggestion drawn independently from the prior."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..space.compile import CompiledSpace
from .history import History
from .prior import sample_prior_point


def suggest(
    space: CompiledSpace,
    history: History,
    pending: np.ndarray,
    n: int,
    rng: np.random.Generator,
) -> list[dict[str, Any]]:
    """``n`` independent prior draws; history and pending trials are ignored."""
    return [sample_prior_point(space, rng) for _ in range(n)]
