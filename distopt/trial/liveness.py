"""When a worker process is presumed dead, by its own heartbeat record: one rule, read by the
worker that beats, the executor and the coordinator that count live workers, and the status
document. (rq keeps a killed worker registered for minutes, so rq's records alone overcount.)"""

from __future__ import annotations

from typing import Any, Mapping

from ..defaults import DEAD_AFTER_INTERVALS, WORKER_HEARTBEAT


def is_dead(record: Mapping[str, Any], now: float) -> bool:
    """Whether a worker's record says it is dead: no beat for its ``dead_after`` seconds."""
    interval = float(record.get("interval") or WORKER_HEARTBEAT)
    dead_after = float(record.get("dead_after") or interval * DEAD_AFTER_INTERVALS)
    return now - float(record.get("beat") or 0.0) > dead_after


def dead_worker_names(records: Mapping[str, Mapping[str, Any]], now: float) -> set[str]:
    """rq names (and ids) of the workers whose own heartbeat says they are dead: rq keeps
    a killed worker registered for minutes, so counting rq's workers alone overcounts."""
    out: set[str] = set()
    for wid, rec in records.items():
        if is_dead(rec, now):
            out.update(n for n in (wid, rec.get("id"), rec.get("rq")) if n)
    return out
