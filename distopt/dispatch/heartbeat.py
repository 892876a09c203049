"""Heartbeats for the trial a worker is running, from one background thread.

A trial that ends within ``interval`` never beats: the coordinator records its start
time from the "started" message, so a reaper can take ``start_time + ttl`` as the
deadline of a running trial that has no heartbeat yet. That keeps short trials free of
extra round trips; long ones beat every ``interval`` seconds with ``now + ttl``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
import time
from typing import Any, Callable, Iterator

from ..storage import Storage

log = logging.getLogger(__name__)

#: Seconds between beats of a running trial.
HEARTBEAT_INTERVAL = 5.0
#: A trial whose last beat (or start) is older than this is presumed lost.
HEARTBEAT_TTL = 30.0


@dataclasses.dataclass
class _Beat:
    storage: Storage
    study: str
    tid: int
    attempt: int
    worker: str | None
    interval: float
    ttl: float
    due: float
    sent: bool = False


class Heartbeater:
    """One daemon thread beating for the current trial(s) of this process."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._cond = threading.Condition()
        self._beats: dict[int, _Beat] = {}
        self._next = 0
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def beating(
        self, storage: Storage, study: str, tid: int, attempt: int, worker: str | None,
        interval: float = HEARTBEAT_INTERVAL, ttl: float = HEARTBEAT_TTL,
    ) -> Iterator[None]:
        """Beat for (study, tid, attempt) while the block runs; on exit clear the
        heartbeat if one was written."""
        beat = _Beat(storage, study, tid, attempt, worker, interval, ttl, self.clock() + interval)
        with self._cond:
            key = self._next
            self._next += 1
            self._beats[key] = beat
            self._ensure_thread()
            self._cond.notify()
        try:
            yield
        finally:
            with self._cond:  # a beat in progress finishes before the trial is cleared
                del self._beats[key]
                sent = beat.sent
            if sent:
                try:
                    storage.clear_heartbeat(study, tid)
                except Exception:  # the trial's result is already pushed; a stale beat expires
                    log.warning("could not clear the heartbeat of trial %s of study %s", tid, study, exc_info=True)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="distopt-heartbeat", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        with self._cond:
            while True:
                now = self.clock()
                for beat in list(self._beats.values()):
                    if beat.due <= now:
                        self._send(beat, now)
                due = min((b.due for b in self._beats.values()), default=None)
                self._cond.wait(None if due is None else max(0.0, due - self.clock()))

    def _send(self, beat: _Beat, now: float) -> None:
        beat.due = now + beat.interval
        try:
            beat.storage.heartbeat(beat.study, beat.tid, beat.attempt, now + beat.ttl, beat.worker)
            beat.sent = True
        except Exception:  # Redis away for a moment: try again at the next beat
            log.warning("heartbeat of trial %s of study %s failed", beat.tid, beat.study, exc_info=True)


_HEARTBEATER = Heartbeater()


def beating(storage: Storage, study: str, tid: int, attempt: int, worker: str | None,
            interval: float = HEARTBEAT_INTERVAL, ttl: float = HEARTBEAT_TTL) -> Any:
    """``Heartbeater.beating`` on this process's shared heartbeat thread."""
    return _HEARTBEATER.beating(storage, study, tid, attempt, worker, interval, ttl)


def _reset_after_fork() -> None:
    """A forked job process starts with a fresh thread and lock of its own."""
    global _HEARTBEATER
    _HEARTBEATER = Heartbeater()


os.register_at_fork(after_in_child=_reset_after_fork)
