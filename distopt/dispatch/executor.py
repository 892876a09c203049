"""``RQExecutor``: trials as rq jobs, results from distopt's inbox.

``submit`` enqueues a batch of trials in one pipeline (one round trip however many
there are); ``wait`` is one blocking pop of up to ``batch`` messages; ``cancel``
withdraws jobs that no worker has taken yet. A moderate ``batch`` matters when many
trials end at once: the coordinator records a few, refills their slots, then takes the
next few, so the first idle workers get new trials without waiting for the whole wave. Trials are QUEUED in the study before
their jobs exist, so a worker can never report on a trial the study does not know.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Sequence

from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from ..objective import ObjectiveRef
from ..storage import RedisStorage
from . import heartbeat
from .jobs import JOB_FUNC, job_id, make_payload

log = logging.getLogger(__name__)

DEFAULT_QUEUE = "distopt"
#: Messages taken from the inbox per round trip.
POP_LIMIT = 1000


def rq_queue(connection: Any, name: str = DEFAULT_QUEUE) -> Queue:
    """The rq queue distopt uses: job data as JSON, so workers unpickle nothing from it."""
    return Queue(name, connection=connection, serializer=JSONSerializer)


def coalesce(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop a "started" message when the same batch holds that attempt's result: the
    result carries the worker and start time, and recording it alone saves a write."""
    done = {(m.get("tid"), m.get("attempt")) for m in messages if m.get("type") != "started"}
    return [m for m in messages if m.get("type") != "started" or (m.get("tid"), m.get("attempt")) not in done]


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
        heartbeat_interval: float = heartbeat.HEARTBEAT_INTERVAL,
        heartbeat_ttl: float = heartbeat.HEARTBEAT_TTL,
        batch: int = POP_LIMIT,
    ) -> None:
        self.storage = storage
        self.study = study
        self.objective = objective
        self.queue = rq_queue(storage.client, queue)
        # rq counts whole seconds; -1 is rq's "never time out" (its default is 180 s).
        self.job_timeout = -1 if trial_timeout is None else max(1, math.ceil(trial_timeout))
        self.heartbeat = (heartbeat_interval, heartbeat_ttl)
        self.batch = max(1, int(batch))
        self._warned: set[tuple[str, str]] = set()

    def job_ids(self, trials: Sequence[Any]) -> list[str]:
        return [job_id(self.study, t.tid, t.attempt) for t in trials]

    def submit(self, study: Any, trials: Sequence[Any]) -> None:
        if not trials:
            return
        datas = [
            Queue.prepare_data(
                JOB_FUNC,
                args=(make_payload(self.study, t.tid, t.attempt, t.vals, self.objective, self.storage.prefix,
                                   *self.heartbeat),),
                job_id=job_id(self.study, t.tid, t.attempt),
                timeout=self.job_timeout,
                description=f"distopt study {self.study} trial {t.tid} attempt {t.attempt}",
            )
            for t in trials
        ]
        # Not a MULTI: each job's data precedes its id on the queue, so a worker never
        # takes a job whose data is missing, and the replies are half as many to parse.
        pipe = self.storage.client.pipeline(transaction=False)
        self.queue.enqueue_many(datas, pipeline=pipe)
        pipe.execute()

    def wait(self, timeout: float) -> list[dict[str, Any]]:
        messages = coalesce(self.storage.pop_results(self.study, timeout=timeout, limit=self.batch))
        for msg in messages:
            if msg.get("error_kind") == "objective":
                self._warn_once(msg)
        return messages

    def _warn_once(self, msg: dict[str, Any]) -> None:
        key = (str(msg.get("worker")), str(msg.get("error")))
        if key not in self._warned:
            self._warned.add(key)
            log.warning("trial %s failed: %s", msg.get("tid"), msg.get("error"))

    def cancel(self, study: Any, tids: Sequence[int]) -> None:
        """Remove the jobs of ``tids`` that are still waiting in the queue; a job a worker
        already runs finishes, and its late result is ignored by the study."""
        records = [study.record(t) for t in tids]
        ids = self.job_ids(records)
        if not ids:
            return
        pipe = self.storage.client.pipeline()
        for jid in ids:
            self.queue.remove(jid, pipeline=pipe)
        removed = [jid for jid, n in zip(ids, pipe.execute()) if n]
        if removed:
            self.storage.client.delete(*(Job.key_for(jid) for jid in removed))

    def close(self) -> None:
        """Nothing to release: the connection belongs to the storage."""
