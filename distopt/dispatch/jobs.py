"""The job a worker runs for one trial attempt, and the ids and payloads of such jobs.

A job is an ordinary rq job (so ``rq info`` shows it) whose only argument is a JSON
payload: study, trial id, attempt, the trial's ``vals``, how to find the objective, and
the key prefix. The job reports to distopt's inbox, which is the source of truth; what
rq keeps as the job's result is a small summary for people looking with rq's tools.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import os
import signal
import socket
import time
from typing import Any, Mapping

from rq import get_current_job

from ..errors import DistoptError, ObjectiveError, StudyNotFound
from ..trial import codec
from ..trial.outcome import evaluate
from ..trial.record import vals_digest
from ..trial.names import validate_study_name
from .objective import (ENV_INSECURE, ENV_SECRET, NO_SECRET_HELP, ObjectiveCache, ObjectiveRef, import_objective,
                        unpack, verify_path)
from ..storage.redis.retry import RECONNECT_WINDOW, Backoff, call_with_retry
from ..pruners import make_pruner
from ..trial.reporting import Reporter
from ..space import space_eval
from ..trial.tracebacks import remember
from ..space.serialize import space_from_json
from ..storage import RedisStorage, Storage
from ..defaults import ENV_MAX_RESULT_BYTES, HEARTBEAT_INTERVAL, HEARTBEAT_TTL, MAX_RESULT_BYTES
from ..worker import heartbeat
from ..worker.time_limit import TrialTimeout, time_limit

log = logging.getLogger(__name__)

#: What rq imports on the worker to run a trial: the only function a distopt worker runs.
JOB_FUNC = "distopt.dispatch.jobs.run_trial"
PAYLOAD_VERSION = 1
#: What a payload's HMAC covers besides the payload, so it can never pass for another signature.
_PAYLOAD_DOMAIN = b"distopt-job-payload\0"
#: Longest text of a refused job echoed in a log line.
_ECHO = 200


def result_limit() -> int:
    """The result size limit: $DISTOPT_MAX_RESULT_BYTES, else ``MAX_RESULT_BYTES``."""
    raw = os.environ.get(ENV_MAX_RESULT_BYTES)
    if raw is None or raw == "":
        return MAX_RESULT_BYTES
    if not raw.isdigit() or int(raw) < 1024:
        raise DistoptError(f"{ENV_MAX_RESULT_BYTES}={raw[:40]!r} is not a number of bytes >= 1024; "
                           f"unset it for the default ({MAX_RESULT_BYTES})")
    return int(raw)


def job_id(study: str, tid: int, attempt: int) -> str:
    """``distopt-<study>-<tid>-<attempt>``: only [A-Za-z0-9_-], as rq requires, and a new
    id per attempt so a retried trial never collides with its earlier job."""
    return f"distopt-{validate_study_name(study)}-{int(tid)}-{int(attempt)}"


def make_payload(
    study: str, tid: int, attempt: int, vals: Mapping[str, Any], objective: ObjectiveRef, prefix: str,
    heartbeat_interval: float = HEARTBEAT_INTERVAL, heartbeat_ttl: float = HEARTBEAT_TTL,
    *, trial_timeout: float | None = None, secret: bytes | None = None, incarnation: str | None = None,
    max_result_bytes: int = MAX_RESULT_BYTES, pruner: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The job's only argument; signed (``sig``) with ``secret`` when there is one; ``pruner``
    (a ``Pruner.to_json()``) when the study prunes, so a report is judged on the worker
    without reading the study first."""
    payload = {
        "v": PAYLOAD_VERSION,
        "study": study,
        "tid": int(tid),
        "attempt": int(attempt),
        "vals": dict(vals),
        "objective": objective.to_json(),
        "prefix": prefix,
        "heartbeat": [float(heartbeat_interval), float(heartbeat_ttl)],
        "trial_timeout": None if trial_timeout is None else float(trial_timeout),
        "incarnation": incarnation,
        "params": vals_digest(vals),
        "max_result_bytes": int(max_result_bytes),
    }
    if pruner is not None:
        payload["pruner"] = dict(pruner)
    if secret is not None:
        payload["sig"] = payload_signature(payload, secret)
    return payload


def payload_signature(payload: Mapping[str, Any], secret: bytes) -> str:
    """HMAC-SHA256 of the payload's canonical JSON (every key but ``sig``, sorted): what
    rq's JSON serializer carries reads back to the same text, so a worker recomputes it."""
    body = json.dumps({k: v for k, v in payload.items() if k != "sig"}, sort_keys=True, separators=(",", ":"),
                      allow_nan=False)
    return hmac.new(secret, _PAYLOAD_DOMAIN + body.encode(), hashlib.sha256).hexdigest()


# -- worker-side settings and caches -----------------------------------------------------
@dataclasses.dataclass(frozen=True)
class WorkerSettings:
    secret: bytes | None
    insecure: bool


_settings: WorkerSettings | None = None
#: Set when this worker was asked to stop (SIGTERM, SIGINT, the supervisor gone): a
#: SystemExit or KeyboardInterrupt during a trial is then the stop, not the objective's.
_stopping = False


def note_stop_request() -> None:
    """Called by the worker's signal handlers before rq acts on the signal."""
    global _stopping
    _stopping = True


def death_cause(code: int) -> tuple[str, bool]:
    """(how a process running a trial ended, in words; whether the objective did it). A
    process that exited by itself (``os._exit``) or crashed (SIGSEGV, SIGABRT, SIGBUS,
    SIGFPE, SIGILL...) was ended by the code it ran; one killed by SIGKILL, SIGTERM,
    SIGINT or SIGHUP was ended from outside (an operator, the OOM killer, a shutdown)."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}", -code not in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    return f"exited with code {code}", True
_objectives = ObjectiveCache()
_spaces = ObjectiveCache(size=64)
_checked = ObjectiveCache(size=256)  # (prefix, study, objective) triples already checked
_storages: dict[tuple[int, str], tuple[Any, RedisStorage]] = {}


def configure(secret: bytes | None, insecure: bool) -> None:
    """Set this process's secret (``distopt worker`` does, before working). ``insecure``
    means "there is no secret": with a secret it changes nothing, and unsigned jobs and
    objectives are refused."""
    global _settings
    _settings = WorkerSettings(secret, bool(insecure) and secret is None)


def reset() -> None:
    """Forget the configured secret and every cached objective, space, check and client,
    so the next trial in this process starts from nothing (tests rely on this)."""
    global _settings
    _settings = None
    for cache in (_objectives, _spaces, _checked):
        cache.clear()
    _storages.clear()
    _LOAD_FAILURES.clear()


def settings() -> WorkerSettings:
    """The configured settings, else $DISTOPT_SECRET / $DISTOPT_INSECURE (for workers
    started with plain ``rq worker``)."""
    if _settings is not None:
        return _settings
    secret = os.environ.get(ENV_SECRET) or None
    insecure = os.environ.get(ENV_INSECURE, "").lower() in ("1", "true", "yes") and secret is None
    return WorkerSettings(os.fsencode(secret) if secret else None, insecure)


# -- which jobs a worker accepts ---------------------------------------------------------
def _echo(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _ECHO else text[:_ECHO] + f"... ({len(text)} characters)"


def job_refusal(job: Any) -> str | None:
    """Why a worker must not run ``job`` (None when it may): rq imports and calls whatever
    function a job names, and runs its callbacks, so a job anyone could write to Redis is
    checked here before rq imports anything. Only ``run_trial`` with one payload, no
    callbacks, dependencies, webhooks, retries or repeats, a job id that matches the
    payload, and (when this worker has a secret) a payload signed with it, is accepted."""
    try:
        func, instance, args, kwargs = job.func_name, job.instance, job.args, job.kwargs
    except Exception as exc:  # unreadable data: never reaches rq's import
        return f"its data cannot be read ({type(exc).__name__})"
    if func != JOB_FUNC:
        return f"it names the function {_echo(func)}, and a distopt worker runs only {JOB_FUNC}"
    if instance is not None or kwargs or not isinstance(args, (list, tuple)) or len(args) != 1 \
            or not isinstance(args[0], dict):
        return "its arguments are not one distopt payload"
    # rq's own properties for callbacks import them: read the names it restored instead
    for what, value in (("an on_success callback", getattr(job, "_success_callback_name", None)),
                        ("an on_failure callback", getattr(job, "_failure_callback_name", None)),
                        ("an on_stopped callback", getattr(job, "_stopped_callback_name", None)),
                        ("webhooks", getattr(job, "webhooks", None)),
                        ("dependencies", getattr(job, "_dependency_ids", None)),
                        ("retries", getattr(job, "retries_left", None)),
                        ("repeats", getattr(job, "repeats_left", None))):
        if value:
            return f"it names {what} ({_echo(value)}), which distopt jobs never have"
    return payload_refusal(args[0], str(job.id))


def _trial_of(payload: Mapping[str, Any]) -> tuple[str, int, int] | None:
    """(study, tid, attempt) a payload names, None when it names no valid one."""
    try:
        study, tid, attempt = validate_study_name(payload["study"]), int(payload["tid"]), int(payload["attempt"])
        str(payload["prefix"])
    except Exception:
        return None
    return study, tid, attempt


def payload_refusal(payload: Mapping[str, Any], jid: str | None = None) -> str | None:
    """Why a payload must not run here: malformed, another job's, or not signed with this
    worker's secret (unsigned payloads pass only on a worker without a secret)."""
    trial = _trial_of(payload)
    if trial is None:
        return "its payload does not name a valid study, trial and attempt"
    expected_id = job_id(*trial)
    if jid is not None and jid != expected_id:
        return f"its id {_echo(jid)} is not the id of the trial its payload names ({expected_id})"
    current = settings()
    sig = payload.get("sig")
    if current.secret is None:
        if current.insecure:
            return None
        return f"this worker has no secret and does not run unsigned jobs: {NO_SECRET_HELP}"
    if not isinstance(sig, str):
        return (f"its payload is unsigned (its coordinator ran without a secret) and this worker only runs jobs "
                f"signed with its {ENV_SECRET}; give the coordinator the same secret")
    try:
        expected = payload_signature(payload, current.secret)
    except ValueError:
        return "its payload holds values JSON cannot carry"
    if not hmac.compare_digest(sig, expected):
        return (f"its payload's HMAC signature does not verify, so it was signed with a different secret or "
                f"tampered with; give the coordinator and this worker the same {ENV_SECRET} (or --secret-file)")
    return None


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
    remember(obj.get("code"))  # tracebacks name the user's files, not "<dynamic-code>"
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
              timeout: float | None, reporter: Reporter | None = None) -> dict[str, Any]:
    """``evaluate`` under the trial's time limit; running past it is a FAIL naming it."""
    try:
        with time_limit(timeout):
            return evaluate(fn, params, tid=tid, attempt=attempt, worker=worker, reporter=reporter)
    except TrialTimeout as exc:
        return _failure(tid, attempt, worker, start, f"trial_timeout: {exc}", "timeout")


def _reporter(storage: RedisStorage, study: str, tid: int, attempt: int,
              spec: Mapping[str, Any] | None) -> Reporter:
    """Where the objective's ``distopt.report`` calls go: one script call each, riding out
    a Redis restart (a report sent again is not counted twice)."""
    def call(fn: Any, *args: Any) -> Any:
        return call_with_retry(fn, *args, backoff=Backoff(RECONNECT_WINDOW),
                               what=f"reporting an intermediate value of trial {tid} of study {study}")

    return Reporter(storage, study, tid, attempt, make_pruner(spec), call=call)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1_000_000 else f"{n:,} bytes"


def _capped(msg: dict[str, Any], limit: int) -> dict[str, Any]:
    """``msg``, or a FAIL naming the sizes when its JSON is over ``limit`` bytes."""
    size = len(codec.dumps(msg).encode())
    if size <= limit:
        return msg
    reason = (f"the result is {_size(size)} as JSON, over the limit of {_size(limit)} "
              f"(${ENV_MAX_RESULT_BYTES} on the coordinator); return a smaller result: keep big artifacts in files "
              "or object storage and return their paths")
    failed = _failure(int(msg["tid"]), int(msg["attempt"]), str(msg.get("worker")), float(msg.get("start_time") or 0),
                      reason, "result_size", reason=reason)
    return {**failed, "incarnation": msg.get("incarnation"), "params": msg.get("params")}


def _identity(payload: Mapping[str, Any]) -> dict[str, Any]:
    """What every message about a trial repeats from its job: the study's incarnation and
    the digest of the parameters, so the coordinator records it only on that trial."""
    return {"incarnation": payload.get("incarnation"), "params": payload.get("params")}


def _push(storage: RedisStorage, study: str, msg: Mapping[str, Any]) -> None:
    """Push a result, riding out a Redis restart: the trial's work is not thrown away
    (a duplicate push after a lost reply is ignored by the coordinator). A study that is
    gone from Redis (restarted without persistence, flushed) gets nothing: the result is
    logged here, and the next coordinator of that name is told the study was lost."""
    try:
        call_with_retry(storage.push_result, study, msg, backoff=Backoff(RECONNECT_WINDOW),
                        what=f"pushing the result of trial {msg.get('tid')} of study {study}")
    except StudyNotFound:
        log.warning("study %r existed and its data is gone: Redis lost it; the result of trial %s (attempt %s, "
                    "loss %s) is dropped", study, msg.get("tid"), msg.get("attempt"), msg.get("loss"))
        storage.note_vanished(study, msg.get("incarnation"))


def report_refusal(connection: Any, payload: Mapping[str, Any], reason: str) -> None:
    """Tell a trial's study that this worker refused its job (a failed result naming the
    reason, e.g. another secret), so the study does not wait for it; nothing of the job ran."""
    trial = _trial_of(payload)
    if trial is None:
        return
    study, tid, attempt = trial
    storage = _storage(connection, str(payload["prefix"]))
    worker, now = worker_id(), time.time()
    msg = _failure(tid, attempt, worker, now, f"worker {worker} refused the job: {reason}", "objective", reason=reason)
    storage.push_result(study, {**msg, **_identity(payload)})


def report_death(connection: Any, payload: Mapping[str, Any], code: int, worker: str) -> None:
    """The process running this payload's trial died (``code`` as ``Popen.returncode``):
    a FAIL naming the cause when the objective did it (no retry would help), else a
    hand-back so the trial runs again at once."""
    trial = _trial_of(payload)
    if trial is None:
        return
    study, tid, attempt = trial
    storage = _storage(connection, str(payload["prefix"]))
    cause, by_objective = death_cause(code)
    if by_objective:
        msg = _failure(tid, attempt, worker, time.time(), f"the process {worker} running the objective ended: "
                       f"{cause}", "exit", reason=cause)
        storage.push_result(study, {**msg, **_identity(payload)})
    else:
        _hand_back(storage, study, tid, attempt, f"{worker} ({cause})", _identity(payload))


def _hand_back(storage: RedisStorage, study: str, tid: int, attempt: int, worker: str,
               identity: Mapping[str, Any]) -> None:
    """The worker is being stopped mid-trial: tell the coordinator to run it elsewhere now."""
    try:
        storage.push_result(study, {"type": "handback", "tid": tid, "attempt": attempt, "worker": worker, **identity})
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
    refusal = payload_refusal(payload, str(job.id))
    if refusal is not None:  # a worker started as plain `rq worker` gets here without the class's check
        report_refusal(job.connection, payload, refusal)
        raise ObjectiveError(f"refused job {job.id}: {refusal}")
    study, tid, attempt = str(payload["study"]), int(payload["tid"]), int(payload["attempt"])
    storage = _storage(job.connection, str(payload["prefix"]))
    worker = worker_id()
    start = time.time()
    identity = _identity(payload)
    started = {"type": "started", "tid": tid, "attempt": attempt, "worker": worker, "start_time": start, **identity}
    interval, ttl = payload.get("heartbeat") or (HEARTBEAT_INTERVAL, HEARTBEAT_TTL)
    timeout = payload.get("trial_timeout")
    with heartbeat.beating(storage, study, tid, attempt, worker, float(interval), float(ttl), started=started):
        try:  # a Redis blip here is waited out, not reported as a broken objective
            fn, space = call_with_retry(load_objective, storage, study, ObjectiveRef.from_json(payload["objective"]),
                                        backoff=Backoff(RECONNECT_WINDOW), what=f"loading the objective of {study}")
            params = space_eval(space, payload["vals"])
        except Exception as exc:  # anything a user's module does on import: the trial runs elsewhere
            message = str(exc) if isinstance(exc, DistoptError) else f"{type(exc).__name__}: {exc}"
            _push(storage, study, {"type": "unloadable", "tid": tid, "attempt": attempt, "worker": worker,
                                   "rq_worker": getattr(job, "worker_name", None) or worker, "reason": message,
                                   **identity})
            msg = None
        else:
            _LOAD_FAILURES.clear()
            log.info("trial %s of study %s (attempt %s) started on %s", tid, study, attempt, worker)
            try:
                reporter = _reporter(storage, study, tid, attempt, payload.get("pruner"))
                msg = _evaluate(fn, params, tid, attempt, worker, start, None if timeout is None else float(timeout),
                                reporter)
            except (KeyboardInterrupt, SystemExit) as exc:
                if _stopping:  # rq's cold shutdown, Ctrl-C: the trial runs again elsewhere
                    _hand_back(storage, study, tid, attempt, worker, identity)
                    log.warning("trial %s of study %s (attempt %s) handed back after %.2f s: this worker is stopping",
                                tid, study, attempt, time.time() - start)
                    raise
                # the objective itself ended the process: a FAIL naming how, and the worker goes on
                what = f"{type(exc).__name__}({exc.code!r})" if isinstance(exc, SystemExit) else type(exc).__name__
                msg = _failure(tid, attempt, worker, start, f"the objective tried to end the worker process: it raised "
                               f"{what}", "exit", reason=what)
            _push(storage, study, _capped({**msg, **identity}, int(payload.get("max_result_bytes") or MAX_RESULT_BYTES)))
    if msg is None:
        _after_load_failure(study, tid, attempt, worker, message)
        return {"tid": tid, "attempt": attempt, "status": "unloadable", "loss": None}
    _log_end(study, msg)
    return {"tid": tid, "attempt": attempt, "status": msg["status"], "loss": msg["loss"]}


#: Load failures in a row in this process (an objective that loads clears it).
_LOAD_FAILURES: list[str] = []
#: The longest pause after a load failure, so a worker that cannot load an objective
#: leaves its trials to workers that can instead of taking each one first.
LOAD_FAILURE_PAUSE = 5.0


def _after_load_failure(study: str, tid: int, attempt: int, worker: str, reason: str) -> None:
    """Say why the trial goes elsewhere, then pause (growing with each failure in a row)."""
    _LOAD_FAILURES.append(reason)
    pause = min(LOAD_FAILURE_PAUSE, 0.2 * 2 ** (len(_LOAD_FAILURES) - 1))
    log.error("trial %s of study %s (attempt %s): worker %s cannot load the objective, so the trial runs on "
              "another worker: %s (pausing %.1f s)", tid, study, attempt, worker, reason, pause)
    time.sleep(pause)


def _log_end(study: str, msg: Mapping[str, Any]) -> None:
    """One line per finished trial: duration and loss, or the error."""
    took = float(msg.get("end_time") or time.time()) - float(msg.get("start_time") or time.time())
    if msg["status"] == "ok":
        log.info("trial %s of study %s (attempt %s) ended in %.2f s: loss %s", msg["tid"], study, msg["attempt"],
                 took, msg["loss"])
    else:
        error = str(msg.get("error") or "failed").strip().splitlines()
        log.warning("trial %s of study %s (attempt %s) failed in %.2f s: %s", msg["tid"], study, msg["attempt"],
                    took, error[0] if error else "failed")
