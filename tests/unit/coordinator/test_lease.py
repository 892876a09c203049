"""The coordinator lease: generations, fencing of a coordinator's writes, and messages
that tell the truth about the ttl."""

from __future__ import annotations

import pytest

from distopt import hp
from distopt.errors import LeaseError, LeaseLost
from distopt.coordinator.lease import Lease
from distopt.trial.record import TrialState
from distopt.storage.redis.pipelined import PipelinedRedisStorage
from distopt.study.study import Study


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
        old._renewed = 0.0
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
