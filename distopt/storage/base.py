"""The storage interface: what a study needs to persist, and nothing about how.

Two implementations: ``MemoryStorage`` (one process, the embedded default) and
``RedisStorage`` (shared by a coordinator and workers on many machines). Only the Redis
implementation knows key names (``keys.py``). One contract test suite runs against both.

Roles: the coordinator is the only writer of trial records (``put_trial``,
``transition``); workers only ``push_result`` and ``heartbeat``; monitors only read.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import numbers
from typing import Any, Iterable, Mapping, Sequence

from ..errors import TrialError
from ..trial.record import TrialRecord, TrialState, can_transition

@dataclasses.dataclass(frozen=True)
class CurveData:
    """The intermediate values one attempt of a trial reported, in report order;
    ``complete``: the trial ended OK."""

    attempt: int
    steps: list[int]
    values: list[float]
    complete: bool = False


@dataclasses.dataclass(frozen=True)
class ReportReply:
    """What one ``Storage.report`` returns: whether the value was recorded (False for an
    older attempt than the one whose curve is stored, or a step already reported), and,
    when asked for, everything a pruner decides on: every trial's curve and how many
    trials ended OK."""

    recorded: bool
    curves: dict[int, CurveData] | None = None
    n_complete: int = 0


#: One compare-and-set for ``Storage.transition_many``: (tid, expected, new, attempt).
Change = tuple[int, "TrialState | Iterable[TrialState]", TrialRecord, "int | None"]


class Storage(abc.ABC):
    """Persistence of studies, trials, result inboxes, heartbeats, leases and blobs.

    ``fence``: the lease token of the coordinator writing through this object (``Lease``
    sets it). A backend shared by processes makes every coordinator write conditional on
    it still being the study's current lease generation, in the same atomic step, and
    raises ``LeaseLost`` otherwise; one process alone (memory) has nothing to fence.
    """

    fence: str | None = None

    # -- studies -------------------------------------------------------------------
    @abc.abstractmethod
    def create_study(self, name: str, meta: Mapping[str, Any]) -> bool:
        """Create a study with JSON-able ``meta``; False if it already exists."""

    @abc.abstractmethod
    def get_study(self, name: str) -> dict[str, Any]:
        """The study's meta; raises ``StudyNotFound`` naming the known studies."""

    @abc.abstractmethod
    def update_study(self, name: str, changes: Mapping[str, Any]) -> None:
        """Merge ``changes`` into the study's meta (e.g. ``{"status": "done"}``)."""

    @abc.abstractmethod
    def list_studies(self) -> list[str]:
        """Names of all studies, sorted."""

    @abc.abstractmethod
    def delete_study(self, name: str) -> None:
        """Remove a study and everything stored under it (not shared blobs)."""

    # -- trials (written by the coordinator only) ----------------------------------
    @abc.abstractmethod
    def next_tid(self, name: str, count: int = 1) -> int:
        """Reserve ``count`` consecutive trial ids atomically; returns the first."""

    @abc.abstractmethod
    def put_trial(self, name: str, record: TrialRecord) -> None:
        """Store a new trial record (overwrites one with the same tid)."""

    @abc.abstractmethod
    def transition(
        self,
        name: str,
        tid: int,
        expected: TrialState | Iterable[TrialState],
        new: TrialRecord,
        attempt: int | None = None,
    ) -> bool:
        """Compare-and-set: replace the record only if its state is one of ``expected``
        (and its attempt equals ``attempt`` when given) and the change is legal per
        ``TRANSITIONS``. Returns False when another process won or the state differs.
        """

    def put_trials(self, name: str, records: Sequence[TrialRecord]) -> None:
        """Store several new records; a backend that can do it in one round trip
        overrides this (the coordinator stores each batch of suggestions at once)."""
        for record in records:
            self.put_trial(name, record)

    def transition_many(self, name: str, changes: Sequence[Change]) -> list[bool]:
        """Several ``transition`` calls, (tid, expected, new, attempt) each; one result per
        change, as ``transition`` returns it. Backends may do them in one round trip."""
        return [self.transition(name, tid, expected, new, attempt) for tid, expected, new, attempt in changes]

    @abc.abstractmethod
    def get_trial(self, name: str, tid: int) -> TrialRecord | None:
        ...

    @abc.abstractmethod
    def get_trials(self, name: str, states: Iterable[TrialState] | None = None) -> list[TrialRecord]:
        """All trials of the study sorted by tid, optionally only those in ``states``."""

    @abc.abstractmethod
    def count_states(self, name: str) -> dict[TrialState, int]:
        """Number of trials per state (every state present, zeros included)."""

    # -- result inbox (workers write, the coordinator pops) ------------------------
    @abc.abstractmethod
    def push_result(self, name: str, message: Mapping[str, Any]) -> None:
        """Append a JSON-able result message to the study's inbox."""

    @abc.abstractmethod
    def pop_results(self, name: str, timeout: float = 0.0, limit: int = 1000) -> list[dict[str, Any]]:
        """Pop up to ``limit`` messages, waiting up to ``timeout`` seconds for the first
        (blocking pop, no busy polling). Returns [] on timeout. The next call may take it
        that the caller has recorded this batch (a storage shared between processes keeps
        a batch until then, so an interrupted caller loses nothing)."""

    # -- intermediate values (workers report, pruners and monitors read) -------------
    @abc.abstractmethod
    def report(self, name: str, tid: int, attempt: int, step: int, value: float, want: bool = True) -> ReportReply:
        """Append (``step``, ``value``) to the curve of trial ``tid``'s ``attempt`` and,
        with ``want``, return every trial's curve, atomically and in one round trip. A
        newer attempt starts its curve afresh; a report from an older attempt than the
        stored one, or of a step already reported, changes nothing (so a report sent
        again after a lost reply is not counted twice)."""

    @abc.abstractmethod
    def curves(self, name: str) -> dict[int, CurveData]:
        """Every trial's curve (``complete`` set for trials that ended OK)."""
    def peek_results(self, name: str, limit: int = 10000) -> list[dict[str, Any]]:
        """The first ``limit`` messages waiting in the inbox, left in place (monitors read
        what no coordinator has recorded yet)."""
        return []

    # -- attachments (hyperopt's trial attachments, JSON values) ------------------------
    def put_attachments(self, name: str, tid: int, items: Mapping[str, Any]) -> None:
        """Store trial ``tid``'s attachments (JSON-able values, bytes already encoded);
        a name stored again replaces its value."""
        raise NotImplementedError(f"{type(self).__name__} does not store attachments")

    def get_attachments(self, name: str, tid: int) -> dict[str, Any]:
        """Trial ``tid``'s stored attachments by name ({} when it has none)."""
        return {}

    # -- liveness --------------------------------------------------------------------
    # A beat and its clear are fenced like results: by attempt and by the study's incarnation.
    # A worker frozen past its ttl whose trial runs again elsewhere, or one still running a
    # trial of a study that was deleted and created again under its name (trial ids start
    # over), wakes up with a beat and a clear that are no longer its own; neither may touch
    # the liveness of the attempt that replaced it.
    @abc.abstractmethod
    def heartbeat(self, name: str, tid: int, attempt: int, deadline: float, worker: str | None = None, *,
                  incarnation: str | None = None) -> None:
        """Record that (tid, attempt) is alive until ``deadline`` (epoch seconds). Ignored
        when a newer attempt of the trial has beaten, or when ``incarnation`` is given and
        the study is another incarnation (None, or a study stored without one: not checked)."""

    @abc.abstractmethod
    def clear_heartbeat(self, name: str, tid: int, attempt: int | None = None, *,
                        incarnation: str | None = None) -> None:
        """Remove trial ``tid``'s heartbeat when the attempt that wrote it is ``attempt`` or
        older (any attempt's with None), and, with ``incarnation``, only in that incarnation
        of the study; otherwise, or when the study is gone, nothing happens."""

    @abc.abstractmethod
    def expired_heartbeats(self, name: str, now: float) -> list[tuple[int, int]]:
        """(tid, attempt) pairs whose deadline is before ``now``; the clock is an
        argument so tests inject time."""

    @abc.abstractmethod
    def heartbeats(self, name: str) -> dict[int, dict[str, Any]]:
        """tid -> {"attempt", "deadline", "worker"} for every live heartbeat."""

    # -- worker processes' own liveness (independent of any trial) ----------------------
    def beat_worker(self, worker: str, record: Mapping[str, Any], keep: float) -> None:
        """Publish the liveness record of worker process ``worker`` (``host:pid``); the
        record holds at least ``beat`` (epoch seconds of this beat). It is kept ``keep``
        seconds after the beat, then forgotten (a worker killed with SIGKILL leaves it)."""
        raise NotImplementedError(f"{type(self).__name__} does not keep worker records")

    def forget_worker(self, worker: str) -> None:
        """Remove a worker's record at once (it stopped cleanly)."""

    def worker_records(self) -> dict[str, dict[str, Any]]:
        """worker id -> its latest record, for every worker whose record is still kept.
        A backend without workers (memory) has none."""
        return {}

    # -- coordinator lease -------------------------------------------------------------
    @abc.abstractmethod
    def acquire_lease(self, name: str, owner: str, ttl: float, token: str | None = None) -> str | None:
        """Take or renew the study's lease for ``ttl`` seconds; returns the holder's token
        ``"<generation>:<owner>"`` (a new, higher generation for a new holder), or None
        when another owner holds an unexpired lease. Renewing with ``token`` succeeds only
        while that token is still the study's current generation."""

    @abc.abstractmethod
    def release_lease(self, name: str, owner: str) -> None:
        ...

    @abc.abstractmethod
    def lease_owner(self, name: str) -> str | None:
        ...

    @abc.abstractmethod
    def lease_left(self, name: str) -> float | None:
        """Seconds the study's lease has left, None when nobody holds it."""

    @abc.abstractmethod
    def take_over_lease(self, name: str, holder: str, owner: str, ttl: float) -> str | None:
        """Give the lease to ``owner`` for ``ttl`` seconds if ``holder`` still holds it
        (a holder known to be dead). A takeover is an acquisition: it returns the new
        holder's token ``"<generation>:<owner>"`` with a new, higher generation, so the old
        holder's writes stay fenced; None when it changed hands or lapsed meanwhile."""

    # -- objective blobs (shared across studies, keyed by digest) ---------------------
    @abc.abstractmethod
    def put_blob(self, digest: str, data: bytes) -> None:
        ...

    @abc.abstractmethod
    def get_blob(self, digest: str) -> bytes | None:
        ...

    def close(self) -> None:
        """Release connections; the default has nothing to release."""


def as_state_set(expected: TrialState | Iterable[TrialState]) -> frozenset[TrialState]:
    if isinstance(expected, TrialState):
        return frozenset({expected})
    return frozenset(expected)


def transition_sources(tid: int, expected: TrialState | Iterable[TrialState], new: TrialRecord) -> list[TrialState]:
    """The states in ``expected`` from which ``new.state`` may be reached (sorted by value,
    as the Lua scripts take them), after checking ``new`` is trial ``tid``'s record."""
    if new.tid != tid:
        raise TrialError(f"transition of trial {tid} was given the record of trial {new.tid}")
    return sorted((s for s in as_state_set(expected) if can_transition(s, new.state)), key=lambda s: s.value)


def other_incarnation(meta: Mapping[str, Any], incarnation: str | None) -> bool:
    """Whether a write naming ``incarnation`` was meant for another life of the study whose
    meta is ``meta``: a study deleted and created again under the same name starts its trial
    ids over, so only the incarnation tells its trial 3 from the old one's. Nothing is
    checked when either side names none (a caller that does not say, a study stored
    without one); the Redis scripts apply the same rule (``scripts.same_incarnation``)."""
    stored = meta.get("incarnation")
    return bool(incarnation) and isinstance(stored, str) and stored != incarnation


def sorted_records(records: Sequence[TrialRecord]) -> list[TrialRecord]:
    return sorted(records, key=lambda r: r.tid)


def check_report(tid: int, step: Any, value: Any) -> tuple[int, float]:
    """The step as an int >= 0 and the value as a float, or a TrialError naming them."""
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
        if isinstance(step, float) and step.is_integer() and step >= 0:
            step = int(step)
        else:
            raise TrialError(f"trial {tid}: report(step, value) needs a whole step >= 0 (an epoch, a round), "
                             f"got step {step!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TrialError(f"trial {tid}: report(step, value) needs a number for value, got {value!r} of type "
                         f"{type(value).__name__}") from None
    if math.isinf(v) and v < 0:
        raise TrialError(f"trial {tid}: report got value -inf at step {step}; report a finite number")
    return int(step), v
