"""``sample(space, rng)``: one random point of a space, as hyperopt's pyll.stochastic."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..algo.prior import sample_prior_point
from ..space import compile_space, space_eval


def sample(space: Any, rng: np.random.Generator | int | None = None) -> Any:
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return space_eval(space, sample_prior_point(compile_space(space), rng))
