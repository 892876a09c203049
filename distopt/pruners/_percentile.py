"""Percentile and median pruning: stop a trial whose best value so far is worse than a
percentile of the other trials' values at the same step."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._base import Curve, Pruner, Snapshot, check_int, check_number


def is_check_step(curve: Curve, n_warmup_steps: int, interval_steps: int) -> bool:
    """Whether the curve's last step is the first report in its interval after warm-up
    (optuna's rule: with interval 10 and warm-up 5, checks at the first report at or
    after steps 5, 15, 25, ...)."""
    step = curve.last_step
    if step is None or step < n_warmup_steps:
        return False
    nearest = (step - n_warmup_steps) // interval_steps * interval_steps + n_warmup_steps
    second_last = int(curve.steps[-2]) if len(curve.steps) > 1 else -1
    return second_last < nearest


class PercentilePruner(Pruner):
    """Prune when the trial's best value is worse than the ``percentile`` of the values
    all other trials (running, pruned or complete) reported at the trial's last step.

    ``n_startup_trials``: no pruning until that many trials completed; ``n_warmup_steps``:
    none before that step; ``interval_steps``: check at most once per interval;
    ``n_min_trials``: no pruning unless that many other trials reported at the step.
    Unlike optuna, which compares against complete trials only, every reported value
    counts, so a pool of workers prunes from the first wave on.
    """

    name = "percentile"

    def __init__(self, percentile: float = 25.0, n_startup_trials: int = 5, n_warmup_steps: int = 0,
                 interval_steps: int = 1, *, n_min_trials: int = 1) -> None:
        owner = type(self).__name__
        self.percentile = check_number(owner, "percentile", percentile, 0.0, 100.0)
        self.n_startup_trials = check_int(owner, "n_startup_trials", n_startup_trials, 0)
        self.n_warmup_steps = check_int(owner, "n_warmup_steps", n_warmup_steps, 0)
        self.interval_steps = check_int(owner, "interval_steps", interval_steps, 1)
        self.n_min_trials = check_int(owner, "n_min_trials", n_min_trials, 1)

    def options(self) -> dict[str, Any]:
        return {"percentile": self.percentile, "n_startup_trials": self.n_startup_trials,
                "n_warmup_steps": self.n_warmup_steps, "interval_steps": self.interval_steps,
                "n_min_trials": self.n_min_trials}

    def prune(self, snap: Snapshot) -> bool:
        curve = snap.curve
        step = curve.last_step
        if step is None or snap.n_complete < max(1, self.n_startup_trials):
            return False
        if not is_check_step(curve, self.n_warmup_steps, self.interval_steps):
            return False
        if np.isnan(curve.values).all():
            return True
        best = float(np.nanmin(curve.values))
        at_step = [v for v in (c.value_at(step) for c in snap.others()) if v is not None]
        values = np.asarray(at_step, dtype=float)
        if len(values) < self.n_min_trials or np.isnan(values).all():
            return False
        threshold = float(np.nanpercentile(values, self.percentile))
        return not math.isnan(threshold) and best > threshold


class MedianPruner(PercentilePruner):
    """``PercentilePruner`` at the 50th percentile: stop a trial worse than the median."""

    name = "median"

    def __init__(self, n_startup_trials: int = 5, n_warmup_steps: int = 0, interval_steps: int = 1, *,
                 n_min_trials: int = 1) -> None:
        super().__init__(50.0, n_startup_trials, n_warmup_steps, interval_steps, n_min_trials=n_min_trials)

    def options(self) -> dict[str, Any]:
        out = super().options()
        out.pop("percentile")
        return out
