"""Redis storage whose batch writes cost one round trip.

A coordinator stores each batch of suggestions and records each batch of results; done
one script call at a time, that is a round trip per trial on the coordinator, which is
what limits a single coordinator's throughput. Here one script call stores a whole batch
(reserving its trial ids too) or records a whole batch of results: each change stays a
compare-and-set of its own.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from ...trial import codec
from ...errors import TrialError
from ...trial.record import TrialRecord
from ..base import Change, transition_sources
from .keys import DEFAULT_PREFIX
from .errors import translating
from .scripts import PUT_TRIALS, TRANSITION_MANY
from .store import RedisStorage


class PipelinedRedisStorage(RedisStorage):
    """``RedisStorage`` with ``put_trials``, ``add_trials`` and ``transition_many`` in
    one round trip each."""

    def _register_scripts(self) -> None:
        super()._register_scripts()
        reg = self.client.register_script
        self._put_trials_script = reg(PUT_TRIALS)
        self._transition_many_script = reg(TRANSITION_MANY)
        self._next_free: dict[str, int] = {}  # study -> the next trial id, as last seen

    def _put_batch(self, name: str, records: Sequence[TrialRecord], expected: int | None) -> int:
        args: list[Any] = [name, "" if expected is None else int(expected)]
        for r in records:
            args += [r.tid, codec.encode_record(r), r.state.value]
        return int(self._run_fenced(self._put_trials_script, name, [*self._trial_keys(name), self.keys.tid(name)],
                                    args[1:]))

    @translating
    def put_trials(self, name: str, records: Sequence[TrialRecord]) -> None:
        if records:
            self._put_batch(name, records, None)

    @translating
    def add_trials(self, name: str, count: int,
                   build: Callable[[int], Sequence[TrialRecord]]) -> list[TrialRecord]:
        """Reserve ``count`` trial ids and store the records ``build(first_id)`` makes, in
        one round trip when no one else reserved ids since this storage last did (else
        two, as ``next_tid`` then ``put_trials``)."""
        if count < 1:
            raise TrialError(f"count must be at least 1 to reserve trial ids, got {count!r}")
        first = self._next_free.get(name)
        if first is not None:
            records = list(build(first))
            if self._put_batch(name, records, first) == 1:
                self._next_free[name] = first + count
                return records
        first = int(self._run_fenced(self._next_tid, name, [self.keys.tid(name)], [int(count)]))
        records = list(build(first))
        self._put_batch(name, records, None)
        self._next_free[name] = first + count
        return records

    @translating
    def transition_many(self, name: str, changes: Sequence[Change]) -> list[bool]:
        if not changes:
            return []
        args: list[Any] = [name]
        for tid, expected, new, attempt in changes:
            allowed = ",".join(s.value for s in transition_sources(tid, expected, new))
            args += [tid, codec.encode_record(new), new.state.value, "" if attempt is None else int(attempt),
                     allowed]
        out = self._run_fenced(self._transition_many_script, name, self._trial_keys(name), args[1:])
        if not isinstance(out, list):
            raise TrialError(f"unexpected reply {out!r} from Redis at {self.where} to a batch of transitions")
        return [int(r) == 1 for r in out]


def pipelined_storage(url: str, prefix: str = DEFAULT_PREFIX, retry_window: float = 0.0) -> PipelinedRedisStorage:
    """A ``PipelinedRedisStorage`` on ``url`` that has answered PING (at once: the first
    contact is not retried, so a wrong URL fails fast); later calls retry for
    ``retry_window`` seconds."""
    storage = PipelinedRedisStorage(url, prefix=prefix)
    storage.ping()
    storage.retry_window = float(retry_window)
    return storage
