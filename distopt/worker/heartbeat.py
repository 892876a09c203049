"""Liveness of the trial a worker runs, reported from one background thread.

Two things are sent for a running trial, both only if it runs long enough to need them:

- the ``{"type": "started"}`` message, ``STARTED_DELAY`` seconds after the start (the
  coordinator then marks the trial RUNNING). A trial that ends sooner goes from QUEUED
  straight to its result, which carries the worker and start time: for short trials
  that saves a round trip on the worker and a write on the coordinator;
- a heartbeat with the deadline ``now + ttl``: the first together with the "started"
  message, then every ``interval`` seconds. A running trial with no heartbeat yet is
  alive until its ``start_time + ttl``.

One thread serves every trial of the process, so a trial costs no thread start and,
when trials are short, no wake-up of its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
import time
from typing import Any, Callable, Iterator, Mapping

from ..storage import Storage

log = logging.getLogger(__name__)

from ..defaults import HEARTBEAT_INTERVAL  # noqa: E402
from ..defaults import HEARTBEAT_TTL  # noqa: E402
#: A trial still running after this long is reported as started.
STARTED_DELAY = 0.05


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
    started: Mapping[str, Any] | None
    started_due: float
    incarnation: str | None = None
    beaten: bool = False

    @property
    def next_due(self) -> float:
        return self.started_due if self.started is not None else self.due


class Heartbeater:
    """One daemon thread reporting on the current trial(s) of this process."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._cond = threading.Condition()
        self._beats: dict[int, _Beat] = {}
        self._next = 0
        self._thread: threading.Thread | None = None
        self._sleeping_until: float | None = None  # None: idle until notified

    @contextlib.contextmanager
    def beating(
        self, storage: Storage, study: str, tid: int, attempt: int, worker: str | None,
        interval: float = HEARTBEAT_INTERVAL, ttl: float = HEARTBEAT_TTL,
        started: Mapping[str, Any] | None = None, started_delay: float = STARTED_DELAY,
        incarnation: str | None = None,
    ) -> Iterator[None]:
        """Report on (study, tid, attempt) while the block runs: ``started`` after
        ``started_delay`` seconds, then heartbeats. On exit the heartbeat is cleared if
        one was written; the block pushes the result before it exits.

        Beats and the clear name the attempt and the study's ``incarnation`` (the job's):
        this worker may have been presumed dead and its trial run again elsewhere, or the
        study deleted and created again, and the storage then leaves the liveness of
        whatever replaced this attempt alone."""
        now = self.clock()
        # the first beat goes with the "started" report: a worker that dies right after taking
        # the trial is then noticed a ttl after the start, not a ttl plus the reaper's grace
        beat = _Beat(storage, study, tid, attempt, worker, interval, ttl, now + started_delay,
                     started, now + started_delay, incarnation)
        with self._cond:
            key = self._next
            self._next += 1
            self._beats[key] = beat
            self._ensure_thread()
            if self._sleeping_until is None or self._sleeping_until > beat.next_due:
                self._cond.notify()
        try:
            yield
        finally:
            with self._cond:  # a report in progress finishes before the trial is cleared
                del self._beats[key]
                beaten = beat.beaten
            if beaten:
                try:
                    storage.clear_heartbeat(study, tid, attempt, incarnation=incarnation)
                except Exception:  # the result is already pushed; a stale beat expires
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
                    self._report(beat, now)
                due = min((b.next_due for b in self._beats.values()), default=None)
                self._sleeping_until = due
                self._cond.wait(None if due is None else max(0.0, due - self.clock()))
                self._sleeping_until = None

    def _report(self, beat: _Beat, now: float) -> None:
        """Send what is due; a failure (Redis away for a moment) is retried later."""
        # the heartbeat first: a worker killed between the two then leaves a trial the coordinator
        # sees running with a deadline, not one it must give a ttl plus a grace
        if beat.due <= now:
            beat.due = now + beat.interval
            try:
                beat.storage.heartbeat(beat.study, beat.tid, beat.attempt, now + beat.ttl, beat.worker,
                                       incarnation=beat.incarnation)
                beat.beaten = True
            except Exception as exc:
                log.warning("heartbeat of trial %s of study %s failed (retried in %g s): %s",
                            beat.tid, beat.study, beat.interval, exc)
        if beat.started is not None and beat.started_due <= now:
            try:
                beat.storage.push_result(beat.study, beat.started)
                beat.started = None
            except Exception as exc:
                beat.started_due = now + min(1.0, beat.interval)
                log.warning("could not report trial %s of study %s as started: %s", beat.tid, beat.study, exc)


_HEARTBEATER = Heartbeater()


def beating(storage: Storage, study: str, tid: int, attempt: int, worker: str | None,
            interval: float = HEARTBEAT_INTERVAL, ttl: float = HEARTBEAT_TTL,
            started: Mapping[str, Any] | None = None, started_delay: float | None = None,
            incarnation: str | None = None) -> Any:
    """``Heartbeater.beating`` on this process's shared thread; ``started_delay`` defaults
    to ``STARTED_DELAY`` as it is when the trial starts (read per call, so it can be set)."""
    delay = STARTED_DELAY if started_delay is None else started_delay
    return _HEARTBEATER.beating(storage, study, tid, attempt, worker, interval, ttl, started, delay, incarnation)


def _reset_after_fork() -> None:
    """A forked job process starts with a thread and lock of its own."""
    global _HEARTBEATER
    _HEARTBEATER = Heartbeater()


os.register_at_fork(after_in_child=_reset_after_fork)
