"""Trial states, their legal transitions, and the frozen trial record.

A state change is a compare-and-set against ``TRANSITIONS`` so that two processes racing
on one trial (a late result and the reaper, say) cannot both win.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import math
from typing import Any, Iterable, Mapping


def vals_digest(vals: Mapping[str, Any]) -> str:
    """A short digest of a trial's parameters (its ``vals`` as canonical JSON): a result
    carries the digest of what it evaluated, so it is never recorded on a trial whose
    parameters are different."""
    text = json.dumps(dict(vals), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class TrialState(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    OK = "ok"
    FAIL = "fail"
    #: Stopped early by the pruner: it ends with its last intermediate value.
    PRUNED = "pruned"
    LOST = "lost"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """OK, FAIL and PRUNED count toward ``max_evals``; CANCELLED does not."""
        return self in (TrialState.OK, TrialState.FAIL, TrialState.PRUNED)

    @property
    def ended(self) -> bool:
        return self in (TrialState.OK, TrialState.FAIL, TrialState.PRUNED, TrialState.CANCELLED)

    @property
    def pending(self) -> bool:
        """States a sampler must treat as 'still being evaluated'."""
        return self in (TrialState.QUEUED, TrialState.RUNNING)


S = TrialState
#: Legal state changes. A result may arrive for a QUEUED trial (the worker was faster than
#: the RUNNING mark) and for a LOST one (a late result from a reaped attempt is still
#: recorded if the trial has not ended).
TRANSITIONS: Mapping[TrialState, frozenset[TrialState]] = {
    S.QUEUED: frozenset({S.RUNNING, S.OK, S.FAIL, S.PRUNED, S.LOST, S.CANCELLED}),
    S.RUNNING: frozenset({S.OK, S.FAIL, S.PRUNED, S.LOST, S.CANCELLED}),
    S.LOST: frozenset({S.QUEUED, S.OK, S.FAIL, S.PRUNED, S.CANCELLED}),
    S.OK: frozenset(),
    S.FAIL: frozenset(),
    S.PRUNED: frozenset(),
    S.CANCELLED: frozenset(),
}


def can_transition(old: TrialState, new: TrialState) -> bool:
    return new in TRANSITIONS[old]


#: hyperopt's integer job states, for the hyperopt-shaped view of trials.
JOB_STATE_NEW, JOB_STATE_RUNNING, JOB_STATE_DONE, JOB_STATE_ERROR, JOB_STATE_CANCEL = 0, 1, 2, 3, 4

HYPEROPT_STATE = {
    S.QUEUED: JOB_STATE_NEW,
    S.LOST: JOB_STATE_NEW,
    S.RUNNING: JOB_STATE_RUNNING,
    S.OK: JOB_STATE_DONE,
    S.FAIL: JOB_STATE_ERROR,
    S.PRUNED: JOB_STATE_DONE,  # a finished evaluation whose result says status 'fail', 'pruned': True
    S.CANCELLED: JOB_STATE_CANCEL,
}


#: The states hyperopt's ``Trials.trials`` shows (ERROR and CANCEL documents are left out).
JOB_VALID_STATES = frozenset({JOB_STATE_NEW, JOB_STATE_RUNNING, JOB_STATE_DONE})


def hyperopt_state(rec: "TrialRecord") -> int:
    """hyperopt's job state of a record: a FAIL the objective reported is DONE, as in
    hyperopt; one it raised (or never finished) is ERROR."""
    if rec.state == S.FAIL and rec.reported:
        return JOB_STATE_DONE
    return HYPEROPT_STATE[rec.state]


@dataclasses.dataclass(frozen=True)
class TrialRecord:
    """Everything known about one trial. Immutable: a change makes a new record.

    ``vals`` is the flat assignment of the *active* parameters, as hyperopt's
    ``misc.vals`` holds it (choice parameters as indices); the value passed to the
    objective is ``space_eval(space, vals)``.
    """

    tid: int
    vals: Mapping[str, Any]
    state: TrialState = TrialState.QUEUED
    attempt: int = 0
    loss: float | None = None
    result: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    error: str | None = None
    worker: str | None = None
    book_time: float | None = None
    start_time: float | None = None
    end_time: float | None = None
    refresh_time: float | None = None
    #: The objective returned a well-formed result (even one reporting STATUS_FAIL), as
    #: opposed to raising, returning garbage or never finishing: hyperopt's DONE vs ERROR.
    reported: bool = False

    def replace(self, **changes: Any) -> "TrialRecord":
        return dataclasses.replace(self, **changes)

    @property
    def duration(self) -> float | None:
        if self.start_time is None or self.end_time is None:
            return None
        return self.end_time - self.start_time


def result_fields(msg: Mapping[str, Any]) -> dict[str, Any]:
    """What a result message (``trial.outcome``) says about its trial, as ``finished_record``
    and ``Study.record_results`` read it: the one reading of a message, for the coordinator,
    ``Study.tell`` and ``distopt cancel``."""
    loss = msg.get("loss")
    return {
        "tid": int(msg["tid"]),
        "attempt": msg.get("attempt"),
        "ok": msg.get("status") == "ok",
        "loss": None if loss is None else float(loss),
        "result": msg.get("result") or {},
        "error": msg.get("error") if not msg.get("traceback") else f"{msg.get('error')}\n{msg['traceback']}",
        "worker": msg.get("worker"),
        "start_time": msg.get("start_time"),
        "end_time": msg.get("end_time"),
        "reported": bool(msg.get("reported", False)),
        "pruned": msg.get("status") == "pruned",
        "last_step": msg.get("last_step"),
        "last_value": msg.get("last_value"),
        "raw_result": msg.get("raw_result"),  # in-process only: the returned dict itself
        "attachments": msg.get("attachments"),
    }


def finished_record(old: TrialRecord, r: Mapping[str, Any], now: float) -> TrialRecord:
    """The record a result makes of ``old``, ``r`` being ``result_fields`` of its message
    (OK, FAIL or PRUNED, with the worker's times where it sent them): one rule for the
    coordinator, ``Study.tell`` and ``distopt cancel``, which records what is already in the
    inbox before cancelling."""
    ok = bool(r["ok"])
    if r.get("pruned") and not ok:
        return pruned_record(old, r, now)
    return old.replace(
        state=TrialState.OK if ok else TrialState.FAIL,
        loss=r.get("loss") if ok else None,
        result=dict(r.get("result") or {}),
        error=r.get("error"),
        worker=r.get("worker") or old.worker,
        start_time=r["start_time"] if r.get("start_time") is not None else old.start_time,
        end_time=r["end_time"] if r.get("end_time") is not None else now,
        refresh_time=now,
        reported=bool(r.get("reported", False)),  # hyperopt's DONE (a reported failure) vs ERROR (a raised one)
    )


#: States a cancel ends: every one that has not ended (queued, running, lost).
CANCELLABLE = tuple(s for s in TrialState if not s.ended)


def cancelled_record(old: TrialRecord, now: float) -> TrialRecord:
    """The record a cancel makes of a trial in ``CANCELLABLE``: the one rule for a study's
    coordinator (``Study.cancel``) and for ``distopt cancel`` with no coordinator running."""
    return old.replace(state=TrialState.CANCELLED, refresh_time=now)


def with_labels(labels: Iterable[str], records: Iterable[TrialRecord]) -> list[str]:
    """``labels``, then the other labels ``records`` hold (``labels_of`` order): a study's
    labels with those of trials evaluated over another space."""
    known = list(labels)
    return known + [k for k in labels_of(records) if k not in set(known)]


def pruned_record(old: TrialRecord, r: Mapping[str, Any], now: float) -> TrialRecord:
    """The PRUNED record a pruned result makes: no loss (it never finished), the last
    intermediate step and value in ``result`` so every view of the trial shows how far
    it got; hyperopt's view reads it as a finished trial with status 'fail'."""
    result = {"status": "fail", "pruned": True, "last_step": r.get("last_step"), "last_value": r.get("last_value")}
    return old.replace(
        state=TrialState.PRUNED,
        loss=None,
        result=result,
        error=r.get("error"),
        worker=r.get("worker") or old.worker,
        start_time=r["start_time"] if r.get("start_time") is not None else old.start_time,
        end_time=r["end_time"] if r.get("end_time") is not None else now,
        refresh_time=now,
        reported=True,
    )


def pruned_at(rec: TrialRecord) -> tuple[int | None, float | None]:
    """(last step, last value) of a PRUNED record (None, None when it reported nothing)."""
    step, value = rec.result.get("last_step"), rec.result.get("last_value")
    return (None if step is None else int(step)), (None if value is None else float(value))


def may_be_best(ok: bool, loss: float | None) -> bool:
    """Whether a trial can be the best one: it ended OK with a finite loss (a NaN or an
    infinite loss never is). With ``improves``, the one rule for "best trial", for records
    and for hyperopt's documents alike."""
    return ok and loss is not None and math.isfinite(loss)


def improves(rec: TrialRecord, best: TrialRecord | None) -> bool:
    """Whether ``rec`` is a better best trial than ``best``: one that ``may_be_best`` with a
    loss strictly below the best one's (so the earliest wins a tie)."""
    if not may_be_best(rec.state == TrialState.OK, rec.loss):
        return False
    return best is None or best.loss is None or rec.loss < best.loss


def best_of(records: Iterable[TrialRecord]) -> TrialRecord | None:
    """The best trial of ``records`` by ``improves``, None when no trial qualifies."""
    best = None
    for rec in records:
        if improves(rec, best):
            best = rec
    return best


def labels_of(records: Iterable[TrialRecord]) -> list[str]:
    """The parameter labels ``records`` hold, in the order they first appear: the labels of a
    study whose space is not known here (the one rule for discovering them)."""
    seen: dict[str, None] = {}
    for rec in records:
        seen.update(dict.fromkeys(rec.vals))
    return list(seen)
