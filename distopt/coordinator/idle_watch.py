"""A coordinator tick that says so when trials wait and no worker serves their queue.

A coordinator started before its workers, or with a ``--queue`` no worker listens to,
would otherwise wait in silence: the trials stay QUEUED forever. Once trials have
waited a heartbeat ttl and rq knows no worker on the queue, it logs one warning naming
the queue and the command that serves it; it warns again only after workers came and
went.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from ..defaults import ENV_SECRET
from .loop import Interval
from ..trial.record import TrialState

log = logging.getLogger(__name__)


class Listened(Protocol):
    queue_name: str

    def listeners(self) -> int:
        """Workers registered on the queue."""


class IdleQueueWatch:
    """Warns once per stretch of "trials waiting, nobody listening"."""

    def __init__(self, executor: Listened, wait: float) -> None:
        self.executor = executor
        self.wait = wait
        self._interval = Interval(wait / 4)
        self._warned = False

    def __call__(self, study: Any, now: float) -> None:
        if not self._interval.due(now):
            return None
        pending = [study.record(tid) for tid in study.pending_tids()]
        queued = [r for r in pending if r.state == TrialState.QUEUED]
        booked = [r.book_time for r in queued if r.book_time is not None]
        if not booked or now - min(booked) < self.wait or len(queued) < len(pending):
            return None  # nothing waited long enough, or some trial runs: workers exist
        if self.executor.listeners() > 0:
            self._warned = False
            return None
        if not self._warned:
            self._warned = True
            name = self.executor.queue_name
            log.warning(
                "%d trial(s) have waited %.0f s and no worker listens on queue %r; start one with: "
                "distopt worker --redis URL --queue %s (the same %s as this coordinator)",
                len(queued), now - min(booked), name, name, ENV_SECRET,
            )
        return None
