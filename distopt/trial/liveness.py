"""When something is presumed dead: one rule each, read by everyone who decides it.

- A worker process, by its own heartbeat record (``is_dead``, ``dead_after``,
  ``drop_after``): read by the worker that beats, the executor and the coordinator that
  count live workers, and the status document. (rq keeps a killed worker registered for
  minutes, so rq's records alone overcount.)
- A trial's attempt, by its liveness deadline (``attempt_deadline``): read by the
  coordinator's reaper, which acts on it, and by the status document, which shows the
  trials past it. ``heartbeat_ttl_of`` is the ttl a study runs with.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from .record import TrialRecord, TrialState
from ..defaults import DEAD_AFTER_INTERVALS, DROP_AFTER_INTERVALS, HEARTBEAT_TTL, MIN_DROP, WORKER_HEARTBEAT


def _interval(record: Mapping[str, Any]) -> float:
    return float(record.get("interval") or WORKER_HEARTBEAT)


def dead_after(record: Mapping[str, Any]) -> float:
    """Seconds without a beat after which a worker's record says it is dead."""
    return float(record.get("dead_after") or _interval(record) * DEAD_AFTER_INTERVALS)


def drop_after(record: Mapping[str, Any]) -> float:
    """Seconds without a beat after which a dead worker is no longer listed at all."""
    return float(record.get("drop_after") or max(MIN_DROP, _interval(record) * DROP_AFTER_INTERVALS))


def is_dead(record: Mapping[str, Any], now: float) -> bool:
    """Whether a worker's record says it is dead: no beat for its ``dead_after`` seconds."""
    return now - float(record.get("beat") or 0.0) > dead_after(record)


def dead_worker_names(records: Mapping[str, Mapping[str, Any]], now: float) -> set[str]:
    """rq names (and ids) of the workers whose own heartbeat says they are dead: rq keeps
    a killed worker registered for minutes, so counting rq's workers alone overcounts."""
    out: set[str] = set()
    for wid, rec in records.items():
        if is_dead(rec, now):
            out.update(n for n in (wid, rec.get("id"), rec.get("rq")) if n)
    return out


def heartbeat_ttl_of(meta: Mapping[str, Any], given: float | None = None) -> float:
    """The heartbeat ttl a study runs with: ``given`` (a run's setting), else the one stored
    with the study, else ``HEARTBEAT_TTL``."""
    if given:
        return float(given)
    stored = meta.get("heartbeat_ttl")
    if isinstance(stored, (int, float)) and not isinstance(stored, bool) and stored > 0:
        return float(stored)
    return HEARTBEAT_TTL


@dataclasses.dataclass(frozen=True)
class Deadline:
    """When a pending attempt is presumed dead if nothing more is heard from it."""

    at: float
    source: str  # "heartbeat": its last heartbeat's; "start": its start + ttl (no beat yet)
    worker: str | None


def attempt_deadline(rec: TrialRecord, beat: Mapping[str, Any] | None, ttl: float) -> Deadline | None:
    """The liveness deadline of ``rec``'s current attempt: the deadline of its heartbeat
    when this attempt has beaten; else, for a RUNNING attempt, its start (or last update)
    plus ``ttl``, since workers beat only after their first interval. None for a QUEUED
    attempt that has not beaten (its job may still wait in a queue: no clock runs on it)
    and for an attempt that is not pending."""
    if not rec.state.pending:
        return None
    if beat is not None and int(beat.get("attempt", -1)) == rec.attempt:
        return Deadline(float(beat["deadline"]), "heartbeat", beat.get("worker") or rec.worker)
    if rec.state == TrialState.RUNNING:
        started = rec.start_time if rec.start_time is not None else rec.refresh_time
        if started is not None:
            return Deadline(started + ttl, "start", rec.worker)
    return None
