"""Redis storage: one study shared by a coordinator, many workers and monitors.

``RedisStorage`` is one class built from one file per job: ``core`` (the client, pickling,
the checks every call makes), ``leases``, ``liveness`` (heartbeats, worker records),
``reports`` (intermediate values, attachments), and here studies, trials, the result
inbox and objective blobs. Its writes are the Lua scripts of ``scripts``; per-state sets
of tids are updated in the same scripts, which keeps ``count_states`` at six SCARDs
however many trials a study has.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable, Mapping

from ...trial import codec
from ...errors import TrialError
from ...trial.names import study_lost, validate_study_name
from ...trial.record import TrialRecord, TrialState
from ..base import transition_sources
from .connection import URL_SCHEMES, redact_url, text
from .errors import translating
from .leases import RedisLeases
from .liveness import RedisLiveness
from .reports import RedisReports

__all__ = ["RedisStorage", "URL_SCHEMES", "redact_url"]

#: Longest single blocking call, so a client's socket timeout never fires mid-BLPOP.
MAX_BLOCK = 1.0


class RedisStorage(RedisLeases, RedisLiveness, RedisReports):
    """Storage on a Redis server, from a URL (picklable) or an existing client.

    With ``retry_window`` > 0 every call rides out a Redis restart or a network blip for
    that many seconds (retrying with backoff) before it raises ``ConnectionFailed``; a
    coordinator wants that, a one-shot ``distopt status`` does not (the default, 0).
    """

    # -- studies -------------------------------------------------------------------
    @translating
    def create_study(self, name: str, meta: Mapping[str, Any]) -> bool:
        validate_study_name(name)
        plain = codec.to_plain(dict(meta))
        args = [x for k, v in plain.items() for x in (k, codec.dumps(v))]
        keys = [self.keys.studies, self.keys.meta(name), self.keys.vanished(name)]
        result = int(self._create_study(keys=keys, args=[name, *args]))
        if result == -2:
            raise study_lost(name, f"Redis at {self.where}", seen_by="a worker that finished one of its trials found "
                             "it missing")
        return bool(result)

    @translating
    def note_vanished(self, name: str, incarnation: str | None) -> None:
        """Remember that study ``name`` existed and is gone (a worker found it missing), so
        no coordinator silently starts a fresh study under its name."""
        self.client.set(self.keys.vanished(name), incarnation or "?")

    @translating
    def forget_vanished(self, name: str) -> None:
        """Allow the name of a lost study to be used again."""
        self.client.delete(self.keys.vanished(name))

    @translating
    def get_study(self, name: str) -> dict[str, Any]:
        (fields,) = self._read(name, lambda p: p.hgetall(self.keys.meta(name)))
        return {text(k): codec.loads(v) for k, v in fields.items()}

    @translating
    def update_study(self, name: str, changes: Mapping[str, Any]) -> None:
        plain = codec.to_plain(dict(changes))
        args = [x for k, v in plain.items() for x in (k, codec.dumps(v))]
        self._run_fenced(self._update_study, name, [self.keys.meta(name)], args)

    @translating
    def list_studies(self) -> list[str]:
        return sorted(text(n) for n in self.client.smembers(self.keys.studies))

    @translating
    def delete_study(self, name: str) -> None:
        validate_study_name(name)
        pipe = self.client.pipeline(transaction=True)
        pipe.srem(self.keys.studies, name)
        pipe.delete(*self.keys.study_keys(name))
        pipe.execute()

    # -- trials ----------------------------------------------------------------------
    @translating
    def next_tid(self, name: str, count: int = 1) -> int:
        if count < 1:
            raise TrialError(f"count must be at least 1 to reserve trial ids, got {count!r}")
        return int(self._run_fenced(self._next_tid, name, [self.keys.tid(name)], [int(count)]))

    @translating
    def put_trial(self, name: str, record: TrialRecord) -> None:
        encoded = codec.encode_record(record)
        self._run_fenced(self._put_trial, name, self._trial_keys(name), [record.tid, encoded, record.state.value])

    @translating
    def transition(
        self,
        name: str,
        tid: int,
        expected: TrialState | Iterable[TrialState],
        new: TrialRecord,
        attempt: int | None = None,
    ) -> bool:
        allowed = [s.value for s in transition_sources(tid, expected, new)]
        args = [tid, codec.encode_record(new), new.state.value, "" if attempt is None else int(attempt), *allowed]
        return int(self._run_fenced(self._transition, name, self._trial_keys(name), args)) == 1

    @translating
    def get_trial(self, name: str, tid: int) -> TrialRecord | None:
        (raw,) = self._read(name, lambda p: p.hget(self.keys.trials(name), str(int(tid))))
        return None if raw is None else codec.decode_record(raw)

    @translating
    def get_trials(self, name: str, states: Iterable[TrialState] | None = None) -> list[TrialRecord]:
        if states is None:
            (fields,) = self._read(name, lambda p: p.hgetall(self.keys.trials(name)))
            records = [codec.decode_record(v) for v in fields.values()]
        else:
            wanted = {TrialState(s) for s in states}
            if not wanted:
                self._read(name, lambda p: None)
                return []
            sets = [self.keys.state(name, s) for s in wanted]
            (tids,) = self._read(name, lambda p: p.sunion(sets))
            texts = self.client.hmget(self.keys.trials(name), list(tids)) if tids else []
            # A trial may have moved between the two reads; keep only what still matches.
            records = [r for r in (codec.decode_record(t) for t in texts if t is not None) if r.state in wanted]
        return sorted(records, key=lambda r: r.tid)

    @translating
    def count_states(self, name: str) -> dict[TrialState, int]:
        def fill(pipe: Any) -> None:
            for key in self.keys.state_sets(name):
                pipe.scard(key)

        counts = self._read(name, fill)
        return {s: int(n) for s, n in zip(TrialState, counts)}

    # -- result inbox ----------------------------------------------------------------
    @translating
    def push_result(self, name: str, message: Mapping[str, Any]) -> None:
        """A message for a study that ended (done, cancelled) is dropped: nobody would
        ever read it (a late result of a re-run or withdrawn trial)."""
        self._run(self._push_result, name, [self.keys.inbox(name), self.keys.meta(name)], [codec.dumps(dict(message))])

    @translating
    def peek_results(self, name: str, limit: int = 10000) -> list[dict[str, Any]]:
        if limit <= 0:
            return []
        def fill(pipe: Any) -> None:  # a message a coordinator moved aside but did not take comes first
            pipe.lrange(self.keys.claimed(name), 0, int(limit) - 1)
            pipe.lrange(self.keys.inbox(name), 0, int(limit) - 1)

        claimed, inbox = self._read(name, fill)
        return [codec.loads(m) for m in [*claimed, *inbox][: int(limit)]]

    @translating
    def pop_results(self, name: str, timeout: float = 0.0, limit: int = 1000,
                    prelude: Callable[[Any], None] | None = None) -> list[dict[str, Any]]:
        """Up to ``limit`` messages, waiting up to ``timeout`` seconds for the first. Each
        call to the server is one pipeline: the existence check, then a pop (a BLPOP that
        returns at once when the inbox holds messages, followed by an LPOP of the rest).
        ``prelude(pipeline)`` adds commands (writes whose replies are not needed) that
        run before the pop in the first of those round trips.

        Calling it again acknowledges the batch it returned last: the caller must have
        recorded that batch by then. Until then the batch stays in the study's ``claimed``
        list, so a coordinator interrupted (Ctrl-C, kill -9) between a pop and its writes
        loses no result: the next one to pop gets the batch again, and results for trials
        that already ended are dropped as duplicates.

        The pop is fenced: the blocking wait moves at most one message from the inbox to
        ``claimed``, and a script hands out ``claimed`` and then the inbox only while this
        storage's ``fence`` is the study's lease generation. A coordinator that lost its
        lease takes nothing: whatever it moved stays in ``claimed`` for the coordinator
        that holds the study."""
        inbox, claimed = self.keys.inbox(name), self.keys.claimed(name)
        limit = max(1, int(limit))
        deadline = time.monotonic() + max(0.0, timeout)
        remaining = max(0.0, timeout)
        while True:
            pipe = self.client.pipeline(transaction=False)
            if prelude is not None:
                prelude(pipe)
                prelude = None
            if remaining > 0:
                pipe.blmove(inbox, claimed, max(0.01, min(remaining, MAX_BLOCK)), "LEFT", "RIGHT")
            self._pop_results(keys=[self.keys.studies, claimed, inbox, self.keys.handout(name),
                                    self.keys.generation(name)],
                              args=[name, limit, self._handouts.get(name, ""), self.fence or ""], client=pipe)
            items = self._check_fenced(name, pipe.execute()[-1])
            if items:
                self._handouts[name] = text(items[0])
                return [codec.loads(m) for m in items[1:]]
            self._handouts.pop(name, None)  # the last batch is acknowledged
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []

    # -- blobs -------------------------------------------------------------------------
    @translating
    def put_blob(self, digest: str, data: bytes) -> None:
        self.client.set(self.keys.blob(digest), bytes(data))

    @translating
    def get_blob(self, digest: str) -> bytes | None:
        data = self.client.get(self.keys.blob(digest))
        return None if data is None else bytes(data)
