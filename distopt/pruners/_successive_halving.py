"""Asynchronous successive halving (ASHA, Li et al. 2018) on learning curves.

Rung ``k`` sits at step ``min_resource * reduction_factor ** (min_early_stopping_rate + k)``.
A trial's value at a rung is the value of its first report at or after the rung's step.
When a report is a trial's first past a rung, the trial goes on only if its value there is
among the best ``1 / reduction_factor`` of every value any trial reached that rung with
(the best one while fewer than ``reduction_factor`` trials got there). No trial waits for
others: that is what makes it asynchronous, and suits a pool of workers.

Stateless: rung values are read off the curves, so every worker decides the same way
without a per-trial memory. Same rules as optuna's ``SuccessiveHalvingPruner``.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from ._base import Curve, Pruner, Snapshot, check_bootstrap, check_int, check_int_or_auto


def estimate_min_resource(curves: Iterable[Curve]) -> int | None:
    """1/100 of the longest complete curve (at least 1); None before any completed."""
    last = [c.last_step for c in curves if c.complete and c.last_step is not None]
    if not last:
        return None
    return max(max(last) // 100, 1)


def promotable(value: float, competing: list[float], reduction_factor: int) -> bool:
    """``value`` (one of ``competing``) is among the best ``len // reduction_factor``, or
    the best of all while there are fewer than ``reduction_factor``."""
    idx = max(len(competing) // reduction_factor - 1, 0)
    return value <= sorted(competing)[idx]


class SuccessiveHalvingPruner(Pruner):
    """ASHA: ``min_resource`` (steps before the first rung, or ``"auto"``),
    ``reduction_factor`` (keep 1 in this many per rung), ``min_early_stopping_rate``
    (skip this many rungs), ``bootstrap_count`` (prune at a rung until more than this
    many trials reached it)."""

    name = "asha"

    def __init__(self, min_resource: int | str = "auto", reduction_factor: int = 4,
                 min_early_stopping_rate: int = 0, bootstrap_count: int = 0) -> None:
        owner = type(self).__name__
        self.min_resource = check_int_or_auto(owner, "min_resource", min_resource, 1)
        self.reduction_factor = check_int(owner, "reduction_factor", reduction_factor, 2)
        self.min_early_stopping_rate = check_int(owner, "min_early_stopping_rate", min_early_stopping_rate, 0)
        self.bootstrap_count = check_bootstrap(owner, bootstrap_count, "min_resource", self.min_resource)

    def options(self) -> dict[str, Any]:
        return {"min_resource": "auto" if self.min_resource is None else self.min_resource,
                "reduction_factor": self.reduction_factor, "min_early_stopping_rate": self.min_early_stopping_rate,
                "bootstrap_count": self.bootstrap_count}

    def rung_step(self, min_resource: int, rung: int) -> int:
        return min_resource * self.reduction_factor ** (self.min_early_stopping_rate + rung)

    def prune(self, snap: Snapshot) -> bool:
        curve = snap.curve
        step = curve.last_step
        if step is None:
            return False
        min_resource = self.min_resource
        if min_resource is None:
            min_resource = estimate_min_resource(snap.curves.values())
            if min_resource is None:
                return False
        value = float(curve.values[-1])
        before = int(curve.steps[-2]) if len(curve.steps) > 1 else -1
        rung = 0
        while True:
            at = self.rung_step(min_resource, rung)
            if step < at:
                return False
            if before < at:  # this report is the trial's first at or past the rung: judge it
                if math.isnan(value):
                    return True
                competing = [value]
                for other in snap.others():
                    hit = other.first_at_or_after(at)
                    if hit is not None and not math.isnan(hit[1]):
                        competing.append(hit[1])
                if len(competing) <= self.bootstrap_count:
                    return True
                if not promotable(value, competing, self.reduction_factor):
                    return True
            rung += 1
