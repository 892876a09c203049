"""Stopping a trial that runs past its ``trial_timeout``, in the worker, without killing it.

rq's own job timeout counts whole seconds and, in a forking worker, kills the
work-horse; in the default non-forking worker it raises ``JobTimeoutException`` (an
``Exception``), which an objective's ``except Exception`` swallows. distopt keeps its own
timer instead: a SIGALRM interval timer (fractions of a second) that raises
``TrialTimeout``, a ``BaseException``, so only the job function catches it, records the
trial as FAIL and the worker takes the next job.

The timer shares SIGALRM with rq's death penalty; rq's alarm is saved and re-armed with
what is left of it when the trial ends, so rq's timeout stays a backstop. Signals reach
only the main thread: elsewhere (a threaded worker) the limit is left to rq and to the
coordinator's deadline.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from typing import Any, Iterator

from ..errors import TrialTimeout

log = logging.getLogger(__name__)


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise ``TrialTimeout`` in this (main) thread after ``seconds``; no limit for None."""
    if seconds is None or seconds <= 0 or threading.current_thread() is not threading.main_thread():
        if seconds is not None:
            log.debug("no SIGALRM outside the main thread: trial_timeout is left to rq and the coordinator")
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGALRM, previous)  # put rq's handler back even if the exit is cut short
        raise TrialTimeout(seconds)

    previous = signal.signal(signal.SIGALRM, expire)
    outer_delay, outer_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_delay > 0:  # rq's alarm: re-arm with what is left of it
            left = max(0.001, outer_delay - (time.monotonic() - started))
            signal.setitimer(signal.ITIMER_REAL, left, outer_interval)
