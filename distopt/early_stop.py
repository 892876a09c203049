"""Early-stopping rules for ``fmin(early_stop_fn=...)``, as in hyperopt."""

from __future__ import annotations

import logging
from typing import Any, Callable

log = logging.getLogger(__name__)


def no_progress_loss(iteration_stop_count: int = 20, percent_increase: float = 0.0) -> Callable[..., tuple[bool, list]]:
    """Stop after ``iteration_stop_count`` results without improving the best loss by more
    than ``percent_increase`` percent."""

    def stop_fn(trials: Any, best_loss: float | None = None, iteration_no_progress: int = 0) -> tuple[bool, list]:
        new_loss = trials.trials[len(trials.trials) - 1]["result"].get("loss")
        if best_loss is None:
            return False, [new_loss, iteration_no_progress + 1]
        threshold = best_loss - abs(best_loss * (percent_increase / 100.0))
        if new_loss is not None and new_loss < threshold:
            best_loss, iteration_no_progress = new_loss, 0
        else:
            iteration_no_progress += 1
            log.debug("no progress for %d of %d results (best loss %s)", iteration_no_progress,
                      iteration_stop_count, best_loss)
        return iteration_no_progress >= iteration_stop_count, [best_loss, iteration_no_progress]

    return stop_fn
