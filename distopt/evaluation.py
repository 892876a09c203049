"""Calling the objective and turning whatever it returns into a result message.

Shared by the in-process executor and the workers, so a trial means the same thing
wherever it runs. A result message is a JSON-able dict::

    {"tid", "attempt", "status": "ok"|"fail", "loss", "result", "error", "traceback",
     "worker", "start_time", "end_time"}
"""

from __future__ import annotations

import logging
import math
import numbers
import time
import traceback
from typing import Any, Callable, Mapping

from .codec import to_plain
from .constants import STATUS_FAIL, STATUS_OK, STATUS_STRINGS
from .errors import TrialError

log = logging.getLogger(__name__)


def _plain_or_repr(key: str, value: Any) -> Any:
    """Keep a JSON-able value; store the repr of anything else and say so in the log."""
    try:
        return to_plain(value)
    except TrialError:
        log.warning("result key %r holds a %s, which is not JSON-serializable; its repr is stored instead",
                    key, type(value).__name__)
        return repr(value)


def normalize_result(raw: Any) -> tuple[str, float | None, dict[str, Any], str | None]:
    """(status, loss, result dict, error) from a float or hyperopt-style dict.

    A loss that is NaN, infinite or not a number makes the trial FAIL with a message
    naming the value, instead of poisoning the model with it.
    """
    if isinstance(raw, Mapping):
        result = {str(k): _plain_or_repr(str(k), v) for k, v in raw.items()}
        status = result.get("status", STATUS_OK if "loss" in result else None)
        if status not in STATUS_STRINGS:
            return STATUS_FAIL, None, result, (
                f"the objective returned a dict with status {status!r}; "
                f"use 'status': STATUS_OK or STATUS_FAIL (one of {list(STATUS_STRINGS)})"
            )
        result["status"] = status
        if status != STATUS_OK:
            return STATUS_FAIL, None, result, result.get("error") or f"the objective reported status {status!r}"
        if "loss" not in result:
            return STATUS_FAIL, None, result, "the objective returned status 'ok' without a 'loss' key"
        raw_loss = raw["loss"]
    else:
        raw_loss = raw
        result = {}
    if isinstance(raw_loss, bool) or not isinstance(raw_loss, numbers.Real):
        result.update(status=STATUS_FAIL)
        return STATUS_FAIL, None, result, (
            f"the objective returned loss {raw_loss!r} of type {type(raw_loss).__name__}; "
            "return a finite number (or a dict with 'loss' and 'status')"
        )
    loss = float(raw_loss)
    if not math.isfinite(loss):
        result.update(status=STATUS_FAIL, loss=to_plain(loss))
        return STATUS_FAIL, None, result, f"the objective returned a non-finite loss ({loss!r})"
    result.update(loss=loss, status=STATUS_OK)
    return STATUS_OK, loss, result, None


def evaluate(
    fn: Callable[[Any], Any],
    params: Any,
    *,
    tid: int,
    attempt: int = 0,
    worker: str | None = None,
    reraise: bool = False,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Run ``fn(params)`` and return the result message; exceptions become FAIL
    (with type, message and traceback) unless ``reraise`` (hyperopt's default inline)."""
    start = clock()
    tb = None
    try:
        raw = fn(params)
    except Exception as exc:  # the objective is user code: any exception is a failed trial
        if reraise:
            raise
        status, loss, result = STATUS_FAIL, None, {"status": STATUS_FAIL}
        error = f"{type(exc).__name__}: {exc}"
        tb = traceback.format_exc()
    else:
        status, loss, result, error = normalize_result(raw)
    return {
        "tid": tid,
        "attempt": attempt,
        "status": status,
        "loss": loss,
        "result": result,
        "error": error,
        "traceback": tb,
        "worker": worker,
        "start_time": start,
        "end_time": clock(),
    }
