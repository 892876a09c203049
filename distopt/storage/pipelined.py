"""Redis storage whose batch writes cost one round trip.

A coordinator stores each batch of suggestions and records each batch of results; done
one script call at a time, that is a round trip per trial on the coordinator, which is
what limits a single coordinator's throughput. Here the same atomic scripts run for the
whole batch in one pipeline: each stays a compare-and-set of its own, the batch is not
one transaction.
"""

from __future__ import annotations

from typing import Any, Sequence

import redis.exceptions

from .. import codec
from ..errors import StorageError, TrialError
from ..records import TrialRecord, can_transition
from .base import Change, as_state_set
from .keys import DEFAULT_PREFIX
from .redis_store import RedisStorage, _translating


class PipelinedRedisStorage(RedisStorage):
    """``RedisStorage`` with ``put_trials`` and ``transition_many`` in one round trip."""

    def _batch(self, name: str, script: Any, calls: Sequence[list[Any]]) -> list[int]:
        """Run ``script`` once per call in one pipeline. EVALSHA is sent directly (a
        pipeline holding Script objects checks SCRIPT EXISTS first: a second round trip);
        calls the server answers NOSCRIPT for are retried once after loading the script."""
        keys = [self.keys.studies, *self._trial_keys(name)]
        results: list[int] = [0] * len(calls)
        pending = list(range(len(calls)))
        for _ in range(2):
            pipe = self.client.pipeline(transaction=False)
            for i in pending:
                pipe.evalsha(script.sha, len(keys), *keys, name, *calls[i])
            retry = []
            for i, out in zip(pending, pipe.execute(raise_on_error=False)):
                if isinstance(out, redis.exceptions.NoScriptError):
                    retry.append(i)
                elif isinstance(out, Exception):
                    raise out
                else:
                    results[i] = int(out)
            if not retry:
                break
            self.client.script_load(script.script)
            pending = retry
        else:
            raise StorageError(f"Redis at {self.where} keeps forgetting distopt's scripts (NOSCRIPT)")
        if any(r == -1 for r in results):
            raise self._missing(name)
        return results

    @_translating
    def put_trials(self, name: str, records: Sequence[TrialRecord]) -> None:
        if records:
            self._batch(name, self._put_trial,
                        [[r.tid, codec.encode_record(r), r.state.value] for r in records])

    @_translating
    def transition_many(self, name: str, changes: Sequence[Change]) -> list[bool]:
        calls = []
        for tid, expected, new, attempt in changes:
            if new.tid != tid:
                raise TrialError(f"transition of trial {tid} was given the record of trial {new.tid}")
            allowed = sorted(s.value for s in as_state_set(expected) if can_transition(s, new.state))
            calls.append([tid, codec.encode_record(new), new.state.value, "" if attempt is None else int(attempt),
                          *allowed])
        return [r == 1 for r in self._batch(name, self._transition, calls)] if calls else []


def pipelined_storage(url: str, prefix: str = DEFAULT_PREFIX, retry_window: float = 0.0) -> PipelinedRedisStorage:
    """A ``PipelinedRedisStorage`` on ``url`` that has answered PING (at once: the first
    contact is not retried, so a wrong URL fails fast); later calls retry for
    ``retry_window`` seconds."""
    storage = PipelinedRedisStorage(url, prefix=prefix)
    storage.ping()
    storage.retry_window = float(retry_window)
    return storage
