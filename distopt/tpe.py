"""hyperopt's ``hyperopt.tpe`` import path: distopt's TPE (``distopt.algo.tpe``).

``suggest`` runs as distopt's sampler and may also be called hyperopt's way,
``suggest(new_ids, domain, trials, seed, **settings)``. The ``_default_*`` names are
distopt's defaults under hyperopt's names (hyperopt's own differ: gamma 0.25,
prior_weight 1.0, n_startup_jobs 20; see the README's compatibility table).
"""

from .algo import tpe as _tpe
from .algo.tpe import DEFAULTS  # noqa: F401
from .compat.suggest import callable_both_ways
from .algo.gmm import GMM1, GMM1_lpdf, LGMM1, LGMM1_lpdf, adaptive_parzen_normal_orig  # noqa: F401

suggest = callable_both_ways(_tpe.suggest)

_default_prior_weight = DEFAULTS["prior_weight"]
_default_n_EI_candidates = DEFAULTS["n_EI_candidates"]
_default_gamma = DEFAULTS["gamma"]
_default_n_startup_jobs = DEFAULTS["n_startup_jobs"]

__all__ = ["suggest", "DEFAULTS", "GMM1", "GMM1_lpdf", "LGMM1", "LGMM1_lpdf", "adaptive_parzen_normal_orig"]
