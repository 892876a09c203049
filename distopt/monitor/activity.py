"""What a study's pending trials are doing: each counted once as waiting (its result is in
the inbox), running, queued or taken; and which are overdue: past their liveness deadline,
or run by a worker that is dead."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .workers import RqView
from ..defaults import HEARTBEAT_TTL as DEFAULT_HEARTBEAT_TTL
from ..trial.liveness import attempt_deadline
from ..trial.record import TrialRecord, TrialState


def with_orphans(name: str, records: Sequence[TrialRecord], stale: list[dict[str, Any]],
                  waiting: set[tuple[int, int]], rq: RqView, now: float) -> list[dict[str, Any]]:
    """Add the pending trials whose worker is dead (``source`` "worker"): found at once,
    without waiting for the trial's heartbeat deadline."""
    if not rq.orphaned:
        return stale
    listed = {(s["tid"], s["attempt"]) for s in stale}
    for rec in records:
        key = (rec.tid, rec.attempt)
        if not rec.state.pending or key in listed or key in waiting:
            continue
        found = rq.orphaned.get(job_id_of(name, rec))
        if found is not None:
            worker, deadline = found
            stale.append({"tid": rec.tid, "attempt": rec.attempt, "state": rec.state.value, "worker": worker,
                          "deadline": deadline, "overdue": max(0.0, now - deadline), "source": "worker"})
    return sorted(stale, key=lambda s: s["tid"])


def waiting_results(inbox: Sequence[Mapping[str, Any]]) -> set[tuple[int, int]]:
    """(tid, attempt) of results (and hand-backs) no coordinator has recorded yet."""
    out = set()
    for msg in inbox:
        if msg.get("type") != "started" and "tid" in msg:
            try:
                out.add((int(msg["tid"]), int(msg.get("attempt") or 0)))
            except (TypeError, ValueError):
                continue
    return out


def started_messages(inbox: Sequence[Mapping[str, Any]]) -> set[tuple[int, int]]:
    out = set()
    for msg in inbox:
        if msg.get("type") == "started":
            try:
                out.add((int(msg["tid"]), int(msg.get("attempt") or 0)))
            except (KeyError, TypeError, ValueError):
                continue
    return out


def activity_counts(name: str, records: Sequence[TrialRecord], waiting: set[tuple[int, int]], started: set[tuple[int, int]],
              queued_jobs: set[str] | None, running_jobs: set[str]) -> dict[str, int]:
    """Every trial in exactly one bucket, so the counts always add up to the total: an
    ended trial by its state; a pending one (QUEUED or RUNNING as stored) as
    ``waiting`` (its result is in the inbox, not yet recorded), ``running`` (a worker
    runs it), ``queued`` (its job waits on the rq queue) or ``taken`` (a worker took
    the job and has not reported it running yet)."""
    counts = {"queued": 0, "taken": 0, "running": 0, "waiting": 0}
    counts.update({s.value: 0 for s in TrialState if not s.pending})
    for rec in records:
        if not rec.state.pending:
            counts[rec.state.value] += 1
            continue
        key = (rec.tid, rec.attempt)
        job = None if queued_jobs is None else job_id_of(name, rec)
        if key in waiting:
            counts["waiting"] += 1
        elif rec.state == TrialState.RUNNING or key in started or (job is not None and job in running_jobs):
            counts["running"] += 1
        elif queued_jobs is None or job in queued_jobs:
            counts["queued"] += 1
        else:
            counts["taken"] += 1
    return counts


def job_id_of(name: str, rec: TrialRecord) -> str:
    from ..dispatch.jobs import job_id

    return job_id(name, rec.tid, rec.attempt)


def stale_trials(
    records: Sequence[TrialRecord],
    heartbeats: Mapping[int, Mapping[str, Any]],
    now: float,
    ttl: float = DEFAULT_HEARTBEAT_TTL,
) -> list[dict[str, Any]]:
    """Pending trials past their liveness deadline (``trial.liveness.attempt_deadline``, the
    rule the coordinator's reaper acts on). Such a trial's worker is probably gone; the coordinator's reaper marks it
    lost, so one that stays listed here means no coordinator is reaping."""
    out = []
    for rec in records:
        deadline = attempt_deadline(rec, heartbeats.get(rec.tid), ttl)
        if deadline is not None and deadline.at < now:
            out.append({"tid": rec.tid, "attempt": rec.attempt, "state": rec.state.value, "worker": deadline.worker,
                        "deadline": deadline.at, "overdue": now - deadline.at, "source": deadline.source})
    return out
