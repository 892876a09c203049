"""Hyperband (Li et al. 2017) as brackets of asynchronous successive halving.

Bracket ``b`` is a ``SuccessiveHalvingPruner`` with ``min_early_stopping_rate = b``: the
first prunes hard and early, the last hardly at all. Each trial belongs to one bracket,
chosen by a hash of study name and trial id weighted by the bracket's share of trials
(``ceil(n_brackets * eta**s / (s + 1))``, ``s = n_brackets - 1 - b``), and competes only
with the trials of its bracket. As optuna's ``HyperbandPruner``.
"""

from __future__ import annotations

import binascii
import math
from typing import Any

from ._base import Pruner, Snapshot, check_bootstrap, check_int, check_int_or_auto
from ._successive_halving import SuccessiveHalvingPruner


class HyperbandPruner(Pruner):
    """``min_resource`` steps before the first rung; ``max_resource`` the longest curve
    (``"auto"``: one more than the last step of the longest complete trial; no pruning
    before one completed); ``reduction_factor``; ``bootstrap_count`` as in ASHA."""

    name = "hyperband"

    def __init__(self, min_resource: int = 1, max_resource: int | str = "auto", reduction_factor: int = 3,
                 bootstrap_count: int = 0) -> None:
        owner = type(self).__name__
        self.min_resource = check_int(owner, "min_resource", min_resource, 1)
        self.max_resource = check_int_or_auto(owner, "max_resource", max_resource, 1)
        self.reduction_factor = check_int(owner, "reduction_factor", reduction_factor, 2)
        self.bootstrap_count = check_bootstrap(owner, bootstrap_count, "max_resource", self.max_resource)

    def options(self) -> dict[str, Any]:
        return {"min_resource": self.min_resource,
                "max_resource": "auto" if self.max_resource is None else self.max_resource,
                "reduction_factor": self.reduction_factor, "bootstrap_count": self.bootstrap_count}

    def budgets(self, max_resource: int) -> list[int]:
        """Each bracket's share of trials."""
        n = max(1, math.floor(math.log(max_resource / self.min_resource, self.reduction_factor)) + 1)
        return [math.ceil(n * self.reduction_factor ** (n - 1 - b) / (n - b)) for b in range(n)]

    def bracket(self, study: str, tid: int, budgets: list[int]) -> int:
        n = binascii.crc32(f"{study}_{tid}".encode()) % sum(budgets)
        for b, share in enumerate(budgets):
            n -= share
            if n < 0:
                return b
        raise AssertionError("unreachable")  # pragma: no cover

    def _max_resource(self, snap: Snapshot) -> int | None:
        if self.max_resource is not None:
            return self.max_resource
        last = [c.last_step for c in snap.curves.values() if c.complete and c.last_step is not None]
        return max(last) + 1 if last else None

    def prune(self, snap: Snapshot) -> bool:
        max_resource = self._max_resource(snap)
        if max_resource is None:
            return False
        budgets = self.budgets(max_resource)
        mine = self.bracket(snap.study, snap.tid, budgets)
        curves = {t: c for t, c in snap.curves.items()
                  if t == snap.tid or self.bracket(snap.study, t, budgets) == mine}
        sha = SuccessiveHalvingPruner(self.min_resource, self.reduction_factor, mine, self.bootstrap_count)
        return sha.prune(Snapshot(snap.tid, curves, snap.n_complete, snap.study))
