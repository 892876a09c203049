"""Ctrl-C between Redis and the study loses nothing: a batch of results popped from the
inbox stays in Redis until the coordinator's next pop acknowledges it, and every QUEUED
trial still has its rq job after an interrupt cut the job's round trip short."""

from __future__ import annotations

import pytest
from rq.job import Job

from distopt import hp
from distopt.coordinator.loop import Coordinator, StopRules
from distopt.dispatch import RQExecutor, job_id, rq_queue
from distopt.dispatch.objective import ObjectiveRef
from distopt.storage.redis.pipelined import PipelinedRedisStorage
from distopt.study.study import Study
from distopt.trial.record import TrialState


@pytest.fixture
def storage(fake_redis):
    return PipelinedRedisStorage(fake_redis)


def result(tid: int, loss: float) -> dict:
    return {"tid": tid, "attempt": 0, "status": "ok", "loss": loss}


def test_a_batch_is_kept_until_the_next_pop_acknowledges_it(storage):
    Study(hp.uniform("x", 0, 1), storage=storage, name="s")
    for tid in range(3):
        storage.push_result("s", result(tid, tid))
    first = storage.pop_results("s", limit=2)
    assert [m["tid"] for m in first] == [0, 1]
    # the process holding that batch dies before recording it: another one gets it again
    successor = PipelinedRedisStorage(storage.client)
    assert [m["tid"] for m in successor.pop_results("s", limit=10)] == [0, 1, 2]
    assert successor.pop_results("s") == []  # acknowledges them
    assert successor.peek_results("s") == [] and storage.client.llen(storage.keys.claimed("s")) == 0


def test_the_next_pop_acknowledges_and_status_sees_unacknowledged_results(storage):
    Study(hp.uniform("x", 0, 1), storage=storage, name="s")
    storage.push_result("s", result(0, 0.5))
    assert [m["tid"] for m in storage.pop_results("s")] == [0]
    assert [m["tid"] for m in storage.peek_results("s")] == [0]  # not recorded yet: still waiting
    storage.push_result("s", result(1, 0.25))
    assert [m["tid"] for m in storage.pop_results("s")] == [1]  # 0 acknowledged, not handed again
    assert storage.pop_results("s") == []
    assert storage.peek_results("s") == []


def test_a_lost_reply_neither_loses_nor_repeats_a_batch(storage):
    """The script ran (acknowledged batch A, handed out batch B) but its reply never came:
    the retry holds A's token, which is no longer current, so it acknowledges nothing and
    hands out B again."""
    Study(hp.uniform("x", 0, 1), storage=storage, name="s")
    storage.push_result("s", result(0, 0.0))
    assert [m["tid"] for m in storage.pop_results("s")] == [0]
    token_a = storage._handouts["s"]
    storage.push_result("s", result(1, 1.0))
    assert [m["tid"] for m in storage.pop_results("s")] == [1]
    storage._handouts["s"] = token_a  # as if that reply was lost
    storage.push_result("s", result(2, 2.0))
    assert [m["tid"] for m in storage.pop_results("s")] == [1, 2]


def test_a_forged_raise_field_is_not_raised(storage):
    """Only an inline trial's own exception object is re-raised; a stored message with a
    ``raise`` key is JSON and records as any result."""
    study = Study(hp.uniform("x", 0, 1), storage=storage, name="s")
    (trial,) = study.ask(1)

    class Nothing:
        def submit(self, study, trials):
            pass

    coordinator = Coordinator(study, Nothing(), StopRules(max_evals=1))
    assert coordinator.handle_many([{**result(trial.tid, 0.5), "raise": "boom"}]) == 1
    assert study.record(trial.tid).state == TrialState.OK


def executor(storage: PipelinedRedisStorage, name: str) -> RQExecutor:
    return RQExecutor(storage, name, ObjectiveRef(name="sqrt", path="math:sqrt"), secret=b"k" * 32)


def test_jobs_kept_for_the_next_round_trip_are_sent_after_an_interrupt(storage):
    study = Study(hp.uniform("x", 0, 1), storage=storage, name="s")
    ex = executor(storage, "s")
    trials = study.ask(2)
    ex.submit_later(study, trials)  # Ctrl-C comes before the wait that would send them
    assert sorted(ex.requeue_missing(study)) == [t.tid for t in trials]
    queue = rq_queue(storage.client)
    assert sorted(queue.job_ids) == sorted(job_id("s", t.tid, 0) for t in trials)
    ex.close()  # nothing left to send twice
    assert len(queue.job_ids) == 2


def test_a_trial_stored_before_its_job_was_sent_gets_its_job(storage):
    """The interrupt fell between the study storing the trials and the executor keeping
    their jobs, or cut the pipeline that sent them: only the missing ones are sent."""
    study = Study(hp.uniform("x", 0, 1), storage=storage, name="s")
    ex = executor(storage, "s")
    sent = study.ask(1)
    ex.submit(study, sent)
    cut_off = study.ask(2)
    running = study.ask(1)
    study.mark_running(running[0].tid, 0, "w", None)
    assert sorted(ex.requeue_missing(study)) == sorted(t.tid for t in cut_off)
    ids = rq_queue(storage.client).job_ids
    assert sorted(ids) == sorted(job_id("s", t.tid, 0) for t in [*sent, *cut_off])
    assert not storage.client.exists(Job.key_for(job_id("s", running[0].tid, 0)))
