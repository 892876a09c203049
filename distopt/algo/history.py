"""Observed trials as column arrays, grown in place.

The sampler reads these arrays directly instead of rebuilding them from trial records
on every ask: ``add`` is amortized O(d), and ``X[:n]`` is a view, not a copy.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from ..space.compile import CompiledSpace
from .prior import plain_value


class History:
    """Finished trials of one study: ``X`` (n x d, NaN where a parameter was inactive),
    ``losses`` (NaN for failed trials) and ``ok`` (the trial reported a usable loss).

    Pruned trials (``pruned``) have no loss; ``steps`` and ``values`` hold how far they got
    and their last intermediate value, which is how samplers rank them: after every
    complete trial, those that got further first, then by value (as optuna's TPE does)."""

    def __init__(self, space: CompiledSpace, capacity: int = 64) -> None:
        self.space = space
        self.n = 0
        self._X = np.full((capacity, len(space)), np.nan)
        self._losses = np.full(capacity, np.nan)
        self._ok = np.zeros(capacity, dtype=bool)
        self._pruned = np.zeros(capacity, dtype=bool)
        self._steps = np.full(capacity, np.nan)
        self._values = np.full(capacity, np.nan)
        self.version = 0  # bumped on every add; lets samplers cache derived arrays

    @property
    def X(self) -> np.ndarray:
        return self._X[: self.n]

    @property
    def losses(self) -> np.ndarray:
        return self._losses[: self.n]

    @property
    def ok(self) -> np.ndarray:
        return self._ok[: self.n]

    @property
    def n_ok(self) -> int:
        return int(self._ok[: self.n].sum())

    @property
    def pruned(self) -> np.ndarray:
        return self._pruned[: self.n]

    @property
    def steps(self) -> np.ndarray:
        """The last reported step of pruned trials (-1 when they reported none; NaN for others)."""
        return self._steps[: self.n]

    @property
    def values(self) -> np.ndarray:
        """The last intermediate value of pruned trials (NaN for others or when not finite)."""
        return self._values[: self.n]

    @property
    def n_pruned(self) -> int:
        return int(self._pruned[: self.n].sum())

    @property
    def n_used(self) -> int:
        """Trials a sampler learns from: complete ones with a loss, and pruned ones."""
        return self.n_ok + self.n_pruned

    def encode(self, vals: Mapping[str, Any]) -> np.ndarray:
        """A row for ``vals``: NaN for every parameter not in the assignment."""
        row = np.full(len(self.space), np.nan)
        for label, value in vals.items():
            if label in self.space:
                v = value[0] if isinstance(value, (list, tuple)) else value
                row[self.space.index(label)] = float(v)
        return row

    def encode_many(self, vals_list: Sequence[Mapping[str, Any]]) -> np.ndarray:
        if not vals_list:
            return np.empty((0, len(self.space)))
        return np.vstack([self.encode(v) for v in vals_list])

    def decode(self, row: np.ndarray) -> dict[str, Any]:
        return {p.label: plain_value(p, row[i]) for i, p in enumerate(self.space) if not math.isnan(row[i])}

    def add(self, vals: Mapping[str, Any], loss: float | None) -> None:
        """Record a finished trial; ``loss`` None or non-finite marks it failed."""
        if self.n == len(self._losses):
            self._grow()
        self._X[self.n] = self.encode(vals)
        ok = loss is not None and math.isfinite(loss)
        self._losses[self.n] = float(loss) if ok else np.nan
        self._ok[self.n] = ok
        self.n += 1
        self.version += 1

    def add_pruned(self, vals: Mapping[str, Any], step: int | None, value: float | None) -> None:
        """Record a pruned trial: its last reported ``step`` and ``value`` (None if none)."""
        self.add(vals, None)
        i = self.n - 1
        self._pruned[i] = True
        self._steps[i] = -1.0 if step is None else float(step)
        self._values[i] = float(value) if value is not None and math.isfinite(value) else np.nan

    def _grow(self) -> None:
        cap = 2 * len(self._losses)
        X = np.full((cap, len(self.space)), np.nan)
        X[: self.n] = self._X[: self.n]
        losses = np.full(cap, np.nan)
        losses[: self.n] = self._losses[: self.n]
        ok = np.zeros(cap, dtype=bool)
        ok[: self.n] = self._ok[: self.n]
        pruned = np.zeros(cap, dtype=bool)
        pruned[: self.n] = self._pruned[: self.n]
        steps, values = np.full(cap, np.nan), np.full(cap, np.nan)
        steps[: self.n], values[: self.n] = self._steps[: self.n], self._values[: self.n]
        self._X, self._losses, self._ok = X, losses, ok
        self._pruned, self._steps, self._values = pruned, steps, values
