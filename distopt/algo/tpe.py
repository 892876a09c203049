"""Tree-structured Parzen Estimator for asynchronous parallel search.

``suggest`` has the sampler signature shared with ``rand.suggest``; settings are keyword
arguments so ``functools.partial(tpe.suggest, gamma=..., liar=...)`` configures it:

- ``n_startup_jobs``: finished (ok) trials before the model is used; until then
  suggestions come from a space-filling design that keeps away from pending trials.
- ``gamma``: fraction of finished trials forming the good group (see ``split``).
- ``n_EI_candidates``: draws from the good density scored per suggestion.
- ``prior_weight``: weight of the prior kernel in both densities.
- ``liar``: where pending trials go: ``"worst"`` (the bad group, so workers spread out),
  ``"best"``, ``"mean"`` (the group a trial with the mean loss would join) or ``"none"``.
- ``multivariate``: joint kernels over parameters that are active together.
- ``split``: ``"linear"`` (good = ceil(gamma * n)) or ``"sqrt"`` (ceil(gamma * sqrt(n))),
  capped at ``n_good_max``.
- ``bandwidth``: ``"neighbor"`` (gap to neighbouring observations) or ``"scott"``,
  scaled by ``bw_factor``.
- ``max_components``: the bad group is thinned to this many kernels, evenly over its
  loss ranking, which bounds the cost of an ask on long histories.
- ``startup_candidates``: prior draws per start-up suggestion (1 = plain random).
- ``liar_weight``: a pending trial in the bad group weighs max(1, liar_weight *
  n_bad / max(n_good, n_pending)) kernels, so a few lies still register against a
  large bad group while a wide queue cannot drown it.
- ``liar_bw``: width of a pending kernel: as among the bad trials (``"bad"``) or as it
  would be among the good ones (``"good"``, a much stronger repulsion).
- ``weights``: bad-trial weights, ``"uniform"`` or ``"ramp"`` (older ones fade).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from ..errors import AlgoError
from ..space.compile import CompiledSpace
from ._layout import internal, layout, observed
from ._propose import ModelConfig, propose, split
from ._startup import startup_point
from .history import History

DEFAULTS: dict[str, Any] = {
    "n_startup_jobs": 10,
    "gamma": 0.1,
    "n_EI_candidates": 24,
    "prior_weight": 1.5,
    "liar": "worst",
    "multivariate": True,
    "split": "linear",
    "n_good_max": 25,
    "bandwidth": "neighbor",
    "bw_factor": 1.25,
    "max_components": 256,
    "startup_candidates": 8,
    "liar_weight": 0.3,
    "liar_bw": "bad",
    "weights": "uniform",
}
LIARS = ("worst", "best", "mean", "none")
SPLITS = ("linear", "sqrt")
BANDWIDTHS = ("neighbor", "scott")
LIAR_BWS = ("good", "bad")
WEIGHTS = ("uniform", "ramp")


def suggest(
    space: CompiledSpace,
    history: History,
    pending: np.ndarray,
    n: int,
    rng: np.random.Generator,
    **settings: Any,
) -> list[dict[str, Any]]:
    """``n`` suggestions, each drawn with the pending trials and the earlier suggestions
    of this call treated as running."""
    cfg = _settings(settings)
    lay = layout(space, cfg["multivariate"])
    model = ModelConfig(**{f: cfg[f] for f in ModelConfig.__dataclass_fields__})
    pend = np.empty((0, len(space))) if pending is None else np.asarray(pending, dtype=float).reshape(-1, len(space))
    out: list[dict[str, Any]] = []
    startup = history.n_ok < cfg["n_startup_jobs"]
    if not startup:
        obs = observed(lay, history)
        pend_z = internal(lay, pend)
    for _ in range(int(n)):
        if startup:
            seen = np.vstack([history.X, pend])
            vals = startup_point(space, seen, rng, cfg["startup_candidates"])
        else:
            vals = propose(lay, split(obs, pend_z, model), model, rng)
        out.append(vals)
        row = history.encode(vals)[None, :]
        pend = np.vstack([pend, row])
        if not startup:
            pend_z = np.vstack([pend_z, internal(lay, row)])
    return out


def _settings(settings: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(settings) - set(DEFAULTS))
    if unknown:
        raise AlgoError(f"tpe.suggest: unknown setting(s) {unknown}; known settings are {sorted(DEFAULTS)}")
    cfg = {**DEFAULTS, **settings}
    _int(cfg, "n_startup_jobs", 0)
    _int(cfg, "n_EI_candidates", 1)
    _int(cfg, "n_good_max", 1)
    _int(cfg, "max_components", 1)
    _int(cfg, "startup_candidates", 1)
    g = _real(cfg, "gamma")
    if not 0.0 < g <= 1.0:
        raise AlgoError(f"tpe.suggest: gamma must be in (0, 1], got {cfg['gamma']!r}")
    if _real(cfg, "prior_weight") <= 0.0:
        raise AlgoError(f"tpe.suggest: prior_weight must be > 0, got {cfg['prior_weight']!r}")
    if _real(cfg, "liar_weight") < 0.0:
        raise AlgoError(f"tpe.suggest: liar_weight must be >= 0, got {cfg['liar_weight']!r}")
    if _real(cfg, "bw_factor") <= 0.0:
        raise AlgoError(f"tpe.suggest: bw_factor must be > 0, got {cfg['bw_factor']!r}")
    for name, allowed in (("liar", LIARS), ("split", SPLITS), ("bandwidth", BANDWIDTHS), ("liar_bw", LIAR_BWS), ("weights", WEIGHTS)):
        if cfg[name] not in allowed:
            raise AlgoError(f"tpe.suggest: {name} must be one of {list(allowed)}, got {cfg[name]!r}")
    if not isinstance(cfg["multivariate"], (bool, np.bool_)):
        raise AlgoError(f"tpe.suggest: multivariate must be True or False, got {cfg['multivariate']!r}")
    cfg["multivariate"] = bool(cfg["multivariate"])
    return cfg


def _int(cfg: dict[str, Any], name: str, minimum: int) -> None:
    v = cfg[name]
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum:
        raise AlgoError(f"tpe.suggest: {name} must be an integer >= {minimum}, got {v!r}")
    cfg[name] = int(v)


def _real(cfg: dict[str, Any], name: str) -> float:
    v = cfg[name]
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(float(v)):
        raise AlgoError(f"tpe.suggest: {name} must be a finite number, got {v!r}")
    cfg[name] = float(v)
    return float(v)
