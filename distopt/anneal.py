"""hyperopt's ``hyperopt.anneal`` import path: annealing (``distopt.algo.anneal``);
``partial(anneal.suggest, avg_best_idx=2.0, shrink_coef=0.1)`` sets its two settings, and
``suggest`` may also be called hyperopt's way, ``suggest(new_ids, domain, trials, seed)``."""

from .algo import anneal as _anneal
from .compat.suggest import callable_both_ways

suggest = callable_both_ways(_anneal.suggest)

__all__ = ["suggest"]
