"""``distopt.status``: one JSON-able picture of a Redis holding studies, queues, workers.

It only reads, so any number of people and scripts can poll it while a study runs.
The clock is an argument (``now``) so rates, ETAs and stale trials are testable.

Schema (version 1; field by field in docs/status-schema.md); times are epoch seconds,
durations seconds, absent values null::

    {
      "version": 1,
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
import sys
import time
from typing import Any, Mapping, Sequence

import redis.exceptions

from .errors import ConnectionFailed, StorageError, StudyNotFound
from .records import TrialRecord, TrialState
from .snapshot import StudySnapshot, load_snapshot
from .storage import RedisStorage, Storage, open_storage

SCHEMA_VERSION = 1
#: Seconds of finished trials the rate is measured over.
RATE_WINDOW = 300.0
#: Liveness allowed to a running trial that has not beaten yet, when its study does not
#: say (the workers' default heartbeat ttl).
DEFAULT_HEARTBEAT_TTL = 30.0


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
    studies: dict[str, Any] = {}
    if study is not None:
        studies[study] = study_status(load_snapshot(storage, study), storage, now, window)
    else:
        for name in storage.list_studies():
            try:
                studies[name] = study_status(load_snapshot(storage, name), storage, now, window)
            except StudyNotFound:  # deleted while we read
                continue
    queues: dict[str, Any] = {}
    workers: dict[str, Any] = {}
    if isinstance(storage, RedisStorage):
        queues, workers = _rq(storage, now)
    return {
        "version": SCHEMA_VERSION,
        "time": now,
        "redis": storage.where if isinstance(storage, RedisStorage) else repr(storage),
        "queues": queues,
        "workers": workers,
        "studies": studies,
    }


def _rq(storage: RedisStorage, now: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """rq's queues and workers, with Redis failures named like the storage names them."""
    from .dispatch.inspect import rq_overview

    try:
        return rq_overview(storage.client, now)
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        raise ConnectionFailed(f"cannot reach Redis at {storage.where} ({exc}) while reading rq's queues") from exc
    except redis.exceptions.RedisError as exc:
        raise StorageError(f"Redis at {storage.where} failed while reading rq's queues and workers: {exc}") from exc


def study_status(snap: StudySnapshot, storage: Storage, now: float, window: float = RATE_WINDOW) -> dict[str, Any]:
    """One study's entry of the status document."""
    meta = snap.meta
    counts = {s.value: 0 for s in TrialState}
    for rec in snap.records:
        counts[rec.state.value] += 1
    finished = counts["ok"] + counts["fail"] + counts["pruned"]
    max_evals = _max_evals(meta.get("max_evals"))
    rate = rate_per_minute(snap.records, now, window)
    best = snap.best
    return {
        "status": meta.get("status"),
        "coordinator": storage.lease_owner(snap.name),
        "queue": meta.get("queue"),
        "created": meta.get("created"),
        "counts": counts,
        "total": len(snap.records),
        "finished": finished,
        "max_evals": max_evals,
        "best": None if best is None else {
            "tid": best.tid, "loss": best.loss, "params": snap.params(best), "vals": dict(best.vals),
        },
        "rate_per_minute": rate,
        "rate_window": min(window, _age(snap.records, now)) if snap.records else window,
        "eta_seconds": _eta(meta.get("status"), max_evals, finished, rate),
        "stale": stale_trials(snap.records, storage.heartbeats(snap.name), now, _ttl(meta)),
    }


def _eta(status: Any, max_evals: int | None, finished: int, rate: float) -> float | None:
    """A running study's ETA; a done one has none left (0); one that was cancelled,
    failed or interrupted has no ETA until a coordinator runs it again."""
    if status == "done":
        return None if max_evals is None else 0.0
    if status in ("cancelled", "failed", "interrupted"):
        return None
    return eta_seconds(max_evals, finished, rate)


def _max_evals(value: Any) -> int | None:
    """hyperopt's "no limit" is ``sys.maxsize``; report it as null like an absent one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value >= sys.maxsize:
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
