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
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.results import Result
from rq.serializers import JSONSerializer
from rq.exceptions import StopRequested

from ..storage.redis.retry import Backoff, wait_for_redis
from ..dispatch.versions import local_versions
from ..storage import RedisStorage
from ..dispatch.rq_executor import rq_queue
from ..dispatch.inspect import VERSIONS_FIELD
from ..dispatch.jobs import JOB_FUNC, JOB_FUNCS, LEGACY_JOB_FUNC, signed_with
from ..defaults import DEFAULT_QUEUE, ENV_PARENT_PID, REFUSED_JOB_TTL, WORKER_TTL
from ..errors import DistoptError
from .guard import configure, job_refusal
from .job import note_stop_request
from .messages import report_death, report_refusal
from .presence import Presence
from .shutdown import on_shutdown_signals

log = logging.getLogger(__name__)


class _Guarded:
    """Checks every job before rq touches its function: a job that is not distopt's own
    trial job (another function, callbacks, dependencies, an unsigned or badly signed
    payload) is refused, logged and put in rq's failed registry, and never imported. A
    job queued under the function's old path (``LEGACY_JOB_FUNC``) runs ``JOB_FUNC``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        check_rq()  # also for `rq worker -w distopt.worker.rq_worker.DistoptSimpleWorker`
        super().__init__(*args, **kwargs)

    def execute_job(self, job: Job, queue: Queue) -> None:
        reason = job_refusal(job)
        if reason is None:
            if job.func_name == LEGACY_JOB_FUNC:
                job.func_name = JOB_FUNC  # before rq imports it (in a forked worker, before the fork)
            super().execute_job(job, queue)  # type: ignore[misc]
            return
        refuse(self.connection, job, queue, reason, self.name)  # type: ignore[attr-defined]

    #: Signals that asked this process to stop before rq took SIGTERM/SIGINT over (``work``).
    asked_to_stop: Sequence[int] = ()

    def _install_signal_handlers(self) -> None:
        """rq takes SIGTERM/SIGINT over only after it registered the worker: a stop asked for
        before then goes to rq's warm shutdown now, so this worker ends before taking a job."""
        super()._install_signal_handlers()  # type: ignore[misc]
        if self.asked_to_stop:
            try:
                self.request_stop(self.asked_to_stop[0], None)
            except StopRequested:  # rq raises it when idle; here, outside its loop, the loop checks the flag
                self._stop_requested = True

    def request_stop(self, signum: int, frame: Any) -> None:
        note_stop_request()
        super().request_stop(signum, frame)  # type: ignore[misc]

    def request_force_stop(self, signum: int, frame: Any) -> None:
        note_stop_request()
        super().request_force_stop(signum, frame)  # type: ignore[misc]

    def handle_work_horse_killed(self, job: Job, retpid: Any, ret_val: Any, rusage: Any) -> None:
        """A forked trial's process died: record the cause on the trial at once."""
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)  # type: ignore[misc]
        if ret_val is None or job.func_name not in JOB_FUNCS:
            return
        try:
            report_death(self.connection, job.args[0], os.waitstatus_to_exitcode(ret_val),  # type: ignore[attr-defined]
                         f"{worker_name()} (forked {retpid})")
        except Exception:
            log.warning("could not record how the process of job %.100s ended", job.id, exc_info=True)


def refuse(connection: Any, job: Job, queue: Queue, reason: str, rq_worker: str | None = None) -> None:
    """Record a refused job: a log line, rq's failed registry (``rq info`` lists it), and,
    for a trial job that only fails its signature, a failed result on the trial so its
    study does not wait for it."""
    log.warning("refused rq job %.100s from queue %s: %s", job.id, queue.name, reason)
    try:
        pipe = connection.pipeline()
        job.set_status(JobStatus.FAILED, pipeline=pipe)
        queue.failed_job_registry.add(job, ttl=REFUSED_JOB_TTL, exc_string=f"refused by distopt: {reason}", pipeline=pipe)
        Result.create_failure(job, REFUSED_JOB_TTL, f"refused by distopt: {reason}", pipeline=pipe)
        pipe.lrem(queue.intermediate_queue_key, 1, job.id)
        pipe.execute()
    except Exception:  # the log line above is the record that matters
        log.info("could not move refused job %.100s to rq's failed registry", job.id, exc_info=True)
    try:
        if job.func_name in JOB_FUNCS:
            report_refusal(connection, job.args[0], reason, rq_worker)
    except Exception:
        log.debug("could not report the refusal of job %.100s to its study", job.id, exc_info=True)


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

    _redis_lost = False

    def heartbeat(self, *args: Any, **kwargs: Any) -> Any:
        """rq's heartbeat, which also tells when Redis goes away and when it is back (rq
        itself retries quietly while it waits for a job)."""
        try:
            out = super().heartbeat(*args, **kwargs)  # type: ignore[misc]
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            if not self._redis_lost:
                self._redis_lost = True
                log.warning("worker %s lost Redis (%s); retrying with backoff", self.name, exc)  # type: ignore[attr-defined]
            raise
        if self._redis_lost:
            self._redis_lost = False
            log.warning("worker %s: Redis answers again; taking trials", self.name)  # type: ignore[attr-defined]
        return out

    def subscribe(self) -> None:
        self.pubsub = self.connection.pubsub()  # type: ignore[attr-defined]
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})  # type: ignore[attr-defined]
        self.pubsub_thread = self.pubsub.run_in_thread(
            sleep_time=PUBSUB_WAIT, daemon=True, exception_handler=self._pubsub_exception_handler)  # type: ignore[attr-defined]


class DistoptSimpleWorker(_Guarded, _Publishing, SimpleWorker):
    """rq's ``SimpleWorker`` that runs only distopt's trial jobs."""


class DistoptWorker(_Guarded, _Publishing, Worker):
    """rq's forking ``Worker`` that runs only distopt's trial jobs (checked in the parent,
    before the fork)."""


def missing_rq_hooks(mixins: Sequence[type] = (_Guarded, _Publishing), bases: Sequence[type] = (SimpleWorker, Worker)
                     ) -> list[str]:
    """The rq methods distopt's workers override that this rq does not have. An rq that
    renamed one would never call the override: the job guard (``execute_job``) or the
    stop handling would be skipped without a word, so a worker refuses to start instead."""
    hooks = sorted({name for m in mixins for name, v in vars(m).items() if callable(v) and not name.startswith("__")})
    return [f"{base.__name__}.{name}" for base in bases for name in hooks if not callable(getattr(base, name, None))]


def check_rq() -> None:
    """Raise, naming them, when this rq lacks a method the workers override."""
    missing = missing_rq_hooks()
    if missing:
        import rq  # noqa: PLC0415

        raise DistoptError(f"rq {rq.__version__} lacks {', '.join(missing)}, which distopt's workers override "
                           "(the job guard and the stop handling hook there), so this worker does not start; install "
                           "an rq release that has them, or a distopt release made for this rq")


def worker_name(generation: int = 0) -> str:
    """``host:pid`` (the name trial records and heartbeats use), ``host:pid-N`` for the
    N-th rq worker this process starts after a Redis outage."""
    base = f"{socket.gethostname()}:{os.getpid()}"
    return base if generation == 0 else f"{base}-{generation}"


def make_worker(connection: Any, queues: Sequence[str] = (DEFAULT_QUEUE,), *, fork: bool = False,
                name: str | None = None) -> SimpleWorker | Worker:
    cls = DistoptWorker if fork else DistoptSimpleWorker
    return cls([rq_queue(connection, q) for q in queues], connection=connection,
               serializer=JSONSerializer, name=name or worker_name(), worker_ttl=WORKER_TTL)


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
    asked: list[int] = []  # a stop asked for before rq takes the signals over
    try:
        with on_shutdown_signals(lambda signum, frame: asked.append(signum)):
            for generation in itertools.count():
                if asked:
                    return worked
                label = worker_name(generation) if name is None else name if generation == 0 else f"{name}-{generation}"
                worker: SimpleWorker | Worker | None = None
                try:
                    worker = make_worker(storage.client, queues, fork=fork, name=label)
                    worker.asked_to_stop = asked  # type: ignore[union-attr]
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


def _wait_for_redis(storage: RedisStorage) -> bool:
    """Wait until Redis answers again (True), or until SIGTERM/SIGINT (False)."""
    stopping: list[int] = []
    with on_shutdown_signals(lambda signum, frame: stopping.append(signum)):
        return wait_for_redis(storage.ping, None, storage.where, role=f"worker {worker_name()}",
                              stop=lambda: bool(stopping), pace=Backoff(first=0.2, cap=5.0))


def report_dead_worker(connection: Any, pid: int, code: int, secret: bytes | None = None) -> bool:
    """A supervised worker process ``pid`` on this host exited with ``code`` (a
    ``Popen.returncode``): when it was running a trial, record how it ended on that trial
    (FAIL when the objective did it, else hand it back), signed with the supervisor's
    ``secret``; a payload that secret did not sign is not reported on (the supervisor
    signs only what its worker could have run). Returns whether it ran one."""
    host = socket.gethostname()
    for worker in Worker.all(connection=connection, serializer=JSONSerializer):
        if worker.pid != pid or worker.hostname != host:
            continue
        jid = worker.get_current_job_id()
        job = Job.fetch(jid, connection=connection, serializer=JSONSerializer) if jid else None
        if job is None or job.func_name not in JOB_FUNCS or not job.args or not isinstance(job.args[0], dict):
            continue  # only a trial job the dead worker had accepted is reported on
        if secret is not None and not signed_with(job.args[0], secret):
            continue
        report_death(connection, job.args[0], code, f"{host}:{pid}", secret)
        try:
            worker.register_death()
        except Exception:  # its record expires by itself
            pass
        return True
    return False


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
