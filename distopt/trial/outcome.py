"""Calling the objective and turning whatever it returns into a result message.

Shared by the in-process executor and the workers, so a trial means the same thing
wherever it runs. A result message is a JSON-able dict::

    {"tid", "attempt", "status": "ok"|"fail", "loss", "result", "error", "traceback",
     "worker", "start_time", "end_time", "reported", "attachments"}

``reported`` is True when the objective returned a well-formed result (hyperopt's
JOB_STATE_DONE, even for a reported ``STATUS_FAIL``); False when it raised or returned
something invalid (hyperopt's JOB_STATE_ERROR). In-process (``keep_raw``) the message
also carries ``raw_result``, the returned dict itself (models, tuples, int keys kept as
the objective made them, as hyperopt keeps them), and ``attachments`` as returned; from
workers, ``attachments`` are JSON-able, with bytes base64-encoded (``codec.encode_attachment``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import numbers
import os
import time
from typing import Any, Callable, Mapping

import numpy as np

from .codec import encode_attachment, to_plain
from .constants import STATUS_FAIL, STATUS_OK, STATUS_STRINGS
from ..errors import InvalidLoss, InvalidResult, InvalidResultStatus, InvalidResultType, TrialError, TrialPruned
from .reporting import Reporter, reporting
from .tracebacks import format_exc

log = logging.getLogger(__name__)

_HOW = "return a float loss, or a dict such as {'loss': 0.5, 'status': STATUS_OK}"


INVALID_KINDS: dict[str, type[InvalidResult]] = {
    k.__name__: k for k in (InvalidResult, InvalidResultStatus, InvalidLoss, InvalidResultType)
}


@dataclasses.dataclass
class Outcome:
    """What one return value means: ``result`` is the JSON-able form (stored, sent from
    workers), ``raw`` the hyperopt form (the returned dict minus 'attachments')."""

    status: str
    loss: float | None
    result: dict[str, Any]
    error: str | None
    raw: dict[str, Any]
    attachments: dict[str, Any]
    invalid: type[InvalidResult] | None = None

    @property
    def reported(self) -> bool:
        return self.invalid is None

    def message(self, tid: int, attempt: int | None, **fields: Any) -> dict[str, Any]:
        """The result message saying this outcome of trial ``tid``; ``fields`` add to it or
        override it (the worker, the times, a traceback)."""
        msg = {"tid": tid, "attempt": attempt, "status": self.status, "loss": self.loss, "result": self.result,
               "error": self.error, "reported": self.reported}
        if self.invalid is not None:
            msg["invalid"] = self.invalid.__name__
        msg.update(fields)
        return msg


def _plain_or_repr(key: str, value: Any, warn: bool = True) -> Any:
    """Keep a JSON-able value; store the repr of anything else (and say so in the log when
    that repr is all that will be kept, as on a worker)."""
    try:
        return to_plain(value)
    except TrialError:
        if warn:
            log.warning("result key %r holds a %s, which is not JSON-serializable; its repr is stored instead",
                        key, type(value).__name__)
        return repr(value)


def _as_loss(value: Any) -> float | None:
    """hyperopt's ``float(loss)``; None when that fails (arrays of more than one value too)."""
    if isinstance(value, np.ndarray) and value.ndim > 0:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _invalid(kind: type[InvalidResult], message: str) -> Outcome:
    result = {"status": STATUS_FAIL}
    return Outcome(STATUS_FAIL, None, result, message, dict(result), {}, invalid=kind)


def interpret(raw: Any, warn: bool = True) -> Outcome:
    """The outcome of a returned value, with hyperopt's rules: a number is the loss; a
    dict needs a status in STATUS_STRINGS and, when 'ok', a loss ``float()`` accepts.
    Anything else is invalid (hyperopt raises).

    A loss that is NaN or infinite makes the trial FAIL (reported, so hyperopt's state is
    DONE) with a message naming the value, instead of poisoning the model with it.
    """
    if isinstance(raw, Mapping):
        returned = dict(raw)
        attachments = returned.pop("attachments", None) or {}
        if not isinstance(attachments, Mapping):
            return _invalid(InvalidResult, (
                f"the objective returned 'attachments' {attachments!r} of type {type(attachments).__name__}; "
                "make it a dict {name: value}"))
        if "status" not in returned:  # hyperopt raises here too (it reads result["status"])
            return _invalid(InvalidResultStatus, (
                f"the objective returned a dict without a 'status' ({_short(raw)}); add 'status': STATUS_OK "
                "(or STATUS_FAIL), or return the loss as a plain number"))
        status = returned["status"]
        if status not in STATUS_STRINGS:
            return _invalid(InvalidResultStatus, (
                f"the objective returned a dict with status {status!r} ({_short(raw)}); "
                f"use 'status': STATUS_OK or STATUS_FAIL (one of {list(STATUS_STRINGS)})"))
        returned["status"] = status
        if status == STATUS_OK:
            if "loss" not in returned:
                return _invalid(InvalidLoss, (
                    f"the objective returned status 'ok' without a 'loss' key ({_short(raw)}); "
                    "add 'loss': <number>"))
            loss = _as_loss(returned["loss"])
            if loss is None:
                return _invalid(InvalidLoss, (
                    f"the objective returned loss {_short(returned['loss'])} of type "
                    f"{type(returned['loss']).__name__}; {_HOW}"))
            returned["loss"] = loss
        result = {str(k): _plain_or_repr(str(k), v, warn) for k, v in returned.items()}
        if status != STATUS_OK:
            error = returned.get("error")
            error = error if isinstance(error, str) and error else f"the objective reported status {status!r}"
            return Outcome(STATUS_FAIL, None, result, error, returned, dict(attachments))
    elif isinstance(raw, (numbers.Real, np.number)) and not isinstance(raw, np.complexfloating):
        loss = float(raw)  # bool too, as hyperopt: float(True)
        returned = {"loss": loss, "status": STATUS_OK}
        result, attachments = dict(returned), {}
    else:
        return _invalid(InvalidResultType, (
            f"the objective returned loss {_short(raw)} of type {type(raw).__name__}; {_HOW}"))
    if not math.isfinite(loss):
        returned["status"] = result["status"] = STATUS_FAIL
        result["loss"] = to_plain(loss)
        return Outcome(STATUS_FAIL, None, result, f"the objective returned a non-finite loss ({loss!r})",
                       returned, dict(attachments))
    result["loss"] = loss
    return Outcome(STATUS_OK, loss, result, None, returned, dict(attachments))


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def pruned_message(tid: int, attempt: int, worker: str | None, start: float, end: float,
                   reporter: Reporter | None, why: str) -> dict[str, Any]:
    """The message of a trial the pruner stopped: status "pruned", no loss, and how far it got."""
    step = None if reporter is None else reporter.last_step
    value = None if reporter is None else reporter.last_value
    return {
        "tid": tid, "attempt": attempt, "status": "pruned", "loss": None,
        "result": {"status": STATUS_FAIL, "pruned": True, "last_step": step, "last_value": to_plain(value)},
        "error": why or "pruned", "traceback": None, "worker": worker, "start_time": start, "end_time": end,
        "reported": True, "pruned": True, "last_step": step, "last_value": to_plain(value),
    }


def normalize_result(raw: Any) -> tuple[str, float | None, dict[str, Any], str | None]:
    """(status, loss, JSON-able result dict, error) from a float or hyperopt-style dict."""
    out = interpret(raw)
    return out.status, out.loss, out.result, out.error


def evaluate(
    fn: Callable[[Any], Any],
    params: Any,
    *,
    tid: int,
    attempt: int = 0,
    worker: str | None = None,
    reraise: bool = False,
    clock: Callable[[], float] = time.time,
    keep_raw: bool = False,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Run ``fn(params)`` and return the result message; exceptions become FAIL
    (with type, message and traceback) unless ``reraise`` (hyperopt's default inline).

    ``keep_raw`` (in-process): the message also holds the returned dict and attachments as
    Python objects, and values that are not JSON-able are stored as their repr silently
    (the raw objects are what the caller reads). Otherwise (workers) attachments are
    encoded for JSON and each non-JSON-able result value is logged.

    ``reporter``: where ``distopt.report`` sends intermediate values while ``fn`` runs; a
    ``TrialPruned`` from the objective makes a "pruned" message with the last reported
    step and value."""
    start = clock()
    tb = None
    try:
        with reporting(reporter):
            raw = fn(params)
    except TrialPruned as exc:
        return pruned_message(tid, attempt, worker, start, clock(), reporter, str(exc))
    except Exception as exc:  # the objective is user code: any exception is a failed trial
        if reraise:
            raise
        failed = {"status": STATUS_FAIL}
        out = Outcome(STATUS_FAIL, None, failed, f"{type(exc).__name__}: {exc}", dict(failed), {})
        reported = False
        tb = format_exc(exc)
    else:
        out = interpret(raw, warn=not keep_raw)
        reported = out.reported
    msg = out.message(tid, attempt, traceback=tb, worker=worker, start_time=start, end_time=clock(),
                      reported=reported)
    if keep_raw:
        msg["raw_result"] = out.raw
        if out.attachments:
            msg["attachments"] = out.attachments
    elif out.attachments:
        encoded = {str(k): encode_attachment(str(k), v) for k, v in out.attachments.items()}
        size, limit = len(json.dumps(encoded)), max_attachment_bytes()
        if size <= limit:
            msg["attachments"] = encoded
        else:  # refused loudly: the trial fails and says why, rather than losing them quietly
            failed = {"status": STATUS_FAIL}
            msg.update(status=STATUS_FAIL, loss=None, result=failed, reported=False, error=(
                f"AttachmentsTooLarge: the attachments of trial {tid} ({', '.join(sorted(encoded))}) take {size} "
                f"bytes as JSON (bytes base64-encoded), over the limit of {limit} bytes (${ENV_MAX_ATTACHMENT_BYTES}); "
                "store large artifacts elsewhere (a file, an object store) and attach their path"))
    return msg


#: Largest JSON size of one trial's attachments from a worker (they are stored in Redis).
MAX_ATTACHMENT_BYTES = 4 * 1024 * 1024
from ..defaults import ENV_MAX_ATTACHMENT_BYTES  # noqa: E402


def max_attachment_bytes() -> int:
    """``$DISTOPT_MAX_ATTACHMENT_BYTES``, else ``MAX_ATTACHMENT_BYTES``."""
    raw = os.environ.get(ENV_MAX_ATTACHMENT_BYTES)
    try:
        return int(raw) if raw else MAX_ATTACHMENT_BYTES
    except ValueError:
        log.warning("ignoring $%s=%r: not a whole number of bytes", ENV_MAX_ATTACHMENT_BYTES, raw)
        return MAX_ATTACHMENT_BYTES
