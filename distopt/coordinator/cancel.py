"""Ending a study from outside: ``distopt cancel --redis URL --study NAME``.

The coordinator is the only writer of a study's trials, so a cancel never races it:
while a coordinator holds the study's lease, ``cancel_study`` sets ``cancel_requested``
in the study's meta and waits for that coordinator to stop (its ``CancelWatch`` tick
sees the flag, it cancels its queued and running trials and withdraws their jobs, as at
any stop). With no coordinator, ``cancel_study`` takes the lease itself and does the
same. Finished trials are kept; a later run with the same name continues the study.

Results that workers already sent are never thrown away: before anything is cancelled,
every result waiting in the study's inbox is recorded (those trials end OK or FAIL as
reported), by the coordinator when one runs, else here; only what is still really queued
or running is cancelled. Only results signed with the study's secret count (here: with
$DISTOPT_SECRET; without it, a study whose coordinator had a secret records none of them).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
import uuid
from typing import Any

from .loop import Interval
from ..defaults import CANCEL_WAIT
from ..errors import DistoptError
from ..trial.record import CANCELLABLE, TrialRecord, TrialState, cancelled_record, finished_record, result_fields
from ..storage import DEFAULT_PREFIX, RedisStorage, Storage, open_storage

#: Seconds between checks of the cancel flag in a running coordinator.
CHECK_EVERY = 1.0


class CancelWatch:
    """A coordinator tick: stop with reason "cancelled" once someone asked for it, after
    recording the results already in the inbox (the coordinator cancels what is left)."""

    def __init__(self, every: float | None = None, secret: bytes | None = None) -> None:
        # read at construction, not at import, so CHECK_EVERY can be set before a run
        self._interval = Interval(CHECK_EVERY if every is None else every)
        self.secret = secret  # the coordinator's: only results that verify are recorded

    def __call__(self, study: Any, now: float) -> str | None:
        if not self._interval.due(now):
            return None
        if not study.storage.get_study(study.name).get("cancel_requested"):
            return None
        recorded = drain_into_study(study, self.secret)
        study.storage.update_study(study.name, {"cancel_recorded": recorded})
        return "cancelled"


def _screen(messages: list[Any], secret: bytes | None, signed_study: bool) -> tuple[list[dict[str, Any]], list[Any]]:
    """(results that may be recorded, results that may not). Of a study whose coordinator
    had a secret: those that verify under ``secret`` (none without one: an unsigned result
    is forged, a signed one cannot be checked here); of a study run without a secret,
    every one (its workers do not sign; its coordinator would record them all)."""
    from ..dispatch.signing import SIG, unverified_because

    trusted, untrusted = [], []
    for m in messages:
        if not isinstance(m, dict) or m.get("type") is not None:
            continue
        if signed_study and (secret is None or unverified_because(m, secret) is not None):
            untrusted.append(m)
            continue
        trusted.append({k: v for k, v in m.items() if k != SIG})
    return trusted, untrusted


def _signed_study(storage: Any, study: str) -> bool:
    """Whether the study's workers sign their results: its coordinator ran with a secret
    (a study that does not say is taken as signed: a result is never trusted by default)."""
    return storage.get_study(study).get("signed_results") is not False


def drain_into_study(study: Any, secret: bytes | None = None) -> int:
    """Record every result message waiting in ``study``'s inbox through the study (as
    the coordinator would, only what verifies under ``secret``); how many trials they
    finished."""
    recorded = 0
    signed = _signed_study(study.storage, study.name)
    while True:
        messages = study.storage.pop_results(study.name, timeout=0.0, limit=1000)
        if not messages:
            return recorded
        results = [result_fields(m) for m in _screen(messages, secret, signed)[0]]
        recorded += sum(rec is not None for rec in study.record_results(results))


@dataclasses.dataclass
class CancelResult:
    """What ``cancel_study`` did."""

    study: str
    by: str  # "coordinator <id>" or "this process"
    cancelled: int  # trials cancelled
    finished: int  # trials that had ended OK or FAIL, kept
    status: str | None
    recorded: int = 0  # results that were waiting in the inbox, recorded before cancelling
    late: int = 0  # results that arrived while the trials were being cancelled, not recorded
    unverified: int = 0  # waiting results dropped unverified (drop_unverified; else the cancel refuses)


def cancel_study(target: Any, study: str, *, wait: float = CANCEL_WAIT, prefix: str = DEFAULT_PREFIX,
                 poll: float = 0.1, secret: bytes | None = None, drop_unverified: bool = False) -> CancelResult:
    """Cancel the queued, running and lost trials of ``study`` and withdraw their queued
    jobs; ``target`` is a Redis URL, client or storage. With no coordinator running, the
    results already sent are recorded first when they verify under ``secret`` (default
    $DISTOPT_SECRET); when results of a signed study wait and there is no secret to check
    them, this refuses (they would be lost with their trials) unless ``drop_unverified``.
    Raises ``DistoptError`` then, and when a running coordinator does not stop within
    ``wait`` seconds."""
    if secret is not None:
        from ..dispatch.secret import resolve_secret

        secret = resolve_secret(secret)  # text or bytes; an empty or placeholder one is refused
    storage = open_storage(target, prefix=prefix)
    try:
        if not isinstance(storage, RedisStorage):
            raise DistoptError(f"cancelling a study needs its Redis; got {storage!r}")
        before = storage.count_states(study)  # raises StudyNotFound naming the studies there
        owner = storage.lease_owner(study)
        if owner is None:
            me = f"cancel:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
            token = storage.acquire_lease(study, me, ttl=max(10.0, wait))
            if token:
                storage.fence = token  # its writes are fenced as a coordinator's are
                try:
                    before_cancel = record_inbox(storage, study, secret, refuse_unverified=not drop_unverified)
                    cancelled = _cancel_here(storage, study)
                    after = record_inbox(storage, study, secret)  # sent while we cancelled: those trials ended
                finally:
                    storage.fence = None
                    storage.release_lease(study, me)
                return _result(storage, study, "this process", cancelled, before_cancel.recorded + after.recorded,
                               after.dropped + after.unverified, before_cancel.unverified)
            owner = storage.lease_owner(study)  # a coordinator started meanwhile
        storage.update_study(study, {"cancel_requested": True, "cancel_recorded": None})
        deadline = time.monotonic() + wait
        while storage.lease_owner(study) is not None:
            if time.monotonic() > deadline:
                raise DistoptError(
                    f"asked coordinator {owner} to cancel study {study!r}, but it still runs after {wait:g} s; "
                    "it stops at its next loop turn once it is not stuck, or its lease expires if it is dead: "
                    "run the command again then"
                )
            time.sleep(poll)
        cancelled = storage.count_states(study)[TrialState.CANCELLED] - before[TrialState.CANCELLED]
        recorded = int(storage.get_study(study).get("cancel_recorded") or 0)
        return _result(storage, study, f"coordinator {owner}", cancelled, recorded)
    finally:
        if storage is not target:
            storage.close()


@dataclasses.dataclass
class InboxCounts:
    """What ``record_inbox`` did with the result messages it found."""

    recorded: int = 0  # ended a trial
    dropped: int = 0  # may be recorded, but for a trial that had already ended
    unverified: int = 0  # not recorded: no secret to check them, or they do not verify


def record_inbox(storage: RedisStorage, study: str, secret: bytes | None = None,
                 refuse_unverified: bool = False) -> InboxCounts:
    """Record the results waiting in the study's inbox (holding its lease, with no
    coordinator): each trial not yet ended becomes OK or FAIL as its worker reported.
    Of a study whose coordinator had a secret, only results that verify under ``secret``
    (default $DISTOPT_SECRET) are recorded. ``refuse_unverified``: raise instead when a
    batch holds a result that cannot be recorded for a trial that has not ended (a cancel
    would end that trial CANCELLED and lose its result); the batch stays claimed, so the
    next reader gets it again."""
    from ..dispatch.rq_executor import withdraw_trial_jobs
    from ..dispatch.secret import env_secret

    secret = secret if secret is not None else env_secret()
    signed = _signed_study(storage, study)
    counts = InboxCounts()
    superseded: list[TrialRecord] = []
    while True:
        messages = storage.pop_results(study, timeout=0.0, limit=1000)
        if not messages:
            break
        results, untrusted = _screen(messages, secret, signed)
        counts.unverified += len(untrusted)
        refusing = bool(untrusted) and refuse_unverified
        if not results and not refusing:
            continue
        current = {r.tid: r for r in storage.get_trials(study)}
        if refusing:
            _refuse(study, secret, untrusted, {t for t, r in current.items() if not r.state.ended})
        changes, now = [], time.time()
        for msg in results:
            args = result_fields(msg)
            old = current.get(args["tid"])
            if old is None or old.state.ended:
                counts.dropped += 1
                continue
            new = finished_record(old, args, now)
            current[old.tid] = new
            changes.append((old.tid, old.state, new, None))
            if args["attempt"] is not None and int(args["attempt"]) != old.attempt:  # a newer attempt's job waits
                superseded.append(old)
        won = storage.transition_many(study, changes)
        counts.recorded += sum(won)
        counts.dropped += len(won) - sum(won)
    queue = storage.get_study(study).get("queue")
    if superseded and queue:
        withdraw_trial_jobs(storage.client, str(queue), study, superseded)
    return counts


def _refuse(study: str, secret: bytes | None, untrusted: list[dict[str, Any]], live: set[int]) -> None:
    """Raise when any of ``untrusted`` is for a trial in ``live`` (not ended)."""
    n = 0
    for m in untrusted:
        try:
            n += int(m.get("tid")) in live
        except (TypeError, ValueError, OverflowError):
            continue
    if not n:
        return
    if secret is None:
        why = ("cannot be checked without the study's secret: pass the secret its workers sign with "
               "(--secret-file FILE or $DISTOPT_SECRET) so they are recorded")
    else:
        why = ("do not verify under the secret given here: it is probably not the one the study's workers sign "
               "with (pass theirs), or they are forged")
    raise DistoptError(f"study {study!r} has {n} results waiting for trials that have not ended, which {why}; "
                       "--drop-unverified (drop_unverified=True) cancels without them. No trial was cancelled")


def _cancel_here(storage: RedisStorage, study: str) -> int:
    """Cancel the pending trials and withdraw their jobs, holding the study's lease."""
    from ..dispatch.rq_executor import withdraw_trial_jobs

    meta = storage.get_study(study)
    now = time.time()
    cancelled = []
    for rec in storage.get_trials(study, CANCELLABLE):
        new = cancelled_record(rec, now)
        if storage.transition(study, rec.tid, rec.state, new, attempt=rec.attempt):
            cancelled.append(rec)
    if cancelled and meta.get("queue"):
        withdraw_trial_jobs(storage.client, str(meta["queue"]), study, cancelled)
    storage.update_study(study, {"status": "cancelled", "stop_reason": "cancelled"})
    return len(cancelled)


def _result(storage: Storage, study: str, by: str, cancelled: int, recorded: int = 0, late: int = 0,
            unverified: int = 0) -> CancelResult:
    counts = storage.count_states(study)
    status = storage.get_study(study).get("status")
    return CancelResult(study=study, by=by, cancelled=cancelled,
                        finished=sum(counts[s] for s in TrialState if s.finished), status=status,
                        recorded=recorded, late=late, unverified=unverified)

