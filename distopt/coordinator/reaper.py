"""The reaper: trials whose worker went silent become LOST and run again, or FAIL.

A coordinator tick. Every ``period`` seconds it looks at the pending trials and asks of
each attempt: is anyone still answering for it?

- a heartbeat for this attempt whose deadline has not passed: alive;
- a RUNNING attempt that has not beaten yet: alive until ``start_time + heartbeat_ttl``
  (workers beat only after their first interval); these two deadlines are
  ``trial.liveness.attempt_deadline``, which the status document shows too;
- a QUEUED attempt whose job still waits in the rq queue: alive (waiting is not dying);
- a QUEUED attempt whose job left the queue with no "started" and no heartbeat: a
  worker took it and may be running a short trial, or died between taking the job and
  starting it (rq leaves no trace of that). It is lost once it has been unaccounted for
  over ``grace`` seconds, across sweeps.

An expired heartbeat is lost at once; an attempt with no heartbeat at all only after
``grace`` seconds of not being accounted for, so a result already in the inbox wins the
race. A lost attempt is marked LOST (it leaves the sampler's pending set) and a new
attempt is queued under a new job id, up to ``max_retries``; then the trial FAILs with
the reason. With a ``trial_timeout``, a RUNNING attempt still without a result
``grace`` seconds after its timeout FAILs too (its worker is hung: the worker-side timer
did not get to stop it).

The clock is an argument (``now``), as for rq's ``StartedJobRegistry.cleanup``, so tests
inject time. The reaper never resubmits because a worker process is gone: only missing
liveness counts, so a forking worker's work-horse that outlives its parent keeps its
trial.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Protocol, Sequence

from .loop import Interval
from ..trial.liveness import attempt_deadline
from ..trial.record import TrialRecord, TrialState
from ..study.study import Study, Trial

log = logging.getLogger(__name__)

from ..defaults import HEARTBEAT_TTL  # noqa: E402
from ..defaults import MAX_RETRIES  # noqa: E402


class JobQueue(Protocol):
    """What the reaper needs from the executor."""

    def submit(self, study: Any, trials: Sequence[Trial]) -> None:
        ...

    def waiting(self, study: Any, records: Sequence[TrialRecord]) -> set[int]:
        """The tids among ``records`` whose current job still waits in the queue."""

    def stop(self, study: Any, tids: Sequence[int]) -> None:
        """Ask the workers running these trials to stop them (best effort)."""


@dataclasses.dataclass(frozen=True)
class Liveness:
    """How long a trial may go without a sign of life, and what happens then."""

    heartbeat_ttl: float = HEARTBEAT_TTL
    max_retries: int = MAX_RETRIES
    trial_timeout: float | None = None
    grace: float | None = None  # default: heartbeat_ttl
    period: float | None = None  # default: a quarter of the ttl, at most 1 s

    @property
    def grace_s(self) -> float:
        return self.heartbeat_ttl if self.grace is None else self.grace

    @property
    def period_s(self) -> float:
        return min(1.0, self.heartbeat_ttl / 4) if self.period is None else self.period


class Reaper:
    """Marks silent attempts LOST and queues them again; a coordinator tick."""

    def __init__(self, jobs: JobQueue, liveness: Liveness = Liveness()) -> None:
        self.jobs = jobs
        self.liveness = liveness
        self._interval = Interval(liveness.period_s)
        self._unaccounted: dict[tuple[int, int], float] = {}  # (tid, attempt) -> first seen so
        self._adopted = False
        self._free: dict[int, int] = {}  # tid -> attempts that never ran (rerouted), not retries

    def __call__(self, study: Study, now: float) -> None:
        if self._interval.due(now):
            self.sweep(study, now)
        return None

    # -- one sweep -----------------------------------------------------------------------
    def sweep(self, study: Study, now: float) -> list[int]:
        """Reap what is due at ``now``; the tids that were lost or timed out."""
        if not self._adopted:  # a crashed coordinator may have left LOST trials behind
            self._adopted = True
            for rec in study.states([TrialState.LOST]):
                self._retry_or_fail(study, rec, rec.error or "lost while no coordinator ran")
        ttl, grace = self.liveness.heartbeat_ttl, self.liveness.grace_s
        beats = study.storage.heartbeats(study.name)
        lost: list[tuple[TrialRecord, str]] = []
        hung: list[tuple[TrialRecord, str]] = []
        unaccounted: list[TrialRecord] = []
        queued: list[TrialRecord] = []
        for tid in study.pending_tids():
            rec = study.record(tid)
            timeout = self._hung(rec, now)
            if timeout is not None:
                hung.append((rec, timeout))
                continue
            deadline = attempt_deadline(rec, beats.get(tid), ttl)
            if deadline is not None and deadline.source == "heartbeat":
                if deadline.at < now:
                    lost.append((rec, f"worker {deadline.worker} stopped sending heartbeats "
                                      f"(the last one expired {now - deadline.at:.1f} s ago)"))
                else:
                    self._unaccounted.pop((tid, rec.attempt), None)
                continue
            if rec.state == TrialState.RUNNING:  # not beaten yet: alive until its start + ttl
                if deadline is None or deadline.at < now:
                    unaccounted.append(rec)
                else:
                    self._unaccounted.pop((tid, rec.attempt), None)
            elif rec.book_time is None or rec.book_time + min(grace, self.liveness.period_s) <= now:
                # checked from one period after queueing, so a trial is lost a grace after
                # its job left the queue, not a grace after that plus a grace after booking
                queued.append(rec)
        if queued:
            waiting = self.jobs.waiting(study, queued)
            for rec in queued:
                if rec.tid in waiting:
                    self._unaccounted.pop((rec.tid, rec.attempt), None)
                else:
                    unaccounted.append(rec)
        for rec in unaccounted:
            since = self._unaccounted.setdefault((rec.tid, rec.attempt), now)
            if now - since >= grace:
                lost.append((rec, self._silence(rec, ttl)))
        for rec, reason in hung:
            self._time_out(study, rec, reason)
        for rec, reason in lost:
            self.lose(study, rec.tid, rec.attempt, reason)
        self._forget(study, beats)
        return [rec.tid for rec, _ in hung + lost]

    def _hung(self, rec: TrialRecord, now: float) -> str | None:
        timeout = self.liveness.trial_timeout
        if timeout is None or rec.state != TrialState.RUNNING or rec.start_time is None:
            return None
        overdue = now - (rec.start_time + timeout)
        if overdue < self.liveness.grace_s:
            return None
        return (f"trial_timeout: ran longer than trial_timeout={timeout:g} s and worker {rec.worker} did not "
                f"stop it ({overdue:.1f} s past the limit); the worker may be hung in code that does not "
                "return to Python (run workers with --fork so that such a trial can be killed)")

    @staticmethod
    def _silence(rec: TrialRecord, ttl: float) -> str:
        if rec.state == TrialState.RUNNING:
            return f"worker {rec.worker} sent no heartbeat within {ttl:g} s of the trial's start"
        return ("its job left the queue but no worker reported it started or sent a heartbeat "
                "(the worker may have died right after taking it)")

    def _forget(self, study: Study, beats: dict[int, dict[str, Any]]) -> None:
        """Drop bookkeeping and heartbeats of trials that are no longer pending."""
        pending = set(study.pending_tids())
        for key in [k for k in self._unaccounted if k[0] not in pending]:
            del self._unaccounted[key]
        for tid, beat in beats.items():
            if tid not in pending:
                self._clear_beat(study, tid, int(beat["attempt"]))

    @staticmethod
    def _clear_beat(study: Study, tid: int, attempt: int) -> None:
        """Clear the heartbeat of the attempt the reaper acted on, and only that one (or an
        older one's): a newer attempt, already running elsewhere by the time this runs,
        keeps its beat, as does a trial of another incarnation of the study."""
        study.storage.clear_heartbeat(study.name, tid, attempt, incarnation=study.incarnation)

    # -- acting ----------------------------------------------------------------------------
    def lose(self, study: Study, tid: int, attempt: int, reason: str) -> TrialRecord | None:
        """Mark (tid, attempt) LOST, then queue a new attempt or FAIL it; None when the
        attempt is no longer the trial's pending one (a result won the race)."""
        rec = study.mark_lost(tid, attempt, reason)
        if rec is None:
            return None
        log.warning("trial %s attempt %s is lost: %s", tid, attempt, reason)
        return self._retry_or_fail(study, rec, reason)

    def handback(self, study: Study, msg: dict[str, Any]) -> None:
        """A worker shutting down handed its trial back: run it again now, not after a ttl."""
        tid, attempt = int(msg["tid"]), int(msg.get("attempt", 0))
        self.lose(study, tid, attempt, f"handed back by worker {msg.get('worker')}, which was shutting down")

    def reroute(self, study: Study, msg: dict[str, Any]) -> TrialRecord | None:
        """A worker could not load the objective (or refused the job, or sent a result that
        does not verify: ``unverified``): the trial did not run, or not in a way that can be
        trusted, so it runs again now, on whichever worker takes it, without using the
        budget (nor a retry, except after an unverified message)."""
        tid, attempt = int(msg["tid"]), int(msg.get("attempt", 0))
        what = "sent nothing verifiable" if msg.get("unverified") else "cannot load the objective"
        rec = study.mark_lost(tid, attempt, f"worker {msg.get('worker')} {what}: {msg.get('reason')}")
        if rec is None:
            return None
        log.info("trial %s attempt %s runs again: worker %s %s (%s)", tid, attempt, msg.get("worker"), what,
                 msg.get("reason"))
        if not msg.get("unverified"):
            # a result that did not verify uses a retry: a worker that ran the trial but cannot sign (an
            # older distopt, no secret) names a process no listening worker is, so the fail-fast rule may
            # never stop the study, and free reruns would go on for ever
            self._free[tid] = self._free.get(tid, 0) + 1
        return self._retry_or_fail(study, rec, str(msg.get("reason")))

    def _retry_or_fail(self, study: Study, rec: TrialRecord, reason: str) -> TrialRecord | None:
        self._unaccounted.pop((rec.tid, rec.attempt), None)
        self._clear_beat(study, rec.tid, rec.attempt)  # the lost attempt's; a new one beats anew
        retries = self.liveness.max_retries
        if rec.attempt - self._free.get(rec.tid, 0) < retries:
            new = study.requeue(rec.tid)
            if new is not None:
                self.jobs.submit(study, [study.trial_for(new)])
            return new
        return study.give_up(rec.tid, f"lost {rec.attempt + 1} times (max_retries={retries}); last: {reason}")

    def _time_out(self, study: Study, rec: TrialRecord, reason: str) -> None:
        if study.give_up(rec.tid, reason, expected=(TrialState.RUNNING,)) is None:
            return
        self._clear_beat(study, rec.tid, rec.attempt)
        log.warning("trial %s failed: %s", rec.tid, reason)
        try:
            self.jobs.stop(study, [rec.tid])
        except Exception:  # best effort: a forking worker kills the work-horse, others cannot
            log.info("could not ask the worker of trial %s to stop it", rec.tid, exc_info=True)
