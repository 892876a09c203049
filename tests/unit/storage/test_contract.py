"""One contract for every storage backend: memory, fakeredis, a real redis-server, and the
pipelined Redis class every distributed coordinator uses.

Whatever a coordinator or worker may rely on is checked here against all of them, so the
embedded default and a cluster behave the same.
"""

from __future__ import annotations

import pickle
import threading
import time
from typing import Callable, Iterator

import numpy as np
import pytest
import redis

from distopt.errors import ConnectionFailed, DistoptError, LeaseError, StorageError, StudyNotFound, TrialError
from distopt.trial.names import InvalidName
from distopt.trial.record import TrialRecord, TrialState
from distopt.storage.redis.pipelined import PipelinedRedisStorage
from distopt.storage.redis.server import free_port
from distopt.storage import MemoryStorage, RedisStorage, Storage, open_storage

S = TrialState
BACKENDS = ["memory", "fakeredis", "redis", "pipelined"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_storage(backend: str, request: pytest.FixtureRequest) -> Iterator[Callable[..., Storage]]:
    """Factory of storages that all see the same backend (one Redis, one memory store)."""
    made: list[Storage] = []
    memory = MemoryStorage()

    def make(prefix: str = "distopt:") -> Storage:
        if backend == "memory":
            return memory
        if backend == "fakeredis":
            store = RedisStorage(request.getfixturevalue("fake_redis"), prefix=prefix)
        elif backend == "pipelined":
            store = PipelinedRedisStorage(request.getfixturevalue("redis_url"), prefix=prefix)
        else:
            store = RedisStorage(request.getfixturevalue("redis_url"), prefix=prefix)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


@pytest.fixture
def store(make_storage: Callable[..., Storage]) -> Storage:
    return make_storage()


@pytest.fixture
def study(store: Storage) -> str:
    assert store.create_study("s1", {"space": {"x": [0, 1]}, "status": "running"})
    return "s1"


def rec(tid: int, state: TrialState = S.QUEUED, attempt: int = 0, **kw: object) -> TrialRecord:
    return TrialRecord(tid=tid, vals={"x": [0.5 + tid]}, state=state, attempt=attempt, **kw)


# -- studies ---------------------------------------------------------------------------------
def test_create_get_update_list_delete(store: Storage) -> None:
    assert store.create_study("b", {"space": (1, 2), "lr": np.float64(0.5), "n": np.int64(3)})
    assert not store.create_study("b", {"other": 1})
    assert store.create_study("a", {})
    assert store.get_study("b") == {"space": [1, 2], "lr": 0.5, "n": 3}
    assert store.get_study("a") == {}
    store.update_study("b", {"status": "done", "lr": 0.25})
    assert store.get_study("b") == {"space": [1, 2], "lr": 0.25, "n": 3, "status": "done"}
    assert store.list_studies() == ["a", "b"]
    store.delete_study("b")
    store.delete_study("b")  # idempotent
    assert store.list_studies() == ["a"]
    assert store.create_study("b", {"fresh": True})
    assert store.get_study("b") == {"fresh": True}


def test_missing_study_names_known_ones(store: Storage) -> None:
    store.create_study("alpha", {})
    store.create_study("beta", {})
    with pytest.raises(StudyNotFound) as info:
        store.get_study("gamma")
    assert "'gamma'" in str(info.value) and "alpha" in str(info.value) and "beta" in str(info.value)


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.get_study("nope"),
        lambda s: s.update_study("nope", {"a": 1}),
        lambda s: s.next_tid("nope"),
        lambda s: s.put_trial("nope", rec(0)),
        lambda s: s.transition("nope", 0, S.QUEUED, rec(0, S.RUNNING)),
        lambda s: s.get_trial("nope", 0),
        lambda s: s.get_trials("nope"),
        lambda s: s.get_trials("nope", [S.QUEUED]),
        lambda s: s.count_states("nope"),
        lambda s: s.push_result("nope", {"tid": 0}),
        lambda s: s.pop_results("nope"),
        lambda s: s.heartbeat("nope", 0, 0, 1.0),
        lambda s: s.expired_heartbeats("nope", 1.0),
        lambda s: s.heartbeats("nope"),
        lambda s: s.acquire_lease("nope", "me", 1.0),
        lambda s: s.lease_owner("nope"),
    ],
)
def test_every_study_call_raises_for_missing_study(store: Storage, call: Callable[[Storage], object]) -> None:
    with pytest.raises(StudyNotFound, match="'nope'"):
        call(store)


def test_cleanup_calls_on_missing_study_are_noops(store: Storage) -> None:
    store.delete_study("nope")
    store.clear_heartbeat("nope", 0)
    store.release_lease("nope", "me")


@pytest.mark.parametrize("bad", ["", "a:b", "has space", "x" * 101, "é", "a/b"])
def test_study_names_are_validated(store: Storage, bad: str) -> None:
    with pytest.raises(InvalidName) as info:
        store.create_study(bad, {})
    assert repr(bad)[:80] in str(info.value) and "A-Z" in str(info.value)
    assert isinstance(info.value, DistoptError)
    with pytest.raises(InvalidName):
        store.get_study(bad)


def test_a_long_invalid_name_is_not_echoed_whole(store: Storage) -> None:
    with pytest.raises(InvalidName) as info:
        store.create_study("y" * 5000, {})
    assert len(str(info.value)) < 400 and "(5002 characters)" in str(info.value)


def test_meta_must_be_json(store: Storage) -> None:
    with pytest.raises(DistoptError):
        store.create_study("s", {"f": object()})


# -- trial ids and records ----------------------------------------------------------------------
def test_next_tid_consecutive(store: Storage, study: str) -> None:
    assert store.next_tid(study) == 0
    assert store.next_tid(study, 5) == 1
    assert store.next_tid(study) == 6
    with pytest.raises(TrialError, match="0"):
        store.next_tid(study, 0)


def test_next_tid_atomic_across_threads(store: Storage, study: str) -> None:
    got: list[int] = []
    lock = threading.Lock()

    def reserve() -> None:
        for _ in range(25):
            first = store.next_tid(study, 2)
            with lock:
                got.extend([first, first + 1])

    threads = [threading.Thread(target=reserve) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(300))


def test_put_get_trials(store: Storage, study: str) -> None:
    for tid, state in [(2, S.RUNNING), (0, S.QUEUED), (1, S.OK)]:
        store.put_trial(study, rec(tid, state, loss=np.float64(0.25) if state is S.OK else None))
    assert store.get_trial(study, 1) == rec(1, S.OK, loss=0.25)
    assert store.get_trial(study, 99) is None
    assert [r.tid for r in store.get_trials(study)] == [0, 1, 2]
    assert [r.tid for r in store.get_trials(study, [S.QUEUED, S.RUNNING])] == [0, 2]
    assert store.get_trials(study, []) == []
    assert store.get_trials(study, {S.FAIL}) == []
    store.put_trial(study, rec(0, S.FAIL, error="boom"))  # overwrite moves it between states
    assert store.get_trial(study, 0).error == "boom"
    assert [r.tid for r in store.get_trials(study, [S.QUEUED])] == []
    assert store.count_states(study)[S.FAIL] == 1
    assert store.count_states(study)[S.QUEUED] == 0


def test_non_finite_and_numpy_values_round_trip(store: Storage, study: str) -> None:
    store.put_trial(study, TrialRecord(tid=0, vals={"x": np.float32(1.5), "c": np.int64(2)},
                                       state=S.OK, loss=float("inf"), result={"a": np.arange(3)}))
    got = store.get_trial(study, 0)
    assert got.vals == {"x": 1.5, "c": 2} and got.loss == float("inf") and got.result == {"a": [0, 1, 2]}


# -- compare-and-set transitions ---------------------------------------------------------------
def test_transition_cas(store: Storage, study: str) -> None:
    store.put_trial(study, rec(0, S.QUEUED, attempt=1))
    running = rec(0, S.RUNNING, attempt=1, worker="w1")
    assert not store.transition(study, 0, S.RUNNING, running)  # wrong expected state
    assert not store.transition(study, 0, S.QUEUED, running, attempt=0)  # attempt mismatch
    assert store.get_trial(study, 0).state is S.QUEUED
    assert store.transition(study, 0, [S.QUEUED, S.LOST], running, attempt=1)
    assert store.get_trial(study, 0) == running
    assert store.transition(study, 0, S.RUNNING, rec(0, S.OK, attempt=1, loss=1.0))
    # OK is final: even with the right expected state the change is illegal
    assert not store.transition(study, 0, S.OK, rec(0, S.RUNNING, attempt=1))
    assert not store.transition(study, 0, S.OK, rec(0, S.FAIL, attempt=1))
    assert store.get_trial(study, 0).loss == 1.0
    assert not store.transition(study, 7, S.QUEUED, rec(7, S.RUNNING))  # no such trial
    with pytest.raises(TrialError, match="trial 0"):
        store.transition(study, 0, S.OK, rec(1, S.OK))
    assert store.count_states(study)[S.OK] == 1 and store.count_states(study)[S.RUNNING] == 0


def test_transition_race_has_one_winner(make_storage: Callable[..., Storage]) -> None:
    stores = [make_storage(), make_storage()]
    stores[0].create_study("race", {})
    n = 20
    for tid in range(n):
        stores[0].put_trial("race", rec(tid))
    barrier = threading.Barrier(2)
    wins: dict[str, list[int]] = {"a": [], "b": []}

    def claim(who: str, st: Storage) -> None:
        barrier.wait()
        for tid in range(n):
            if st.transition("race", tid, S.QUEUED, rec(tid, S.RUNNING, worker=who)):
                wins[who].append(tid)

    threads = [threading.Thread(target=claim, args=(w, st)) for w, st in zip("ab", stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins["a"] + wins["b"]) == list(range(n))
    for who, tids in wins.items():
        for tid in tids:
            assert stores[0].get_trial("race", tid).worker == who
    assert stores[0].count_states("race")[S.RUNNING] == n


def test_count_states_has_every_state(store: Storage, study: str) -> None:
    assert store.count_states(study) == {s: 0 for s in TrialState}
    for tid, state in enumerate([S.QUEUED, S.QUEUED, S.RUNNING, S.OK, S.FAIL, S.CANCELLED]):
        store.put_trial(study, rec(tid, state))
    counts = store.count_states(study)
    assert counts == {S.QUEUED: 2, S.RUNNING: 1, S.OK: 1, S.FAIL: 1, S.LOST: 0, S.CANCELLED: 1, S.PRUNED: 0}
    assert store.transition(study, 2, S.RUNNING, rec(2, S.LOST))
    assert store.count_states(study)[S.LOST] == 1 and store.count_states(study)[S.RUNNING] == 0


# -- result inbox ---------------------------------------------------------------------------------
def test_inbox_fifo_and_limit(store: Storage, study: str) -> None:
    assert store.pop_results(study) == []
    for i in range(5):
        store.push_result(study, {"tid": i, "loss": np.float64(i / 2)})
    assert store.pop_results(study, limit=3) == [{"tid": i, "loss": i / 2} for i in range(3)]
    assert store.pop_results(study, timeout=1.0) == [{"tid": 3, "loss": 1.5}, {"tid": 4, "loss": 2.0}]


def test_peek_leaves_the_inbox_as_it_is(store: Storage, study: str) -> None:
    assert store.peek_results(study) == []
    for i in range(3):
        store.push_result(study, {"tid": i})
    assert store.peek_results(study, limit=2) == [{"tid": 0}, {"tid": 1}]
    assert store.peek_results(study) == [{"tid": 0}, {"tid": 1}, {"tid": 2}]
    assert store.pop_results(study, limit=10) == [{"tid": 0}, {"tid": 1}, {"tid": 2}]
    with pytest.raises(StudyNotFound):
        store.peek_results("nope")


def test_pop_times_out_empty(store: Storage, study: str) -> None:
    start = time.monotonic()
    assert store.pop_results(study, timeout=0.3) == []
    assert 0.25 <= time.monotonic() - start < 10  # it waited, and it came back


def test_pop_wakes_when_another_thread_pushes(make_storage: Callable[..., Storage]) -> None:
    reader, writer = make_storage(), make_storage()
    reader.create_study("wake", {})

    def push_later() -> None:
        time.sleep(0.2)
        writer.push_result("wake", {"tid": 1})
        writer.push_result("wake", {"tid": 2})

    thread = threading.Thread(target=push_later)
    start = time.monotonic()
    thread.start()
    got = reader.pop_results("wake", timeout=5.0)
    while len(got) < 2:  # the second push may land just after the first wakes us
        got += reader.pop_results("wake", timeout=1.0)
    elapsed = time.monotonic() - start
    thread.join()
    assert got == [{"tid": 1}, {"tid": 2}]
    assert 0.15 <= elapsed < 2.0


# -- heartbeats ---------------------------------------------------------------------------------
def test_heartbeats_with_injected_clock(store: Storage, study: str) -> None:
    store.heartbeat(study, 1, 0, deadline=100.0, worker="w1")
    store.heartbeat(study, 2, 3, deadline=200.5)
    assert store.heartbeats(study) == {
        1: {"attempt": 0, "deadline": 100.0, "worker": "w1"},
        2: {"attempt": 3, "deadline": 200.5, "worker": None},
    }
    assert store.expired_heartbeats(study, now=50.0) == []
    assert store.expired_heartbeats(study, now=100.0) == []  # strictly before now
    assert store.expired_heartbeats(study, now=150.0) == [(1, 0)]
    assert store.expired_heartbeats(study, now=300.0) == [(1, 0), (2, 3)]
    store.heartbeat(study, 1, 0, deadline=400.0, worker="w1")  # renewed
    assert store.expired_heartbeats(study, now=300.0) == [(2, 3)]
    store.clear_heartbeat(study, 2)
    store.clear_heartbeat(study, 2)
    assert store.expired_heartbeats(study, now=1e12) == [(1, 0)]
    assert list(store.heartbeats(study)) == [1]


def test_stale_attempt_heartbeat_is_ignored(store: Storage, study: str) -> None:
    store.heartbeat(study, 5, 2, deadline=100.0, worker="new")
    store.heartbeat(study, 5, 1, deadline=900.0, worker="old")
    assert store.heartbeats(study)[5] == {"attempt": 2, "deadline": 100.0, "worker": "new"}
    store.heartbeat(study, 5, 3, deadline=50.0, worker="newer")
    assert store.expired_heartbeats(study, now=60.0) == [(5, 3)]


def test_an_older_attempts_clear_leaves_a_newer_attempts_beat(store: Storage, study: str) -> None:
    """A worker frozen past its ttl whose trial ran again elsewhere ends its attempt 0 and
    clears: attempt 1's beat stays. The attempt that wrote the beat, or a newer one, clears it."""
    store.heartbeat(study, 5, 1, deadline=100.0, worker="new")
    store.clear_heartbeat(study, 5, 0)
    assert store.heartbeats(study)[5] == {"attempt": 1, "deadline": 100.0, "worker": "new"}
    store.clear_heartbeat(study, 5, 1)
    assert store.heartbeats(study) == {}
    store.heartbeat(study, 5, 1, deadline=100.0)
    store.clear_heartbeat(study, 5, 2)  # the reaper ending the trial as attempt 2
    assert store.heartbeats(study) == {}
    store.heartbeat(study, 5, 1, deadline=100.0)
    store.clear_heartbeat(study, 5)  # no attempt named: whatever attempt beat
    assert store.heartbeats(study) == {}
    store.clear_heartbeat(study, 5, 0)  # nothing to clear
    store.clear_heartbeat("nope", 5, 0, incarnation="i1")


def test_beats_and_clears_of_another_incarnation_are_ignored(store: Storage) -> None:
    """A study deleted and created again under its name starts its trial ids over: a worker
    still running the old study's trial 0 neither keeps the new trial 0 alive nor clears it."""
    store.create_study("again", {"incarnation": "old"})
    store.heartbeat("again", 0, 0, deadline=100.0, worker="w-old", incarnation="old")
    store.delete_study("again")
    store.create_study("again", {"incarnation": "new"})
    store.heartbeat("again", 0, 0, deadline=500.0, worker="w-old", incarnation="old")
    assert store.heartbeats("again") == {}
    store.heartbeat("again", 0, 0, deadline=200.0, worker="w-new", incarnation="new")
    store.heartbeat("again", 0, 3, deadline=900.0, worker="w-old", incarnation="old")
    store.clear_heartbeat("again", 0, 5, incarnation="old")
    store.clear_heartbeat("again", 0, incarnation="old")
    assert store.heartbeats("again") == {0: {"attempt": 0, "deadline": 200.0, "worker": "w-new"}}
    store.heartbeat("again", 0, 0, deadline=300.0, worker="w-new", incarnation="new")
    assert store.heartbeats("again")[0]["deadline"] == 300.0
    store.clear_heartbeat("again", 0, 0, incarnation="new")
    assert store.heartbeats("again") == {}


def test_incarnation_is_checked_only_when_both_sides_name_one(store: Storage) -> None:
    store.create_study("plain", {})  # stored without an incarnation (an older study)
    store.heartbeat("plain", 1, 0, deadline=100.0, incarnation="any")
    assert list(store.heartbeats("plain")) == [1]
    store.clear_heartbeat("plain", 1, 0, incarnation="any")
    assert store.heartbeats("plain") == {}
    store.create_study("named", {"incarnation": "i1"})
    store.heartbeat("named", 1, 0, deadline=100.0)  # a caller that does not say
    store.heartbeat("named", 2, 0, deadline=100.0, incarnation="")
    assert list(store.heartbeats("named")) == [1, 2]
    store.clear_heartbeat("named", 1, 0)
    store.clear_heartbeat("named", 2, 0, incarnation="")
    assert store.heartbeats("named") == {}


# -- coordinator lease ----------------------------------------------------------------------------
def test_lease_acquire_renew_refuse_release(store: Storage, study: str) -> None:
    assert store.lease_owner(study) is None
    assert store.acquire_lease(study, "A", 30)
    assert store.acquire_lease(study, "A", 30)  # renew
    assert not store.acquire_lease(study, "B", 30)
    assert store.lease_owner(study) == "A"
    store.release_lease(study, "B")  # not B's to release
    assert store.lease_owner(study) == "A"
    store.release_lease(study, "A")
    assert store.lease_owner(study) is None
    assert store.acquire_lease(study, "B", 30)
    with pytest.raises(LeaseError, match="-1"):
        store.acquire_lease(study, "B", -1)


def test_lease_expires(store: Storage, study: str) -> None:
    taken = time.monotonic()
    assert store.acquire_lease(study, "A", 0.5)
    # refused while A's lease runs; a machine that stalled 0.5 s between the calls may see it lapse
    assert not store.acquire_lease(study, "B", 0.5) or time.monotonic() - taken >= 0.5
    deadline = time.monotonic() + 30
    while store.lease_owner(study) is not None:  # lapses by itself: nobody releases A's lease
        assert time.monotonic() < deadline, "the lease never lapsed"
        time.sleep(0.02)
    assert store.acquire_lease(study, "B", 5)
    assert store.lease_owner(study) == "B"


def test_lease_left_and_take_over(store: Storage, study: str) -> None:
    assert store.lease_left(study) is None
    dead = store.acquire_lease(study, "dead", 30)
    assert dead and 29 < store.lease_left(study) <= 30
    assert not store.take_over_lease(study, "someone-else", "B", 30)  # only from the holder named
    assert store.lease_owner(study) == "dead"
    taken = store.take_over_lease(study, "dead", "B", 10)  # an acquisition: a new, higher generation
    assert taken == f"{int(dead.partition(':')[0]) + 1}:B"
    assert store.lease_owner(study) == "B" and 9 < store.lease_left(study) <= 10
    assert not store.take_over_lease(study, "dead", "C", 10)  # it changed hands meanwhile
    store.release_lease(study, "B")
    assert not store.take_over_lease(study, "B", "C", 10) and store.lease_owner(study) is None


# -- blobs -------------------------------------------------------------------------------------------
def test_blobs(store: Storage, study: str) -> None:
    data = bytes(range(256)) * 10
    assert store.get_blob("ab12") is None
    store.put_blob("ab12", data)
    assert store.get_blob("ab12") == data
    store.delete_study(study)  # blobs are shared, not owned by a study
    assert store.get_blob("ab12") == data
    with pytest.raises(InvalidName):
        store.put_blob("bad digest", b"x")


# -- Redis only ----------------------------------------------------------------------------------------
redis_only = pytest.mark.parametrize("backend", ["fakeredis", "redis", "pipelined"], indirect=True)


@redis_only
def test_prefix_isolation(make_storage: Callable[..., Storage]) -> None:
    one, two = make_storage("one:"), make_storage("two:")
    assert one.create_study("s", {"who": 1})
    assert two.create_study("s", {"who": 2})
    one.put_trial("s", rec(0, S.OK))
    one.push_result("s", {"tid": 0})
    one.put_blob("d1", b"one")
    assert two.get_study("s") == {"who": 2}
    assert two.get_trials("s") == [] and two.count_states("s")[S.OK] == 0
    assert two.pop_results("s") == []
    assert two.get_blob("d1") is None
    two.delete_study("s")
    assert one.list_studies() == ["s"] and two.list_studies() == []


@redis_only
def test_delete_study_leaves_no_keys(store: Storage) -> None:
    assert isinstance(store, RedisStorage)
    store.create_study("gone", {"a": 1})
    store.put_trial("gone", rec(0, S.RUNNING))
    store.next_tid("gone")
    store.push_result("gone", {"tid": 0})
    store.heartbeat("gone", 0, 0, 1.0)
    store.acquire_lease("gone", "me", 30)
    store.delete_study("gone")
    assert [k for k in store.client.keys("*") if b"gone" in k] == []


def test_count_states_is_cheap_with_10000_trials(redis_url: str) -> None:
    store = RedisStorage(redis_url)
    store.create_study("big", {})
    pipe = store.client.pipeline(transaction=False)
    for tid in range(10_000):  # bulk-load through the real scripts, in one round trip
        state = (S.OK, S.FAIL, S.RUNNING, S.QUEUED)[tid % 4]
        store._put_trial(keys=[store.keys.studies, *store._trial_keys("big"), store.keys.generation("big")],
                         args=["big", tid, codec_text(rec(tid, state)), state.value, ""], client=pipe)
    pipe.execute()
    def calls() -> dict[str, int]:
        return {k: v["calls"] for k, v in store.client.info("commandstats").items()}

    before = calls()
    counts = store.count_states("big")
    after = calls()
    issued = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    issued.pop("cmdstat_info", None)
    # one SCARD per state inside one transaction, after the study's existence check:
    # nothing reads the trials, so the cost does not grow with the study
    assert issued.get("cmdstat_scard") == len(S), issued
    assert set(issued) <= {"cmdstat_scard", "cmdstat_multi", "cmdstat_exec", "cmdstat_sismember"}, issued
    assert counts[S.OK] == counts[S.QUEUED] == 2500 and counts[S.LOST] == 0
    assert len(store.get_trials("big", [S.RUNNING])) == 2500
    store.close()


def codec_text(record: TrialRecord) -> str:
    from distopt.trial.codec import encode_record

    return encode_record(record)


def test_redis_storage_pickles_and_works_after(redis_url: str) -> None:
    store = RedisStorage(redis_url, prefix="pk:")
    store.create_study("p", {"a": 1})
    data = pickle.dumps(store)
    assert b"Connection" not in data
    clone = pickle.loads(data)
    assert clone.prefix == "pk:" and clone.url == redis_url
    assert clone.get_study("p") == {"a": 1}
    clone.push_result("p", {"tid": 3})
    assert store.pop_results("p", timeout=1) == [{"tid": 3}]
    store.close()
    clone.close()


def test_storage_from_a_client_pickles_as_url(redis_server: object, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    store = RedisStorage(client)
    store.create_study("c", {})
    clone = pickle.loads(pickle.dumps(store))
    assert clone.list_studies() == ["c"]
    clone.close()
    client.close()


def test_fakeredis_storage_refuses_to_pickle(fake_redis: object) -> None:
    with pytest.raises(StorageError, match="URL"):
        pickle.dumps(RedisStorage(fake_redis))


def test_memory_storage_refuses_to_pickle() -> None:
    with pytest.raises(StorageError, match="RedisStorage"):
        pickle.dumps(MemoryStorage())


def test_unreachable_port_names_host_and_port() -> None:
    port = free_port()
    store = RedisStorage(f"redis://127.0.0.1:{port}/0")
    with pytest.raises(ConnectionFailed) as info:
        store.ping()
    assert f"127.0.0.1:{port}" in str(info.value)
    with pytest.raises(ConnectionFailed, match=f"127.0.0.1:{port}"):
        store.list_studies()
    with pytest.raises(ConnectionFailed, match=f"127.0.0.1:{port}"):
        open_storage(f"redis://127.0.0.1:{port}/0")


@pytest.mark.parametrize("url", ["redis://localhost:notaport/0", "http://localhost:6379", "redis//x"])
def test_bad_url_is_named(url: str) -> None:
    with pytest.raises(ConnectionFailed) as info:
        RedisStorage(url)
    assert repr(url) in str(info.value) and "redis://" in str(info.value)


def test_password_is_not_shown(redis_server: object) -> None:
    port = free_port()
    store = RedisStorage(f"redis://user:s3cret@127.0.0.1:{port}/0")
    with pytest.raises(ConnectionFailed) as info:
        store.ping()
    assert "s3cret" not in str(info.value) and "s3cret" not in repr(store)


def test_open_storage(fake_redis: object, redis_url: str) -> None:
    assert isinstance(open_storage(None), MemoryStorage)
    mem = MemoryStorage()
    assert open_storage(mem) is mem
    on_fake = open_storage(fake_redis, prefix="x:")
    assert isinstance(on_fake, RedisStorage) and on_fake.prefix == "x:"
    real = open_storage(redis_url)
    assert isinstance(real, RedisStorage) and real.ping()
    real.close()
    for bad in ["localhost:6379", 42, "mongodb://x"]:
        with pytest.raises(DistoptError, match=repr(bad).strip("'")):
            open_storage(bad)


# -- intermediate values -----------------------------------------------------------------
def test_report_appends_and_returns_every_curve(store: Storage, study: str) -> None:
    store.put_trial(study, rec(0))
    store.put_trial(study, rec(1))
    first = store.report(study, 0, 0, 0, 1.5)
    assert first.recorded and first.n_complete == 0
    assert first.curves[0].steps == [0] and first.curves[0].values == [1.5]
    store.report(study, 1, 0, 0, 0.25)
    reply = store.report(study, 0, 0, 1, 1.25)
    assert sorted(reply.curves) == [0, 1]
    assert reply.curves[0].values == [1.5, 1.25] and reply.curves[1].values == [0.25]
    assert store.report(study, 0, 0, 2, 0.1 + 0.2, want=False).curves is None
    assert store.curves(study)[0].values[-1] == 0.1 + 0.2  # exact, not rounded on the way


def test_report_is_idempotent_per_step_and_a_new_attempt_starts_afresh(store: Storage, study: str) -> None:
    store.put_trial(study, rec(0))
    assert store.report(study, 0, 0, 0, 1.0).recorded
    assert not store.report(study, 0, 0, 0, 9.0).recorded  # sent again after a lost reply
    store.report(study, 0, 0, 1, 0.9)
    assert store.report(study, 0, 1, 0, 2.0).recorded  # the retried attempt
    assert not store.report(study, 0, 0, 2, 0.1).recorded  # the old attempt, late
    curve = store.curves(study)[0]
    assert (curve.attempt, curve.steps, curve.values) == (1, [0], [2.0])


def test_every_reply_shows_every_curve_as_it_is_whoever_wrote_it(make_storage: Callable[..., Storage]) -> None:
    """Two workers' storages interleave reports; each reply (a Redis storage sends only what
    changed since its own last one) must equal the study's curves read afresh, through a
    curve's reset by a new attempt, a trial turning OK, and the study deleted and created
    again under the same name."""
    a, b, fresh = make_storage(), make_storage(), make_storage()
    assert a.create_study("c", {"status": "running", "incarnation": "one"})
    for t in range(4):
        a.put_trial("c", rec(t))

    def check(reply: object) -> None:
        assert reply.curves == fresh.curves("c") and reply.n_complete == fresh.count_states("c")[S.OK]

    for step in range(3):
        for t in range(4):
            check((a if t % 2 else b).report("c", t, 0, step, float(t + step)))
    check(a.report("c", 2, 1, 0, 9.0))  # attempt 1 of trial 2 starts its curve afresh
    assert a.transition("c", 3, S.QUEUED, rec(3, S.OK, loss=1.0))
    check(b.report("c", 0, 0, 3, 0.5))  # trial 3 complete, though its curve did not change
    assert b.curves("c")[3].complete and not a.report("c", 0, 0, 3, 7.0).recorded
    check(a.report("c", 1, 0, 3, 0.5))
    a.delete_study("c")
    assert b.create_study("c", {"status": "running", "incarnation": "two"})
    b.put_trial("c", rec(0))
    reply = a.report("c", 0, 0, 0, 4.0)  # a's copy is of the deleted study: none of it may show
    check(reply)
    assert list(reply.curves) == [0] and reply.curves[0].values == [4.0]
    check(b.report("c", 0, 0, 1, 3.0))


def test_report_marks_complete_trials_and_keeps_nan(store: Storage, study: str) -> None:
    store.put_trial(study, rec(0))
    store.put_trial(study, rec(1))
    store.report(study, 0, 0, 0, float("nan"))
    store.report(study, 1, 0, 0, 1.0)
    assert store.transition(study, 1, S.QUEUED, rec(1, S.OK, loss=1.0))
    reply = store.report(study, 0, 0, 1, 2.0)
    assert reply.n_complete == 1 and reply.curves[1].complete and not reply.curves[0].complete
    assert np.isnan(reply.curves[0].values[0])
    with pytest.raises(TrialError, match="whole step"):
        store.report(study, 0, 0, -1, 1.0)
    with pytest.raises(TrialError, match="number for value"):
        store.report(study, 0, 0, 3, "high")
    store.delete_study(study)
    with pytest.raises(StudyNotFound):
        store.report(study, 0, 0, 4, 1.0)
def test_worker_records_kept_until_forgotten(make_storage: Callable[..., Storage]) -> None:
    store, other = make_storage(), make_storage("other:")
    assert store.worker_records() == {}
    store.beat_worker("host-a:11", {"beat": 100.0, "queues": ["q"]}, keep=3600)
    store.beat_worker("host-b:22", {"beat": 101.5, "version": "1.2"}, keep=3600)
    store.beat_worker("host-a:11", {"beat": 105.0, "queues": ["q"]}, keep=3600)  # a later beat replaces
    assert store.worker_records() == {"host-a:11": {"beat": 105.0, "queues": ["q"]},
                                      "host-b:22": {"beat": 101.5, "version": "1.2"}}
    if other is not store:
        assert other.worker_records() == {}  # another prefix: other workers
    store.forget_worker("host-b:22")
    store.forget_worker("host-b:22")
    assert list(store.worker_records()) == ["host-a:11"]
    with pytest.raises(InvalidName):
        store.beat_worker("bad id", {"beat": 1.0}, keep=10)


def test_worker_record_expires_after_keep(store: Storage, backend: str) -> None:
    if backend == "memory":
        store = MemoryStorage(clock=iter([0.0, 0.5, 2.0]).__next__)
    store.beat_worker("h:1", {"beat": time.time()}, keep=1.0)
    assert "h:1" in store.worker_records()
    if backend != "memory":  # Redis expires the record by itself
        wait = time.monotonic() + 10
        while "h:1" in store.worker_records() and time.monotonic() < wait:
            time.sleep(0.05)
    assert store.worker_records() == {}


def test_attachments_per_trial(store: Storage, study: str) -> None:
    assert store.get_attachments(study, 3) == {}
    store.put_attachments(study, 3, {"model": {"__bytes__": "AAE="}, "note": "hi"})
    store.put_attachments(study, 3, {"note": "again"})
    store.put_attachments(study, 30, {"other": [1, 2]})
    assert store.get_attachments(study, 3) == {"model": {"__bytes__": "AAE="}, "note": "again"}
    assert store.get_attachments(study, 30) == {"other": [1, 2]}
    with pytest.raises(StudyNotFound):
        store.put_attachments("nope", 1, {"a": 1})
    store.delete_study(study)
    store.create_study(study, {})
    assert store.get_attachments(study, 3) == {}  # deleted with the study


def test_a_copy_stays_true_after_redis_comes_back_with_older_curves(redis_url: str) -> None:
    """Redis restarts from a snapshot older than a worker's copy (RDB, AOF everysec, a lagging
    replica): versions handed out afterwards must still be new to that copy."""
    a, b, fresh = RedisStorage(redis_url), RedisStorage(redis_url), RedisStorage(redis_url)
    a.create_study("r", {"status": "running", "incarnation": "one"})
    for t in range(4):
        a.put_trial("r", rec(t))
    for s in range(3):
        b.report("r", 0, 0, s, 1.0)
    a.report("r", 1, 0, 0, 2.0)
    snapshot = {k: fresh.client.dump(k) for k in (fresh.keys.curves("r"), fresh.keys.curve_versions("r"))}
    a.report("r", 1, 0, 1, 2.0)  # lost by the restart below
    for key, value in snapshot.items():
        fresh.client.restore(key, 0, value, replace=True)
    b.report("r", 2, 0, 0, 3.0)
    b.report("r", 3, 0, 0, 4.0)
    reply = a.report("r", 0, 0, 9, 1.0)
    truth = fresh.curves("r")
    assert {t: c.steps for t, c in reply.curves.items() if t != 1} == {t: c.steps for t, c in truth.items() if t != 1}
    # trial 1's step 1 was reported (by an honest worker) and lost by Redis: the copy may keep it until
    # the trial reports again
    for s in (a, b, fresh):
        s.close()
