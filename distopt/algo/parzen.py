"""Parzen estimators: weighted mixtures of product kernels over a group of parameters.

One estimator models the joint density of a group of parameters that are active together
(one parameter in the univariate TPE). Numeric parameters get normal kernels in their
internal (possibly log) scale, truncated to the prior's support; quantized and integer
values get the kernel's mass over their rounding bin, so a coarse grid is modelled as the
discrete distribution it is. Categorical parameters get a table per kernel, smoothed
towards the prior probabilities (so ``pchoice`` weights carry over). Every kernel
evaluation is one broadcast over candidates x components x parameters.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np
from scipy.special import ndtr, ndtri

from ..space.compile import ParamSpec
from .prior import quantize

_TINY = 1e-300
#: Neighbour bandwidths never shrink below width / _MAX_SHRINK (hyperopt's "magic clip").
_MAX_SHRINK = 100.0
#: Bins whose masses a mixture keeps per quantized column.
_MAX_BINS = 4096
#: exp(x) is exactly 0.0 in double precision for every x <= _EXP_ZERO.
_EXP_ZERO = -746.0


@dataclasses.dataclass(frozen=True)
class Scales:
    """Per-column constants of numeric parameters in their internal scale.

    ``lo``/``hi`` bound the kernels' support (infinite for normal priors); ``width`` is the
    bandwidth reference (the range, or the prior sigma); ``center`` the prior's centre;
    ``step`` the rounding bin in the user's scale (0 for a continuous value).
    """

    lo: np.ndarray
    hi: np.ndarray
    width: np.ndarray
    center: np.ndarray
    log: np.ndarray
    step: np.ndarray
    is_int: np.ndarray
    int_low: np.ndarray
    int_high: np.ndarray
    clo: np.ndarray
    chi: np.ndarray

    @classmethod
    def of(cls, specs: Sequence[ParamSpec]) -> "Scales":
        rows = [_scale_row(s) for s in specs]
        cols = list(zip(*rows)) if rows else [()] * 11
        return cls(*(np.asarray(c, dtype=bool if i in (4, 6) else float) for i, c in enumerate(cols)))

    def take(self, idx: np.ndarray) -> "Scales":
        return Scales(*(getattr(self, f.name)[idx] for f in dataclasses.fields(self)))

    def to_internal(self, values: np.ndarray) -> np.ndarray:
        """User values (rows x columns) -> kernel centres, clipped into the support (and
        within 5 prior sigmas for normal priors, so a log value rounded to 0 stays near)."""
        z = np.array(values, dtype=float)
        if self.log.any():
            z[:, self.log] = np.log(np.maximum(z[:, self.log], _TINY))
        return np.clip(z, self.clo, self.chi)

    def bins(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Internal edges of each value's rounding bin (only meaningful where step > 0)."""
        half = 0.5 * self.step
        a, b = values - half, values + half
        if self.log.any():
            with np.errstate(divide="ignore", invalid="ignore"):
                a = np.where(self.log, np.log(np.where(a > 0, a, 0.0)), a)
                b = np.where(self.log, np.log(np.maximum(b, _TINY)), b)
        return np.clip(a, self.lo, self.hi), np.clip(b, self.lo, self.hi)

    def to_user(self, z: np.ndarray) -> np.ndarray:
        """Internal samples -> user values: exp for log scales, quantized, ints in range."""
        v = np.where(self.log, np.exp(np.where(self.log, z, 0.0)), z)
        q = np.where(self.step > 0, self.step, 1.0)
        v = np.where(self.step > 0, quantize(v, q), v)
        if self.is_int.any():
            v = np.where(self.is_int, np.clip(v, self.int_low, self.int_high - 1), v)
        return v


def _scale_row(s: ParamSpec) -> tuple:
    if s.kind == "float":
        return (s.low, s.high, s.high - s.low, 0.5 * (s.low + s.high), s.log, s.q or 0.0, False, 0.0, 0.0,
                s.low, s.high)
    if s.kind == "normal":
        return (-math.inf, math.inf, s.sigma, s.mu, s.log, s.q or 0.0, False, 0.0, 0.0,
                s.mu - 5.0 * s.sigma, s.mu + 5.0 * s.sigma)
    if s.kind == "int":
        lo, hi = s.low - 0.5, s.high - 0.5
        return (lo, hi, hi - lo, 0.5 * (lo + hi), False, 1.0, True, s.low, s.high, lo, hi)
    raise ValueError(f"not a numeric parameter: {s.label!r} ({s.kind})")


@dataclasses.dataclass(frozen=True)
class Points:
    """Candidates in the forms the density needs: user values, internal values, bins."""

    user: np.ndarray
    z: np.ndarray
    a: np.ndarray
    b: np.ndarray
    codes: np.ndarray
    zc: np.ndarray
    bins: tuple  # per quantized column: distinct bins (lower, upper edges) and each candidate's index


class GroupModel:
    """The parameters of one group: which columns are numeric, which categorical."""

    def __init__(self, specs: Sequence[ParamSpec]) -> None:
        self.specs = tuple(specs)
        self.num = np.array([i for i, s in enumerate(specs) if s.kind != "cat"], dtype=int)
        self.cat = np.array([i for i, s in enumerate(specs) if s.kind == "cat"], dtype=int)
        self.scales = Scales.of([specs[i] for i in self.num])
        self.quant = self.scales.step > 0
        self.cont = ~self.quant
        self.qscales = self.scales.take(np.flatnonzero(self.quant))
        self.cat_priors = [np.asarray(specs[i].probs, dtype=float) for i in self.cat]

    def points(self, user: np.ndarray) -> Points:
        un = user[:, self.num]
        a, b = self.qscales.bins(un[:, self.quant])
        z = self.scales.to_internal(un)
        c = self.cont
        zc = (z[:, c] - self.scales.center[c]) / self.scales.width[c]
        bins = []
        for j in range(a.shape[1]):
            # distinct bins in order of first appearance (a handful of candidates: a dict
            # is cheaper than sorting)
            index: dict = {}
            first: list = []
            inv = []
            for i, v in enumerate(a[:, j].tolist()):
                k = index.get(v)
                if k is None:
                    k = index[v] = len(first)
                    first.append(i)
                inv.append(k)
            bins.append((a[first, j], b[first, j], np.array(inv, dtype=np.intp)))
        return Points(user, z, a, b, user[:, self.cat].astype(int), zc, tuple(bins))


class Mixture:
    """A weighted mixture of product kernels, the last component being the prior (unless
    ``prior`` is False: then only the observations' kernels, for ``MixtureSum``)."""

    def __init__(
        self,
        group: GroupModel,
        obs: np.ndarray,
        weights: np.ndarray,
        prior_weight: float,
        bandwidth: str,
        bw_factor: float,
        sigma: np.ndarray | None = None,
        prior: bool = True,
        n_kernels: int | None = None,
        cat_obs: bool = True,
    ) -> None:
        """``obs`` holds internal values (numeric columns) and codes (categorical columns);
        ``sigma`` fixes the numeric widths instead of the bandwidth rule; ``n_kernels``
        (default: the observations) sets how strongly categorical tables are smoothed
        towards the prior, so a part of a ``MixtureSum`` is smoothed as the whole is;
        ``cat_obs=False`` gives every kernel the prior's table (kernels that say nothing
        about the categorical columns)."""
        self.group = group
        k = len(obs)
        sc = group.scales
        w = np.asarray(weights, dtype=float)
        if prior:
            w = np.append(w, prior_weight)
        self.total = float(w.sum())
        self.logw = np.log(w / self.total)
        self.w = np.exp(self.logw)
        mus = obs[:, group.num] if len(group.num) else np.empty((k, 0))
        sig = sigma if sigma is not None else bandwidths(mus, sc, bandwidth, bw_factor, len(group.specs))
        self.mu = np.vstack([mus, sc.center[None, :]]) if prior else mus
        self.sigma = np.vstack([sig, sc.width[None, :]]) if prior else np.asarray(sig, dtype=float)
        pa = ndtr((sc.lo - self.mu) / self.sigma)
        pb = ndtr((sc.hi - self.mu) / self.sigma)
        self.pa, self.pb = pa, pb
        self.log_norm = np.log(np.maximum(pb - pa, _TINY))
        self._prepare_continuous()
        self._bins: list[dict] | None = None
        self._cdf: np.ndarray | None = None
        self.tables = []
        smooth = prior_weight / ((k if n_kernels is None else n_kernels) + 1)
        for j, probs in zip(group.cat, group.cat_priors):
            tab = np.empty((k + int(prior), len(probs)))
            tab[:k] = (smooth * len(probs)) * probs
            if k and cat_obs:
                tab[np.arange(k), obs[:, j].astype(int)] += 1.0
            if prior:
                tab[k] = probs
            tab /= tab.sum(axis=1, keepdims=True)
            self.tables.append(tab)
        self.log_tables = [np.log(np.maximum(t, _TINY)) for t in self.tables]

    def _prepare_continuous(self) -> None:
        """Expand the quadratic form so that scoring continuous columns is two matrix
        products (candidates x components), in coordinates centred and scaled by the prior."""
        c = self.group.cont
        sc = self.group.scales
        mu = (self.mu[:, c] - sc.center[c]) / sc.width[c]
        s = self.sigma[:, c] / sc.width[c]
        inv = 1.0 / (s * s)
        self._inv_s2 = -0.5 * inv.T
        self._mu_s2 = (mu * inv).T
        self._const = self.logw - (
            0.5 * (mu * mu * inv).sum(axis=1)
            + np.log(s).sum(axis=1)
            + self.log_norm[:, c].sum(axis=1)
            + (self.log_norm[:, self.group.quant]).sum(axis=1)
        )

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` draws in the user's scale (columns as in the group)."""
        g = self.group
        if self._cdf is None:
            # the draws of ``rng.choice(len(w), size, p=w)``, its checks done once
            cdf = self.w.cumsum()
            cdf /= cdf[-1]
            self._cdf = cdf
            self._span = self.pb - self.pa
            self._cum = [np.cumsum(tab, axis=1) for tab in self.tables]
        comp = self._cdf.searchsorted(rng.random(size), side="right")
        out = np.empty((size, len(g.specs)))
        if len(g.num):
            u = self.pa[comp] + rng.random((size, len(g.num))) * self._span[comp]
            z = self.mu[comp] + self.sigma[comp] * ndtri(np.clip(u, 1e-16, 1 - 1e-16))
            out[:, g.num] = g.scales.to_user(np.clip(z, g.scales.lo, g.scales.hi))
        for j, tab in zip(g.cat, self._cum):
            cum = tab[comp]
            r = rng.random(size)[:, None] * cum[:, -1:]
            out[:, j] = np.minimum((cum < r).sum(axis=1), tab.shape[1] - 1)
        return out

    def _bin_log_mass(self, j: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Each component's log mass over the bins ``[a, b)`` of quantized column ``j``
        (bins x components). A bin's masses are kept: candidates of later asks scored by
        the same mixture mostly fall in bins already seen."""
        if self._bins is None:
            self._bins = [{} for _ in range(int(self.group.quant.sum()))]
        seen = self._bins[j]
        keys = list(zip(a.tolist(), b.tolist()))
        new = [i for i, key in enumerate(keys) if key not in seen]
        if new and len(seen) + len(new) > _MAX_BINS:
            seen.clear()
            new = list(range(len(keys)))
        if new:
            qmu = self.mu[:, self.group.quant][:, j]
            qsig = self.sigma[:, self.group.quant][:, j]
            idx = np.array(new)
            ta = (a[idx, None] - qmu[None, :]) / qsig[None, :]
            tb = (b[idx, None] - qmu[None, :]) / qsig[None, :]
            # mirror bins right of the centre so the difference is taken in the lower tail
            flip = np.where(ta > 0, -1.0, 1.0)
            mass = np.abs(ndtr(flip * tb) - ndtr(flip * ta))
            logm = np.log(np.maximum(mass, _TINY))
            for i, row in zip(new, logm):
                seen[keys[i]] = row
            if len(new) == len(keys):
                return logm
        return np.array([seen[key] for key in keys]).reshape(len(keys), len(self.w))

    def log_pdf(self, pts: Points) -> np.ndarray:
        """Log density (mass for discrete columns) of each candidate, up to a constant
        shared by every mixture over the same group (the log-scale Jacobian)."""
        zc = pts.zc
        total = (zc * zc) @ self._inv_s2 + zc @ self._mu_s2 + self._const
        for j, (a, b, inv) in enumerate(pts.bins):
            # one bin per distinct value: candidates drawn from a few kernels share values
            total += self._bin_log_mass(j, a, b)[inv]
        for col, lt in enumerate(self.log_tables):
            total += lt[:, pts.codes[:, col]].T
        m = total.max(axis=1, keepdims=True)
        d = np.subtract(total, m, out=total)
        # exp underflows to exactly 0 below -746: only the rest is computed
        e = np.exp(d, where=~(d <= _EXP_ZERO), out=np.zeros_like(d))
        return (m + np.log(e.sum(axis=1, keepdims=True)))[:, 0]


class MixtureSum:
    """Two mixtures over one group as a single density, each weighted by its total
    kernel weight: the bad trials' density (fitted once per history, its caches warm)
    plus the pending trials' kernels (refitted on every ask) costs an ask only the
    pending kernels."""

    def __init__(self, first: Mixture, second: Mixture) -> None:
        total = first.total + second.total
        self.parts = ((first, math.log(first.total / total)), (second, math.log(second.total / total)))

    def log_pdf(self, pts: Points) -> np.ndarray:
        (a, la), (b, lb) = self.parts
        return np.logaddexp(a.log_pdf(pts) + la, b.log_pdf(pts) + lb)


def bandwidths(mus: np.ndarray, sc: Scales, rule: str, factor: float, dim: int) -> np.ndarray:
    """Kernel widths of the observations (k x numeric columns).

    ``"neighbor"``: the larger gap to the neighbouring observations per dimension
    (hyperopt's rule, first and last use their inner gap), clipped to
    [width / min(100, k + 2), width]. ``"scott"``: Scott's rule
    ``factor * width * k^(-1/(dim + 4))``, the same for every kernel.
    """
    k, p = mus.shape
    if k == 0 or p == 0:
        return np.empty((k, p))
    if rule == "scott":
        return np.broadcast_to(factor * sc.width * k ** (-1.0 / (dim + 4)), (k, p)).copy()
    order = np.argsort(mus, axis=0)
    col = np.arange(p)
    srt = mus[order, col]
    lo = np.where(np.isfinite(sc.lo), sc.lo, sc.center - sc.width)
    hi = np.where(np.isfinite(sc.hi), sc.hi, sc.center + sc.width)
    ext = np.vstack([np.minimum(lo, srt[0]), srt, np.maximum(hi, srt[-1])])
    gaps = np.diff(ext, axis=0)
    sig = np.maximum(gaps[:-1], gaps[1:])
    if k >= 2:
        sig[0], sig[-1] = gaps[1], gaps[-2]
    sig = sig * factor
    out = np.empty_like(sig)
    out[order, col] = sig
    return np.clip(out, sc.width / min(_MAX_SHRINK, k + 2.0), sc.width)
