"""The Lua scripts of the Redis store: every write that must check something first (does
the study exist? is the trial still in the expected state? does the writer still hold
the study's lease generation?) is one script, so it is atomic without WATCH retries and
costs one round trip."""

from __future__ import annotations

from ...trial.record import TrialState


# KEYS[3..] of the trial scripts are the per-state sets, in TrialState order.
STATE_SLOT = "local SLOT = {" + ", ".join(f"{s.value} = {i + 3}" for i, s in enumerate(TrialState)) + "}\n"
STUDY_EXISTS = "if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return -1 end\n"
# The fence of a coordinator's writes: the last key is the study's generation key and the
# last argument the writer's lease token ('' for a writer that holds no lease). Both are
# removed before the script's own body reads KEYS and ARGV. A token that is not the
# study's current generation writes nothing (-3): a coordinator that lost its lease, even
# one frozen past its ttl that has not noticed yet, changes nothing.
FENCED = """
local FENCE_KEY = table.remove(KEYS)
local FENCE = table.remove(ARGV)
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return -1 end
if FENCE ~= '' and redis.call('GET', FENCE_KEY) ~= FENCE then return -3 end
"""

# KEYS: studies, meta, vanished | ARGV: name, field1, json1, field2, json2, ...
CREATE_STUDY = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 and redis.call('EXISTS', KEYS[3]) == 1 then return -2 end
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
return 1
"""
# KEYS: studies, meta | ARGV: name, field1, json1, ...
UPDATE_STUDY = FENCED + """
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
return 1
"""
# KEYS: studies, counter | ARGV: name, count
NEXT_TID = FENCED + """
return redis.call('INCRBY', KEYS[2], ARGV[2]) - tonumber(ARGV[2])
"""
# KEYS: studies, trials, state sets... | ARGV: name, tid, record json, state
PUT_TRIAL = STATE_SLOT + FENCED + """
local old = redis.call('HGET', KEYS[2], ARGV[2])
if old then redis.call('SREM', KEYS[SLOT[cjson.decode(old).state]], ARGV[2]) end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('SADD', KEYS[SLOT[ARGV[4]]], ARGV[2])
return 1
"""
# KEYS: studies, trials, state sets... | ARGV: name, tid, record json, new state,
#       expected attempt or '', allowed old states...
TRANSITION = STATE_SLOT + FENCED + """
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
PUSH_RESULT = STUDY_EXISTS + """
local status = redis.call('HGET', KEYS[3], 'status')
if status == '"done"' or status == '"cancelled"' then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[2])
return 1
"""
# KEYS: studies, curves hash, ok-state set, meta, curve versions zset
# ARGV: name, tid, attempt, step, value text, want (1/0), epoch the caller's copy is of, version it is at.
# A recorded value gives its trial's curve the next version (score in the zset): the server's clock in
# microseconds, or one more than the highest when that is not ahead, so a version is never handed out
# twice even after Redis came back with older data (a copy past it would miss what was written since).
# Reply: {recorded}, or
# with want {recorded, n ok, epoch, version, full, tid1, curve1 json, ok1, ..., "", ok tid, ok tid...}:
# every curve when ``full`` (the caller's copy is of another incarnation of the study, or ahead of
# this one), else those changed since the caller's version, then after "" the tids that ended OK.
REPORT = STUDY_EXISTS + """
local a = tonumber(ARGV[3])
local step = tonumber(ARGV[4])
local cur = redis.call('HGET', KEYS[2], ARGV[2])
local c = nil
if cur then c = cjson.decode(cur) end
if c == nil or tonumber(c.a) < a then c = {a = a, s = {}, v = {}} end
local recorded = 0
local top = redis.call('ZREVRANGE', KEYS[5], 0, 0, 'WITHSCORES')
local version = 0
if top[2] then version = tonumber(top[2]) end
if tonumber(c.a) == a then
  recorded = 1
  for i = 1, #c.s do if tonumber(c.s[i]) == step then recorded = 0 break end end
  if recorded == 1 then
    c.s[#c.s + 1] = step
    c.v[#c.v + 1] = ARGV[5]
    redis.call('HSET', KEYS[2], ARGV[2], cjson.encode(c))
    local now = redis.call('TIME')
    local next = tonumber(now[1]) * 1000000 + tonumber(now[2])
    if version >= next then next = version + 1 end
    version = next
    redis.call('ZADD', KEYS[5], string.format('%d', next), ARGV[2])
  end
end
if ARGV[6] ~= '1' then return {recorded} end
local epoch = redis.call('HGET', KEYS[4], 'incarnation') or ''
local since = tonumber(ARGV[8])
local full = 0
if epoch ~= ARGV[7] or since > version then full = 1 end
local out = {recorded, redis.call('SCARD', KEYS[3]), epoch, version, full}
if full == 1 then
  local all = redis.call('HGETALL', KEYS[2])
  for i = 1, #all, 2 do
    out[#out + 1] = all[i]
    out[#out + 1] = all[i + 1]
    out[#out + 1] = redis.call('SISMEMBER', KEYS[3], all[i])
  end
  return out
end
local changed = redis.call('ZRANGEBYSCORE', KEYS[5], '(' .. ARGV[8], '+inf')
for i = 1, #changed do
  out[#out + 1] = changed[i]
  out[#out + 1] = redis.call('HGET', KEYS[2], changed[i]) or '{}'
  out[#out + 1] = redis.call('SISMEMBER', KEYS[3], changed[i])
end
out[#out + 1] = ''
for _, t in ipairs(redis.call('SMEMBERS', KEYS[3])) do out[#out + 1] = t end
return out
"""


def same_incarnation(meta: int, arg: int) -> str:
    """Lua that ends the script with 0 (nothing written) when ARGV[arg] names an
    incarnation and the study's meta hash (KEYS[meta]) holds another one: the rule of
    ``base.other_incarnation`` (an empty ARGV[arg], or a study stored without an
    incarnation, is not checked). Meta values are JSON, so the stored one is decoded."""
    return f"""
if ARGV[{arg}] ~= '' then
  local stored = redis.call('HGET', KEYS[{meta}], 'incarnation')
  if stored then stored = cjson.decode(stored) end
  if type(stored) == 'string' and stored ~= ARGV[{arg}] then return 0 end
end
"""


# KEYS: studies, hb zset, hbinfo hash, meta | ARGV: name, tid, attempt, deadline, info json, incarnation or ''
HEARTBEAT = STUDY_EXISTS + same_incarnation(4, 6) + """
local cur = redis.call('HGET', KEYS[3], ARGV[2])
if cur and tonumber(cjson.decode(cur).attempt) > tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[5])
return 1
"""
# KEYS: studies, hb zset, hbinfo hash, meta | ARGV: name, tid, attempt or '', incarnation or ''
# A beat written by a newer attempt than ARGV[3] stays (returns 0).
CLEAR_HEARTBEAT = FENCED + same_incarnation(4, 4) + """
if ARGV[3] ~= '' then
  local cur = redis.call('HGET', KEYS[3], ARGV[2])
  if cur and tonumber(cjson.decode(cur).attempt) > tonumber(ARGV[3]) then return 0 end
end
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
return 1
"""
# KEYS: studies, claimed, inbox, handout | ARGV: name, limit, token of the batch to acknowledge or ''
# A batch handed out stays at the head of ``claimed`` until the caller acknowledges it
# with the token it came with (on its next pop, once it has recorded the batch): a
# coordinator interrupted before that leaves its results for the next one, and a retry
# after a lost reply acknowledges nothing, since the token it holds is no longer current.
# What a BLMOVE (in the same round trip) or a fenced-out coordinator left in ``claimed``
# comes first, then the inbox; a fenced-out caller takes nothing. Returns the new token
# followed by the messages, or nothing.
POP_RESULTS = FENCED + """
local limit = tonumber(ARGV[2])
if ARGV[3] ~= '' and redis.call('HGET', KEYS[4], 'token') == ARGV[3] then
  redis.call('LTRIM', KEYS[2], tonumber(redis.call('HGET', KEYS[4], 'n')), -1)
  redis.call('HDEL', KEYS[4], 'token', 'n')
end
local have = redis.call('LLEN', KEYS[2])
if have < limit then
  local rest = redis.call('LPOP', KEYS[3], limit - have)
  if rest then for _, m in ipairs(rest) do redis.call('RPUSH', KEYS[2], m) end end
end
local out = redis.call('LRANGE', KEYS[2], 0, limit - 1)
if #out == 0 then return {} end
local token = tostring(redis.call('HINCRBY', KEYS[4], 'seq', 1))
redis.call('HSET', KEYS[4], 'token', token, 'n', #out)
table.insert(out, 1, token)
return out
"""
# KEYS: studies, lease, generation | ARGV: name, owner, ttl ms, token to renew or ''
# Returns the holder's token "<n>:<owner>" (a new generation n for a new holder), or nil
# when another owner holds the lease or, renewing, the token is no longer current.
ACQUIRE_LEASE = STUDY_EXISTS + """
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
TAKE_OVER_LEASE = STUDY_EXISTS + """
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
RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""

# -- batches (PipelinedRedisStorage) ------------------------------------------------------
# KEYS: studies, trials, state sets..., tid counter | ARGV: name, expected next tid or '',
#       then tid, record json, state for each record.
# With an expected next tid, the ids are reserved in the same call: it stores nothing
# and returns -2 unless the counter still stands there (0 when none was reserved yet).
# A call sent again after its reply was lost finds its own batch and returns 1.
PUT_TRIALS = STATE_SLOT + FENCED + """
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
TRANSITION_MANY = STATE_SLOT + FENCED + """
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
