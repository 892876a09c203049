"""A trial's state changes besides its result: RUNNING when a worker starts it, LOST when
its worker vanished, QUEUED again for a new attempt, FAIL when out of retries, CANCELLED.

Each is a compare-and-set on the storage (the trial must still be in the state this
process saw), kept apart from ``Study`` so its class reads as ask, tell and read.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable, Sequence

from ..storage import Storage
from ..trial.codec import encode_record
from ..trial.record import TrialRecord, TrialState, cancelled_record


class TrialTransitions:
    """The state changes the coordinator makes to a study's trials (a mixin of ``Study``,
    which holds ``name``, ``storage``, ``_records`` and ``_cache``)."""

    name: str
    storage: Storage
    _records: dict[int, TrialRecord]

    _cache: Callable[[TrialRecord], None]

    def _cas(self, tid: int, expected: TrialState, new: TrialRecord, attempt: int | None = None) -> bool:
        return self.storage.transition(self.name, tid, expected, new, attempt=attempt) or self._landed(new)

    def _landed(self, new: TrialRecord) -> bool:
        """True when the storage already holds exactly ``new``: a write retried after its
        reply was lost (a Redis restart) finds its own change, which is no lost race."""
        stored = self.storage.get_trial(self.name, new.tid)
        return stored is not None and encode_record(stored) == encode_record(new)

    def mark_running(self, tid: int, attempt: int, worker: str | None, start_time: float | None) -> bool:
        old = self._records.get(tid)
        if old is None or old.state != TrialState.QUEUED or old.attempt != attempt:
            return False
        new = old.replace(state=TrialState.RUNNING, worker=worker, start_time=start_time, refresh_time=time.time())
        if not self._cas(tid, TrialState.QUEUED, new, attempt):
            return False
        self._cache(new)
        return True

    def mark_lost(self, tid: int, attempt: int, reason: str) -> TrialRecord | None:
        """A pending attempt whose worker vanished: LOST, out of the sampler's pending set."""
        old = self._records.get(tid)
        if old is None or not old.state.pending or old.attempt != attempt:
            return None
        new = old.replace(state=TrialState.LOST, error=reason, refresh_time=time.time())
        if not self._cas(tid, old.state, new, attempt):
            return None
        self._cache(new)
        return new

    def requeue(self, tid: int) -> TrialRecord | None:
        """A new attempt for a LOST trial: QUEUED again with attempt + 1."""
        old = self._records.get(tid)
        if old is None or old.state != TrialState.LOST:
            return None
        now = time.time()
        new = old.replace(state=TrialState.QUEUED, attempt=old.attempt + 1, worker=None,
                          start_time=None, book_time=now, refresh_time=now)
        if not self._cas(tid, TrialState.LOST, new):
            return None
        self._cache(new)
        return new

    def give_up(self, tid: int, reason: str, expected: Sequence[TrialState] = (TrialState.LOST,)) -> TrialRecord | None:
        """End a trial as FAIL without a result from a worker (out of retries, or its
        worker hung past the trial timeout); it counts toward ``max_evals``."""
        old = self._records.get(tid)
        if old is None or old.state not in expected:
            return None
        now = time.time()
        new = old.replace(state=TrialState.FAIL, loss=None, result={"status": "fail"}, error=reason,
                          end_time=now, refresh_time=now)
        if not self._cas(tid, old.state, new, old.attempt):
            return None
        self._cache(new)
        return new

    def cancel(self, tids: Iterable[int] | None = None) -> list[TrialRecord]:
        """Cancel the given (default: all) queued, running or lost trials."""
        targets = list(tids) if tids is not None else [t for t, r in self._records.items() if not r.state.ended]
        done = []
        for tid in targets:
            old = self._records[tid]
            if old.state.ended:
                continue
            new = cancelled_record(old, time.time())
            if self._cas(tid, old.state, new):
                self._cache(new)
                done.append(new)
        return done
