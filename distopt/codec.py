"""JSON wire format for trial records and results.

Everything that travels or is stored is JSON; numpy scalars and arrays are turned into
plain Python at this edge (``json.dumps`` rejects ``np.float64``), and non-finite floats
are written as the strings "nan"/"inf"/"-inf" so that strict JSON readers accept them.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from .errors import TrialError
from .records import TrialRecord, TrialState


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


def record_to_dict(rec: TrialRecord) -> dict[str, Any]:
    return {
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
    )


def encode_record(rec: TrialRecord) -> str:
    return dumps(record_to_dict(rec))


def decode_record(text: str | bytes) -> TrialRecord:
    return record_from_dict(loads(text))
