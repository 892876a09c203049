"""The job a worker runs for one trial attempt, and the ids and payloads of such jobs.

A job is an ordinary rq job (so ``rq info`` shows it) whose only argument is a JSON
payload: study, trial id, attempt, the trial's ``vals``, how to find the objective, and
the key prefix. The job reports to distopt's inbox, which is the source of truth; what
rq keeps as the job's result is a small summary for people looking with rq's tools.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from typing import Any, Mapping

from rq import get_current_job

from ..errors import DistoptError, ObjectiveError
from ..trial.outcome import evaluate
from ..trial.names import validate_study_name
from .objective import (ENV_INSECURE, ENV_SECRET, ObjectiveCache, ObjectiveRef, import_objective, unpack,
                         verify_path)
from ..storage.redis.retry import RECONNECT_WINDOW, Backoff, call_with_retry
from ..space import space_eval
from ..space.serialize import space_from_json
from ..storage import RedisStorage, Storage
from ..defaults import HEARTBEAT_INTERVAL, HEARTBEAT_TTL
from ..worker import heartbeat
from ..worker.time_limit import TrialTimeout, time_limit

#: What rq imports on the worker to run a trial.
JOB_FUNC = "distopt.dispatch.jobs.run_trial"
PAYLOAD_VERSION = 1


def job_id(study: str, tid: int, attempt: int) -> str:
    """``distopt-<study>-<tid>-<attempt>``: only [A-Za-z0-9_-], as rq requires, and a new
    id per attempt so a retried trial never collides with its earlier job."""
    return f"distopt-{validate_study_name(study)}-{int(tid)}-{int(attempt)}"


def make_payload(
    study: str, tid: int, attempt: int, vals: Mapping[str, Any], objective: ObjectiveRef, prefix: str,
    heartbeat_interval: float = HEARTBEAT_INTERVAL, heartbeat_ttl: float = HEARTBEAT_TTL,
    *, trial_timeout: float | None = None,
) -> dict[str, Any]:
    return {
        "v": PAYLOAD_VERSION,
        "study": study,
        "tid": int(tid),
        "attempt": int(attempt),
        "vals": dict(vals),
        "objective": objective.to_json(),
        "prefix": prefix,
        "heartbeat": [float(heartbeat_interval), float(heartbeat_ttl)],
        "trial_timeout": None if trial_timeout is None else float(trial_timeout),
    }


# -- worker-side settings and caches -----------------------------------------------------
@dataclasses.dataclass(frozen=True)
class WorkerSettings:
    secret: bytes | None
    insecure: bool


_settings: WorkerSettings | None = None
_objectives = ObjectiveCache()
_spaces = ObjectiveCache(size=64)
_checked = ObjectiveCache(size=256)  # (prefix, study, objective) triples already checked
_storages: dict[tuple[int, str], tuple[Any, RedisStorage]] = {}


def configure(secret: bytes | None, insecure: bool) -> None:
    """Set this process's secret (``distopt worker`` does, before working)."""
    global _settings
    _settings = WorkerSettings(secret, bool(insecure))


def reset() -> None:
    """Forget the configured secret and every cached objective, space, check and client,
    so the next trial in this process starts from nothing (tests rely on this)."""
    global _settings
    _settings = None
    for cache in (_objectives, _spaces, _checked):
        cache.clear()
    _storages.clear()


def settings() -> WorkerSettings:
    """The configured settings, else $DISTOPT_SECRET / $DISTOPT_INSECURE (for workers
    started with plain ``rq worker``)."""
    if _settings is not None:
        return _settings
    secret = os.environ.get(ENV_SECRET) or None
    insecure = os.environ.get(ENV_INSECURE, "").lower() in ("1", "true", "yes")
    return WorkerSettings(secret.encode() if secret else None, insecure)


def worker_id() -> str:
    """host:pid of this process (computed per call: a forking worker changes pid)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _storage(connection: Any, prefix: str) -> RedisStorage:
    key = (id(connection), prefix)
    cached = _storages.get(key)
    if cached is None or cached[0] is not connection:
        cached = (connection, RedisStorage(connection, prefix=prefix))
        _storages[key] = cached
    return cached[1]


def _load_blob(storage: RedisStorage, ref: ObjectiveRef) -> dict[str, Any]:
    assert ref.digest is not None
    blob = storage.get_blob(ref.digest)
    if blob is None:
        raise ObjectiveError(
            f"objective {ref.name} (blob {ref.digest[:12]}) is not in this Redis; is this worker "
            "connected to the same Redis server and database as the coordinator?"
        )
    current = settings()
    _, obj = unpack(blob, ref.digest, secret=current.secret, insecure=current.insecure)
    return obj


def _load_space(storage: Storage, study: str) -> Any:
    data = storage.get_study(study).get("space")
    if data is None:
        raise ObjectiveError(
            f"study {study!r} has a space with non-JSON constants, which an import-path objective "
            "cannot receive; pass the objective function itself so the space is shipped with it"
        )
    return space_from_json(data)


def _check_study_objective(storage: Storage, study: str, ref: ObjectiveRef) -> bool:
    """Refuse a job that names an objective its study's coordinator never shipped: a
    signed blob of one study must not run with another study's values."""
    meta = storage.get_study(study)
    shipped = list(meta.get("objectives") or [])
    if not shipped and meta.get("objective"):
        shipped = [ObjectiveRef.from_json(meta["objective"]).key]
    if ref.key not in shipped:
        raise ObjectiveError(
            f"the job names objective {ref.key.partition(':')[2]!r}, which study {study!r} never shipped "
            f"(it runs {', '.join(k.partition(':')[2] for k in shipped) or 'no objective yet'}); refusing to "
            "run it: the job was not enqueued by this study's coordinator"
        )
    return True


def load_objective(storage: RedisStorage, study: str, ref: ObjectiveRef) -> tuple[Any, Any]:
    """(objective, space), cached per digest (per path and study for import paths), once
    the job's objective is the study's and its signature verifies."""
    _checked.get(f"{storage.prefix}|{study}|{ref.digest}|{ref.path}",
                 lambda: _check_study_objective(storage, study, ref))
    if ref.digest is not None:
        obj = _objectives.get(f"digest:{ref.digest}", lambda: _load_blob(storage, ref))
        return obj["fn"], obj["space"]
    if ref.path is not None:
        current = settings()
        path = verify_path(ref, secret=current.secret, insecure=current.insecure)
        fn = _objectives.get(f"path:{path}", lambda: import_objective(path))
        space = _spaces.get(f"{storage.prefix}|{study}", lambda: _load_space(storage, study))
        return fn, space
    raise ObjectiveError(f"the job names no objective (neither a digest nor an import path): {ref!r}")


def _failure(tid: int, attempt: int, worker: str, start: float, error: str, kind: str,
             reason: str | None = None) -> dict[str, Any]:
    return {
        "tid": tid, "attempt": attempt, "status": "fail", "loss": None, "result": {"status": "fail"},
        "error": error, "traceback": None, "worker": worker, "start_time": start, "end_time": time.time(),
        "error_kind": kind, "reason": reason,
    }


def _evaluate(fn: Any, params: Any, tid: int, attempt: int, worker: str, start: float,
              timeout: float | None) -> dict[str, Any]:
    """``evaluate`` under the trial's time limit; running past it is a FAIL naming it."""
    try:
        with time_limit(timeout):
            return evaluate(fn, params, tid=tid, attempt=attempt, worker=worker)
    except TrialTimeout as exc:
        return _failure(tid, attempt, worker, start, f"trial_timeout: {exc}", "timeout")


def _push(storage: RedisStorage, study: str, msg: Mapping[str, Any]) -> None:
    """Push a result, riding out a Redis restart: the trial's work is not thrown away
    (a duplicate push after a lost reply is ignored by the coordinator)."""
    call_with_retry(storage.push_result, study, msg, backoff=Backoff(RECONNECT_WINDOW),
                    what=f"pushing the result of trial {msg.get('tid')} of study {study}")


def _hand_back(storage: RedisStorage, study: str, tid: int, attempt: int, worker: str) -> None:
    """The worker is being stopped mid-trial: tell the coordinator to run it elsewhere now."""
    try:
        storage.push_result(study, {"type": "handback", "tid": tid, "attempt": attempt, "worker": worker})
    except Exception:  # shutting down: the reaper finds the trial when its heartbeat expires
        pass


def run_trial(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Evaluate one trial attempt and push its result to the study's inbox.

    A trial still running after ``heartbeat.STARTED_DELAY`` seconds is reported as
    ``{"type": "started"}`` (the coordinator marks it RUNNING) and then beats; a worker
    that cannot load the objective reports that as a failed trial with the reason
    instead of failing the rq job; a trial past its ``trial_timeout`` is stopped and
    reported as failed; a worker stopped mid-trial hands the trial back.
    """
    job = get_current_job()
    if job is None:
        raise DistoptError("run_trial runs inside an rq worker (it reads the job's Redis connection)")
    study, tid, attempt = str(payload["study"]), int(payload["tid"]), int(payload["attempt"])
    storage = _storage(job.connection, str(payload["prefix"]))
    worker = worker_id()
    start = time.time()
    started = {"type": "started", "tid": tid, "attempt": attempt, "worker": worker, "start_time": start}
    interval, ttl = payload.get("heartbeat") or (HEARTBEAT_INTERVAL, HEARTBEAT_TTL)
    timeout = payload.get("trial_timeout")
    with heartbeat.beating(storage, study, tid, attempt, worker, float(interval), float(ttl), started=started):
        try:  # a Redis blip here is waited out, not reported as a broken objective
            fn, space = call_with_retry(load_objective, storage, study, ObjectiveRef.from_json(payload["objective"]),
                                        backoff=Backoff(RECONNECT_WINDOW), what=f"loading the objective of {study}")
            params = space_eval(space, payload["vals"])
        except Exception as exc:  # anything a user's module does on import; reported on the trial
            message = str(exc) if isinstance(exc, DistoptError) else f"{type(exc).__name__}: {exc}"
            msg = _failure(tid, attempt, worker, start, f"worker {worker} cannot load the objective: {message}",
                           "objective", reason=message)
        else:
            try:
                msg = _evaluate(fn, params, tid, attempt, worker, start, None if timeout is None else float(timeout))
            except (KeyboardInterrupt, SystemExit):  # rq's cold shutdown, Ctrl-C
                _hand_back(storage, study, tid, attempt, worker)
                raise
        _push(storage, study, msg)
    return {"tid": tid, "attempt": attempt, "status": msg["status"], "loss": msg["loss"]}
