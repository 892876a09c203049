"""What a study is configured with besides its space: the sampler (``Algo``, TPE by
default, and the name stored with the study) and the random generator it draws from."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .. import algo as _algo
from ..errors import TrialError

Algo = Callable[..., list]

def default_algo() -> Algo:
    """TPE, as hyperopt's ``fmin`` defaults to."""
    return _algo.tpe.suggest


def algo_name(algo: Algo) -> str:
    func = getattr(algo, "func", algo)  # functools.partial
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"


def as_generator(seed: Any) -> np.random.Generator:
    """Accept what hyperopt users pass as ``rstate``: a Generator, a RandomState, an int or None."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, np.random.RandomState):
        return np.random.default_rng(seed.randint(2**31 - 1))
    if seed is None or isinstance(seed, (int, np.integer)):
        return np.random.default_rng(seed)
    raise TrialError(f"seed/rstate must be an int, numpy Generator or RandomState, got {seed!r}")
