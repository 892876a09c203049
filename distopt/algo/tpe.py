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
- ``liar_weight``: a pending trial in the bad group weighs max(liar_floor, liar_weight
  * n_bad / max(n_good, n_pending)) kernels (0, the default: one kernel, as a finished
  bad trial weighs; a larger value makes a few lies register against a large bad group
  but spreads a 4-8 worker queue too thin on mixed and conditional spaces). Pending
  kernels are added to the bad density as fitted without them (the bad trials' own
  widths do not change).
- ``liar_cat``: what a pending trial's kernel says about categorical parameters:
  ``"prior"`` (nothing: its table is the prior's, so it repels by its numeric values
  alone, and a group of categorical parameters only, such as the choice at the top of
  a conditional space, is left to the finished trials) or ``"kernel"`` (its own value,
  like a finished trial's). A trial running on branch A says little about whether
  branch A or B is better; lying that it is bad moved a wide queue off the best branch.
- ``liar_bw``: width of a pending kernel: as among the bad trials (``"bad"``) or as it
  would be among the good ones (``"good"``, a much stronger repulsion).
- ``weights``: bad-trial weights, ``"uniform"`` or ``"ramp"`` (older ones fade).
- ``gamma_parallel`` / ``n_EI_parallel``: with ``m`` trials pending, ``gamma`` and
  ``n_EI_candidates`` move towards these by ``m / (m + 1)`` (None: no change). A wide
  queue leaves few rounds of feedback, so it pays to exploit harder there than in a
  sequential search. Only in spaces of at least ``parallel_min_params`` parameters:
  in one or two dimensions the pending trials already cover the promising region,
  and exploiting harder only stacks the candidates together.
- ``n_startup_parallel``: with many trials pending the model may start after fewer
  finished trials, down to this many (None: always ``n_startup_jobs``).
- ``cat_candidates``: candidates for a group of categorical parameters only (such as
  the choice at the top of a conditional space). Its few values make the l/g argmax a
  hard switch that can abandon a branch after a handful of trials; 1 draws the value
  from the good density instead.
- ``cat_parallel``: with ``m`` trials pending, ``cat_candidates`` moves towards this by
  ``m / (m + 1)`` (None, the default: no change), as ``n_EI_candidates`` does: a wide
  queue then commits to the branch with the best l/g instead of drawing one. It helps
  where the best branch is also the first to look good (24: median regret ÷ optuna's
  0.91 instead of 0.94 at 8 workers, 1.03 instead of 1.10 at 32 on the wide
  benchmark's validation set) and fails where an easy branch bottoms out above a harder
  one (10x the regret on bench_tpe_quality's "conditional" at 8 workers), so it is
  opt-in.
- ``liar_floor``: the least weight of a pending trial in the bad group.
- ``local_share`` / ``local_sequential`` / ``local_scale``: local refinement. An ask
  is local with probability ``local_share * m / (m + 1)`` with ``m`` trials pending
  (never with trials pending in a space of fewer than ``parallel_min_params``
  parameters) and ``local_sequential`` with none. A local ask draws its candidates
  around the best finished trial instead of from l: its branch and categories kept,
  numeric values from a normal kernel ``local_scale`` times as wide as the trial's
  kernel in l, centred on the trial itself in a sequential ask and on the weighted mean
  of the best ``local_mu`` trials in a queued one. They are scored by l/g as usual, so the lies still spread the local
  asks. With 32 workers and 100 trials a study gets about three rounds of feedback;
  the liar alone spent them on diversity and refined the best region far less than a
  TPE without one (median regret ÷ optuna's on the wide benchmark's validation set at
  1 / 8 / 32 workers: 0.62 / 0.74 / 0.82 with it, 0.75 / 0.94 / 1.10 without).
  ``local_share`` went from 0.75 to 0.9 once local asks centred on the best trials'
  mean (``local_mu``), a better guess that more of a queue's asks pay off at: paired
  against 0.75 at 8 / 32 workers it won 0.53 / 0.54 of the wide benchmark's tuning runs
  (seeds 0–39), 0.52 / 0.51 of its validation runs (seeds 0–59) and 0.51 / 0.53 on 40
  fresh generated instances (gen160–gen199, seeds 0–14).
- ``local_mu``: a local ask made with trials pending centres its numeric values on a
  weighted mean of the best ``local_mu`` trials that share the best trial's branch and
  categories (weights falling with rank, as CMA-ES recombines; 1: the best trial itself). On a
  noisy loss the best trial is partly the luckiest draw, and on a narrow valley the
  best few straddle the minimum; a queue that asks many points at once around one
  centre does better around their mean. On the wide benchmark's validation set (seeds
  0–59) the paired win rate against optuna's TPE rose from 0.585 / 0.575 to 0.60 / 0.61
  at 8 / 32 workers (``local_mu`` 1 and 8, ``local_share`` 0.75; 0.53 / 0.53 against
  ``local_mu`` 1 seed by seed), and on 40 fresh generated instances (gen160–gen199,
  seeds 0–14) from 0.60 / 0.58 to 0.65 / 0.64. A sequential local ask keeps the best
  trial as its centre: there each result moves the best trial, and the mean lost at one worker on
  ``bench_tpe_quality``'s problems (paired win rate against the best trial as centre
  0.46 on the main 8, 0.47 on the 9 held-out ones).
- ``local_ramp`` / ``local_ramp_pending``: in a space with branches (a parameter active
  only under a choice), the queued asks' local share grows with the search's progress:
  it is scaled by ``min(1, (f + local_ramp_pending * m) / local_ramp)`` with ``f``
  finished trials and ``m`` pending (``local_ramp`` 0: no ramp). Refining around the
  first good-looking trial while an 8-worker queue has seen only a few dozen trials
  locks the search onto that trial's branch before the others were compared (it ended
  fewer runs on the best branch than optuna's TPE); a 32-worker queue is past the ramp
  from its first model ask, as it has only a few rounds of feedback left to refine in,
  and a sequential search is not affected (``local_sequential``). At 8 workers on the
  wide benchmark (budget 100) it ended more runs on the best branch (validation seeds
  0–39: 491 of 800 instead of 470, optuna 499; 40 fresh instances: 511 instead of
  496) and lowered the median regret ÷ optuna's (0.71 / 0.78 / 0.90 to 0.71 / 0.66 /
  0.65 on validation seeds 0–39, gen40–79 and gen80–119, though on validation seeds
  40–59 it rose, 0.67 to 0.76); seed by seed it wins about as often as it loses against
  the runs without it.
- ``penalty`` / ``penalty_radius``: local penalization, an alternative to the liar:
  each pending point scales the l/g ratio of candidates near it by
  ``1 - penalty * exp(-d^2 / 2)`` (0 = off); see ``_propose._penalty``.
"""

from __future__ import annotations

import dataclasses
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
    "gamma": 0.15,
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
    "liar_weight": 0.0,
    "liar_bw": "bad",
    "weights": "uniform",
    "liar_floor": 1.0,
    "cat_candidates": 1,
    "penalty": 0.0,
    "penalty_radius": 1.0,
    "n_startup_parallel": None,
    "gamma_parallel": 0.07,
    "n_EI_parallel": 48,
    "parallel_min_params": 3,
    "liar_cat": "prior",
    "cat_parallel": None,
    "local_share": 0.9,
    "local_scale": 0.25,
    "local_sequential": 0.15,
    "local_ramp": 80,
    "local_ramp_pending": 3.0,
    "local_mu": 8,
}
LIARS = ("worst", "best", "mean", "none")
SPLITS = ("linear", "sqrt")
BANDWIDTHS = ("neighbor", "scott")
LIAR_BWS = ("good", "bad")
WEIGHTS = ("uniform", "ramp")
LIAR_CATS = ("kernel", "prior")


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
    cfg, model = _validated(settings)
    if len(space) == 0:  # a space of constants only: nothing to choose, as in hyperopt
        return [{} for _ in range(int(n))]
    lay = layout(space, cfg["multivariate"])
    pend = np.empty((0, len(space))) if pending is None else np.asarray(pending, dtype=float).reshape(-1, len(space))
    out: list[dict[str, Any]] = []
    startup = history.n_used < _startup_threshold(cfg, len(pend))
    if not startup:
        obs = observed(lay, history)
        pend_z = internal(lay, pend)
        wide = len(space) >= cfg["parallel_min_params"]
    for i in range(int(n)):
        if startup:
            seen = np.vstack([history.X, pend])
            vals = startup_point(space, seen, rng, cfg["startup_candidates"])
        else:
            m = _for_pending(model, cfg, len(pend_z) if wide else 0)
            ramp = _ramp(cfg, len(obs.losses), len(pend_z)) if lay.branched else 1.0
            local = _local_ask(cfg, len(pend_z), wide, rng, ramp)
            vals = propose(lay, split(obs, pend_z, m), m, rng, local=local,
                           local_mu=cfg["local_mu"] if len(pend_z) else 1)
        out.append(vals)
        if i == int(n) - 1:
            break
        row = history.encode(vals)[None, :]
        pend = np.vstack([pend, row])
        if not startup:
            pend_z = np.vstack([pend_z, internal(lay, row)])
    return out


def _queue_weight(n_pending: int) -> float:
    """``m / (m + 1)`` with ``m`` trials pending: how far an ask's settings move from
    their sequential values towards their wide-queue ones (0 for a sequential ask)."""
    return n_pending / (n_pending + 1.0)


def _for_pending(model: ModelConfig, cfg: dict[str, Any], n_pending: int) -> ModelConfig:
    """The model's ``gamma``, ``n_EI_candidates`` and ``cat_candidates`` move towards
    ``gamma_parallel``, ``n_EI_parallel`` and ``cat_parallel`` by ``m / (m + 1)`` with
    ``m`` trials pending: a sequential ask uses the first, a wide queue practically the
    second."""
    gp, ep, cp = cfg["gamma_parallel"], cfg["n_EI_parallel"], cfg["cat_parallel"]
    if (gp is None and ep is None and cp is None) or n_pending == 0:
        return model
    b = _queue_weight(n_pending)

    def count(now: int, target: int) -> int:  # a number of candidates: a whole one, at least 1
        return max(1, int(round(now + (target - now) * b)))

    change = {}
    if gp is not None:
        change["gamma"] = model.gamma + (gp - model.gamma) * b
    if ep is not None:
        change["n_EI_candidates"] = count(model.n_EI_candidates, ep)
    if cp is not None:
        change["cat_candidates"] = count(model.cat_candidates, cp)
    return dataclasses.replace(model, **change)


def _ramp(cfg: dict[str, Any], n_finished: int, n_pending: int) -> float:
    """How far a queued ask's local share has grown in a space with branches:
    ``min(1, (f + local_ramp_pending * m) / local_ramp)`` (1 when ``local_ramp`` is 0). A
    pending trial counts for more than a finished one because a wide queue has fewer
    rounds left to refine in."""
    full = cfg["local_ramp"]
    if not full:
        return 1.0
    return min(1.0, (n_finished + cfg["local_ramp_pending"] * n_pending) / full)


def _local_ask(cfg: dict[str, Any], n_pending: int, wide: bool, rng: np.random.Generator,
               ramp: float = 1.0) -> bool:
    """Whether this ask refines around the best trials: with probability ``local_sequential``
    when nothing is pending, ``ramp * local_share * m / (m + 1)`` with ``m`` trials pending
    in a space of at least ``parallel_min_params`` parameters, never with trials pending
    in a smaller one (there the pending trials already crowd the best region). A wide
    queue gets few rounds of feedback, and the liar alone spreads every ask, leaving the
    best region to one or two of them; the asks drawn from l keep looking elsewhere."""
    if n_pending == 0:
        p = cfg["local_sequential"]
    else:
        p = ramp * cfg["local_share"] * _queue_weight(n_pending) if wide else 0.0
    return p > 0.0 and bool(rng.random() < p)


def _startup_threshold(cfg: dict[str, Any], n_pending: int) -> int:
    """Finished trials needed before the model is used: ``n_startup_jobs`` while few
    trials run, falling linearly to ``n_startup_parallel`` as the pending count reaches
    ``n_startup_jobs`` (a wide queue would otherwise spend many asks on the design)."""
    full, par = cfg["n_startup_jobs"], cfg["n_startup_parallel"]
    if par is None or par >= full:
        return full
    return int(round(full - (full - par) * min(1.0, n_pending / max(full, 1))))


_VALIDATED: dict[tuple, tuple[dict[str, Any], ModelConfig]] = {}


def _validated(settings: dict[str, Any]) -> tuple[dict[str, Any], ModelConfig]:
    """The checked settings and the model's part of them, kept per distinct settings
    (a study passes the same ones on every ask)."""
    try:
        key = tuple((k, type(v), v) for k, v in sorted(settings.items()))
        hit = _VALIDATED.get(key)
    except TypeError:  # an unhashable value: checked (and rejected) below
        key, hit = None, None
    if hit is None:
        cfg = _settings(settings)
        hit = (cfg, ModelConfig(**{f: cfg[f] for f in ModelConfig.__dataclass_fields__}))
        if key is not None and len(_VALIDATED) < 256:
            _VALIDATED[key] = hit
    return hit


#: hyperopt's tpe.suggest arguments accepted and ignored (verbose; linear_forgetting, as
#: distopt weighs old bad trials by its `weights` setting instead)
IGNORED = ("verbose", "linear_forgetting")


def _settings(settings: dict[str, Any]) -> dict[str, Any]:
    settings = {k: v for k, v in settings.items() if k not in IGNORED}
    unknown = sorted(set(settings) - set(DEFAULTS))
    if unknown:
        raise AlgoError(f"tpe.suggest: unknown setting(s) {unknown}; known settings are {sorted(DEFAULTS)}")
    cfg = {**DEFAULTS, **settings}
    _int(cfg, "n_startup_jobs", 0)
    _int(cfg, "n_EI_candidates", 1)
    _int(cfg, "n_good_max", 1)
    _int(cfg, "max_components", 1)
    _int(cfg, "startup_candidates", 1)
    _int(cfg, "cat_candidates", 1)
    _int(cfg, "parallel_min_params", 0)
    if cfg["cat_parallel"] is not None:
        _int(cfg, "cat_parallel", 1)
    if cfg["n_EI_parallel"] is not None:
        _int(cfg, "n_EI_parallel", 1)
    if cfg["gamma_parallel"] is not None and not 0.0 < _real(cfg, "gamma_parallel") <= 1.0:
        raise AlgoError(f"tpe.suggest: gamma_parallel must be in (0, 1], got {cfg['gamma_parallel']!r}")
    if cfg["n_startup_parallel"] is not None:
        _int(cfg, "n_startup_parallel", 0)
    g = _real(cfg, "gamma")
    if not 0.0 < g <= 1.0:
        raise AlgoError(f"tpe.suggest: gamma must be in (0, 1], got {cfg['gamma']!r}")
    if _real(cfg, "prior_weight") <= 0.0:
        raise AlgoError(f"tpe.suggest: prior_weight must be > 0, got {cfg['prior_weight']!r}")
    if _real(cfg, "liar_weight") < 0.0:
        raise AlgoError(f"tpe.suggest: liar_weight must be >= 0, got {cfg['liar_weight']!r}")
    for name in ("local_share", "local_sequential"):
        if not 0.0 <= _real(cfg, name) <= 1.0:
            raise AlgoError(f"tpe.suggest: {name} must be in [0, 1], got {cfg[name]!r}")
    _int(cfg, "local_ramp", 0)
    _int(cfg, "local_mu", 1)
    if _real(cfg, "local_ramp_pending") < 0.0:
        raise AlgoError(f"tpe.suggest: local_ramp_pending must be >= 0, got {cfg['local_ramp_pending']!r}")
    if _real(cfg, "local_scale") <= 0.0:
        raise AlgoError(f"tpe.suggest: local_scale must be > 0, got {cfg['local_scale']!r}")
    if _real(cfg, "liar_floor") < 0.0:
        raise AlgoError(f"tpe.suggest: liar_floor must be >= 0, got {cfg['liar_floor']!r}")
    if not 0.0 <= _real(cfg, "penalty") < 1.0:
        raise AlgoError(f"tpe.suggest: penalty must be in [0, 1), got {cfg['penalty']!r}")
    if _real(cfg, "penalty_radius") <= 0.0:
        raise AlgoError(f"tpe.suggest: penalty_radius must be > 0, got {cfg['penalty_radius']!r}")
    if _real(cfg, "bw_factor") <= 0.0:
        raise AlgoError(f"tpe.suggest: bw_factor must be > 0, got {cfg['bw_factor']!r}")
    for name, allowed in (("liar", LIARS), ("split", SPLITS), ("bandwidth", BANDWIDTHS), ("liar_bw", LIAR_BWS), ("weights", WEIGHTS), ("liar_cat", LIAR_CATS)):
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
