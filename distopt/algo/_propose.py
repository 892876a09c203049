"""One TPE proposal: split the trials, fit l (good) and g (bad) per group, pick the
candidate drawn from l with the highest l/g ratio."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from .prior import plain_value
from ._layout import Group, Layout, Observed
from .parzen import GroupModel, Mixture, MixtureSum, bandwidths


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The knobs the model reads (validated in ``tpe``)."""

    gamma: float
    split: str
    n_good_max: int
    n_EI_candidates: int
    prior_weight: float
    liar: str
    bandwidth: str
    bw_factor: float
    max_components: int
    liar_weight: float
    liar_bw: str
    weights: str
    penalty: float
    penalty_radius: float
    liar_floor: float
    cat_candidates: int
    liar_cat: str
    local_scale: float
    local_mu: int


def n_good(n_ok: int, cfg: ModelConfig) -> int:
    """Size of the good group, from finished trials only."""
    if n_ok == 0:
        return 0
    base = n_ok if cfg.split == "linear" else math.sqrt(n_ok)
    return int(min(n_ok, cfg.n_good_max, max(1, math.ceil(cfg.gamma * base))))


#: The most recent bad trials keep full weight under ``weights="ramp"``.
_RAMP_FLAT = 25


@dataclasses.dataclass(frozen=True)
class Parts:
    """The model's inputs: good rows, bad rows and their weights, the pending rows and
    whether the liar puts them in the good group (no rows for ``liar="none"``)."""

    good: np.ndarray
    bad: np.ndarray
    bad_w: np.ndarray
    pending: np.ndarray
    to_good: bool
    around: np.ndarray  # pending rows that penalize candidates near them
    n_ok: int
    memo: dict  # the history version's cache of fitted densities
    key: tuple  # what, besides the group, decides the finished trials' part of the model
    top: np.ndarray  # the best finished rows, best first: where local asks centre (see _local)


def _bad_weights(age: np.ndarray, rule: str) -> np.ndarray:
    """``"ramp"`` (optuna's and hyperopt's forgetting): beyond the 25 most recent bad
    trials, older ones fade linearly, the oldest to 1/n."""
    n = len(age)
    if rule == "uniform" or n <= _RAMP_FLAT:
        return np.ones(n)
    return np.minimum(1.0, 1.0 / n + (1.0 - 1.0 / n) * (n - 1 - age) / max(n - _RAMP_FLAT - 1, 1))


def split(obs: Observed, pending: np.ndarray, cfg: ModelConfig) -> Parts:
    """Split the finished trials by loss (split size from finished trials only) and place
    the pending ones as the liar says."""
    k = n_good(len(obs.losses), cfg)
    hit = obs.memo.get(("bad", k, cfg.weights, cfg.max_components))
    if hit is None:
        bad, age = obs.Z[k:], obs.age[k:]
        w = np.ones(len(bad)) if cfg.weights == "uniform" else _bad_weights(np.argsort(np.argsort(age)), cfg.weights)
        if len(bad) > cfg.max_components:
            # thin evenly over the loss ranking: the group keeps its shape at a bounded cost
            keep = np.linspace(0, len(bad) - 1, cfg.max_components).round().astype(int)
            bad, w = bad[keep], w[keep]
        hit = obs.memo[("bad", k, cfg.weights, cfg.max_components)] = (bad, w)
    bad, w = hit
    around = pending if cfg.penalty > 0.0 else pending[:0]
    n_ok = len(obs.losses)
    key = (k, cfg.max_components, cfg.weights, cfg.prior_weight, cfg.bandwidth, cfg.bw_factor)
    # pruned trials rank last and never centre a local ask, unless nothing else finished
    top = obs.Z[:max(1, min(k + cfg.local_mu, obs.n_complete))]
    if cfg.liar == "none":
        return Parts(obs.Z[:k], bad, w, pending[:0], False, around, n_ok, obs.memo, key, top)
    to_good = cfg.liar == "best" or (
        cfg.liar == "mean" and k > 0 and float(obs.losses.mean()) <= obs.losses[k - 1]
    )
    return Parts(obs.Z[:k], bad, w, pending, to_good, around, n_ok, obs.memo, key, top)


def propose(lay: Layout, parts: Parts, cfg: ModelConfig, rng: np.random.Generator,
            local: bool = False, local_mu: int = 1) -> dict[str, Any]:
    """One assignment, drawn group by group in sampling order (parents first).

    ``local``: candidates come from a narrow kernel at the centre of the best
    ``local_mu`` finished trials (``_centre``; in every group where the best one is
    active) instead of from l; they are still scored by l/g, so the pending trials' lies
    spread the local asks around it."""
    vals: dict[str, Any] = {}
    params = lay.space.params
    top = _alike(lay, parts.top) if local and local_mu > 1 else parts.top  # one row: the best trial alone
    for gi, g in enumerate(lay.groups):
        if not params[g.spec_idx].is_active(vals):
            continue
        fixed = parts.memo.get((gi, parts.key))
        if fixed is None:
            good = _rows(parts.good, g.cols)
            bad, bad_w = _rows(parts.bad, g.cols, parts.bad_w)
            fixed = parts.memo[(gi, parts.key)] = [good, bad, bad_w, None, None]
        good, bad, bad_w = fixed[:3]
        pend = _rows(parts.pending, g.cols)
        if parts.to_good and len(pend):
            good = np.vstack([good, pend])
            pend = pend[:0]
            l = Mixture(g.model, good, np.ones(len(good)), cfg.prior_weight, cfg.bandwidth, cfg.bw_factor)
        else:
            if fixed[3] is None:
                fixed[3] = Mixture(g.model, good, np.ones(len(good)), cfg.prior_weight, cfg.bandwidth, cfg.bw_factor)
            l = fixed[3]
        if fixed[4] is None:
            fixed[4] = Mixture(g.model, bad, bad_w, cfg.prior_weight, cfg.bandwidth, cfg.bw_factor)
        b = fixed[4]
        if len(pend) and (cfg.liar_cat == "kernel" or len(g.model.num)) and _liar_weight(good, bad, pend, cfg) > 0.0:
            b = MixtureSum(b, _lies(g.model, good, bad, pend, cfg))
        n_cand = cfg.n_EI_candidates if len(g.model.num) else cfg.cat_candidates
        src = _local(g, l, top, cfg, local_mu) if local else None
        cand = (l if src is None else src).sample(rng, n_cand)
        pts = g.model.points(cand)
        score = l.log_pdf(pts) - b.log_pdf(pts)
        if len(parts.around):
            score += _penalty(g.model, pts, _rows(parts.around, g.cols), parts.n_ok, cfg)
        best = cand[int(np.argmax(score))]
        for spec, v in zip(g.model.specs, best):
            vals[spec.label] = plain_value(spec, float(v))
    return vals


def _local(g: Group, l: Mixture, top: np.ndarray, cfg: ModelConfig, mu: int) -> Mixture | None:
    """One kernel at the centre of the best finished trials (``top``, best first): the
    best trial's categories (a table smoothed by a million kernels' share of the prior),
    numeric values from ``_centre``, widths ``local_scale`` times the best trial's in l
    (whose first kernel it is wherever it is active). None where the best trial is
    inactive: the group is drawn from l."""
    rows = top[:, g.cols]
    if not len(rows) or np.isnan(rows[0]).any():
        return None
    return Mixture(g.model, _centre(g.model, rows, mu), np.ones(1), cfg.prior_weight, cfg.bandwidth,
                   cfg.bw_factor, sigma=l.sigma[:1] * cfg.local_scale, prior=False, n_kernels=10 ** 6)


def _alike(lay: Layout, top: np.ndarray) -> np.ndarray:
    """The rows of ``top`` (best first) whose categories, branch choices included, equal
    the best row's wherever the best row has one: a group's centre then averages only
    trials like the best one, also where a category that moves the group's optimum lies
    in another group (always so with ``multivariate=False``)."""
    cats = lay.cat_cols
    if not len(cats) or len(top) < 2:
        return top
    best = top[0, cats]
    on = ~np.isnan(best)
    return top[(top[:, cats[on]] == best[on]).all(axis=1)]


def _centre(model: GroupModel, rows: np.ndarray, mu: int) -> np.ndarray:
    """The best row (``rows[0]``) with its numeric values replaced by a weighted mean of
    the best rows that share its categories and are active (``n`` of them, at most
    ``mu``), weights ``log(n + 1/2) - log(rank)`` as CMA-ES recombines its parents.

    The best trial alone is a poor centre when the loss is noisy (it is partly the
    luckiest draw) and on a narrow valley (the trials around it straddle the minimum);
    the weighted mean of the best few estimates where the minimum lies, as the
    recombination in evolution strategies does. Rows come from the good group and the
    ``local_mu`` trials after it (``split``): trials far down the ranking never pull the
    centre, even where they share the best trial's categories."""
    best = rows[:1]
    same = ~np.isnan(rows).any(axis=1)
    if len(model.cat):
        same &= (rows[:, model.cat] == best[0, model.cat]).all(axis=1)
    rows = rows[same][:mu]
    if len(rows) < 2 or not len(model.num):
        return best
    w = math.log(len(rows) + 0.5) - np.log(np.arange(1, len(rows) + 1))
    out = best.copy()
    out[0, model.num] = (w / w.sum()) @ rows[:, model.num]
    return out


def _lies(model: GroupModel, good: np.ndarray, bad: np.ndarray, pend: np.ndarray, cfg: ModelConfig) -> Mixture:
    """The pending trials' kernels, which join the bad density (its own kernels as fitted
    without them).

    One more plain bad kernel is diluted by the whole bad group and barely moves l/g, so
    a pending kernel weighs ``liar_weight * n_bad / max(n_good, n_pending)`` (at least
    ``liar_floor``): about what a good trial weighs in l while few trials run, but never
    letting a wide queue drown the bad group (which would stop the search from
    exploiting). A pending kernel is as wide as it would be among the bad trials
    (``liar_bw="bad"``) or among the good ones (``"good"``, a much stronger repulsion).
    """
    pw = _liar_weight(good, bad, pend, cfg)
    num = model.num
    sigma = None
    if len(num):
        among = good if cfg.liar_bw == "good" else bad
        both = np.vstack([among[:, num], pend[:, num]])
        sigma = bandwidths(both, model.scales, cfg.bandwidth, cfg.bw_factor, len(model.specs))[len(among):]
    return Mixture(model, pend, np.full(len(pend), pw), cfg.prior_weight, cfg.bandwidth, cfg.bw_factor,
                   sigma=sigma, prior=False, n_kernels=len(bad), cat_obs=cfg.liar_cat == "kernel")


def _liar_weight(good: np.ndarray, bad: np.ndarray, pend: np.ndarray, cfg: ModelConfig) -> float:
    return max(cfg.liar_floor, cfg.liar_weight * len(bad) / max(len(good), len(pend), 1))


def _penalty(model: GroupModel, pts, around: np.ndarray, n_ok: int, cfg: ModelConfig) -> np.ndarray:
    """Local penalization of the acquisition (log scale): each pending point multiplies
    a candidate's l/g ratio by ``1 - penalty * exp(-d^2 / 2)``, ``d`` being the distance
    in radii of ``penalty_radius * width * n_ok^(-1/(p + 4))`` per numeric dimension (a
    Scott-like width that shrinks as trials finish); a different category adds 1 to
    ``d^2``. Pending points only push candidates apart; the densities stay as fitted."""
    if not len(around):
        return np.zeros(len(pts.user))
    d2 = np.zeros((len(pts.user), len(around)))
    num = model.num
    if len(num):
        sc = model.scales
        r = cfg.penalty_radius * sc.width * max(n_ok, 1) ** (-1.0 / (len(model.specs) + 4))
        zc = pts.z / r
        pc = around[:, num] / r
        d2 += (zc * zc).sum(axis=1)[:, None] - 2.0 * zc @ pc.T + (pc * pc).sum(axis=1)[None, :]
    for col, j in enumerate(model.cat):
        d2 += pts.codes[:, col][:, None] != around[:, j].astype(int)[None, :]
    return np.log1p(-cfg.penalty * np.exp(-0.5 * np.maximum(d2, 0.0))).sum(axis=1)


def _rows(Z: np.ndarray, cols: np.ndarray, w: np.ndarray | None = None):
    """The rows where the group is active (and their weights, when given)."""
    sub = Z[:, cols]
    keep = ~np.isnan(sub).any(axis=1)
    return sub[keep] if w is None else (sub[keep], w[keep])
