"""hyperopt's ``hyperopt.mix`` import path: ``partial(mix.suggest, p_suggest=[(0.1,
rand.suggest), (0.9, tpe.suggest)])`` draws each suggestion from one of the samplers."""

from .algo import mix as _mix
from .compat.suggest import callable_both_ways

suggest = callable_both_ways(_mix.suggest)

__all__ = ["suggest"]
