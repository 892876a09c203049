"""Redis storage: one study shared by a coordinator, many workers and monitors.

Every write that must check something first (does the study exist? is the trial still in
the expected state?) is one Lua script, so it is atomic without WATCH retries and costs
one round trip. Per-state sets of tids are updated in the same scripts, which keeps
``count_states`` at six SCARDs however many trials a study has.

The storage pickles as its URL and prefix, never as a connection, so it can travel inside
an rq job and reconnect on the worker.
"""

from __future__ import annotations

import functools
import logging
import time
import urllib.parse
from typing import Any, Callable, Iterable, Mapping, TypeVar

import redis
import redis.exceptions

from ...trial import codec
from ...errors import ConnectionFailed, LeaseError, LeaseLost, StorageError, StudyNotFound, TrialError
from ...trial.names import refuse_placeholder, study_lost, study_not_found, validate_study_name
from ...trial.record import TrialRecord, TrialState
from .errors import translate_redis_error
from .retry import Backoff, call_with_retry
from ..base import CurveData, ReportReply, Storage, check_report, transition_sources
from .keys import DEFAULT_PREFIX, Keys

log = logging.getLogger(__name__)

URL_SCHEMES = ("redis://", "rediss://", "unix://")

#: Longest single blocking call, so a client's socket timeout never fires mid-BLPOP.
_MAX_BLOCK = 1.0

# KEYS[3..] of the trial scripts are the per-state sets, in TrialState order.
_STATE_SLOT = "local SLOT = {" + ", ".join(f"{s.value} = {i + 3}" for i, s in enumerate(TrialState)) + "}\n"
_STUDY_EXISTS = "if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return -1 end\n"
# The fence of a coordinator's writes: the last key is the study's generation key and the
# last argument the writer's lease token ('' for a writer that holds no lease). Both are
# removed before the script's own body reads KEYS and ARGV. A token that is not the
# study's current generation writes nothing (-3): a coordinator that lost its lease, even
# one frozen past its ttl that has not noticed yet, changes nothing.
_FENCED = """
local FENCE_KEY = table.remove(KEYS)
local FENCE = table.remove(ARGV)
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return -1 end
if FENCE ~= '' and redis.call('GET', FENCE_KEY) ~= FENCE then return -3 end
"""

# KEYS: studies, meta, vanished | ARGV: name, field1, json1, field2, json2, ...
_CREATE_STUDY = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 and redis.call('EXISTS', KEYS[3]) == 1 then return -2 end
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
return 1
"""
# KEYS: studies, meta | ARGV: name, field1, json1, ...
_UPDATE_STUDY = _FENCED + """
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
return 1
"""
# KEYS: studies, counter | ARGV: name, count
_NEXT_TID = _FENCED + """
return redis.call('INCRBY', KEYS[2], ARGV[2]) - tonumber(ARGV[2])
"""
# KEYS: studies, trials, state sets... | ARGV: name, tid, record json, state
_PUT_TRIAL = _STATE_SLOT + _FENCED + """
local old = redis.call('HGET', KEYS[2], ARGV[2])
if old then redis.call('SREM', KEYS[SLOT[cjson.decode(old).state]], ARGV[2]) end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('SADD', KEYS[SLOT[ARGV[4]]], ARGV[2])
return 1
"""
# KEYS: studies, trials, state sets... | ARGV: name, tid, record json, new state,
#       expected attempt or '', allowed old states...
_TRANSITION = _STATE_SLOT + _FENCED + """
local old = redis.call('HGET', KEYS[2], ARGV[2])
if not old then return 0 end
local rec = cjson.decode(old)
if ARGV[5] ~= '' and tonumber(rec.attempt) ~= tonumber(ARGV[5]) then return 0 end
local allowed = false
for i = 6, #ARGV do if ARGV[i] == rec.state then allowed = true break end end
if not allowed then return 0 end
redis.call('SREM', KEYS[SLOT[rec.state]], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('SADD', KEYS[SLOT[ARGV[4]]], ARGV[2])
return 1
"""
# KEYS: studies, inbox | ARGV: name, message json
_PUSH_RESULT = _STUDY_EXISTS + """
local status = redis.call('HGET', KEYS[3], 'status')
if status == '"done"' or status == '"cancelled"' then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[2])
return 1
"""
# KEYS: studies, curves hash, ok-state set | ARGV: name, tid, attempt, step, value text, want (1/0).
# Reply: {recorded} or, with want, {recorded, n ok, tid1, curve1 json, ok1, tid2, ...}.
_REPORT = _STUDY_EXISTS + """
local a = tonumber(ARGV[3])
local step = tonumber(ARGV[4])
local cur = redis.call('HGET', KEYS[2], ARGV[2])
local c = nil
if cur then c = cjson.decode(cur) end
if c == nil or tonumber(c.a) < a then c = {a = a, s = {}, v = {}} end
local recorded = 0
if tonumber(c.a) == a then
  recorded = 1
  for i = 1, #c.s do if tonumber(c.s[i]) == step then recorded = 0 break end end
  if recorded == 1 then
    c.s[#c.s + 1] = step
    c.v[#c.v + 1] = ARGV[5]
    redis.call('HSET', KEYS[2], ARGV[2], cjson.encode(c))
  end
end
if ARGV[6] ~= '1' then return {recorded} end
local out = {recorded, redis.call('SCARD', KEYS[3])}
local all = redis.call('HGETALL', KEYS[2])
for i = 1, #all, 2 do
  out[#out + 1] = all[i]
  out[#out + 1] = all[i + 1]
  out[#out + 1] = redis.call('SISMEMBER', KEYS[3], all[i])
end
return out
"""
# KEYS: studies, hb zset, hbinfo hash | ARGV: name, tid, attempt, deadline, info json
_HEARTBEAT = _STUDY_EXISTS + """
local cur = redis.call('HGET', KEYS[3], ARGV[2])
if cur and tonumber(cjson.decode(cur).attempt) > tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[5])
return 1
"""
# KEYS: studies, hb zset, hbinfo hash | ARGV: name, tid
_CLEAR_HEARTBEAT = _FENCED + """
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
return 1
"""
# KEYS: studies, claimed, inbox | ARGV: name, limit
# What an earlier BLMOVE (in the same round trip) or a fenced-out coordinator left in
# ``claimed`` comes first, then the inbox; a fenced-out caller takes nothing.
_POP_RESULTS = _FENCED + """
local limit = tonumber(ARGV[2])
local out = redis.call('LRANGE', KEYS[2], 0, limit - 1)
if #out > 0 then redis.call('LTRIM', KEYS[2], #out, -1) end
if #out < limit then
  local rest = redis.call('LPOP', KEYS[3], limit - #out)
  if rest then for _, m in ipairs(rest) do out[#out + 1] = m end end
end
return out
"""
# KEYS: studies, lease, generation | ARGV: name, owner, ttl ms, token to renew or ''
# Returns the holder's token "<n>:<owner>" (a new generation n for a new holder), or nil
# when another owner holds the lease or, renewing, the token is no longer current.
_ACQUIRE_LEASE = _STUDY_EXISTS + """
local cur = redis.call('GET', KEYS[2])
if cur and cur ~= ARGV[2] then return false end
local gen = redis.call('GET', KEYS[3])
if ARGV[4] ~= '' then
  if gen ~= ARGV[4] then return false end
elseif not (cur and gen and string.sub(gen, -(#ARGV[2] + 1)) == ':' .. ARGV[2]) then
  local n = 0
  if gen then n = tonumber(string.match(gen, '^(%d+):')) or 0 end
  gen = (n + 1) .. ':' .. ARGV[2]
  redis.call('SET', KEYS[3], gen)
end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return gen
"""
# KEYS: studies, lease, generation | ARGV: name, holder, owner, ttl_ms
# A takeover (of a holder known to be dead) is an acquisition: the new owner gets a new
# generation, so whatever the old holder still tries to write stays fenced out. Returns
# the new token, or nil when ``holder`` no longer holds the lease.
_TAKE_OVER_LEASE = _STUDY_EXISTS + """
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return false end
local gen = redis.call('GET', KEYS[3])
local n = 0
if gen then n = tonumber(string.match(gen, '^(%d+):')) or 0 end
gen = (n + 1) .. ':' .. ARGV[3]
redis.call('SET', KEYS[3], gen)
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
return gen
"""
# KEYS: lease | ARGV: owner
_RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""

F = TypeVar("F", bound=Callable[..., Any])


def redact_url(url: str) -> str:
    """The URL with any password replaced by '***', for messages and reprs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _url_from_client(client: Any) -> str | None:
    """Rebuild a URL from a real redis-py client's connection settings (None if impossible)."""
    pool = getattr(client, "connection_pool", None)
    if pool is None or type(client).__module__.startswith("fakeredis"):
        return None
    kw = pool.connection_kwargs
    cls = getattr(pool, "connection_class", None)
    db = kw.get("db", 0)
    auth = ""
    if kw.get("password") is not None:
        user = urllib.parse.quote(kw.get("username") or "", safe="")
        auth = f"{user}:{urllib.parse.quote(kw['password'], safe='')}@"
    elif kw.get("username"):
        auth = f"{urllib.parse.quote(kw['username'], safe='')}@"
    if cls is not None and issubclass(cls, redis.UnixDomainSocketConnection):
        return f"unix://{auth}{kw['path']}?db={db}"
    scheme = "rediss" if cls is not None and issubclass(cls, redis.SSLConnection) else "redis"
    return f"{scheme}://{auth}{kw.get('host', 'localhost')}:{kw.get('port', 6379)}/{db}"


def _translating(method: F) -> F:
    """Turn redis-py's exceptions into distopt's (``translate_redis_error``), retrying
    transient failures for ``retry_window`` seconds first."""

    @functools.wraps(method)
    def wrapper(self: "RedisStorage", *args: Any, **kwargs: Any) -> Any:
        try:
            if self.retry_window > 0:
                return call_with_retry(method, self, *args, backoff=Backoff(self.retry_window),
                                       what=f"{method.__name__} on Redis at {self.where}", **kwargs)
            return method(self, *args, **kwargs)
        except redis.exceptions.RedisError as exc:
            raise translate_redis_error(exc, self.where, f"running {method.__name__}", self._display_url) from exc

    return wrapper  # type: ignore[return-value]


class RedisStorage(Storage):
    """Storage on a Redis server, from a URL (picklable) or an existing client.

    With ``retry_window`` > 0 every call rides out a Redis restart or a network blip for
    that many seconds (retrying with backoff) before it raises ``ConnectionFailed``; a
    coordinator wants that, a one-shot ``distopt status`` does not (the default, 0).
    """

    def __init__(self, target: str | Any, *, prefix: str = DEFAULT_PREFIX, socket_connect_timeout: float = 5.0,
                 retry_window: float = 0.0) -> None:
        self.keys = Keys(prefix)
        #: The lease token this storage's writes are fenced with (``Lease`` sets it).
        self.fence: str | None = None
        self._socket_connect_timeout = socket_connect_timeout
        self.retry_window = float(retry_window)
        if isinstance(target, str):
            self._url: str | None = target
            self.client = self._connect(target)
            self._owns_client = True
        else:
            if not hasattr(target, "register_script"):
                raise StorageError(f"RedisStorage needs a redis:// URL or a redis client, got {target!r}")
            kw = getattr(getattr(target, "connection_pool", None), "connection_kwargs", {})
            if kw.get("decode_responses"):
                raise StorageError(
                    "RedisStorage needs a client made with decode_responses=False "
                    "(objective blobs are bytes); pass a URL or a client without it"
                )
            self._url = _url_from_client(target)
            self.client = target
            self._owns_client = False
        self._register_scripts()

    # -- construction, pickling ------------------------------------------------------
    def _connect(self, url: str) -> redis.Redis:
        if not url.startswith(URL_SCHEMES):
            raise ConnectionFailed(
                f"invalid Redis URL {redact_url(url)!r}: it must start with one of "
                f"{', '.join(URL_SCHEMES)}, e.g. redis://localhost:6379/0"
            )
        password = urllib.parse.unquote(urllib.parse.urlsplit(url).password or "")
        refuse_placeholder(password or None, f"the password in Redis URL {redact_url(url)!r}",
                           "set REDIS_PASSWORD (and the URL) to a random string, e.g. "
                           "python -c 'import secrets; print(secrets.token_hex(32))'")
        try:
            return redis.Redis.from_url(url, socket_connect_timeout=self._socket_connect_timeout)
        except ValueError as exc:
            raise ConnectionFailed(
                f"invalid Redis URL {redact_url(url)!r} ({exc}); "
                "expected redis://[user:password@]host:port/db, rediss://... or unix:///path/to/socket"
            ) from exc

    def _register_scripts(self) -> None:
        reg = self.client.register_script
        self._create_study = reg(_CREATE_STUDY)
        self._update_study = reg(_UPDATE_STUDY)
        self._next_tid = reg(_NEXT_TID)
        self._put_trial = reg(_PUT_TRIAL)
        self._transition = reg(_TRANSITION)
        self._push_result = reg(_PUSH_RESULT)
        self._heartbeat = reg(_HEARTBEAT)
        self._report = reg(_REPORT)
        self._acquire_lease = reg(_ACQUIRE_LEASE)
        self._clear_heartbeat = reg(_CLEAR_HEARTBEAT)
        self._pop_results = reg(_POP_RESULTS)
        self._release_lease = reg(_RELEASE_LEASE)
        self._take_over_lease = reg(_TAKE_OVER_LEASE)

    def __getstate__(self) -> dict[str, Any]:
        if self._url is None:
            raise StorageError(
                f"cannot pickle RedisStorage on {self.where}: it was built from a client "
                "object with no URL; build it from a URL (RedisStorage('redis://host:port/0')) "
                "to send it to other processes"
            )
        return {
            "url": self._url,
            "prefix": self.keys.prefix,
            "socket_connect_timeout": self._socket_connect_timeout,
            "retry_window": self.retry_window,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"], prefix=state["prefix"], socket_connect_timeout=state["socket_connect_timeout"],
                      retry_window=state.get("retry_window", 0.0))

    def __repr__(self) -> str:
        return f"RedisStorage({self._display_url!r}, prefix={self.keys.prefix!r})"

    @property
    def url(self) -> str | None:
        """The URL this storage reconnects with (None for a client that has none)."""
        return self._url

    @property
    def prefix(self) -> str:
        return self.keys.prefix

    @property
    def _display_url(self) -> str:
        return redact_url(self._url) if self._url else repr(self.client)

    @property
    def where(self) -> str:
        """host:port (or socket path) of the server, for error messages."""
        kw = getattr(getattr(self.client, "connection_pool", None), "connection_kwargs", {})
        if type(self.client).__module__.startswith("fakeredis"):
            return "fakeredis (in-process)"
        if "path" in kw:
            return f"unix socket {kw['path']}"
        return f"{kw.get('host', 'localhost')}:{kw.get('port', 6379)}"

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def reset_connections(self) -> None:
        """Drop every pooled connection (the next call opens a fresh one): an interrupt
        that landed while a reply was being read leaves a connection out of step, and the
        next command on it would read the old reply."""
        try:
            self.client.connection_pool.disconnect()
        except Exception:  # fakeredis and the like: nothing to reset
            log.debug("could not reset the connections to %s", self.where, exc_info=True)

    @_translating
    def ping(self) -> bool:
        """True when the server answers; raises ``ConnectionFailed`` naming host:port."""
        return bool(self.client.ping())

    # -- helpers -----------------------------------------------------------------------
    def _missing(self, name: str) -> StorageError:
        known = [_text(n) for n in self.client.smembers(self.keys.studies)]
        return study_not_found(name, known, f"Redis at {self.where} (prefix {self.keys.prefix!r})")

    def _read(self, name: str, fill: Callable[[Any], None]) -> list[Any]:
        """Run read commands in one MULTI together with the existence check."""
        pipe = self.client.pipeline(transaction=True)
        pipe.sismember(self.keys.studies, name)
        fill(pipe)
        exists, *rest = pipe.execute()
        if not exists:
            raise self._missing(name)
        return rest

    def _run(self, script: Any, name: str, keys: list[str], args: list[Any]) -> int:
        result = int(script(keys=[self.keys.studies, *keys], args=[name, *args]))
        if result == -1:
            raise self._missing(name)
        return result

    def _run_fenced(self, script: Any, name: str, keys: list[str], args: list[Any], client: Any = None) -> Any:
        """Run a ``_FENCED`` script: it writes only while ``fence`` is the study's current
        lease generation (or when this storage holds no lease)."""
        result = script(keys=[self.keys.studies, *keys, self.keys.generation(name)],
                        args=[name, *args, self.fence or ""], client=client)
        return self._check_fenced(name, result)

    def _check_fenced(self, name: str, result: Any) -> Any:
        if isinstance(result, int) and result == -1:
            raise self._missing(name)
        if isinstance(result, int) and result == -3:
            raise self._lost(name)
        return result

    def _lost(self, name: str) -> LeaseLost:
        current = self.client.get(self.keys.generation(name))
        now = "its lease data is gone" if current is None else f"the study is now at {_describe(_text(current))}"
        return LeaseLost(
            f"this coordinator no longer holds study {name!r}: it held lease {_describe(self.fence)} and {now}. "
            "Another coordinator took the study over (this one was frozen or cut off past its lease ttl), so this "
            "one wrote nothing more and stops; the other one finishes the study"
        )

    def _trial_keys(self, name: str) -> list[str]:
        return [self.keys.trials(name), *self.keys.state_sets(name)]

    # -- studies -------------------------------------------------------------------
    @_translating
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

    @_translating
    def note_vanished(self, name: str, incarnation: str | None) -> None:
        """Remember that study ``name`` existed and is gone (a worker found it missing), so
        no coordinator silently starts a fresh study under its name."""
        self.client.set(self.keys.vanished(name), incarnation or "?")

    @_translating
    def forget_vanished(self, name: str) -> None:
        """Allow the name of a lost study to be used again."""
        self.client.delete(self.keys.vanished(name))

    @_translating
    def get_study(self, name: str) -> dict[str, Any]:
        (fields,) = self._read(name, lambda p: p.hgetall(self.keys.meta(name)))
        return {_text(k): codec.loads(v) for k, v in fields.items()}

    @_translating
    def update_study(self, name: str, changes: Mapping[str, Any]) -> None:
        plain = codec.to_plain(dict(changes))
        args = [x for k, v in plain.items() for x in (k, codec.dumps(v))]
        self._run_fenced(self._update_study, name, [self.keys.meta(name)], args)

    @_translating
    def list_studies(self) -> list[str]:
        return sorted(_text(n) for n in self.client.smembers(self.keys.studies))

    @_translating
    def delete_study(self, name: str) -> None:
        validate_study_name(name)
        pipe = self.client.pipeline(transaction=True)
        pipe.srem(self.keys.studies, name)
        pipe.delete(*self.keys.study_keys(name))
        pipe.execute()

    # -- trials ----------------------------------------------------------------------
    @_translating
    def next_tid(self, name: str, count: int = 1) -> int:
        if count < 1:
            raise TrialError(f"count must be at least 1 to reserve trial ids, got {count!r}")
        return int(self._run_fenced(self._next_tid, name, [self.keys.tid(name)], [int(count)]))

    @_translating
    def put_trial(self, name: str, record: TrialRecord) -> None:
        text = codec.encode_record(record)
        self._run_fenced(self._put_trial, name, self._trial_keys(name), [record.tid, text, record.state.value])

    @_translating
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

    @_translating
    def get_trial(self, name: str, tid: int) -> TrialRecord | None:
        (text,) = self._read(name, lambda p: p.hget(self.keys.trials(name), str(int(tid))))
        return None if text is None else codec.decode_record(text)

    @_translating
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

    @_translating
    def count_states(self, name: str) -> dict[TrialState, int]:
        def fill(pipe: Any) -> None:
            for key in self.keys.state_sets(name):
                pipe.scard(key)

        counts = self._read(name, fill)
        return {s: int(n) for s, n in zip(TrialState, counts)}

    # -- result inbox ----------------------------------------------------------------
    @_translating
    def push_result(self, name: str, message: Mapping[str, Any]) -> None:
        """A message for a study that ended (done, cancelled) is dropped: nobody would
        ever read it (a late result of a re-run or withdrawn trial)."""
        self._run(self._push_result, name, [self.keys.inbox(name), self.keys.meta(name)], [codec.dumps(dict(message))])

    @_translating
    def peek_results(self, name: str, limit: int = 10000) -> list[dict[str, Any]]:
        if limit <= 0:
            return []
        def fill(pipe: Any) -> None:  # a message a coordinator moved aside but did not take comes first
            pipe.lrange(self.keys.claimed(name), 0, int(limit) - 1)
            pipe.lrange(self.keys.inbox(name), 0, int(limit) - 1)

        claimed, inbox = self._read(name, fill)
        return [codec.loads(m) for m in [*claimed, *inbox][: int(limit)]]

    @_translating
    def pop_results(self, name: str, timeout: float = 0.0, limit: int = 1000,
                    prelude: Callable[[Any], None] | None = None) -> list[dict[str, Any]]:
        """Up to ``limit`` messages, waiting up to ``timeout`` seconds for the first. Each
        call to the server is one pipeline: the existence check, then a pop (a BLPOP that
        returns at once when the inbox holds messages, followed by an LPOP of the rest).
        ``prelude(pipeline)`` adds commands (writes whose replies are not needed) that
        run before the pop in the first of those round trips.

        The pop is fenced: the blocking wait moves at most one message from the inbox to
        the study's ``claimed`` list, and a script hands out ``claimed`` and then the
        inbox only while this storage's ``fence`` is the study's lease generation. A
        coordinator that lost its lease takes nothing: whatever it moved stays in
        ``claimed`` for the coordinator that holds the study."""
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
                pipe.blmove(inbox, claimed, max(0.01, min(remaining, _MAX_BLOCK)), "LEFT", "RIGHT")
            self._pop_results(keys=[self.keys.studies, claimed, inbox, self.keys.generation(name)],
                              args=[name, limit, self.fence or ""], client=pipe)
            items = self._check_fenced(name, pipe.execute()[-1])
            if items:
                return [codec.loads(m) for m in items]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []

    # -- intermediate values ---------------------------------------------------------
    @_translating
    def report(self, name: str, tid: int, attempt: int, step: int, value: float, want: bool = True) -> ReportReply:
        """One script call: the value is appended and, with ``want``, every curve comes back."""
        step, value = check_report(tid, step, value)
        keys = [self.keys.studies, self.keys.curves(name), self.keys.state(name, TrialState.OK)]
        out = self._report(keys=keys, args=[name, int(tid), int(attempt), step, repr(value), 1 if want else 0])
        if not isinstance(out, list):
            if int(out) == -1:
                raise self._missing(name)
            raise StorageError(f"unexpected reply {out!r} from Redis at {self.where} to a report")
        if not want:
            return ReportReply(bool(int(out[0])))
        curves = {int(out[i]): _curve(out[i + 1], bool(int(out[i + 2]))) for i in range(2, len(out), 3)}
        return ReportReply(bool(int(out[0])), curves, int(out[1]))

    @_translating
    def curves(self, name: str) -> dict[int, CurveData]:
        def fill(pipe: Any) -> None:
            pipe.hgetall(self.keys.curves(name))
            pipe.smembers(self.keys.state(name, TrialState.OK))

        raw, ok = self._read(name, fill)
        ok = {_text(t) for t in ok}
        return {int(t): _curve(v, _text(t) in ok) for t, v in raw.items()}
    # -- attachments -------------------------------------------------------------------
    @_translating
    def put_attachments(self, name: str, tid: int, items: Mapping[str, Any]) -> None:
        if not items:
            return
        tid = int(tid)
        (names,) = self._read(name, lambda p: p.hget(self.keys.attachment_index(name), str(tid)))
        known = codec.loads(names) if names is not None else []
        known += [str(k) for k in items if str(k) not in known]
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(self.keys.attachments(name), mapping={f"{tid}:{k}": codec.dumps(v) for k, v in items.items()})
        pipe.hset(self.keys.attachment_index(name), str(tid), codec.dumps(known))
        pipe.execute()

    @_translating
    def get_attachments(self, name: str, tid: int) -> dict[str, Any]:
        tid = int(tid)
        (names,) = self._read(name, lambda p: p.hget(self.keys.attachment_index(name), str(tid)))
        if names is None:
            return {}
        known = codec.loads(names)
        values = self.client.hmget(self.keys.attachments(name), [f"{tid}:{k}" for k in known]) if known else []
        return {k: codec.loads(v) for k, v in zip(known, values) if v is not None}

    # -- liveness --------------------------------------------------------------------
    @_translating
    def heartbeat(self, name: str, tid: int, attempt: int, deadline: float, worker: str | None = None) -> None:
        """A beat from an older attempt than the one recorded is ignored, so a worker
        that was presumed dead cannot hide the liveness of the attempt that replaced it."""
        info = codec.dumps({"attempt": int(attempt), "worker": worker})
        keys = [self.keys.heartbeats(name), self.keys.heartbeat_info(name)]
        self._run(self._heartbeat, name, keys, [int(tid), int(attempt), repr(float(deadline)), info])

    @_translating
    def clear_heartbeat(self, name: str, tid: int) -> None:
        keys = [self.keys.heartbeats(name), self.keys.heartbeat_info(name)]
        try:
            self._run_fenced(self._clear_heartbeat, name, keys, [str(int(tid))])
        except StudyNotFound:  # nothing left to clear
            pass

    def _beats(self, name: str, max_score: float | str) -> list[tuple[int, float, dict[str, Any]]]:
        zset, info = self.keys.heartbeats(name), self.keys.heartbeat_info(name)

        def fill(pipe: Any) -> None:
            pipe.zrangebyscore(zset, "-inf", max_score, withscores=True)
            pipe.hgetall(info)

        members, infos = self._read(name, fill)
        out = []
        for member, score in members:
            raw = infos.get(member)
            detail = codec.loads(raw) if raw is not None else {"attempt": 0, "worker": None}
            out.append((int(member), float(score), detail))
        return sorted(out, key=lambda b: b[0])

    @_translating
    def expired_heartbeats(self, name: str, now: float) -> list[tuple[int, int]]:
        return [(tid, int(d["attempt"])) for tid, _, d in self._beats(name, f"({float(now)!r}")]

    @_translating
    def heartbeats(self, name: str) -> dict[int, dict[str, Any]]:
        return {
            tid: {"attempt": int(d["attempt"]), "deadline": deadline, "worker": d.get("worker")}
            for tid, deadline, d in self._beats(name, "+inf")
        }

    # -- worker records ----------------------------------------------------------------
    @_translating
    def beat_worker(self, worker: str, record: Mapping[str, Any], keep: float) -> None:
        """One MULTI: the record (expiring after ``keep``), its beat in the index, and the
        index pruned of workers silent for longer than ``keep``."""
        beat = float(record["beat"])
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self.keys.worker(worker), codec.dumps(dict(record)), px=max(1, int(round(float(keep) * 1000))))
        pipe.zadd(self.keys.workers, {worker: beat})
        pipe.zremrangebyscore(self.keys.workers, "-inf", f"({beat - float(keep)!r}")
        pipe.execute()

    @_translating
    def forget_worker(self, worker: str) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(self.keys.worker(worker))
        pipe.zrem(self.keys.workers, worker)
        pipe.execute()

    @_translating
    def worker_records(self) -> dict[str, dict[str, Any]]:
        ids = sorted(_text(w) for w in self.client.zrange(self.keys.workers, 0, -1))
        if not ids:
            return {}
        texts = self.client.mget([self.keys.worker(w) for w in ids])
        return {w: codec.loads(t) for w, t in zip(ids, texts) if t is not None}

    # -- coordinator lease -------------------------------------------------------------
    @_translating
    def acquire_lease(self, name: str, owner: str, ttl: float, token: str | None = None) -> str | None:
        if ttl <= 0:
            raise LeaseError(f"lease ttl must be a positive number of seconds, got {ttl!r}")
        ttl_ms = max(1, int(round(ttl * 1000)))
        keys = [self.keys.studies, self.keys.lease(name), self.keys.generation(name)]
        result = self._acquire_lease(keys=keys, args=[name, owner, ttl_ms, token or ""])
        if isinstance(result, int) and result == -1:
            raise self._missing(name)
        return None if result is None else _text(result)

    @_translating
    def lease_ttl(self, name: str) -> float | None:
        ms = self.client.pttl(self.keys.lease(name))
        return None if ms is None or int(ms) < 0 else int(ms) / 1000.0

    @_translating
    def release_lease(self, name: str, owner: str) -> None:
        self._release_lease(keys=[self.keys.lease(name)], args=[owner])

    @_translating
    def lease_owner(self, name: str) -> str | None:
        (owner,) = self._read(name, lambda p: p.get(self.keys.lease(name)))
        return None if owner is None else _text(owner)

    @_translating
    def lease_left(self, name: str) -> float | None:
        (ms,) = self._read(name, lambda p: p.pttl(self.keys.lease(name)))
        return None if ms is None or int(ms) < 0 else int(ms) / 1000.0

    @_translating
    def take_over_lease(self, name: str, holder: str, owner: str, ttl: float) -> str | None:
        if ttl <= 0:
            raise LeaseError(f"lease ttl must be a positive number of seconds, got {ttl!r}")
        ttl_ms = max(1, int(round(ttl * 1000)))
        keys = [self.keys.studies, self.keys.lease(name), self.keys.generation(name)]
        result = self._take_over_lease(keys=keys, args=[name, holder, owner, ttl_ms])
        if isinstance(result, int) and result == -1:
            raise self._missing(name)
        return None if result is None else _text(result)

    # -- blobs -------------------------------------------------------------------------
    @_translating
    def put_blob(self, digest: str, data: bytes) -> None:
        self.client.set(self.keys.blob(digest), bytes(data))

    @_translating
    def get_blob(self, digest: str) -> bytes | None:
        data = self.client.get(self.keys.blob(digest))
        return None if data is None else bytes(data)


def _describe(token: str | None) -> str:
    """'generation 3 (coordinator host:pid:id)' for a lease token '3:host:pid:id'."""
    number, _, owner = str(token).partition(":")
    return f"generation {number} (coordinator {owner})"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _curve(text: bytes | str, complete: bool) -> CurveData:
    c = codec.loads(text)
    steps, values = c.get("s") or [], c.get("v") or []  # cjson writes an empty list as {}
    return CurveData(int(c["a"]), [int(s) for s in steps], [float(v) for v in values], complete)
