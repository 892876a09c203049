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

import shlex
import time
import urllib.parse
from typing import Any, Mapping

from ..errors import StudyNotFound
from ..trial.record import TrialState
from ..study.snapshot import StudySnapshot, load_snapshot
from ..storage import RedisStorage, Storage, open_storage
from .activity import activity_counts, started_messages, stale_trials, waiting_results, with_orphans
from .rates import RATE_WINDOW, rate_per_minute, study_age, study_eta
from .workers import RqView, count_live, merge_workers, read_rq

from ..defaults import ENV_REDIS_URL, is_limit
from ..trial.liveness import heartbeat_ttl_of

SCHEMA_VERSION = 2
#: Stands for the Redis URL in a printed command, expanded by the shell when run.
URL_FROM_ENV = f'"${ENV_REDIS_URL}"'
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
    rq = RqView()
    if isinstance(storage, RedisStorage):
        queues, rq_workers = read_rq(storage, now)
        workers = merge_workers(rq_workers, storage.worker_records(), now)
        count_live(queues, workers)
        rq = RqView(storage, workers)
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


# -- studies --------------------------------------------------------------------------------
def study_status(snap: StudySnapshot, storage: Storage, now: float, window: float = RATE_WINDOW,
                 rq: "RqView | None" = None) -> dict[str, Any]:
    """One study's entry of the status document."""
    meta = snap.meta
    rq = rq or RqView()
    owner = storage.lease_owner(snap.name)
    stored = meta.get("status")
    status = "interrupted" if stored == "running" and owner is None else stored
    states = {s.value: 0 for s in TrialState}
    for rec in snap.records:
        states[rec.state.value] += 1
    inbox = storage.peek_results(snap.name, INBOX_PEEK)
    waiting = waiting_results(inbox)
    counts = activity_counts(snap.name, snap.records, waiting, started_messages(inbox), rq.queued(meta.get("queue")), rq.running)
    finished = states["ok"] + states["fail"] + states["pruned"]
    max_evals = _max_evals(meta.get("max_evals"))
    ends = [r.end_time for r in snap.records if r.state.finished and r.end_time is not None]
    at = now if status in ("running", "created", None) or not ends else min(now, max(ends))
    rate = rate_per_minute(snap.records, at, window)
    best = snap.best
    stale_all = stale_trials(snap.records, storage.heartbeats(snap.name), now, heartbeat_ttl_of(meta))
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
        "rate_window": min(window, study_age(snap.records, at)) if snap.records else window,
        "rate_frozen": at != now,
        "eta_seconds": study_eta(status, max_evals, finished, rate),
        "stale": with_orphans(snap.name, snap.records, [s for s in stale_all if (s["tid"], s["attempt"]) not in waiting],
                               waiting, rq, now),
    }


def resume_command(name: str, storage: Storage) -> str:
    """The command that continues an interrupted study; a URL holding a password is
    written as "$DISTOPT_REDIS_URL", so no secret is ever shown."""
    url = storage.url if isinstance(storage, RedisStorage) else None
    shown = URL_FROM_ENV if url is None or holds_secret(url) else shlex.quote(url)
    return f"distopt run STUDY_FILE --redis {shown} --study {shlex.quote(name)}"


def holds_secret(url: str) -> bool:
    """Whether a Redis URL carries a password (``redis://:pw@host`` or ``?password=``): then
    a command shown to people names ``URL_FROM_ENV`` instead (an unparsable one too)."""
    try:
        parts = urllib.parse.urlsplit(url)
        return parts.password is not None or "password" in urllib.parse.parse_qs(parts.query)
    except ValueError:
        return True


def _max_evals(value: Any) -> int | None:
    """hyperopt's "no limit" (``defaults.NO_LIMIT``); report it as null like an absent one."""
    if not is_limit(value):
        return None
    return int(value)


