"""In-process storage: the embedded default, and the reference the Redis backend must match.

One lock guards everything, so the compare-and-set semantics are the same as Redis's
atomic scripts. Values go through the JSON codec on the way in, so a study kept here looks
exactly like one read back from Redis (numpy scalars become floats, tuples become lists).
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from typing import Any, Callable, Iterable, Mapping

from ..trial import codec
from ..errors import LeaseError, StorageError, TrialError
from ..trial.names import study_not_found, validate_digest, validate_study_name, validate_worker_id
from ..trial.record import TrialRecord, TrialState
from .base import CurveData, ReportReply, Storage, check_report, other_incarnation, transition_sources


@dataclasses.dataclass
class _Study:
    meta: dict[str, Any]
    trials: dict[int, TrialRecord] = dataclasses.field(default_factory=dict)
    counts: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    next_tid: int = 0
    inbox: collections.deque = dataclasses.field(default_factory=collections.deque)
    heartbeats: dict[int, dict[str, Any]] = dataclasses.field(default_factory=dict)
    lease: tuple[str, float] | None = None  # (owner, expiry on self._clock)
    curves: dict[int, tuple[int, list[int], list[float]]] = dataclasses.field(default_factory=dict)
    generation: str | None = None  # "<n>:<owner>" of the lease's current holder
    attachments: dict[int, dict[str, Any]] = dataclasses.field(default_factory=dict)


def _normalized(record: TrialRecord) -> TrialRecord:
    """The record as the JSON codec would give it back (rejecting non-JSON values as
    Redis would), without paying for a text round trip on every write."""
    return dataclasses.replace(
        record,
        vals=codec.to_plain(dict(record.vals)),
        result=codec.to_plain(dict(record.result)),
        loss=None if record.loss is None else float(record.loss),
    )


def _json_copy(value: Any) -> Any:
    return codec.loads(codec.dumps(value))


class MemoryStorage(Storage):
    """Thread-safe storage for one process. ``clock`` (monotonic seconds) times leases."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._inbox_ready = threading.Condition(self._lock)
        self._studies: dict[str, _Study] = {}
        self._blobs: dict[str, bytes] = {}
        self._workers: dict[str, tuple[dict[str, Any], float]] = {}  # id -> (record, expiry on clock)

    def __repr__(self) -> str:
        return f"MemoryStorage({len(self._studies)} studies)"

    def __getstate__(self) -> dict[str, Any]:
        raise StorageError(
            "MemoryStorage lives in one process and cannot be pickled or shared with workers; "
            "use RedisStorage('redis://host:port/0') to share a study between processes"
        )

    def _get(self, name: str) -> _Study:
        """The study; callers hold the lock."""
        validate_study_name(name)
        study = self._studies.get(name)
        if study is None:
            raise study_not_found(name, self._studies, "memory storage")
        return study

    # -- studies -------------------------------------------------------------------
    def create_study(self, name: str, meta: Mapping[str, Any]) -> bool:
        validate_study_name(name)
        meta = _json_copy(dict(meta))
        with self._lock:
            if name in self._studies:
                return False
            self._studies[name] = _Study(meta=meta)
            return True

    def get_study(self, name: str) -> dict[str, Any]:
        with self._lock:
            return _json_copy(self._get(name).meta)

    def update_study(self, name: str, changes: Mapping[str, Any]) -> None:
        changes = _json_copy(dict(changes))
        with self._lock:
            self._get(name).meta.update(changes)

    def list_studies(self) -> list[str]:
        with self._lock:
            return sorted(self._studies)

    def delete_study(self, name: str) -> None:
        validate_study_name(name)
        with self._lock:
            self._studies.pop(name, None)
            self._inbox_ready.notify_all()

    # -- trials ----------------------------------------------------------------------
    def next_tid(self, name: str, count: int = 1) -> int:
        if count < 1:
            raise TrialError(f"count must be at least 1 to reserve trial ids, got {count!r}")
        with self._lock:
            study = self._get(name)
            first = study.next_tid
            study.next_tid += count
            return first

    def put_trial(self, name: str, record: TrialRecord) -> None:
        record = _normalized(record)
        with self._lock:
            study = self._get(name)
            old = study.trials.get(record.tid)
            if old is not None:
                study.counts[old.state] -= 1
            study.trials[record.tid] = record
            study.counts[record.state] += 1

    def transition(
        self,
        name: str,
        tid: int,
        expected: TrialState | Iterable[TrialState],
        new: TrialRecord,
        attempt: int | None = None,
    ) -> bool:
        allowed = set(transition_sources(tid, expected, new))
        new = _normalized(new)
        with self._lock:
            study = self._get(name)
            old = study.trials.get(tid)
            if old is None or old.state not in allowed:
                return False
            if attempt is not None and old.attempt != attempt:
                return False
            study.trials[tid] = new
            study.counts[old.state] -= 1
            study.counts[new.state] += 1
            return True

    def get_trial(self, name: str, tid: int) -> TrialRecord | None:
        with self._lock:
            return self._get(name).trials.get(int(tid))

    def get_trials(self, name: str, states: Iterable[TrialState] | None = None) -> list[TrialRecord]:
        wanted = None if states is None else {TrialState(s) for s in states}
        with self._lock:
            records = list(self._get(name).trials.values())
        if wanted is not None:
            records = [r for r in records if r.state in wanted]
        return sorted(records, key=lambda r: r.tid)

    def count_states(self, name: str) -> dict[TrialState, int]:
        with self._lock:
            counts = self._get(name).counts
            return {s: counts[s] for s in TrialState}

    # -- result inbox ----------------------------------------------------------------
    def push_result(self, name: str, message: Mapping[str, Any]) -> None:
        message = _json_copy(dict(message))
        with self._lock:
            self._get(name).inbox.append(message)
            self._inbox_ready.notify_all()

    def peek_results(self, name: str, limit: int = 10000) -> list[dict[str, Any]]:
        with self._lock:
            return [_json_copy(m) for m in list(self._get(name).inbox)[: max(0, int(limit))]]

    def pop_results(self, name: str, timeout: float = 0.0, limit: int = 1000) -> list[dict[str, Any]]:
        deadline = time.monotonic() + max(0.0, timeout)
        with self._lock:
            study = self._get(name)
            while not study.inbox:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self._inbox_ready.wait(remaining)
                if self._studies.get(name) is not study:  # deleted while we waited
                    return []
            count = min(max(1, limit), len(study.inbox))
            return [study.inbox.popleft() for _ in range(count)]

    # -- intermediate values ---------------------------------------------------------
    def report(self, name: str, tid: int, attempt: int, step: int, value: float, want: bool = True) -> ReportReply:
        step, value = check_report(tid, step, value)
        with self._lock:
            study = self._get(name)
            cur = study.curves.get(int(tid))
            if cur is None or cur[0] < attempt:
                cur = (int(attempt), [], [])
            recorded = cur[0] == attempt and step not in cur[1]
            if recorded:
                cur[1].append(step)
                cur[2].append(value)
                study.curves[int(tid)] = cur
            if not want:
                return ReportReply(recorded)
            return ReportReply(recorded, self._curves(study), study.counts[TrialState.OK])

    def curves(self, name: str) -> dict[int, CurveData]:
        with self._lock:
            return self._curves(self._get(name))

    @staticmethod
    def _curves(study: _Study) -> dict[int, CurveData]:
        out = {}
        for tid, (attempt, steps, values) in study.curves.items():
            rec = study.trials.get(tid)
            out[tid] = CurveData(attempt, list(steps), list(values), rec is not None and rec.state == TrialState.OK)
        return out
    # -- attachments -------------------------------------------------------------------
    def put_attachments(self, name: str, tid: int, items: Mapping[str, Any]) -> None:
        items = _json_copy(dict(items))
        with self._lock:
            self._get(name).attachments.setdefault(int(tid), {}).update(items)

    def get_attachments(self, name: str, tid: int) -> dict[str, Any]:
        with self._lock:
            return _json_copy(self._get(name).attachments.get(int(tid), {}))

    # -- liveness --------------------------------------------------------------------
    def heartbeat(self, name: str, tid: int, attempt: int, deadline: float, worker: str | None = None, *,
                  incarnation: str | None = None) -> None:
        """A beat from an older attempt than the one recorded, or from another incarnation
        of the study, is ignored, so a worker that was presumed dead cannot hide the
        liveness of the attempt that replaced it."""
        with self._lock:
            study = self._get(name)
            if other_incarnation(study.meta, incarnation):
                return
            current = study.heartbeats.get(int(tid))
            if current is not None and current["attempt"] > attempt:
                return
            study.heartbeats[int(tid)] = {"attempt": int(attempt), "deadline": float(deadline), "worker": worker}

    def clear_heartbeat(self, name: str, tid: int, attempt: int | None = None, *,
                        incarnation: str | None = None) -> None:
        validate_study_name(name)
        with self._lock:
            study = self._studies.get(name)
            if study is None or other_incarnation(study.meta, incarnation):
                return
            current = study.heartbeats.get(int(tid))
            if current is not None and (attempt is None or current["attempt"] <= attempt):
                del study.heartbeats[int(tid)]

    def expired_heartbeats(self, name: str, now: float) -> list[tuple[int, int]]:
        with self._lock:
            beats = self._get(name).heartbeats
            return sorted((tid, b["attempt"]) for tid, b in beats.items() if b["deadline"] < now)

    def heartbeats(self, name: str) -> dict[int, dict[str, Any]]:
        with self._lock:
            return {tid: dict(b) for tid, b in sorted(self._get(name).heartbeats.items())}

    # -- worker records ----------------------------------------------------------------
    def beat_worker(self, worker: str, record: Mapping[str, Any], keep: float) -> None:
        validate_worker_id(worker)
        record = _json_copy(dict(record))
        with self._lock:
            self._workers[worker] = (record, self._clock() + float(keep))

    def forget_worker(self, worker: str) -> None:
        validate_worker_id(worker)
        with self._lock:
            self._workers.pop(worker, None)

    def worker_records(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            now = self._clock()
            return {w: _json_copy(r) for w, (r, expiry) in sorted(self._workers.items()) if expiry > now}

    # -- coordinator lease -------------------------------------------------------------
    def acquire_lease(self, name: str, owner: str, ttl: float, token: str | None = None) -> str | None:
        if ttl <= 0:
            raise LeaseError(f"lease ttl must be a positive number of seconds, got {ttl!r}")
        with self._lock:
            study = self._get(name)
            now = self._clock()
            held = study.lease is not None and study.lease[1] > now
            if held and study.lease[0] != owner:  # type: ignore[index]
                return None
            if token is not None:
                if study.generation != token:
                    return None
            elif not (held and study.generation is not None and study.generation.endswith(f":{owner}")):
                n = int(study.generation.partition(":")[0]) if study.generation else 0
                study.generation = f"{n + 1}:{owner}"
            study.lease = (owner, now + ttl)
            return study.generation

    def release_lease(self, name: str, owner: str) -> None:
        validate_study_name(name)
        with self._lock:
            study = self._studies.get(name)
            if study is not None and study.lease is not None and study.lease[0] == owner:
                study.lease = None

    def lease_owner(self, name: str) -> str | None:
        with self._lock:
            lease = self._get(name).lease
            if lease is None or lease[1] <= self._clock():
                return None
            return lease[0]

    def lease_left(self, name: str) -> float | None:
        with self._lock:
            lease = self._get(name).lease
            left = None if lease is None else lease[1] - self._clock()
            return left if left is not None and left > 0 else None

    def take_over_lease(self, name: str, holder: str, owner: str, ttl: float) -> str | None:
        if ttl <= 0:
            raise LeaseError(f"lease ttl must be a positive number of seconds, got {ttl!r}")
        with self._lock:
            study = self._get(name)
            if study.lease is None or study.lease[0] != holder or study.lease[1] <= self._clock():
                return None
            n = int(study.generation.partition(":")[0]) if study.generation else 0
            study.generation = f"{n + 1}:{owner}"
            study.lease = (owner, self._clock() + ttl)
            return study.generation

    # -- blobs -------------------------------------------------------------------------
    def put_blob(self, digest: str, data: bytes) -> None:
        validate_digest(digest)
        with self._lock:
            self._blobs[digest] = bytes(data)

    def get_blob(self, digest: str) -> bytes | None:
        validate_digest(digest)
        with self._lock:
            return self._blobs.get(digest)
