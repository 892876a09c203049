"""How fast a study goes: trials finished per minute over a recent window, and the
time left until ``max_evals`` at that rate."""

from __future__ import annotations

import math
from typing import Any, Sequence

from ..trial.record import TrialRecord

#: Seconds of recent history the rate is measured over.
RATE_WINDOW = 300.0


def study_age(records: Sequence[TrialRecord], now: float) -> float:
    """Seconds since the first trial was booked (how long the study has been running)."""
    starts = [t for r in records for t in (r.book_time, r.start_time) if t is not None]
    return max(0.0, now - min(starts)) if starts else 0.0


def rate_per_minute(records: Sequence[TrialRecord], now: float, window: float = RATE_WINDOW) -> float:
    """Trials that finished (ok or fail) per minute over the last ``window`` seconds, or
    since the first trial when the study is younger than that."""
    span = min(window, study_age(records, now))
    if span <= 0:
        return 0.0
    done = sum(1 for r in records if r.state.finished and r.end_time is not None and now - window < r.end_time <= now)
    return done / max(span, 1.0) * 60.0


def eta_seconds(max_evals: int | None, finished: int, rate: float) -> float | None:
    """Seconds until ``max_evals`` trials have finished at ``rate`` per minute."""
    if max_evals is None:
        return None
    remaining = max(0, max_evals - finished)
    if remaining == 0:
        return 0.0
    if rate <= 0 or not math.isfinite(rate):
        return None
    return remaining / rate * 60.0


def study_eta(status: Any, max_evals: int | None, finished: int, rate: float) -> float | None:
    """A running study's ETA; a done one has none left (0); one that was cancelled,
    failed or interrupted has no ETA until a coordinator runs it again."""
    if status == "done":
        return None if max_evals is None else 0.0
    if status in ("cancelled", "failed", "interrupted"):
        return None
    return eta_seconds(max_evals, finished, rate)
