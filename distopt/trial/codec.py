"""JSON wire format for trial records and results.

Everything that travels or is stored is JSON; numpy scalars and arrays are turned into
plain Python at this edge (``json.dumps`` rejects ``np.float64``), and non-finite floats
are written as the strings "nan"/"inf"/"-inf" so that strict JSON readers accept them.
"""

from __future__ import annotations

import base64
import json
import logging
import math
from typing import Any

import numpy as np

from ..errors import TrialError
from .record import TrialRecord, TrialState

log = logging.getLogger(__name__)

#: The tag of bytes inside a JSON attachment (results from workers travel as JSON).
BYTES_TAG = "__distopt_bytes_b64__"


def to_plain(value: Any) -> Any:
    """Recursively convert numpy types, tuples and mappings to JSON-able Python."""
    if isinstance(value, (str, bool)) or value is None:
        return value
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        if math.isfinite(f):
            return f
        return "nan" if math.isnan(f) else ("inf" if f > 0 else "-inf")
    if isinstance(value, np.ndarray):
        return [to_plain(v) for v in value.tolist()]
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if hasattr(value, "items"):
        return {str(k): to_plain(v) for k, v in value.items()}
    raise TrialError(
        f"value {value!r} of type {type(value).__name__} is not JSON-serializable; "
        "return only numbers, strings, lists and dicts from the objective"
    )


def check_jsonable(value: Any) -> None:
    """Raise TrialError naming the value when it cannot be stored as JSON."""
    to_plain(value)


def dumps(value: Any) -> str:
    return json.dumps(to_plain(value), separators=(",", ":"), allow_nan=False)


def loads(text: str | bytes) -> Any:
    return json.loads(text)


def _float_or_none(v: Any) -> float | None:
    if v is None:
        return None
    return float(v)  # float("nan"), float("inf") parse the encoded strings too


def encode_attachment(name: str, value: Any) -> Any:
    """An attachment as JSON: bytes base64-encoded under ``BYTES_TAG`` (hyperopt users
    attach pickles), JSON-able values as they are, anything else as its repr (logged)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {BYTES_TAG: base64.b64encode(bytes(value)).decode("ascii")}
    try:
        return to_plain(value)
    except TrialError:
        log.warning("attachment %r holds a %s, which cannot travel as JSON; its repr is kept instead "
                    "(attach bytes, e.g. pickle.dumps(value))", name, type(value).__name__)
        return repr(value)


def decode_attachment(value: Any) -> Any:
    """The value ``encode_attachment`` encoded (bytes back from base64); others unchanged."""
    if isinstance(value, dict) and len(value) == 1 and isinstance(value.get(BYTES_TAG), str):
        return base64.b64decode(value[BYTES_TAG])
    return value


def record_to_dict(rec: TrialRecord) -> dict[str, Any]:
    out = {
        "tid": rec.tid,
        "vals": to_plain(dict(rec.vals)),
        "state": rec.state.value,
        "attempt": rec.attempt,
        "loss": to_plain(rec.loss),
        "result": to_plain(dict(rec.result)),
        "error": rec.error,
        "worker": rec.worker,
        "book_time": rec.book_time,
        "start_time": rec.start_time,
        "end_time": rec.end_time,
        "refresh_time": rec.refresh_time,
    }
    if rec.reported:  # written only when set, so records without it read back unchanged
        out["reported"] = True
    return out


def record_from_dict(d: dict[str, Any]) -> TrialRecord:
    return TrialRecord(
        tid=int(d["tid"]),
        vals=dict(d.get("vals") or {}),
        state=TrialState(d["state"]),
        attempt=int(d.get("attempt", 0)),
        loss=_float_or_none(d.get("loss")),
        result=dict(d.get("result") or {}),
        error=d.get("error"),
        worker=d.get("worker"),
        book_time=d.get("book_time"),
        start_time=d.get("start_time"),
        end_time=d.get("end_time"),
        refresh_time=d.get("refresh_time"),
        reported=bool(d.get("reported", False)),
    )


def encode_record(rec: TrialRecord) -> str:
    return dumps(record_to_dict(rec))


def decode_record(text: str | bytes) -> TrialRecord:
    return record_from_dict(loads(text))
