"""hyperopt's one-dimensional Gaussian-mixture functions (``tpe.GMM1``, ``GMM1_lpdf``,
``LGMM1``, ``LGMM1_lpdf``, ``adaptive_parzen_normal_orig``) over distopt's own mixture
(``parzen.Mixture``): the same truncated, quantized kernels TPE samples and scores with.
``low``/``high`` bound the support (in log space for the L- variants, as in hyperopt);
``q`` rounds values to multiples of q, making the density a probability mass per bin.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..errors import AlgoError
from ..space.compile import ParamSpec
from .parzen import GroupModel, Mixture, Scales, bandwidths


def _mixture(weights: Any, mus: Any, sigmas: Any, low: Any, high: Any, q: Any, log: bool) -> Mixture:
    w = np.asarray(weights, dtype=float).ravel()
    mu = np.asarray(mus, dtype=float).ravel()
    sig = np.asarray(sigmas, dtype=float).ravel()
    if not len(w) == len(mu) == len(sig) or len(w) == 0:
        raise AlgoError(f"a mixture needs as many weights, mus and sigmas (at least one), got {len(w)}, {len(mu)}, {len(sig)}")
    if (low is None) != (high is None):
        raise AlgoError(f"give both low and high, or neither (got low={low!r}, high={high!r})")
    if low is not None:
        spec = ParamSpec("x", "mixture", "float", low=float(low), high=float(high), log=log, q=q)
    else:  # unbounded: the prior scale only sets where candidates are clipped (20 widths out)
        spread = float(np.ptp(mu) + sig.max())
        spec = ParamSpec("x", "mixture", "normal", mu=float(np.mean(mu)), sigma=4.0 * spread, log=log, q=q)
    return Mixture(GroupModel([spec]), mu[:, None], w, 0.0, "neighbor", 1.0, sigma=sig[:, None], prior=False)


def _size(size: Any) -> tuple[int, ...]:
    if size is None or size == ():
        return ()
    return tuple(int(s) for s in np.atleast_1d(size))


def _sample(mix: Mixture, rng: Any, size: Any) -> np.ndarray:
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    shape = _size(size)
    n = int(np.prod(shape)) if shape else 1
    out = mix.sample(rng, n)[:, 0]
    return out.reshape(shape) if shape else out


def _lpdf(mix: Mixture, samples: Any, log: bool, q: Any) -> np.ndarray:
    x = np.asarray(samples, dtype=float)
    flat = x.reshape(-1, 1)
    lp = mix.log_pdf(mix.group.points(flat))
    if not q:  # a density: undo the mixture's scaling by the prior width, add the normal constant
        lp = lp - math.log(float(mix.group.scales.width[0])) - 0.5 * math.log(2 * math.pi)
        if log:
            lp = lp - np.log(np.maximum(flat[:, 0], 1e-300))
    return lp.reshape(x.shape)


def GMM1(weights: Sequence[float], mus: Sequence[float], sigmas: Sequence[float], low: float | None = None,
         high: float | None = None, q: float | None = None, rng: Any = None, size: Any = ()) -> np.ndarray:
    """Draws from a mixture of normals, truncated to [low, high], rounded to q."""
    return _sample(_mixture(weights, mus, sigmas, low, high, q, False), rng, size)


def GMM1_lpdf(samples: Any, weights: Sequence[float], mus: Sequence[float], sigmas: Sequence[float],
              low: float | None = None, high: float | None = None, q: float | None = None) -> np.ndarray:
    """Log density of ``samples`` under ``GMM1`` (log mass of each q-bin when q is given)."""
    return _lpdf(_mixture(weights, mus, sigmas, low, high, q, False), samples, False, q)


def LGMM1(weights: Sequence[float], mus: Sequence[float], sigmas: Sequence[float], low: float | None = None,
          high: float | None = None, q: float | None = None, rng: Any = None, size: Any = ()) -> np.ndarray:
    """exp of draws from a mixture of normals in log space (bounds in log space)."""
    return _sample(_mixture(weights, mus, sigmas, low, high, q, True), rng, size)


def LGMM1_lpdf(samples: Any, weights: Sequence[float], mus: Sequence[float], sigmas: Sequence[float],
               low: float | None = None, high: float | None = None, q: float | None = None) -> np.ndarray:
    """Log density of ``samples`` under ``LGMM1`` (log mass per q-bin when q is given)."""
    return _lpdf(_mixture(weights, mus, sigmas, low, high, q, True), samples, True, q)


def adaptive_parzen_normal_orig(mus: Sequence[float], prior_weight: float, prior_mu: float,
                                prior_sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weights, mus, sigmas) of a Parzen estimator over ``mus`` with the prior as the first
    component; the widths are distopt's neighbour rule (``parzen.bandwidths``)."""
    obs = np.asarray(mus, dtype=float).ravel()
    spec = ParamSpec("x", "normal", "normal", mu=float(prior_mu), sigma=float(prior_sigma))
    sig = bandwidths(obs[:, None], Scales.of([spec]), "neighbor", 1.0, 1)[:, 0] if len(obs) else np.empty(0)
    weights = np.append(float(prior_weight), np.ones(len(obs)))
    return weights / weights.sum(), np.append(float(prior_mu), obs), np.append(float(prior_sigma), sig)
