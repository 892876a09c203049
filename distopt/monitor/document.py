"""``distopt.status``: one JSON-able picture of a Redis holding studies, queues, workers.

It only reads, so any number of people and scripts can poll it while a study runs.
The clock is an argument (``now``) so rates, ETAs and stale trials are testable.

Schema (version 2; field by field, with what changed since version 1, in docs/status-schema.md); times are epoch seconds,
durations seconds, absent values null::

    {
      "version": 2,
      "time": 1714557600.0,                 # the `now` everything is measured against
      "redis": "10.0.0.5:6379",             # where (host:port), never the password
      "queues": {                           # every rq queue on that Redis, by name
        "distopt": {"depth": 12,            # jobs waiting
                    "started": 4,           # jobs a worker is running
                    "failed": 0,            # jobs rq itself saw fail
                    "workers": ["a1b2..."]} # names of the workers listening
      },
      "workers": {                          # every rq worker, by name
        "a1b2...": {"hostname": "gpu-3", "pid": 4242,
                    "id": "gpu-3:4242",     # the "worker" of trial records and heartbeats
                    "state": "busy",        # rq's: idle | busy | suspended | started | ...
                    "queues": ["distopt"],
                    "job": "distopt-mnist-17-0",           # rq job id, or null
                    "trial": {"study": "mnist", "tid": 17, "attempt": 0},  # or null
                    "last_heartbeat": 1714557598.2, "heartbeat_age": 1.8,
                    "versions": {"python": "3.11.7", "cloudpickle": "3.1.2",  # or null
                                 "distopt": "0.1.0"}}
      },
      "studies": {                          # one study, or all, by name
        "mnist": {
          "status": "running",              # as the coordinator wrote it (created, running,
                                            # done, interrupted)
          "coordinator": "host:pid:id",     # holder of the study's lease, null if none
          "queue": "distopt",               # null before a distributed run
          "created": 1714550000.0,
          "counts": {"queued": 4, "running": 8, "ok": 60, "fail": 2, "lost": 0, "cancelled": 0},
          "total": 74,                      # == sum(counts)
          "finished": 62,                   # ok + fail: what max_evals counts
          "max_evals": 200,                 # null when the study does not say
          "best": {"tid": 41, "loss": 0.013,
                   "params": {...},         # what the objective received (space_eval of the
                                            # stored JSON space), else the flat vals
                   "vals": {...}},          # flat values, choices as indices; null if no ok trial
          "rate_per_minute": 11.5,          # trials finished per minute, over the last
          "rate_window": 300.0,             #   `rate_window` seconds (less for a young study)
          "eta_seconds": 720.0,             # (max_evals - finished) at that rate; 0 when reached;
                                            # null without max_evals, with no recent finishes,
                                            # or for a cancelled, failed or interrupted study
          "stale": [                        # pending trials whose liveness deadline has passed
            {"tid": 17, "attempt": 0, "state": "running", "worker": "gpu-3:4242",
             "deadline": 1714557500.0, "overdue": 100.0,
             "source": "heartbeat"}         # or "start": no beat yet, start_time + heartbeat ttl
          ]
        }
      }
    }
"""

from __future__ import annotations

import math
import shlex
import time
import urllib.parse
from typing import Any, Mapping, Sequence

from ..errors import StudyNotFound
from ..trial.record import TrialRecord, TrialState
from ..study.snapshot import StudySnapshot, load_snapshot
from ..storage import RedisStorage, Storage, open_storage
from ..storage.redis.errors import redis_errors

SCHEMA_VERSION = 2
#: Seconds of finished trials the rate is measured over.
RATE_WINDOW = 300.0
from ..defaults import HEARTBEAT_TTL as DEFAULT_HEARTBEAT_TTL, is_limit  # noqa: E402
#: Statuses of a study a coordinator is (or should be) working on.
ACTIVE_STATUSES = ("running", "interrupted", "created")
#: Inbox messages read per study to tell results waiting for a coordinator.
INBOX_PEEK = 10000


def status(
    redis_url: Any,
    study: str | None = None,
    *,
    now: float | None = None,
    window: float = RATE_WINDOW,
) -> dict[str, Any]:
    """Queues, workers and studies (``study``, or every study) on one Redis, as a dict
    ready for ``json.dumps``; the schema is in this module's docstring.

    ``redis_url`` may also be a redis client or a ``Storage``. Raises ``ConnectionFailed``
    naming host:port when Redis cannot be reached, ``StudyNotFound`` listing the studies
    that exist when ``study`` is not one of them.
    """
    storage = open_storage(redis_url)
    try:
        return collect(storage, study, now=time.time() if now is None else float(now), window=window)
    finally:
        if storage is not redis_url:
            storage.close()


def collect(storage: Storage, study: str | None, *, now: float, window: float = RATE_WINDOW) -> dict[str, Any]:
    """``status`` on an open storage (a ``MemoryStorage`` has no queues or workers)."""
    queues: dict[str, Any] = {}
    workers: dict[str, Any] = {}
    rq = _RqView()
    if isinstance(storage, RedisStorage):
        queues, rq_workers = _rq(storage, now)
        workers = merge_workers(rq_workers, storage.worker_records(), now)
        _count_live(queues, workers)
        rq = _RqView(storage, workers)
    studies: dict[str, Any] = {}
    names = [study] if study is not None else storage.list_studies()
    for name in names:
        try:
            studies[name] = study_status(load_snapshot(storage, name), storage, now, window, rq)
        except StudyNotFound:
            if study is not None:
                raise
            continue  # deleted while we read
    return {
        "version": SCHEMA_VERSION,
        "time": now,
        "redis": storage.where if isinstance(storage, RedisStorage) else repr(storage),
        "queues": queues,
        "workers": workers,
        "studies": dict(sorted(studies.items(), key=lambda item: _order(item[0], item[1]))),
    }


def _order(name: str, st: Mapping[str, Any]) -> tuple[int, float, str]:
    """Active studies first, then the others; each group newest first."""
    active = st["status"] in ACTIVE_STATUSES
    return (0 if active else 1, -(st.get("last_activity") or st.get("created") or 0.0), name)


def _rq(storage: RedisStorage, now: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """rq's queues and workers, with Redis failures named like the storage names them."""
    from ..dispatch.inspect import rq_overview

    with redis_errors(storage.where, "reading rq's queues and workers"):
        return rq_overview(storage.client, now)


class _RqView:
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
    interval = float(rec.get("interval") or 5.0)
    dead_after = float(rec.get("dead_after") or 1.75 * interval)
    drop_after = float(rec.get("drop_after") or 12 * interval)
    if age > drop_after:
        return None
    alive = current and age <= dead_after
    rq_state = w.get("state")
    w.update({
        "rq_state": rq_state, "alive": alive, "liveness": "alive" if alive else "dead",
        "last_heartbeat": beat, "heartbeat_age": age, "dead_after": dead_after,
        "versions": w.get("versions") or rec.get("versions"),
    })
    if not alive:  # what it was doing when it died is history, not work in progress
        w.update({"state": "dead", "last_job": w.get("job") or rec.get("job"), "job": None, "trial": None})
    return w


def _parse_job(job: Any) -> dict[str, Any] | None:
    from ..dispatch.inspect import parse_job_id

    return parse_job_id(job) if isinstance(job, str) else None


def _count_live(queues: dict[str, Any], workers: Mapping[str, Any]) -> None:
    """Per queue: only workers not known dead listen, and jobs "started" are those such
    workers run (rq's own count, which keeps a killed worker's job, is ``rq_started``)."""
    for name, q in queues.items():
        listening = [n for n, w in workers.items() if name in w["queues"] and w["alive"] is not False]
        q["rq_started"] = q["started"]
        q["started"] = sum(1 for n in listening if workers[n]["job"])
        q["workers"] = listening
        q["workers_dead"] = sum(1 for w in workers.values() if name in w["queues"] and w["alive"] is False)


# -- studies --------------------------------------------------------------------------------
def study_status(snap: StudySnapshot, storage: Storage, now: float, window: float = RATE_WINDOW,
                 rq: "_RqView | None" = None) -> dict[str, Any]:
    """One study's entry of the status document."""
    meta = snap.meta
    rq = rq or _RqView()
    owner = storage.lease_owner(snap.name)
    stored = meta.get("status")
    status = "interrupted" if stored == "running" and owner is None else stored
    states = {s.value: 0 for s in TrialState}
    for rec in snap.records:
        states[rec.state.value] += 1
    inbox = storage.peek_results(snap.name, INBOX_PEEK)
    waiting = _waiting(inbox)
    counts = _activity(snap.name, snap.records, waiting, _started(inbox), rq.queued(meta.get("queue")), rq.running)
    finished = states["ok"] + states["fail"] + states["pruned"]
    max_evals = _max_evals(meta.get("max_evals"))
    ends = [r.end_time for r in snap.records if r.state.finished and r.end_time is not None]
    at = now if status in ("running", "created", None) or not ends else min(now, max(ends))
    rate = rate_per_minute(snap.records, at, window)
    best = snap.best
    stale_all = stale_trials(snap.records, storage.heartbeats(snap.name), now, _ttl(meta))
    return {
        "status": status,
        "stored_status": stored,
        "coordinator": owner,
        "coordinator_alive": owner is not None,
        "resume": resume_command(snap.name, storage) if status == "interrupted" else None,
        "queue": meta.get("queue"),
        "created": meta.get("created"),
        "last_activity": max([t for r in snap.records for t in (r.refresh_time, r.end_time) if t] or
                             [meta.get("created") or 0.0]),
        "counts": counts,
        "states": states,
        "total": len(snap.records),
        "finished": finished,
        "max_evals": max_evals,
        "best": None if best is None else {
            "tid": best.tid, "loss": best.loss, "params": snap.params(best), "vals": dict(best.vals),
        },
        "rate_per_minute": rate,
        "rate_window": min(window, _age(snap.records, at)) if snap.records else window,
        "rate_frozen": at != now,
        "eta_seconds": _eta(status, max_evals, finished, rate),
        "stale": _with_orphans(snap.name, snap.records, [s for s in stale_all if (s["tid"], s["attempt"]) not in waiting],
                               waiting, rq, now),
    }


def _with_orphans(name: str, records: Sequence[TrialRecord], stale: list[dict[str, Any]],
                  waiting: set[tuple[int, int]], rq: "_RqView", now: float) -> list[dict[str, Any]]:
    """Add the pending trials whose worker is dead (``source`` "worker"): found at once,
    without waiting for the trial's heartbeat deadline."""
    if not rq.orphaned:
        return stale
    listed = {(s["tid"], s["attempt"]) for s in stale}
    for rec in records:
        key = (rec.tid, rec.attempt)
        if not rec.state.pending or key in listed or key in waiting:
            continue
        found = rq.orphaned.get(_job_id(name, rec))
        if found is not None:
            worker, deadline = found
            stale.append({"tid": rec.tid, "attempt": rec.attempt, "state": rec.state.value, "worker": worker,
                          "deadline": deadline, "overdue": max(0.0, now - deadline), "source": "worker"})
    return sorted(stale, key=lambda s: s["tid"])


def _waiting(inbox: Sequence[Mapping[str, Any]]) -> set[tuple[int, int]]:
    """(tid, attempt) of results (and hand-backs) no coordinator has recorded yet."""
    out = set()
    for msg in inbox:
        if msg.get("type") != "started" and "tid" in msg:
            try:
                out.add((int(msg["tid"]), int(msg.get("attempt") or 0)))
            except (TypeError, ValueError):
                continue
    return out


def _started(inbox: Sequence[Mapping[str, Any]]) -> set[tuple[int, int]]:
    out = set()
    for msg in inbox:
        if msg.get("type") == "started":
            try:
                out.add((int(msg["tid"]), int(msg.get("attempt") or 0)))
            except (KeyError, TypeError, ValueError):
                continue
    return out


def _activity(name: str, records: Sequence[TrialRecord], waiting: set[tuple[int, int]], started: set[tuple[int, int]],
              queued_jobs: set[str] | None, running_jobs: set[str]) -> dict[str, int]:
    """Every trial in exactly one bucket, so the counts always add up to the total: an
    ended trial by its state; a pending one (QUEUED or RUNNING as stored) as
    ``waiting`` (its result is in the inbox, not yet recorded), ``running`` (a worker
    runs it), ``queued`` (its job waits on the rq queue) or ``taken`` (a worker took
    the job and has not reported it running yet)."""
    counts = {"queued": 0, "taken": 0, "running": 0, "waiting": 0}
    counts.update({s.value: 0 for s in TrialState if not s.pending})
    for rec in records:
        if not rec.state.pending:
            counts[rec.state.value] += 1
            continue
        key = (rec.tid, rec.attempt)
        job = None if queued_jobs is None else _job_id(name, rec)
        if key in waiting:
            counts["waiting"] += 1
        elif rec.state == TrialState.RUNNING or key in started or (job is not None and job in running_jobs):
            counts["running"] += 1
        elif queued_jobs is None or job in queued_jobs:
            counts["queued"] += 1
        else:
            counts["taken"] += 1
    return counts


def _job_id(name: str, rec: TrialRecord) -> str:
    from ..dispatch.jobs import job_id

    return job_id(name, rec.tid, rec.attempt)


def resume_command(name: str, storage: Storage) -> str:
    """The command that continues an interrupted study; a URL holding a password is
    written as "$DISTOPT_REDIS_URL", so no secret is ever shown."""
    url = storage.url if isinstance(storage, RedisStorage) else None
    shown = '"$DISTOPT_REDIS_URL"' if url is None or _holds_secret(url) else shlex.quote(url)
    return f"distopt run STUDY_FILE --redis {shown} --study {shlex.quote(name)}"


def _holds_secret(url: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(url)
        return parts.password is not None or "password" in urllib.parse.parse_qs(parts.query)
    except ValueError:
        return True


def _eta(status: Any, max_evals: int | None, finished: int, rate: float) -> float | None:
    """A running study's ETA; a done one has none left (0); one that was cancelled,
    failed or interrupted has no ETA until a coordinator runs it again."""
    if status == "done":
        return None if max_evals is None else 0.0
    if status in ("cancelled", "failed", "interrupted"):
        return None
    return eta_seconds(max_evals, finished, rate)


def _max_evals(value: Any) -> int | None:
    """hyperopt's "no limit" (``defaults.NO_LIMIT``); report it as null like an absent one."""
    if not is_limit(value):
        return None
    return int(value)


def _ttl(meta: Mapping[str, Any]) -> float:
    value = meta.get("heartbeat_ttl")
    return float(value) if isinstance(value, (int, float)) and value > 0 else DEFAULT_HEARTBEAT_TTL


def _age(records: Sequence[TrialRecord], now: float) -> float:
    """Seconds since the first trial was booked (how long the study has been running)."""
    starts = [t for r in records for t in (r.book_time, r.start_time) if t is not None]
    return max(0.0, now - min(starts)) if starts else 0.0


def rate_per_minute(records: Sequence[TrialRecord], now: float, window: float = RATE_WINDOW) -> float:
    """Trials that finished (ok or fail) per minute over the last ``window`` seconds, or
    since the first trial when the study is younger than that."""
    span = min(window, _age(records, now))
    if span <= 0:
        return 0.0
    done = sum(1 for r in records if r.state.finished and r.end_time is not None and now - window < r.end_time <= now)
    return done / max(span, 1.0) * 60.0


def eta_seconds(max_evals: int | None, finished: int, rate: float) -> float | None:
    """Seconds until ``max_evals`` trials have finished at ``rate`` per minute."""
    if max_evals is None:
        return None
    remaining = max(0, max_evals - finished)
    if remaining == 0:
        return 0.0
    if rate <= 0 or not math.isfinite(rate):
        return None
    return remaining / rate * 60.0


def stale_trials(
    records: Sequence[TrialRecord],
    heartbeats: Mapping[int, Mapping[str, Any]],
    now: float,
    ttl: float = DEFAULT_HEARTBEAT_TTL,
) -> list[dict[str, Any]]:
    """Pending trials past their liveness deadline: the heartbeat's, or start_time + ttl
    for a running attempt that has not beaten yet (workers beat only after the first
    interval). Such a trial's worker is probably gone; the coordinator's reaper marks it
    lost, so one that stays listed here means no coordinator is reaping."""
    out = []
    for rec in records:
        if not rec.state.pending:
            continue
        beat = heartbeats.get(rec.tid)
        if beat is not None and int(beat.get("attempt", -1)) == rec.attempt:
            deadline, source, worker = float(beat["deadline"]), "heartbeat", beat.get("worker") or rec.worker
        elif rec.state == TrialState.RUNNING and rec.start_time is not None:
            deadline, source, worker = rec.start_time + ttl, "start", rec.worker
        else:
            continue
        if deadline < now:
            out.append({"tid": rec.tid, "attempt": rec.attempt, "state": rec.state.value, "worker": worker,
                        "deadline": deadline, "overdue": now - deadline, "source": source})
    return out
