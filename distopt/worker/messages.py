"""What a worker tells a study about a trial besides running it: a failure naming why, a
refusal, how the process running it died, a hand-back when the worker stops, and the
size limit on a result. Every message repeats the job's identity (``identity_of``)."""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from typing import Any, Mapping

from ..defaults import ENV_MAX_RESULT_BYTES
from ..errors import StudyNotFound
from ..storage import RedisStorage
from ..storage.redis.retry import RECONNECT_WINDOW, Backoff, call_with_retry
from ..trial import codec
from ..dispatch.signing import sign_message
from .guard import settings, trial_of
from .loading import storage_for

log = logging.getLogger(__name__)


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


def worker_id() -> str:
    """host:pid of this process (computed per call: a forking worker changes pid)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def failure_message(tid: int, attempt: int, worker: str, start: float, error: str, kind: str,
             reason: str | None = None) -> dict[str, Any]:
    return {
        "tid": tid, "attempt": attempt, "status": "fail", "loss": None, "result": {"status": "fail"},
        "error": error, "traceback": None, "worker": worker, "start_time": start, "end_time": time.time(),
        "error_kind": kind, "reason": reason,
    }


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1_000_000 else f"{n:,} bytes"


def capped(msg: dict[str, Any], limit: int) -> dict[str, Any]:
    """``msg``, or a FAIL naming the sizes when its JSON is over ``limit`` bytes."""
    size = len(codec.dumps(msg).encode())
    if size <= limit:
        return msg
    reason = (f"the result is {_size(size)} as JSON, over the limit of {_size(limit)} "
              f"(${ENV_MAX_RESULT_BYTES} on the coordinator); return a smaller result: keep big artifacts in files "
              "or object storage and return their paths")
    failed = failure_message(int(msg["tid"]), int(msg["attempt"]), str(msg.get("worker")),
                             float(msg.get("start_time") or 0), reason, "result_size", reason=reason)
    return {**failed, "incarnation": msg.get("incarnation"), "params": msg.get("params")}


def identity_of(payload: Mapping[str, Any]) -> dict[str, Any]:
    """What every message about a trial repeats from its job: the study's incarnation and
    the digest of the parameters, so the coordinator records it only on that trial."""
    return {"incarnation": payload.get("incarnation"), "params": payload.get("params")}


def signed(msg: Mapping[str, Any], secret: bytes | None = None) -> dict[str, Any]:
    """``msg`` signed with ``secret``, by default this worker's (as is without one): the
    coordinator records nothing a worker holding its secret did not send."""
    return sign_message(msg, secret if secret is not None else settings().secret)


def deliver_result(storage: RedisStorage, study: str, msg: Mapping[str, Any]) -> None:
    """Push a result, riding out a Redis restart: the trial's work is not thrown away
    (a duplicate push after a lost reply is ignored by the coordinator). A study that is
    gone from Redis (restarted without persistence, flushed) gets nothing: the result is
    logged here, and the next coordinator of that name is told the study was lost."""
    try:
        call_with_retry(storage.push_result, study, signed(msg), backoff=Backoff(RECONNECT_WINDOW),
                        what=f"pushing the result of trial {msg.get('tid')} of study {study}")
    except StudyNotFound:
        log.warning("study %r existed and its data is gone: Redis lost it; the result of trial %s (attempt %s, "
                    "loss %s) is dropped", study, msg.get("tid"), msg.get("attempt"), msg.get("loss"))
        storage.note_vanished(study, msg.get("incarnation"))


def report_refusal(connection: Any, payload: Mapping[str, Any], reason: str, rq_worker: str | None = None) -> None:
    """Tell a trial's study that this worker refused its job (a failed result marked
    ``refused``, naming the reason, e.g. another secret), so the study does not wait for
    it; nothing of the job ran. Signed with this worker's secret, which is often not the
    coordinator's: the coordinator then runs the trial elsewhere rather than record it."""
    trial = trial_of(payload)
    if trial is None:
        return
    study, tid, attempt = trial
    storage = storage_for(connection, str(payload["prefix"]))
    worker, now = worker_id(), time.time()
    msg = failure_message(tid, attempt, worker, now, f"worker {worker} refused the job: {reason}", "objective",
                          reason=reason)
    storage.push_result(study, signed({**msg, **identity_of(payload), "refused": True,
                                       "rq_worker": rq_worker or worker}))


def report_death(connection: Any, payload: Mapping[str, Any], code: int, worker: str,
                 secret: bytes | None = None) -> None:
    """The process running this payload's trial died (``code`` as ``Popen.returncode``):
    a FAIL naming the cause when the objective did it (no retry would help), else a
    hand-back so the trial runs again at once. Signed with ``secret`` (a supervisor's),
    else this worker's."""
    trial = trial_of(payload)
    if trial is None:
        return
    study, tid, attempt = trial
    storage = storage_for(connection, str(payload["prefix"]))
    cause, by_objective = death_cause(code)
    if by_objective:
        msg = failure_message(tid, attempt, worker, time.time(),
                              f"the process {worker} running the objective ended: {cause}", "exit", reason=cause)
        storage.push_result(study, signed({**msg, **identity_of(payload)}, secret))
    else:
        hand_back(storage, study, tid, attempt, f"{worker} ({cause})", identity_of(payload), secret)


def hand_back(storage: RedisStorage, study: str, tid: int, attempt: int, worker: str,
               identity: Mapping[str, Any], secret: bytes | None = None) -> None:
    """The worker is being stopped mid-trial: tell the coordinator to run it elsewhere now."""
    try:
        storage.push_result(study, signed({"type": "handback", "tid": tid, "attempt": attempt, "worker": worker,
                                           **identity}, secret))
    except Exception:  # shutting down: the reaper finds the trial when its heartbeat expires
        pass
