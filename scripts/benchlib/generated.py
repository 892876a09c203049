"""A seeded generator of mixed and conditional test problems with known optima.

Every instance is drawn from its index alone, so the set is the same on every machine:

- a choice at the top between 2-4 branches of different dimension (1-6 parameters each),
  plus 0-2 parameters outside the choice;
- numeric parameters of several kinds: ``uniform``, ``loguniform`` (searched and scored in
  log scale), ``uniformint`` and ``randint`` (integers), ``quniform``;
- categorical parameters inside a branch whose value moves the best point of the
  branch's continuous parameters and adds a penalty, so a category and the continuous
  values must be learnt together;
- within a branch, a rotated ill-conditioned quadratic bowl in the parameters' prior
  quantile coordinates, sometimes with ripples (local minima);
- the best branch is not the easiest: the others have a positive floor but wider basins;
- a noise level (0 for half of the instances): the objective the optimizer sees adds a
  deterministic pseudo-random error that depends on the point only, while regret is
  scored on the noise-free value.

The optimum is known exactly: 0 at the centre of the best branch with its best categories
(every term is >= 0 and 0 there). Even indices are tuning instances, odd ones validation.
"""

from __future__ import annotations

import dataclasses
import json
import math
import zlib
from typing import Any

import numpy as np

from distopt.space import hp

#: Number of generated instances (half tuning, half validation).
N_INSTANCES = 40
_KINDS = ("uniform", "loguniform", "uniformint", "randint", "quniform", "cat")
_KIND_P = (0.3, 0.25, 0.15, 0.05, 0.05, 0.2)


@dataclasses.dataclass(frozen=True)
class _Param:
    label: str
    kind: str
    low: float = 0.0
    high: float = 1.0
    n_options: int = 0

    def node(self) -> Any:
        if self.kind == "uniform":
            return hp.uniform(self.label, self.low, self.high)
        if self.kind == "loguniform":
            return hp.loguniform(self.label, math.log(self.low), math.log(self.high))
        if self.kind == "uniformint":
            return hp.uniformint(self.label, self.low, self.high)
        if self.kind == "randint":
            return hp.randint(self.label, int(self.low), int(self.high) + 1)
        if self.kind == "quniform":
            return hp.quniform(self.label, self.low, self.high, (self.high - self.low) / 20)
        return hp.choice(self.label, [f"c{k}" for k in range(self.n_options)])

    def unit(self, value: Any) -> float:
        """The value's position in [0, 1] of the prior's range (log scale for loguniform)."""
        if self.kind == "loguniform":
            return (math.log(value) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        return (float(value) - self.low) / (self.high - self.low)

    def value_at(self, u: float) -> Any:
        """The value at unit position ``u`` (which must be reachable for a discrete kind)."""
        if self.kind == "loguniform":
            return math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        v = self.low + u * (self.high - self.low)
        return int(round(v)) if self.kind in ("uniformint", "randint") else v


@dataclasses.dataclass(frozen=True)
class _Branch:
    params: tuple[_Param, ...]  # numeric first, then categorical
    center: np.ndarray  # unit centres of the numeric params
    shifts: tuple[np.ndarray, ...]  # per categorical param: (options x numeric) centre shifts
    penalties: tuple[np.ndarray, ...]  # per categorical param: penalty of each option
    A: np.ndarray  # PSD form over the numeric params
    ripple: float
    freq: float
    floor: float
    scale: float

    @property
    def numeric(self) -> tuple[_Param, ...]:
        return tuple(p for p in self.params if p.kind != "cat")

    @property
    def cats(self) -> tuple[_Param, ...]:
        return tuple(p for p in self.params if p.kind == "cat")

    def value(self, vals: dict[str, Any]) -> float:
        num = self.numeric
        c = self.center.copy()
        pen = 0.0
        for p, sh, pn in zip(self.cats, self.shifts, self.penalties):
            k = int(str(vals[p.label])[1:])
            pen += float(pn[k])
            c = c + sh[k]
        u = np.array([p.unit(vals[p.label]) for p in num]) - c
        bowl = float(u @ self.A @ u)
        rip = self.ripple * float(np.sum(1.0 - np.cos(2 * math.pi * self.freq * u)))
        return self.floor + self.scale * (bowl + rip) + pen

    def best_point(self) -> dict[str, Any]:
        """Where this branch is lowest: its centre with the zero-penalty categories."""
        out: dict[str, Any] = {}
        c = self.center.copy()
        for p, sh, pn in zip(self.cats, self.shifts, self.penalties):
            k = int(np.argmin(pn))
            out[p.label] = f"c{k}"
            c = c + sh[k]
        for p, u in zip(self.numeric, c):
            out[p.label] = p.value_at(float(u))
        return out


@dataclasses.dataclass(frozen=True)
class Instance:
    """One generated problem: ``space``, ``truth`` (noise-free), ``fn`` (what an
    optimizer sees), ``optimum`` (0) and ``argmin``."""

    name: str
    branches: tuple[_Branch, ...]
    best: int
    globals_: tuple[_Param, ...]
    g_center: np.ndarray
    g_weight: float
    noise: float

    @property
    def space(self) -> dict[str, Any]:
        options = [{"id": b, **{p.label: p.node() for p in br.params}} for b, br in enumerate(self.branches)]
        return {"branch": hp.choice(f"{self.name}_branch", options), **{p.label: p.node() for p in self.globals_}}

    def truth(self, params: dict[str, Any]) -> float:
        br = params["branch"]
        f = self.branches[int(br["id"])].value(br)
        if self.globals_:
            u = np.array([p.unit(params[p.label]) for p in self.globals_]) - self.g_center
            f += self.g_weight * float(u @ u)
        return f

    def fn(self, params: dict[str, Any]) -> float:
        f = self.truth(params)
        if self.noise == 0.0:
            return f
        key = json.dumps(params, sort_keys=True, default=float).encode()
        return f + self.noise * float(np.random.default_rng(zlib.crc32(key)).standard_normal())

    @property
    def trap_floor(self) -> float:
        """The lowest floor among the other branches: a point whose regret is below it can
        only be on the best branch (every term of the objective is >= 0)."""
        return min(b.floor for i, b in enumerate(self.branches) if i != self.best)

    @property
    def argmin(self) -> dict[str, Any]:
        point: dict[str, Any] = {"branch": {"id": self.best, **self.branches[self.best].best_point()}}
        for p, u in zip(self.globals_, self.g_center):
            point[p.label] = p.value_at(float(u))
        return point

    def describe(self) -> str:
        dims = "/".join(str(len(b.params)) for b in self.branches)
        kinds = sorted({p.kind for b in self.branches for p in b.params} | {p.kind for p in self.globals_})
        return (f"{len(self.branches)} branches ({dims} params, best {self.best}), {len(self.globals_)} global, "
                f"{','.join(kinds)}, noise {self.noise:g}")


def _param(rng: np.random.Generator, label: str, kind: str) -> _Param:
    if kind == "uniform":
        lo = float(rng.uniform(-5, 5))
        return _Param(label, kind, lo, lo + float(rng.uniform(1, 10)))
    if kind == "loguniform":
        lo = 10.0 ** float(rng.integers(-6, 0))
        return _Param(label, kind, lo, lo * 10.0 ** float(rng.integers(2, 6)))
    if kind in ("uniformint", "randint"):
        lo = int(rng.integers(0, 5))
        return _Param(label, kind, lo, lo + int(rng.integers(4, 60)))
    if kind == "quniform":
        return _Param(label, kind, 0.0, float(rng.integers(1, 5)))
    return _Param(label, kind, n_options=int(rng.integers(2, 5)))


def _reachable(p: _Param, u: float) -> float:
    """The nearest unit position ``p`` can take exactly (a grid point for discrete kinds)."""
    if p.kind in ("uniformint", "randint"):
        return (round(p.low + u * (p.high - p.low)) - p.low) / (p.high - p.low)
    if p.kind == "quniform":
        return round(u * 20) / 20
    return u


def _psd(rng: np.random.Generator, d: int) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    eig = np.logspace(0, math.log10(float(rng.uniform(1, 30))), d)
    eig = eig * d / eig.sum()
    return (q * eig) @ q.T * float(rng.uniform(0.5, 2.5))


def _branch(rng: np.random.Generator, prefix: str, dim: int, floor: float, scale: float) -> _Branch:
    kinds = [str(k) for k in rng.choice(_KINDS, size=dim, p=_KIND_P)]
    if all(k == "cat" for k in kinds):
        kinds[0] = "uniform"
    kinds.sort(key=lambda k: k == "cat")  # numeric first
    params = tuple(_param(rng, f"{prefix}_p{j}", k) for j, k in enumerate(kinds))
    num = [p for p in params if p.kind != "cat"]
    cats = [p for p in params if p.kind == "cat"]
    cont = np.array([p.kind in ("uniform", "loguniform") for p in num])
    center = np.array([_reachable(p, float(rng.uniform(0.2, 0.8))) for p in num])
    shifts, penalties = [], []
    for p in cats:
        sh = rng.uniform(-0.2, 0.2, size=(p.n_options, len(num))) * cont  # moves continuous centres only
        pen = rng.uniform(0.05, 0.6, size=p.n_options)
        best = int(rng.integers(p.n_options))
        pen[best], sh[best] = 0.0, 0.0
        shifts.append(sh)
        penalties.append(pen)
    ripple = float(rng.choice([0.0, 0.0, 0.05, 0.15]))
    return _Branch(params, center, tuple(shifts), tuple(penalties), _psd(rng, len(num)), ripple,
                   float(rng.integers(2, 5)), floor, scale)


def instance(index: int) -> Instance:
    """The generated problem number ``index`` (any non-negative integer)."""
    rng = np.random.default_rng([20261205, index])
    name = f"gen{index:02d}"
    n_br = int(rng.integers(2, 5))
    dims = [int(d) for d in rng.choice(np.arange(1, 7), size=n_br, replace=False)]
    best = int(rng.integers(n_br))
    branches = []
    for b, d in enumerate(dims):
        floor = 0.0 if b == best else float(rng.uniform(0.1, 0.6))
        scale = 1.0 if b == best else float(rng.uniform(0.2, 0.6))  # the traps are flatter
        branches.append(_branch(rng, f"{name}_b{b}", d, floor, scale))
    n_glob = int(rng.choice([0, 0, 1, 2]))
    globals_ = tuple(_param(rng, f"{name}_g{j}", str(rng.choice(["uniform", "loguniform"]))) for j in range(n_glob))
    g_center = np.array([float(rng.uniform(0.2, 0.8)) for _ in globals_])
    noise = float(rng.choice([0.0, 0.0, 0.01, 0.05]))
    return Instance(name, tuple(branches), best, globals_, g_center, float(rng.uniform(0.5, 2.0)), noise)


def instances(n: int = N_INSTANCES) -> list[Instance]:
    return [instance(i) for i in range(n)]
