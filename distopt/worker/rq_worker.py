"""Starting rq workers on distopt's queues, and keeping them working through Redis outages.

Non-forking by default: rq's ``SimpleWorker`` runs each job in the worker process, so a
trial costs no fork (about 15 ms) and the unpickled objective stays cached between
trials. ``fork=True`` uses rq's forking ``Worker``: each trial in a child process, for
objectives that leak memory or crash the interpreter.

rq 3.0 retries a lost connection only while it waits for a job; one that drops while it
records a finished job, or while it starts up, ends ``Worker.work`` ("unhandled
exception, quitting"). ``work`` then waits for Redis with backoff and starts a new rq
worker, so a Redis restart does not take the worker processes down with it. SIGTERM or
SIGINT (rq's warm shutdown: the current trial finishes first) ends it for good.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import socket
import threading
import time
from typing import Any, Mapping, Sequence

import redis.exceptions
from rq import SimpleWorker, Worker
from rq.serializers import JSONSerializer

from ..storage.redis.retry import Backoff, is_transient
from ..dispatch.versions import local_versions
from ..storage import RedisStorage
from ..dispatch.rq_executor import DEFAULT_QUEUE, rq_queue
from ..dispatch.inspect import VERSIONS_FIELD
from ..dispatch.jobs import configure
from .presence import Presence

log = logging.getLogger(__name__)

from ..defaults import ENV_PARENT_PID  # noqa: E402


#: Seconds the thread listening for rq's worker commands waits per read. rq asks for 60,
#: and redis-py (8.2 on) joins that thread on shutdown until its read returns: a worker
#: stopping would hang up to a minute after its last trial.
PUBSUB_WAIT = 1.0


class _Publishing:
    """An rq worker that adds its Python, cloudpickle and distopt versions to the record
    rq keeps for it, so a coordinator can check them before the first trial and ``distopt
    status`` can show them (the field lives and dies with rq's own record), and that
    stops its command listener within ``PUBSUB_WAIT`` seconds."""

    def serialize(self) -> dict:
        data = super().serialize()  # type: ignore[misc]
        data[VERSIONS_FIELD] = json.dumps(local_versions(), sort_keys=True)
        return data

    def subscribe(self) -> None:
        self.pubsub = self.connection.pubsub()  # type: ignore[attr-defined]
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})  # type: ignore[attr-defined]
        self.pubsub_thread = self.pubsub.run_in_thread(
            sleep_time=PUBSUB_WAIT, daemon=True, exception_handler=self._pubsub_exception_handler)  # type: ignore[attr-defined]


class DistoptSimpleWorker(_Publishing, SimpleWorker):
    pass


class DistoptWorker(_Publishing, Worker):
    pass


def worker_name(generation: int = 0) -> str:
    """``host:pid`` (the name trial records and heartbeats use), ``host:pid-N`` for the
    N-th rq worker this process starts after a Redis outage."""
    base = f"{socket.gethostname()}:{os.getpid()}"
    return base if generation == 0 else f"{base}-{generation}"


def make_worker(connection: Any, queues: Sequence[str] = (DEFAULT_QUEUE,), *, fork: bool = False,
                name: str | None = None) -> SimpleWorker | Worker:
    cls = DistoptWorker if fork else DistoptSimpleWorker
    return cls([rq_queue(connection, q) for q in queues], connection=connection,
               serializer=JSONSerializer, name=name or worker_name())


def work(
    redis_url: str,
    queues: Sequence[str] = (DEFAULT_QUEUE,),
    *,
    secret: bytes | None,
    insecure: bool = False,
    burst: bool = False,
    fork: bool = False,
    name: str | None = None,
    logging_level: str = "WARNING",
    max_jobs: int | None = None,
    heartbeat_interval: float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> bool:
    """Run one rq worker in this process until stopped (or, with ``burst``, until the
    queues are empty). Returns whether it ran any job.

    The process beats on its own (``presence.Presence``) every ``heartbeat_interval``
    seconds (default ``$DISTOPT_WORKER_HEARTBEAT``, else 5), publishing ``extra`` with it."""
    storage = RedisStorage(redis_url)
    storage.ping()  # a wrong URL fails here, naming host:port
    configure(secret, insecure)
    _watch_parent()
    presence = Presence(storage, queues, interval=heartbeat_interval, fork=fork,
                        extra={"versions": local_versions(), **(extra or {})}).start()
    worked = False
    try:
        for generation in itertools.count():
            label = worker_name(generation) if name is None else name if generation == 0 else f"{name}-{generation}"
            worker: SimpleWorker | Worker | None = None
            try:
                worker = make_worker(storage.client, queues, fork=fork, name=label)
                presence.rq_name, presence.current_job = worker.name, worker.get_current_job_id
                presence.beat()  # name the rq worker at once
                worked |= bool(worker.work(burst=burst, logging_level=logging_level, max_jobs=max_jobs))
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
                log.warning("worker lost Redis at %s (%s)", storage.where, exc)
            else:
                if burst or max_jobs is not None or getattr(worker, "_shutdown_requested_date", None) is not None:
                    return worked
            if not _wait_for_redis(storage):
                return worked
            _forget(worker)
        raise AssertionError("unreachable")  # pragma: no cover
    finally:
        presence.stop()
        storage.close()


def _forget(worker: SimpleWorker | Worker | None) -> None:
    """Unregister an rq worker whose loop ended without it (Redis was away at its end), so
    ``distopt status`` and ``rq info`` do not list it next to its successor."""
    if worker is None:
        return
    try:
        worker.register_death()
    except Exception:  # its registration expires by itself
        log.debug("could not unregister rq worker %s", worker.name, exc_info=True)


def _wait_for_redis(storage: RedisStorage, backoff: Backoff = Backoff(first=0.2, cap=5.0)) -> bool:
    """Wait until Redis answers again (True), or until SIGTERM/SIGINT (False)."""
    stopping: list[int] = []
    handlers = {s: signal.signal(s, lambda signum, frame: stopping.append(signum))
                for s in (signal.SIGTERM, signal.SIGINT)} if threading.current_thread() is threading.main_thread() else {}
    try:
        failures = 0
        while not stopping:
            try:
                storage.ping()
                log.warning("Redis at %s answers again; the worker goes on", storage.where)
                return True
            except Exception as exc:
                if not is_transient(exc):
                    raise
                failures += 1
                time.sleep(backoff.delay(failures))
        return False
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def count_workers(connection: Any, queue: str = DEFAULT_QUEUE) -> int:
    """Workers registered on ``queue`` right now."""
    return len(Worker.all(queue=rq_queue(connection, queue)))


def _watch_parent() -> None:
    """Stop (as on SIGTERM) when the supervising process dies, so no worker outlives it."""
    parent = os.environ.get(ENV_PARENT_PID)
    if not parent or not parent.isdigit():
        return
    ppid = int(parent)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != ppid:
                log.warning("the supervising process %s is gone; stopping this worker", ppid)
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(10)
                os._exit(1)

    threading.Thread(target=watch, name="distopt-parent-watch", daemon=True).start()
