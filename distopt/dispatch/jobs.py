"""The job protocol between a coordinator and its workers: which function a trial job
names, its id, and its signed payload.

A job is an ordinary rq job (so ``rq info`` shows it) whose only argument is a JSON
payload: study, trial id, attempt, the trial's ``vals``, how to find the objective, and
the key prefix. The function it names runs on the worker (``distopt.worker.job``) and
reports to distopt's inbox, which is the source of truth; what rq keeps as the job's
result is a small summary for people looking with rq's tools.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from typing import Any, Mapping

from ..errors import DistoptError
from ..trial.record import vals_digest
from ..trial.names import validate_study_name
from .objective import ObjectiveRef
from ..defaults import ENV_MAX_RESULT_BYTES, HEARTBEAT_INTERVAL, HEARTBEAT_TTL, MAX_RESULT_BYTES

#: What rq imports on the worker to run a trial: the only function a distopt worker runs.
JOB_FUNC = "distopt.worker.job.run_trial"
#: The path jobs were enqueued under before the function moved to the worker; a distopt
#: worker still accepts it and runs ``JOB_FUNC`` for it, so jobs already queued run.
LEGACY_JOB_FUNC = "distopt.dispatch.jobs.run_trial"
#: Every function path a distopt worker accepts in a job.
JOB_FUNCS = (JOB_FUNC, LEGACY_JOB_FUNC)
PAYLOAD_VERSION = 1
#: What a payload's HMAC covers besides the payload, so it can never pass for another signature.
_PAYLOAD_DOMAIN = b"distopt-job-payload\0"


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


def signed_with(payload: Mapping[str, Any], secret: bytes) -> bool:
    """Whether ``payload`` carries a valid signature under ``secret``."""
    sig = payload.get("sig")
    try:
        return isinstance(sig, str) and hmac.compare_digest(sig, payload_signature(payload, secret))
    except ValueError:  # values JSON cannot carry: nothing a coordinator signed
        return False
