"""Study records as hyperopt's trial documents and back: the one place that knows how a
``TrialRecord`` reads as ``{"state", "tid", "result", "misc", ...}`` and how a document
inserted by hand (a warm start) becomes a record again."""

from __future__ import annotations

import datetime
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import AllTrialsFailed, DistoptError
from ..trial.codec import to_plain
from .documents import flat_vals
from ..trial.constants import JOB_STATE_DONE, JOB_STATES, STATUS_NEW, STATUS_OK, STATUS_RUNNING
from ..trial.record import TrialRecord, TrialState, hyperopt_state, may_be_best, with_labels


def _dt(ts: float | None) -> datetime.datetime | None:
    if ts is None:
        return None
    # hyperopt stores naive datetimes rounded to milliseconds
    dt = datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc).replace(tzinfo=None)
    return dt.replace(microsecond=dt.microsecond // 1000 * 1000)


def _loss_value(value: Any) -> Any:
    """A stored loss as hyperopt holds it: the codec's "nan"/"inf" strings as floats."""
    if isinstance(value, str) and value in ("nan", "inf", "-inf"):
        return float(value)
    return value


def trial_document(
    rec: TrialRecord,
    labels: Sequence[str],
    exp_key: str | None = None,
    raw_result: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One record as hyperopt's trial document; ``raw_result`` (in-process) is the dict
    the objective returned, shown instead of the stored JSON-able form."""
    if rec.state == TrialState.QUEUED or rec.state == TrialState.LOST:
        result: dict[str, Any] = {"status": STATUS_NEW}
    elif rec.state == TrialState.RUNNING:
        result = {"status": STATUS_RUNNING}
    elif raw_result is not None:
        result = raw_result  # hyperopt's documents hold the returned objects themselves
    else:
        result = dict(rec.result)
        if "loss" in result:
            result["loss"] = _loss_value(result["loss"])
        if rec.state == TrialState.CANCELLED:
            result.setdefault("status", "fail")
    names = with_labels(labels, [rec])
    idxs = {label: ([rec.tid] if label in rec.vals else []) for label in names}
    vals = {label: ([rec.vals[label]] if label in rec.vals else []) for label in names}
    doc = {
        "state": hyperopt_state(rec),
        "tid": rec.tid,
        "spec": None,
        "result": result,
        "misc": {
            "tid": rec.tid,
            "cmd": ("domain_attachment", "FMinIter_Domain"),
            "workdir": None,
            "idxs": idxs,
            "vals": vals,
        },
        "exp_key": exp_key,
        "owner": rec.worker,
        "version": 0,
        "book_time": _dt(rec.book_time),
        "refresh_time": _dt(rec.refresh_time),
    }
    if rec.error:
        doc["misc"]["error"] = (rec.error.splitlines()[0] if rec.error else None, rec.error)
    return doc



def to_plain_doc(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A document with numpy scalars as Python numbers (hyperopt SONifies on insert)."""
    if not isinstance(doc, Mapping):
        return doc  # type: ignore[return-value]  # validate_document names the problem
    return {k: (_plain_values(v) if k in ("misc", "result") else v) for k, v in doc.items()}


def _plain_values(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_values(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def to_plain_result(result: Mapping[str, Any]) -> dict[str, Any]:
    """A result as the storage keeps it (JSON-able; other values by their repr)."""
    out = {}
    for k, v in result.items():
        try:
            out[str(k)] = to_plain(v)
        except DistoptError:
            out[str(k)] = repr(v)
    return out


def best_document(docs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The ok document with the lowest finite loss, by the rule for records
    (``trial.record.may_be_best``; the earliest wins a tie)."""
    best, best_loss = None, None
    for doc in docs:
        result = doc.get("result") or {}
        loss = result.get("loss")
        if not may_be_best(result.get("status") == STATUS_OK, None if loss is None else float(loss)):
            continue
        if best is None or float(loss) < best_loss:
            best, best_loss = doc, float(loss)
    if best is None:
        raise AllTrialsFailed("no trial finished with status 'ok' and a loss, so there is no best trial")
    return dict(best)



def job_states(arg: Any) -> set[int]:
    """hyperopt's argument check: one job state, or an iterable of them."""
    if isinstance(arg, int) and arg in JOB_STATES:
        return {arg}
    if hasattr(arg, "__iter__"):
        states = set(arg)
        if not all(x in JOB_STATES for x in states):
            raise DistoptError(f"job states must be among {JOB_STATES}, got {sorted(states)!r}")
        return states
    raise DistoptError(f"count_by_state takes a job state (one of {JOB_STATES}) or a list of them, got {arg!r}")



def record_from_document(doc: Mapping[str, Any], tid: int) -> TrialRecord:
    """A finished document inserted by hand as the record of trial ``tid``: OK when hyperopt
    would call it done with a finite loss, else FAIL (the sampler learns from both)."""
    result = dict(doc.get("result") or {})
    loss = result.get("loss")
    ok = (doc["state"] == JOB_STATE_DONE and result.get("status") == STATUS_OK and loss is not None
          and np.isfinite(float(loss)))
    return TrialRecord(
        tid=tid, vals=flat_vals(doc), state=TrialState.OK if ok else TrialState.FAIL,
        loss=float(loss) if ok else None, result=to_plain_result(result),
        error=None if ok else "inserted as a failed trial document",
        reported=doc["state"] == JOB_STATE_DONE)
