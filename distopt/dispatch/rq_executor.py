"""``RQExecutor``: trials as rq jobs, results from distopt's inbox.

``submit`` enqueues a batch of trials in one pipeline (one round trip however many
there are); ``wait`` is one blocking pop of up to ``batch`` messages; ``cancel``
withdraws jobs that no worker has taken yet; ``waiting`` and ``stop`` serve the reaper.
Calls that go to Redis directly ride out a restart for the storage's ``retry_window``. A moderate ``batch`` matters when many
trials end at once: the coordinator records a few, refills their slots, then takes the
next few, so the first idle workers get new trials without waiting for the whole wave. Trials are QUEUED in the study before
their jobs exist, so a worker can never report on a trial the study does not know.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from typing import Any, Mapping, Sequence

from rq import Queue, Worker
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer

from .objective import ObjectiveRef
from ..storage.redis.retry import Backoff, call_with_retry
from ..storage import RedisStorage
from ..defaults import HEARTBEAT_INTERVAL, HEARTBEAT_TTL
from ..trial.record import TrialState
from .jobs import JOB_FUNC, job_id, make_payload, result_limit
from .signing import screen

log = logging.getLogger(__name__)

from ..defaults import DEFAULT_QUEUE  # noqa: E402
#: Messages taken from the inbox per round trip.
POP_LIMIT = 1000
#: Seconds rq's own job timeout allows beyond ``trial_timeout``: the worker stops a trial
#: itself at ``trial_timeout`` and reports it; rq's timeout is only the backstop.
RQ_TIMEOUT_MARGIN = 30


def rq_job_timeout(trial_timeout: float | None) -> int:
    """rq's job timeout for a trial timeout: whole seconds, -1 (rq's "never") for none."""
    return -1 if trial_timeout is None else max(1, math.ceil(trial_timeout)) + RQ_TIMEOUT_MARGIN


def withdraw_jobs(connection: Any, queue: Queue, ids: Sequence[str]) -> list[str]:
    """Remove the jobs ``ids`` that still wait in ``queue`` (and their job hashes); the
    ids removed. A job a worker has taken is left alone."""
    if not ids:
        return []
    pipe = connection.pipeline()
    for jid in ids:
        queue.remove(jid, pipeline=pipe)
    removed = [jid for jid, n in zip(ids, pipe.execute()) if n]
    if removed:
        connection.delete(*(Job.key_for(jid) for jid in removed))
    return removed


def withdraw_trial_jobs(connection: Any, queue: Queue | str, study: str, trials: Sequence[Any]) -> list[int]:
    """Remove the jobs of ``trials``' current attempts (records, or anything with ``tid``
    and ``attempt``) that still wait in ``queue``; the tids withdrawn. The one way a
    cancelled or superseded trial's job leaves the queue: a job a worker already runs
    finishes, and the study ignores its result."""
    q = queue if isinstance(queue, Queue) else rq_queue(connection, queue)
    ids = [job_id(study, t.tid, t.attempt) for t in trials]
    removed = set(withdraw_jobs(connection, q, ids))
    return [t.tid for t, jid in zip(trials, ids) if jid in removed]


def withdraw_study_jobs(connection: Any, queue: str, study: str) -> int:
    """Remove every job of ``study`` still waiting in ``queue`` (whatever trial it names,
    for a study being deleted); how many."""
    from .inspect import parse_job_id, queued_job_ids

    ids = sorted(j for j in queued_job_ids(connection, queue) if (parse_job_id(j) or {}).get("study") == study)
    return len(withdraw_jobs(connection, rq_queue(connection, queue), ids))


def rq_queue(connection: Any, name: str = DEFAULT_QUEUE) -> Queue:
    """The rq queue distopt uses: job data as JSON, so workers unpickle nothing from it."""
    return Queue(name, connection=connection, serializer=JSONSerializer)


def coalesce(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop a "started" message when the same batch holds that attempt's result: the
    result carries the worker and start time, and recording it alone saves a write."""
    done = {(m.get("tid"), m.get("attempt")) for m in messages if m.get("type") != "started"}
    return [m for m in messages if m.get("type") != "started" or (m.get("tid"), m.get("attempt")) not in done]


@dataclasses.dataclass(frozen=True)
class _Attempt:
    tid: int
    attempt: int


class RQExecutor:
    """Runs a study's trials as rq jobs on ``queue``."""

    def __init__(
        self,
        storage: RedisStorage,
        study: str,
        objective: ObjectiveRef,
        *,
        queue: str = DEFAULT_QUEUE,
        trial_timeout: float | None = None,
        heartbeat_interval: float = HEARTBEAT_INTERVAL,
        heartbeat_ttl: float = HEARTBEAT_TTL,
        batch: int = POP_LIMIT,
        secret: bytes | None = None,
        pruner: Mapping[str, Any] | None = None,
    ) -> None:
        self.storage = storage
        self.secret = secret  # signs each job's payload (workers with a secret run only signed ones) and checks
        # each message back (only what a worker holding it signed is recorded)
        self.max_result_bytes = result_limit()
        self.study = study
        self.objective = objective
        self.queue = rq_queue(storage.client, queue)
        self.queue_name = queue
        self.trial_timeout = trial_timeout
        self.job_timeout = rq_job_timeout(trial_timeout)
        self.heartbeat = (heartbeat_interval, heartbeat_ttl)
        self.batch = max(1, int(batch))
        self.pruner = None if pruner is None or pruner.get("name") in ("none", "nop") else dict(pruner)
        self._warned: set[tuple[str, str]] = set()
        self._unverified: set[Any] = set()  # (worker, kind, why) of unverified messages, logged once
        self._unsent: list[Any] = []  # jobs from submit_later, sent with the next wait

    def _retrying(self, fn: Any, *args: Any, what: str) -> Any:
        if self.storage.retry_window <= 0:
            return fn(*args)
        return call_with_retry(fn, *args, backoff=Backoff(self.storage.retry_window),
                               what=f"{what} on Redis at {self.storage.where}")

    def job_ids(self, trials: Sequence[Any]) -> list[str]:
        return [job_id(self.study, t.tid, t.attempt) for t in trials]

    def _job_datas(self, study: Any, trials: Sequence[Any]) -> list[Any]:
        incarnation = study.incarnation
        return [
            Queue.prepare_data(
                JOB_FUNC,
                args=(make_payload(self.study, t.tid, t.attempt, t.vals, self.objective, self.storage.prefix,
                                   *self.heartbeat, trial_timeout=self.trial_timeout, secret=self.secret,
                                   incarnation=incarnation, max_result_bytes=self.max_result_bytes,
                                   pruner=self.pruner),),
                job_id=job_id(self.study, t.tid, t.attempt),
                timeout=self.job_timeout,
                description=f"distopt study {self.study} trial {t.tid} attempt {t.attempt}",
            )
            for t in trials
        ]

    def submit(self, study: Any, trials: Sequence[Any]) -> None:
        datas = self._take_unsent() + (self._job_datas(study, trials) if trials else [])
        if datas:
            self._retrying(self._enqueue, datas, what="enqueueing trials")

    def submit_later(self, study: Any, trials: Sequence[Any]) -> None:
        """``submit``, with the jobs sent in the same round trip as the next ``wait``'s pop
        (any other call sends them first). The trials are already QUEUED in the study."""
        if trials:
            self._unsent.extend(self._job_datas(study, trials))

    def _take_unsent(self) -> list[Any]:
        datas, self._unsent = self._unsent, []
        return datas

    def flush(self) -> None:
        """Send the jobs ``submit_later`` kept."""
        self.submit(None, ())

    def _enqueue(self, datas: list[Any]) -> None:
        # Not a MULTI: each job's data precedes its id on the queue, so a worker never
        # takes a job whose data is missing, and the replies are half as many to parse.
        # Sent again after a lost reply, a job may be queued twice: its second result is
        # a duplicate, which the study ignores.
        pipe = self.storage.client.pipeline(transaction=False)
        self.queue.enqueue_many(datas, pipeline=pipe)
        pipe.execute()

    def wait(self, timeout: float) -> list[dict[str, Any]]:
        # Retried by the storage itself (its retry_window); a retry after a lost reply may
        # queue a job twice, as in _enqueue.
        datas = self._take_unsent()
        prelude = None
        if datas:
            def prelude(pipe: Any) -> None:
                self.queue.enqueue_many(datas, pipeline=pipe)
        popped = self.storage.pop_results(self.study, timeout=timeout, limit=self.batch, prelude=prelude)
        messages = coalesce(self._taken_only(screen(popped, self.secret, self._unverified)))
        for msg in messages:
            if msg.get("error_kind") == "objective":
                self._warn_once(msg)
        return messages

    def _taken_only(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Drop the unverified messages about a job that still waits in the queue: no
        worker took it, so no worker wrote them, and running that trial again would only
        let a forger delay it over and over."""
        unverified = [m for m in messages if m.get("unverified")]
        if not unverified:
            return messages
        waiting = self.waiting(None, [_Attempt(m["tid"], m["attempt"]) for m in unverified])
        return [m for m in messages if not (m.get("unverified") and m["tid"] in waiting)]

    def _warn_once(self, msg: dict[str, Any]) -> None:
        key = (str(msg.get("worker")), str(msg.get("error")))
        if key not in self._warned:
            self._warned.add(key)
            log.warning("trial %s failed: %s", msg.get("tid"), msg.get("error"))

    def cancel(self, study: Any, tids: Sequence[int]) -> list[int]:
        """Remove the jobs of ``tids`` that are still waiting in the queue; the tids
        withdrawn. A job a worker already runs finishes, and the study ignores its result."""
        self.flush()
        records = [study.record(t) for t in tids]
        return self._retrying(withdraw_trial_jobs, self.storage.client, self.queue, self.study, records,
                              what="withdrawing jobs")

    def waiting(self, study: Any, records: Sequence[Any]) -> set[int]:
        """The tids among ``records`` whose current attempt's job still waits in the
        queue (one LPOS each, in one round trip)."""
        self.flush()
        if not records:
            return set()
        ids = self.job_ids(records)

        def positions() -> list[Any]:
            pipe = self.storage.client.pipeline(transaction=False)
            for jid in ids:
                pipe.lpos(self.queue.key, jid)
            return pipe.execute()

        found = self._retrying(positions, what="looking for queued jobs")
        return {rec.tid for rec, pos in zip(records, found) if pos is not None}

    def listeners(self) -> int:
        """Workers registered on this queue in rq's registry, less those dead by their own
        heartbeat (rq keeps a worker killed with SIGKILL registered for minutes)."""
        from ..trial.liveness import dead_worker_names

        def count() -> int:
            names = [w.name for w in Worker.all(connection=self.storage.client, queue=self.queue)]
            dead = dead_worker_names(self.storage.worker_records(), time.time()) if names else set()
            return sum(1 for n in names if n not in dead)

        return int(self._retrying(count, what="counting workers"))

    def stop(self, study: Any, tids: Sequence[int]) -> None:
        """Ask rq to stop the jobs of ``tids`` where they run: a forking worker kills the
        work-horse; a non-forking worker cannot stop its own main thread."""
        self.flush()
        for jid in self.job_ids([study.record(t) for t in tids]):
            try:
                send_stop_job_command(self.storage.client, jid, serializer=JSONSerializer)
            except (InvalidJobOperation, NoSuchJobError):
                continue

    def requeue_missing(self, study: Any) -> list[int]:
        """After an interrupt, enqueue the job of every QUEUED trial of ``study`` that has
        none in Redis; the tids. An interrupt can fall between a trial being stored and its
        job reaching Redis (jobs kept for the next round trip, a pipeline cut short), and a
        trial with no job would wait for the reaper of a later run. Jobs kept unsent are
        rebuilt from the records, so none is sent twice."""
        self._unsent = []
        queued = study.states([TrialState.QUEUED])
        if not queued:
            return []
        pipe = self.storage.client.pipeline(transaction=False)
        for jid in self.job_ids(queued):
            pipe.exists(Job.key_for(jid))
        missing = [rec for rec, n in zip(queued, pipe.execute()) if not n]
        if missing:
            self._enqueue(self._job_datas(study, missing))
            log.info("enqueued the jobs of %d queued trials of study %s that an interrupt had cut off",
                     len(missing), self.study)
        return [rec.tid for rec in missing]

    def discard(self) -> None:
        """Drop the jobs ``submit_later`` kept, unsent (this coordinator lost the study)."""
        self._unsent = []

    def close(self) -> None:
        """Send any kept jobs (best effort); the connection belongs to the storage."""
        try:
            self.flush()
        except Exception:
            log.warning("could not enqueue %d trials of study %s; a later run re-runs them",
                        len(self._unsent), self.study, exc_info=True)
