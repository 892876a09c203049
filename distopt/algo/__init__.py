"""Samplers: pure functions of (compiled space, history arrays, pending rows, n, rng).

Every sampler has the signature ``suggest(space, history, pending, n, rng, **settings)``
and returns ``n`` flat assignments ``{label: value}`` (choice values as indices). They
never touch storage, the clock or files: that keeps them fast and reproducible.
"""

from . import anneal, mix, rand, tpe
from .history import History

__all__ = ["anneal", "mix", "rand", "tpe", "History"]
