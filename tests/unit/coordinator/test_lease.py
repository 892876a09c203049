"""The coordinator lease: taking a study over from another coordinator (at once when it
died on this host, after its lease lapses with a countdown otherwise, never from a live
one), generations, fencing of a coordinator's writes, and messages that tell the truth
about the ttl."""

from __future__ import annotations

import logging
import math
import os
import socket
import subprocess
import sys

import pytest

from distopt import hp
from distopt.errors import LeaseError, LeaseLost
from distopt.coordinator.lease import Lease, holder_is_dead
from distopt.storage import MemoryStorage
from distopt.trial.record import TrialState
from distopt.storage.redis.pipelined import PipelinedRedisStorage
from distopt.study.study import Study

HOST = socket.gethostname()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def storage_with(holder: str, ttl: float, clock: Clock) -> MemoryStorage:
    storage = MemoryStorage(clock=clock)
    Study(hp.uniform("x", 0, 1), storage=storage, name="s")
    assert storage.acquire_lease("s", holder, ttl)
    return storage


def test_a_holder_on_this_host_whose_process_is_gone_is_dead():
    assert holder_is_dead(f"{HOST}:{dead_pid()}:abcd1234")
    assert not holder_is_dead(f"{HOST}:{os.getppid()}:abcd1234")  # alive
    assert not holder_is_dead(f"{HOST}:{os.getpid()}:abcd1234")  # this process
    assert not holder_is_dead(f"other-host-{HOST}:{dead_pid()}:abcd1234")  # cannot tell: not here


def test_a_dead_holder_on_this_host_is_taken_over_at_once(caplog):
    clock = Clock()
    storage = storage_with(f"{HOST}:{dead_pid()}:abcd1234", 30.0, clock)
    lease = Lease(storage, "s", 30.0)
    with caplog.at_level(logging.WARNING):
        lease.acquire(clock=clock, sleep=clock.sleep)
    assert storage.lease_owner("s") == lease.owner and clock.now == 1000.0  # no waiting at all
    assert "took over from coordinator" in caplog.text


def test_a_holder_elsewhere_is_waited_for_with_a_countdown(caplog):
    clock = Clock()
    storage = storage_with("far-away:1234:abcd1234", 12.0, clock)
    lease = Lease(storage, "s", 30.0)
    with caplog.at_level(logging.WARNING):
        lease.acquire(clock=clock, sleep=clock.sleep)
    assert storage.lease_owner("s") == lease.owner and 12.0 <= clock.now - 1000.0 <= 13.0
    said = [r.getMessage() for r in caplog.records if "lapses in" in r.getMessage()]
    assert said[0].startswith("study 's' is held by coordinator far-away:1234:abcd1234") and "12 s" in said[0]
    assert len(said) >= 3 and "--no-wait" in said[0]  # a countdown, not one line per poll
    assert len(said) < 12


def test_a_live_holder_on_this_host_is_refused_at_once():
    clock = Clock()
    storage = storage_with(f"{HOST}:{os.getppid()}:abcd1234", 30.0, clock)
    with pytest.raises(LeaseError, match="its process runs on this host"):
        Lease(storage, "s", 30.0).acquire(clock=clock, sleep=clock.sleep)
    assert clock.now == 1000.0


def test_no_wait_and_a_live_holder_are_refused():
    clock = Clock()
    storage = storage_with("far-away:1234:abcd1234", 12.0, clock)
    with pytest.raises(LeaseError, match="already being run by coordinator far-away:1234"):
        Lease(storage, "s", 30.0).acquire(wait=False, clock=clock, sleep=clock.sleep)

    def renewing_sleep(seconds: float) -> None:  # the holder is alive: it renews every ttl/3
        clock.sleep(seconds)
        if storage.lease_left("s") < 8.0:
            storage.acquire_lease("s", "far-away:1234:abcd1234", 12.0)

    with pytest.raises(LeaseError, match="renewed its lease while this run waited, so it is alive"):
        Lease(storage, "s", 30.0).acquire(clock=clock, sleep=renewing_sleep)
    assert storage.lease_owner("s") == "far-away:1234:abcd1234"


@pytest.fixture
def storage(fake_redis):
    return PipelinedRedisStorage(fake_redis)


def test_each_new_holder_gets_a_higher_generation(storage):
    Study(hp.uniform("x", 0, 1), storage=storage, name="g")
    first = Lease(storage, "g", ttl=30)
    first.acquire()
    assert first.generation == 1 and storage.fence == first.token
    first.release()
    assert storage.fence is None
    second = Lease(PipelinedRedisStorage(storage.client), "g", ttl=30)
    second.acquire()
    assert second.generation == 2


def test_a_refusal_shows_the_real_ttl_left(storage):
    Study(hp.uniform("x", 0, 1), storage=storage, name="held")
    Lease(storage, "held", ttl=7).acquire()
    other = Lease(PipelinedRedisStorage(storage.client), "held", ttl=30)
    with pytest.raises(LeaseError, match=r"its lease runs out in [67]\.\d s") as info:
        other.acquire()
    assert "30 s" not in str(info.value)


def test_a_superseded_coordinator_writes_nothing(storage):
    study = Study(hp.uniform("x", 0, 1), storage=storage, name="fenced", seed=1)
    old = Lease(storage, "fenced", ttl=30)
    old.acquire()
    (trial,) = study.ask(1)
    # another coordinator takes the study over (the old one's lease ran out while it was frozen)
    storage.client.delete(storage.keys.lease("fenced"))
    other_storage = PipelinedRedisStorage(storage.client)
    Lease(other_storage, "fenced", ttl=30).acquire()
    before = storage.get_trials("fenced")
    for write in (lambda: study.tell(trial, 1.0), lambda: study.ask(1),
                  lambda: storage.update_study("fenced", {"status": "done"}),
                  lambda: storage.pop_results("fenced"), lambda: study.cancel()):
        with pytest.raises(LeaseLost, match="no longer holds study 'fenced'.*generation 2"):
            write()
    assert storage.get_trials("fenced") == before and before[0].state == TrialState.QUEUED
    assert storage.get_study("fenced")["status"] != "done"
    with pytest.raises(LeaseLost, match="lost the lease on study 'fenced'"):
        old._renewal.restart(-math.inf)
        old.tick(study, 0.0)


def test_a_message_from_the_inbox_stays_for_the_holder(storage):
    Study(hp.uniform("x", 0, 1), storage=storage, name="inbox")
    old = Lease(storage, "inbox", ttl=30)
    old.acquire()
    storage.client.delete(storage.keys.lease("inbox"))
    holder_storage = PipelinedRedisStorage(storage.client)
    Lease(holder_storage, "inbox", ttl=30).acquire()
    holder_storage.push_result("inbox", {"tid": 0, "attempt": 0})
    with pytest.raises(LeaseLost):
        storage.pop_results("inbox", timeout=0.05)  # moves it to 'claimed', hands out nothing
    assert holder_storage.pop_results("inbox") == [{"tid": 0, "attempt": 0}]


def test_a_takeover_of_a_dead_holder_is_a_new_generation_that_fences_it(storage):
    study = Study(hp.uniform("x", 0, 1), storage=storage, name="dead", seed=1)
    old = Lease(storage, "dead", ttl=30, owner=f"{HOST}:{dead_pid()}:abcd1234")
    old.acquire()
    assert old.generation == 1
    (trial,) = study.ask(1)
    new_storage = PipelinedRedisStorage(storage.client)
    new = Lease(new_storage, "dead", ttl=30)
    new.acquire(wait=False)  # taken over at once: the holder's process is gone
    assert new.generation == 2 and new_storage.fence == new.token
    assert new_storage.lease_owner("dead") == new.owner
    before = storage.get_trials("dead")
    with pytest.raises(LeaseLost, match="generation 2"):
        study.tell(trial, 1.0)  # the dead holder's writes (were it only frozen) change nothing
    assert storage.get_trials("dead") == before
    with pytest.raises(LeaseLost):
        old._renewal.restart(-math.inf)
        old.tick(study, 0.0)


def test_take_over_lease_raises_the_generation_in_memory():
    clock = Clock()
    storage = storage_with(f"{HOST}:{dead_pid()}:abcd1234", 30.0, clock)
    first = storage.acquire_lease("s", f"{HOST}:1:x", 30.0)
    assert first is None  # held
    token = storage.take_over_lease("s", storage.lease_owner("s"), "new-owner", 30.0)
    assert token == "2:new-owner" and storage.lease_owner("s") == "new-owner"
    assert storage.take_over_lease("s", "someone-else", "third", 30.0) is None
