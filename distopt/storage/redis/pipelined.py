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
from .store import _STATE_SLOT, _STUDY_EXISTS, RedisStorage, _translating

# KEYS: studies, trials, state sets..., tid counter | ARGV: name, expected next tid or '',
#       then tid, record json, state for each record.
# With an expected next tid, the ids are reserved in the same call: it stores nothing
# and returns -2 unless the counter still stands there (0 when none was reserved yet).
# A call sent again after its reply was lost finds its own batch and returns 1.
_PUT_TRIALS = _STATE_SLOT + _STUDY_EXISTS + """
local n = math.floor((#ARGV - 2) / 3)
if ARGV[2] ~= '' then
  local cur = tonumber(redis.call('GET', KEYS[#KEYS]) or '0')
  local expected = tonumber(ARGV[2])
  if cur ~= expected then
    if n > 0 and cur == expected + n and redis.call('HGET', KEYS[2], ARGV[3]) == ARGV[4] then return 1 end
    return -2
  end
  redis.call('INCRBY', KEYS[#KEYS], n)
end
for i = 3, #ARGV, 3 do
  local old = redis.call('HGET', KEYS[2], ARGV[i])
  if old then redis.call('SREM', KEYS[SLOT[cjson.decode(old).state]], ARGV[i]) end
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call('SADD', KEYS[SLOT[ARGV[i + 2]]], ARGV[i])
end
return 1
"""
# KEYS: studies, trials, state sets... | ARGV: name, then for each change: tid, record
#       json, new state, expected attempt or '', allowed old states joined by ','.
# One reply per change: 1 when it was applied, 0 when the stored record did not match.
_TRANSITION_MANY = _STATE_SLOT + _STUDY_EXISTS + """
local out = {}
for i = 2, #ARGV, 5 do
  local tid = ARGV[i]
  local done = 0
  local old = redis.call('HGET', KEYS[2], tid)
  if old then
    local rec = cjson.decode(old)
    if (ARGV[i + 3] == '' or tonumber(rec.attempt) == tonumber(ARGV[i + 3]))
        and string.find(',' .. ARGV[i + 4] .. ',', ',' .. rec.state .. ',', 1, true) then
      redis.call('SREM', KEYS[SLOT[rec.state]], tid)
      redis.call('HSET', KEYS[2], tid, ARGV[i + 1])
      redis.call('SADD', KEYS[SLOT[ARGV[i + 2]]], tid)
      done = 1
    end
  end
  out[#out + 1] = done
end
return out
"""


class PipelinedRedisStorage(RedisStorage):
    """``RedisStorage`` with ``put_trials``, ``add_trials`` and ``transition_many`` in
    one round trip each."""

    def _register_scripts(self) -> None:
        super()._register_scripts()
        reg = self.client.register_script
        self._put_trials_script = reg(_PUT_TRIALS)
        self._transition_many_script = reg(_TRANSITION_MANY)
        self._next_free: dict[str, int] = {}  # study -> the next trial id, as last seen

    def _put_batch(self, name: str, records: Sequence[TrialRecord], expected: int | None) -> int:
        args: list[Any] = [name, "" if expected is None else int(expected)]
        for r in records:
            args += [r.tid, codec.encode_record(r), r.state.value]
        keys = [self.keys.studies, *self._trial_keys(name), self.keys.tid(name)]
        result = int(self._put_trials_script(keys=keys, args=args))
        if result == -1:
            raise self._missing(name)
        return result

    @_translating
    def put_trials(self, name: str, records: Sequence[TrialRecord]) -> None:
        if records:
            self._put_batch(name, records, None)

    @_translating
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
        first = self._run(self._next_tid, name, [self.keys.tid(name)], [int(count)])
        records = list(build(first))
        self._put_batch(name, records, None)
        self._next_free[name] = first + count
        return records

    @_translating
    def transition_many(self, name: str, changes: Sequence[Change]) -> list[bool]:
        if not changes:
            return []
        args: list[Any] = [name]
        for tid, expected, new, attempt in changes:
            allowed = ",".join(s.value for s in transition_sources(tid, expected, new))
            args += [tid, codec.encode_record(new), new.state.value, "" if attempt is None else int(attempt),
                     allowed]
        keys = [self.keys.studies, *self._trial_keys(name)]
        out = self._transition_many_script(keys=keys, args=args)
        if not isinstance(out, list):
            if int(out) == -1:
                raise self._missing(name)
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
