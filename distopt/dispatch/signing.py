"""Messages from workers, signed with the shared secret.

A job's payload is signed, so a worker runs only what a coordinator sent. The way back is
signed too: every message a worker pushes to a study's inbox (a result, "started", a
hand-back, a refusal...) carries an HMAC of its content under the same secret. The
study's incarnation and parameter digest a message repeats can be read from Redis by
anyone who can write to it; the signature cannot be made without the secret, so a forged
loss never looks like a result.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any, Mapping

from ..trial.codec import to_plain

log = logging.getLogger(__name__)

#: What a message's HMAC covers besides the message, so a signed payload (or anything
#: else signed with the secret) never passes for a message, nor the other way round.
_MESSAGE_DOMAIN = b"distopt-worker-message\0"
#: The key of the signature in a message.
SIG = "sig"


def _body(msg: Mapping[str, Any]) -> bytes:
    """The canonical JSON of every key but the signature: what the inbox stores reads back
    to the same text (sorted keys, no spaces, floats by repr), so the coordinator
    recomputes it from the decoded message."""
    plain = to_plain({k: v for k, v in msg.items() if k != SIG})
    return json.dumps(plain, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def message_signature(msg: Mapping[str, Any], secret: bytes) -> str:
    return hmac.new(secret, _MESSAGE_DOMAIN + _body(msg), hashlib.sha256).hexdigest()


def sign_message(msg: Mapping[str, Any], secret: bytes | None) -> dict[str, Any]:
    """``msg`` with its signature; unchanged (no signature) when there is no secret."""
    out = {k: v for k, v in msg.items() if k != SIG}
    if secret is not None:
        out[SIG] = message_signature(out, secret)
    return out


def unverified_because(msg: Mapping[str, Any], secret: bytes) -> str | None:
    """Why ``msg`` is not from a worker holding ``secret`` (None when it is)."""
    sig = msg.get(SIG)
    if not isinstance(sig, str):
        return ("it is unsigned: a worker of an older distopt, which does not sign its messages (upgrade it), or one "
                "without a secret (give it the coordinator's)")
    try:
        expected = message_signature(msg, secret)
    except Exception:  # values JSON cannot carry: nothing a worker signed
        return "it holds values JSON cannot carry"
    if not hmac.compare_digest(sig, expected):
        return ("its signature does not verify: a worker with another secret (give it the coordinator's), or a "
                "message altered or forged in Redis")
    return None


#: Distinct warnings kept for "log once": past this many, a flood of forged messages is
#: logged at debug level instead of growing the set without bound.
_MAX_WARNED = 1000


def _echo(value: Any, limit: int = 200) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."


def screen(messages: list[dict[str, Any]], secret: bytes | None, warned: set[Any]) -> list[dict[str, Any]]:
    """The messages a coordinator holding ``secret`` may act on (all of them without one),
    signatures removed. One that does not verify is never recorded: a result, a refusal
    or an "unloadable" becomes an ``unloadable`` naming why, so the trial runs again on
    another worker without using the budget, and a study no listening worker can serve
    stops with that reason (the fail-fast rule); anything else ("started", a hand-back)
    is dropped. Those replacements are marked ``unverified``: the caller drops the ones
    whose job still waits in the queue (no worker took it, so the message is forged).
    Each (worker, kind, reason) is logged once in ``warned``."""
    if secret is None:
        return [m for m in messages if isinstance(m, dict)]  # anything else is junk no worker wrote
    out = []
    for msg in messages:
        if not isinstance(msg, dict):
            log.warning("dropped a message that is not a JSON object: %s", _echo(msg))
            continue
        why = unverified_because(msg, secret)
        if why is None:
            msg.pop(SIG, None)
            out.append(msg)
            continue
        kind, worker = msg.get("type"), msg.get("worker")
        key = (_echo(worker), kind, why)
        if len(warned) < _MAX_WARNED and key not in warned:
            warned.add(key)
            log.warning("a message (%s) about trial %s attempt %s from worker %s is not from a worker holding this "
                        "coordinator's secret: %s; it is not recorded", kind or "result", _echo(msg.get("tid")),
                        _echo(msg.get("attempt")), _echo(worker), why)
        if kind is not None and kind != "unloadable":
            continue
        try:
            tid, attempt = int(msg["tid"]), int(msg.get("attempt", 0))
        except (KeyError, TypeError, ValueError, OverflowError):
            continue
        if msg.get("refused"):
            reason = _echo(msg.get("error"), 400)  # e.g. "worker w refused the job: ... a different secret"
        else:
            reason = f"its {'result' if kind is None else 'message'} is not signed with this coordinator's secret: {why}"
        out.append({"type": "unloadable", "tid": tid, "attempt": attempt, "worker": worker,
                    "rq_worker": msg.get("rq_worker") or worker, "reason": reason,
                    "incarnation": msg.get("incarnation"), "params": msg.get("params"), "unverified": True})
    return out
