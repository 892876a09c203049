"""The job a worker runs for one trial attempt: ``run_trial``, the function every distopt
rq job names (``dispatch.jobs.JOB_FUNC``).

It loads the objective (``loading``), evaluates it under the trial's time limit while
``heartbeat`` reports liveness, and pushes the result to the study's inbox
(``messages``); the payload's checks are ``guard``'s.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Mapping

from rq import get_current_job

from ..defaults import HEARTBEAT_INTERVAL, HEARTBEAT_TTL, LOAD_FAILURE_FIRST_PAUSE, LOAD_FAILURE_PAUSE, MAX_RESULT_BYTES
from ..dispatch.objective import ObjectiveRef
from ..errors import DistoptError, ObjectiveError
from ..pruners import make_pruner
from ..space import space_eval
from ..storage import RedisStorage
from ..storage.redis.retry import RECONNECT_WINDOW, Backoff, call_with_retry
from ..trial.outcome import evaluate
from ..trial.reporting import Reporter
from . import heartbeat
from .guard import forget_settings, payload_refusal
from .loading import clear_caches, load_objective, storage_for
from .messages import (capped, deliver_result, failure_message, hand_back, identity_of, report_refusal, signed,
                       worker_id)
from .time_limit import TrialTimeout, time_limit

log = logging.getLogger(__name__)

#: Set when this worker was asked to stop (SIGTERM, SIGINT, the supervisor gone): a
#: SystemExit or KeyboardInterrupt during a trial is then the stop, not the objective's.
_stopping = False


def note_stop_request() -> None:
    """Called by the worker's signal handlers before rq acts on the signal."""
    global _stopping
    _stopping = True


def reset() -> None:
    """Forget the configured secret and every cached objective, space, check and client,
    so the next trial in this process starts from nothing (tests rely on this)."""
    forget_settings()
    clear_caches()
    _LOAD_FAILURES.clear()


#: Load failures in a row in this process (an objective that loads clears it).
_LOAD_FAILURES: list[str] = []


def _evaluate(fn: Any, params: Any, tid: int, attempt: int, worker: str, start: float,
              timeout: float | None, reporter: Reporter | None = None) -> dict[str, Any]:
    """``evaluate`` under the trial's time limit; running past it is a FAIL naming it."""
    try:
        with time_limit(timeout):
            return evaluate(fn, params, tid=tid, attempt=attempt, worker=worker, reporter=reporter)
    except TrialTimeout as exc:
        return failure_message(tid, attempt, worker, start, f"trial_timeout: {exc}", "timeout")


def _reporter(storage: RedisStorage, study: str, tid: int, attempt: int,
              spec: Mapping[str, Any] | None) -> Reporter:
    """Where the objective's ``distopt.report`` calls go: one script call each, riding out
    a Redis restart (a report sent again is not counted twice)."""
    def call(fn: Any, *args: Any) -> Any:
        return call_with_retry(fn, *args, backoff=Backoff(RECONNECT_WINDOW),
                               what=f"reporting an intermediate value of trial {tid} of study {study}")

    return Reporter(storage, study, tid, attempt, make_pruner(spec), call=call)


def run_trial(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Evaluate one trial attempt and push its result to the study's inbox.

    A trial still running after ``heartbeat.STARTED_DELAY`` seconds is reported as
    ``{"type": "started"}`` (the coordinator marks it RUNNING) and then beats; a worker
    that cannot load the objective (or evaluate the space) hands the trial back as
    ``{"type": "unloadable"}`` with the reason: it is not a failed trial, it runs again
    on another worker without using the budget or a retry (the coordinator's fail-fast
    rule stops a study no worker can load), and this worker pauses a little longer
    after each such failure in a row; a trial past its ``trial_timeout`` is stopped and
    reported as failed; a worker stopped mid-trial hands the trial back.
    """
    job = get_current_job()
    if job is None:
        raise DistoptError("run_trial runs inside an rq worker (it reads the job's Redis connection)")
    refusal = payload_refusal(payload, str(job.id))
    if refusal is not None:  # a worker started as plain `rq worker` gets here without the class's check
        report_refusal(job.connection, payload, refusal, getattr(job, "worker_name", None))
        raise ObjectiveError(f"refused job {job.id}: {refusal}")
    study, tid, attempt = str(payload["study"]), int(payload["tid"]), int(payload["attempt"])
    storage = storage_for(job.connection, str(payload["prefix"]))
    worker = worker_id()
    start = time.time()
    identity = identity_of(payload)
    started = signed({"type": "started", "tid": tid, "attempt": attempt, "worker": worker, "start_time": start,
                      **identity})
    interval, ttl = payload.get("heartbeat") or (HEARTBEAT_INTERVAL, HEARTBEAT_TTL)
    timeout = payload.get("trial_timeout")
    with heartbeat.beating(storage, study, tid, attempt, worker, float(interval), float(ttl), started=started,
                           incarnation=identity["incarnation"]):
        try:  # a Redis blip here is waited out, not reported as a broken objective
            fn, space = call_with_retry(load_objective, storage, study, ObjectiveRef.from_json(payload["objective"]),
                                        backoff=Backoff(RECONNECT_WINDOW), what=f"loading the objective of {study}")
            params = space_eval(space, payload["vals"])
        except Exception as exc:  # anything a user's module does on import: the trial runs elsewhere
            message = str(exc) if isinstance(exc, DistoptError) else f"{type(exc).__name__}: {exc}"
            deliver_result(storage, study, {"type": "unloadable", "tid": tid, "attempt": attempt, "worker": worker,
                                            "rq_worker": getattr(job, "worker_name", None) or worker,
                                            "reason": message, **identity})
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
                    hand_back(storage, study, tid, attempt, worker, identity)
                    log.warning("trial %s of study %s (attempt %s) handed back after %.2f s: this worker is stopping",
                                tid, study, attempt, time.time() - start)
                    raise
                # the objective itself ended the process: a FAIL naming how, and the worker goes on
                what = f"{type(exc).__name__}({exc.code!r})" if isinstance(exc, SystemExit) else type(exc).__name__
                msg = failure_message(tid, attempt, worker, start,
                                      f"the objective tried to end the worker process: it raised {what}", "exit",
                                      reason=what)
            limit = int(payload.get("max_result_bytes") or MAX_RESULT_BYTES)
            deliver_result(storage, study, capped({**msg, **identity}, limit))
    if msg is None:
        _after_load_failure(study, tid, attempt, worker, message)
        return {"tid": tid, "attempt": attempt, "status": "unloadable", "loss": None}
    _log_end(study, msg)
    return {"tid": tid, "attempt": attempt, "status": msg["status"], "loss": msg["loss"]}


def _after_load_failure(study: str, tid: int, attempt: int, worker: str, reason: str) -> None:
    """Say why the trial goes elsewhere, then pause (growing with each failure in a row)."""
    _LOAD_FAILURES.append(reason)
    pause = min(LOAD_FAILURE_PAUSE, LOAD_FAILURE_FIRST_PAUSE * 2 ** (len(_LOAD_FAILURES) - 1))
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
