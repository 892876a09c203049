"""A worker process's own heartbeat: "this process is alive", whatever it is running.

Trial heartbeats say whether a trial is still being worked on; this one says whether the
worker process is. It beats from a daemon thread every ``interval`` seconds, also while a
non-forking worker is deep inside a long trial, so ``distopt status`` can tell a busy
worker from a dead one. A worker killed with SIGKILL stops beating: it is shown dead once
its last beat is older than ``dead_after`` (1.75 intervals) and no longer shown after
``drop_after``; a worker that stops cleanly removes its record at once.

The record (``Storage.beat_worker``) is a JSON object; ``extra`` fields given to
``Presence`` (such as the distopt version a worker runs) are published with it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any, Callable, Mapping, Sequence

from ..defaults import ENV_WORKER_HEARTBEAT, WORKER_HEARTBEAT
from ..storage import Storage
from ..trial.liveness import dead_after, dead_worker_names, drop_after, is_dead  # noqa: F401  (the rule presence beats for)

log = logging.getLogger(__name__)

#: How long a silent worker's record stays in Redis: longer than rq keeps a dead worker
#: registered (420 s), so a dropped worker is never listed again from rq's records.
KEEP = 3600.0


def worker_heartbeat_interval(value: float | None = None) -> float:
    """``value``, else ``$DISTOPT_WORKER_HEARTBEAT``, else ``WORKER_HEARTBEAT``."""
    if value is None:
        raw = os.environ.get(ENV_WORKER_HEARTBEAT)
        try:
            value = float(raw) if raw else WORKER_HEARTBEAT
        except ValueError:
            log.warning("ignoring $%s=%r: not a number of seconds", ENV_WORKER_HEARTBEAT, raw)
            value = WORKER_HEARTBEAT
    if not value > 0:
        raise ValueError(f"the worker heartbeat interval must be a positive number of seconds, got {value!r}")
    return float(value)


def process_id() -> str:
    """host:pid of this process, as trial records name the worker that ran them."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Presence:
    """Beats for one worker process until ``stop()``; ``current_job`` is asked each beat
    for the rq job id being run (None when idle)."""

    def __init__(
        self,
        storage: Storage,
        queues: Sequence[str],
        *,
        interval: float | None = None,
        fork: bool = False,
        extra: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.storage = storage
        self.queues = list(queues)
        self.interval = worker_heartbeat_interval(interval)
        self.fork = fork
        self.extra = dict(extra or {})
        self.clock = clock
        self.id = process_id()
        self.started = clock()
        self.rq_name: str | None = None
        self.current_job: Callable[[], str | None] = lambda: None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, now: float) -> dict[str, Any]:
        try:
            job = self.current_job()
        except Exception:  # rq's record unreadable for a moment: the beat itself matters more
            job = None
        host, _, pid = self.id.rpartition(":")
        return {
            **self.extra,
            "id": self.id, "hostname": host, "pid": int(pid), "rq": self.rq_name, "queues": self.queues,
            "fork": self.fork, "started": self.started, "beat": now, "interval": self.interval,
            "dead_after": dead_after({"interval": self.interval}),
            "drop_after": drop_after({"interval": self.interval}),
            "state": "busy" if job else "idle", "job": job,
        }

    def beat(self) -> bool:
        """One beat now; False (logged) when Redis did not take it."""
        now = self.clock()
        try:
            self.storage.beat_worker(self.id, self.record(now), KEEP)
            return True
        except Exception as exc:
            log.warning("worker heartbeat failed (retried in %g s): %s", self.interval, exc)
            return False

    def start(self) -> "Presence":
        self.beat()
        self._thread = threading.Thread(target=self._run, name="distopt-worker-heartbeat", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()

    def stop(self) -> None:
        """Stop beating and remove the record: a worker that stopped is not dead."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        try:
            self.storage.forget_worker(self.id)
        except Exception:  # the record is dropped after drop_after, then expires
            log.debug("could not remove the worker record of %s", self.id, exc_info=True)
