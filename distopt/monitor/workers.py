"""Workers and queues as the status document shows them: rq's view (queues, registered
workers, their jobs) corrected by each worker's own heartbeat record, so a killed worker
rq still lists shows as dead, and a queue's "started" counts only live workers' jobs."""

from __future__ import annotations

from typing import Any, Mapping

from ..storage import RedisStorage
from ..storage.redis.errors import redis_errors
from ..trial.liveness import dead_after, drop_after


def read_rq(storage: RedisStorage, now: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """rq's queues and workers, with Redis failures named like the storage names them."""
    from ..dispatch.inspect import rq_overview

    with redis_errors(storage.where, "reading rq's queues and workers"):
        return rq_overview(storage.client, now)


class RqView:
    """What a study's pending trials are doing in rq: jobs still waiting on a queue
    (read once per queue) and jobs live workers are running."""

    def __init__(self, storage: RedisStorage | None = None, workers: Mapping[str, Any] | None = None) -> None:
        self.storage = storage
        self.running = {w["job"] for w in (workers or {}).values() if w["alive"] is not False and w["job"]}
        #: job -> (worker id, when it was found dead) for jobs a dead worker was running
        self.orphaned = {w["last_job"]: (w["id"], (w["last_heartbeat"] or 0.0) + (w["dead_after"] or 0.0))
                         for w in (workers or {}).values() if w["alive"] is False and w.get("last_job")}
        self._queued: dict[str, set[str]] = {}

    def queued(self, queue: Any) -> set[str] | None:
        """Job ids waiting on ``queue``; None when there is no rq to ask."""
        if self.storage is None or not isinstance(queue, str):
            return None
        if queue not in self._queued:
            from ..dispatch.inspect import queued_job_ids

            with redis_errors(self.storage.where, f"reading rq queue {queue!r}"):
                self._queued[queue] = queued_job_ids(self.storage.client, queue)
        return self._queued[queue]


# -- workers --------------------------------------------------------------------------------
def merge_workers(rq_workers: Mapping[str, Any], records: Mapping[str, Mapping[str, Any]],
                  now: float) -> dict[str, Any]:
    """rq's workers joined with distopt's own worker records (``Storage.worker_records``),
    by rq name. A worker with a record is alive or dead by its own beat, whatever rq
    says; a dead one is listed until its record's ``drop_after``, then not at all (also
    not from rq's registry, which keeps a killed worker for minutes). A worker with no
    record (a plain ``rq worker``) is listed as rq reports it, liveness "unknown"."""
    by_rq = {r["rq"]: r for r in records.values() if r.get("rq")}
    by_id = {r.get("id") or wid: r for wid, r in records.items()}
    out: dict[str, Any] = {}
    for name, w in rq_workers.items():
        rec = by_rq.get(name) or by_id.get(w.get("id") or "")
        if rec is None:
            out[name] = {**w, "rq_state": w["state"], "alive": None, "liveness": "unknown", "dead_after": None}
            continue
        doc = _with_record(dict(w), rec, now, current=rec.get("rq") == name)
        if doc is not None:
            out[name] = doc
    for wid, rec in records.items():
        name = rec.get("rq") or wid
        if name in out or name in rq_workers:
            continue
        host, pid = rec.get("hostname"), rec.get("pid")
        base = {"hostname": host, "pid": pid, "id": rec.get("id") or wid, "state": rec.get("state"),
                "queues": list(rec.get("queues") or []), "job": rec.get("job"),
                "trial": _parse_job(rec.get("job")), "last_heartbeat": None, "heartbeat_age": None}
        doc = _with_record(base, rec, now, current=True)
        if doc is not None:
            out[name] = doc
    return dict(sorted(out.items()))


def _with_record(w: dict[str, Any], rec: Mapping[str, Any], now: float, current: bool) -> dict[str, Any] | None:
    """``w`` (rq's view) corrected by the worker's own record; None once it is dropped."""
    beat = float(rec.get("beat") or 0.0)
    age = max(0.0, now - beat)
    dead_after_s = dead_after(rec)
    if age > drop_after(rec):
        return None
    alive = current and age <= dead_after_s
    rq_state = w.get("state")
    w.update({
        "rq_state": rq_state, "alive": alive, "liveness": "alive" if alive else "dead",
        "last_heartbeat": beat, "heartbeat_age": age, "dead_after": dead_after_s,
        "versions": w.get("versions") or rec.get("versions"),
    })
    if not alive:  # what it was doing when it died is history, not work in progress
        w.update({"state": "dead", "last_job": w.get("job") or rec.get("job"), "job": None, "trial": None})
    return w


def _parse_job(job: Any) -> dict[str, Any] | None:
    from ..dispatch.inspect import parse_job_id

    return parse_job_id(job) if isinstance(job, str) else None


def count_live(queues: dict[str, Any], workers: Mapping[str, Any]) -> None:
    """Per queue: only workers not known dead listen, and jobs "started" are those such
    workers run (rq's own count, which keeps a killed worker's job, is ``rq_started``)."""
    for name, q in queues.items():
        listening = [n for n, w in workers.items() if name in w["queues"] and w["alive"] is not False]
        q["rq_started"] = q["started"]
        q["started"] = sum(1 for n in listening if workers[n]["job"])
        q["workers"] = listening
        q["workers_dead"] = sum(1 for w in workers.values() if name in w["queues"] and w["alive"] is False)
