"""Which jobs a worker accepts, and the secret it checks them with.

rq imports and calls whatever function a job names, so a job anyone could write to Redis
is checked here first: only distopt's trial function, with one payload signed with this
worker's secret (unsigned only on a worker that has none), is accepted.
"""

from __future__ import annotations

import dataclasses
import hmac
from typing import Any, Mapping

from ..defaults import ENV_SECRET
from ..dispatch.jobs import JOB_FUNC, JOB_FUNCS, job_id, payload_signature
from ..dispatch.secret import NO_SECRET_HELP, env_insecure, env_secret
from ..trial.names import validate_study_name

#: Longest text of a refused job echoed in a log line.
_ECHO = 200


@dataclasses.dataclass(frozen=True)
class WorkerSettings:
    secret: bytes | None
    insecure: bool


_settings: WorkerSettings | None = None


def configure(secret: bytes | None, insecure: bool) -> None:
    """Set this process's secret (``distopt worker`` does, before working). ``insecure``
    means "there is no secret": with a secret it changes nothing, and unsigned jobs and
    objectives are refused."""
    global _settings
    _settings = WorkerSettings(secret, bool(insecure) and secret is None)


def forget_settings() -> None:
    """Forget the configured secret (the environment is read again)."""
    global _settings
    _settings = None


def settings() -> WorkerSettings:
    """The configured settings, else the environment's (``env_secret``, ``env_insecure``;
    for workers started with plain ``rq worker``)."""
    if _settings is not None:
        return _settings
    secret = env_secret()
    return WorkerSettings(secret, env_insecure() and secret is None)


def _echo(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _ECHO else text[:_ECHO] + f"... ({len(text)} characters)"


def job_refusal(job: Any) -> str | None:
    """Why a worker must not run ``job`` (None when it may): rq imports and calls whatever
    function a job names, and runs its callbacks, so a job anyone could write to Redis is
    checked here before rq imports anything. Only ``run_trial`` (under ``JOB_FUNC`` or the
    path jobs queued before it moved, ``LEGACY_JOB_FUNC``) with one payload, no
    callbacks, dependencies, webhooks, retries or repeats, a job id that matches the
    payload, and (when this worker has a secret) a payload signed with it, is accepted."""
    try:
        func, instance, args, kwargs = job.func_name, job.instance, job.args, job.kwargs
    except Exception as exc:  # unreadable data: never reaches rq's import
        return f"its data cannot be read ({type(exc).__name__})"
    if func not in JOB_FUNCS:
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


def trial_of(payload: Mapping[str, Any]) -> tuple[str, int, int] | None:
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
    trial = trial_of(payload)
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
