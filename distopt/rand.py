"""hyperopt's ``hyperopt.rand`` import path: random search (``distopt.algo.rand``);
``suggest`` may also be called hyperopt's way, ``suggest(new_ids, domain, trials, seed)``."""

from .algo import rand as _rand
from .compat.suggest import callable_both_ways

suggest = callable_both_ways(_rand.suggest)

__all__ = ["suggest"]
