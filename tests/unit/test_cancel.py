"""``cancel_study``: with no coordinator it cancels itself; with one, the coordinator does."""

from __future__ import annotations

import threading
import time

import pytest

from distopt import hp
from distopt.cancel import cancel_study
from distopt.coordinator import StopRules
from distopt.dispatch import RQExecutor, job_id, rq_queue
from distopt.distributed import run_distributed, ship_objective
from distopt.errors import DistoptError, StudyNotFound
from distopt.lease import Lease
from distopt.records import TrialState
from distopt.storage.pipelined import PipelinedRedisStorage
from distopt.study import Study

SECRET = b"cancel-secret"


def objective(x):
    return x


@pytest.fixture
def storage(fake_redis):
    return PipelinedRedisStorage(fake_redis)


def test_cancel_without_a_coordinator(storage, fake_redis):
    study = Study(hp.uniform("x", 0, 1), storage=storage, name="c1")
    ref = ship_objective(objective, study, storage, SECRET)
    storage.update_study("c1", {"queue": "distopt"})
    ex = RQExecutor(storage, "c1", ref)
    trials = study.ask(4)
    ex.submit(study, trials)
    study.tell(trials[0], 1.0)
    study.mark_running(trials[1].tid, 0, "w:1", time.time())
    result = cancel_study(fake_redis, "c1")
    assert result.cancelled == 3 and result.finished == 1 and result.by == "this process"
    assert result.status == "cancelled"
    states = {r.tid: r.state for r in storage.get_trials("c1")}
    assert states == {trials[0].tid: TrialState.OK, **{t.tid: TrialState.CANCELLED for t in trials[1:]}}
    # the jobs of the cancelled trials are withdrawn (trial 0 was told here, its job is left alone)
    assert rq_queue(storage.client).job_ids == [job_id("c1", trials[0].tid, 0)]
    assert storage.lease_owner("c1") is None
    assert rq_queue(storage.client).fetch_job(job_id("c1", trials[2].tid, 0)) is None


def test_cancel_an_unknown_study_names_the_known_ones(fake_redis, storage):
    storage.create_study("there", {})
    with pytest.raises(StudyNotFound, match="there"):
        cancel_study(fake_redis, "nowhere")


class Idle(RQExecutor):
    """Jobs stay queued: no worker runs them."""

    def wait(self, timeout):
        time.sleep(0.02)
        return super().wait(0)


def test_a_running_coordinator_stops_when_asked(storage, fake_redis, monkeypatch):
    monkeypatch.setattr("distopt.dispatch.RQExecutor", Idle)
    monkeypatch.setattr("distopt.cancel.CHECK_EVERY", 0.05)
    study = Study(hp.uniform("x", 0, 1), storage=storage, name="c2")
    outcome = {}

    def coordinate():
        outcome["reason"] = run_distributed(study, objective, StopRules(max_evals=10), parallelism=3, secret=SECRET)

    runner = threading.Thread(target=coordinate)
    runner.start()
    deadline = time.monotonic() + 10
    while rq_queue(storage.client).count < 3:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    result = cancel_study(fake_redis, "c2", wait=10)
    runner.join(10)
    assert outcome["reason"] == "cancelled" and result.by.startswith("coordinator ")
    assert result.cancelled == 3 and result.status == "cancelled"
    assert {r.state for r in storage.get_trials("c2")} == {TrialState.CANCELLED}
    assert rq_queue(storage.client).count == 0


def test_a_coordinator_that_does_not_stop_is_named(storage, fake_redis):
    Study(hp.uniform("x", 0, 1), storage=storage, name="c3")
    Lease(storage, "c3", ttl=30, owner="stuck-coordinator").acquire()
    with pytest.raises(DistoptError, match="asked coordinator stuck-coordinator to cancel study 'c3'"):
        cancel_study(fake_redis, "c3", wait=0.2)
    assert storage.get_study("c3")["cancel_requested"] is True
