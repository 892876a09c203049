"""Per-space and per-history constants the TPE reuses across asks.

A space's parameter groups and kernel scales never change, and a history's internal
matrix and loss ranking change only when a trial is added: both are computed once and
cached (the history by its ``version``), so an ask costs only the model fit itself.
"""

from __future__ import annotations

import dataclasses
import functools
import weakref

import numpy as np

from ..space.compile import CompiledSpace
from .history import History
from .parzen import GroupModel, Scales


@dataclasses.dataclass(frozen=True)
class Group:
    """Parameters modelled jointly: ``cols`` are their columns in the history."""

    cols: np.ndarray
    model: GroupModel
    spec_idx: int  # a member whose activity decides the group's


@dataclasses.dataclass(frozen=True)
class Layout:
    space: CompiledSpace
    groups: tuple[Group, ...]
    num_cols: np.ndarray
    scales: Scales
    branched: bool  # some parameter is active only under a choice: the space has branches
    cat_cols: np.ndarray  # the categorical columns (choices included)


@functools.lru_cache(maxsize=64)
def layout(space: CompiledSpace, multivariate: bool) -> Layout:
    """Groups in sampling order: parameters sharing their activation conditions form one
    group when ``multivariate`` (so a joint kernel sees only trials where all are active),
    otherwise every parameter is its own group."""
    buckets: dict[object, list[int]] = {}
    for i, spec in enumerate(space.params):
        key = spec.conditions if multivariate else i
        buckets.setdefault(key, []).append(i)
    groups = tuple(
        Group(np.array(cols), GroupModel([space.params[c] for c in cols]), cols[0])
        for cols in sorted(buckets.values(), key=lambda c: c[0])
    )
    num_cols = np.array([i for i, s in enumerate(space.params) if s.kind != "cat"], dtype=int)
    cat_cols = np.array([i for i, s in enumerate(space.params) if s.kind == "cat"], dtype=int)
    return Layout(space, groups, num_cols, Scales.of([space.params[i] for i in num_cols]),
                  any(spec.conditional for spec in space.params), cat_cols)


def internal(lay: Layout, X: np.ndarray) -> np.ndarray:
    """User-scale rows -> kernel centres (numeric columns) and codes (categorical)."""
    Z = np.array(X, dtype=float)
    if len(lay.num_cols) and len(Z):
        Z[:, lay.num_cols] = lay.scales.to_internal(Z[:, lay.num_cols])
    return Z


@dataclasses.dataclass(frozen=True)
class Observed:
    """The finished trials a sampler learns from (ok ones, then pruned ones): internal
    rows sorted best first (``ranking``), with each one's age rank (0 = the most recent).
    Pruned trials carry a loss just above every other value, so they are never good."""

    version: int
    Z: np.ndarray
    losses: np.ndarray
    age: np.ndarray
    #: complete trials, which rank before the pruned ones (the rows a local ask centres on)
    n_complete: int
    #: fitted densities that depend only on these trials (and the settings in the key),
    #: reused by every ask until the history changes
    memo: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)


_CACHE: "weakref.WeakKeyDictionary[History, tuple[Layout, Observed]]" = weakref.WeakKeyDictionary()


def ranking(losses: np.ndarray, pruned: np.ndarray, steps: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Best-first order of finished trials: complete ones by loss, then pruned ones by how
    far they got (further first) and their last value (as optuna's TPE ranks them)."""
    big = np.inf
    tier = pruned.astype(float)
    key_step = np.where(pruned, -np.nan_to_num(steps, nan=-1.0), 0.0)
    key_value = np.where(pruned, np.where(np.isnan(values), big, values), losses)
    return np.lexsort((np.arange(len(losses)), key_value, key_step, tier))


def observed(lay: Layout, history: History) -> Observed:
    hit = _CACHE.get(history)
    if hit is not None and hit[0] is lay and hit[1].version == history.version:
        return hit[1]
    used = history.ok | history.pruned
    rows = np.flatnonzero(used)
    order = ranking(history.losses[rows], history.pruned[rows], history.steps[rows], history.values[rows])
    losses = history.losses[rows][order]
    if history.pruned[rows].any():  # pruned rows rank last: give them one loss above every other value
        finite = np.concatenate([history.losses[history.ok], history.values[rows][np.isfinite(history.values[rows])]])
        top = float(finite.max()) if len(finite) else 0.0
        losses = np.where(history.pruned[rows][order], top + abs(top) * 1e-9 + 1e-12, losses)
    age = (len(rows) - 1 - np.arange(len(rows)))[order]
    obs = Observed(history.version, internal(lay, history.X[rows][order]), losses, age,
                   int(history.ok[rows].sum()))
    _CACHE[history] = (lay, obs)
    return obs
