"""What rq knows about distopt's queues and workers, as plain JSON-able dicts.

``distopt status`` reads this; it never changes anything in Redis. Worker heartbeats
come from rq's own records (``rq worker`` beats on its own); a worker's current trial
is read from its job id (``distopt-<study>-<tid>-<attempt>``), so no job is fetched.
"""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

from rq import Queue, Worker
from rq.serializers import JSONSerializer

#: The field of rq's worker record where a distopt worker publishes its versions.
VERSIONS_FIELD = "distopt_versions"
_JOB_ID = re.compile(r"distopt-(?P<study>[A-Za-z0-9_-]+)-(?P<tid>\d+)-(?P<attempt>\d+)")


def parse_job_id(job_id: str | None) -> dict[str, Any] | None:
    """{"study", "tid", "attempt"} of a distopt job id (the inverse of ``jobs.job_id``);
    None for any other job. Study names may hold '-': tid and attempt are the last two
    all-digit parts."""
    if not job_id:
        return None
    match = _JOB_ID.fullmatch(job_id)
    if match is None:
        return None
    return {"study": match["study"], "tid": int(match["tid"]), "attempt": int(match["attempt"])}


def _epoch(dt: datetime.datetime | None) -> float | None:
    if dt is None:
        return None
    if dt.tzinfo is None:  # rq writes UTC
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp()


def worker_overview(connection: Any, now: float) -> dict[str, dict[str, Any]]:
    """Every rq worker registered on this Redis, by name (sorted)."""
    out: dict[str, dict[str, Any]] = {}
    for worker in sorted(Worker.all(connection=connection, serializer=JSONSerializer), key=lambda w: w.name):
        beat = _epoch(worker.last_heartbeat)
        job = worker.get_current_job_id()
        raw = connection.hget(worker.key, VERSIONS_FIELD)
        try:
            versions = json.loads(raw) if raw else None
        except ValueError:
            versions = None
        out[worker.name] = {
            "hostname": worker.hostname,
            "pid": worker.pid,
            "id": f"{worker.hostname}:{worker.pid}" if worker.hostname and worker.pid else None,
            "state": str(worker.get_state()),
            "queues": list(worker.queue_names()),
            "job": job,
            "trial": parse_job_id(job),
            "last_heartbeat": beat,
            "heartbeat_age": None if beat is None else max(0.0, now - beat),
            "versions": versions,  # {"python", "cloudpickle", "distopt"}, None from a worker that published none
        }
    return out


def queue_overview(connection: Any, workers: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every rq queue on this Redis, by name: jobs waiting, started and failed, and the
    names of the workers listening to it (``workers`` from ``worker_overview``)."""
    out: dict[str, dict[str, Any]] = {}
    for queue in sorted(Queue.all(connection=connection, serializer=JSONSerializer), key=lambda q: q.name):
        out[queue.name] = {
            "depth": int(queue.count),
            "started": int(queue.started_job_registry.count),
            "failed": int(queue.failed_job_registry.count),
            "workers": [name for name, w in workers.items() if queue.name in w["queues"]],
        }
    return out


def queued_job_ids(connection: Any, queue: str) -> set[str]:
    """Ids of the jobs waiting on rq queue ``queue`` (not yet taken by a worker)."""
    return {j.decode() if isinstance(j, bytes) else j
            for j in connection.lrange(Queue(queue, connection=connection, serializer=JSONSerializer).key, 0, -1)}


def rq_overview(connection: Any, now: float) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(queues, workers) in one call, for ``distopt.monitor.document``."""
    workers = worker_overview(connection, now)
    return queue_overview(connection, workers), workers


def listening_versions(connection: Any, queue: str, now: float,
                       dead: Any = frozenset()) -> dict[str, dict[str, str] | None]:
    """Versions each live worker listening on ``queue`` published (None: it published none),
    by worker name; ``dead`` names workers dead by their own heartbeat (rq keeps a killed
    worker registered for minutes)."""
    return {name: w["versions"] for name, w in worker_overview(connection, now).items()
            if queue in w["queues"] and w["state"] != "dead" and name not in dead}
