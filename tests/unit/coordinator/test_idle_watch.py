"""The coordinator says so when trials wait and no worker serves their queue (injected
clock, fakeredis, real rq registries)."""

from __future__ import annotations

import logging

import pytest
from rq import Worker
from rq.serializers import JSONSerializer

from distopt import hp
from distopt.dispatch import RQExecutor
from distopt.coordinator.distributed import ship_objective
from distopt.coordinator.idle_watch import IdleQueueWatch
from distopt.storage.redis.pipelined import PipelinedRedisStorage
from distopt.study.study import Study

SECRET = b"idle-secret"
WAIT = 10.0
T0 = 1_000_000.0


def objective(x):
    return x


@pytest.fixture
def setup(fake_redis):
    storage = PipelinedRedisStorage(fake_redis)
    study = Study(hp.uniform("x", 0, 1), storage=storage, name="idle", seed=0)
    executor = RQExecutor(storage, "idle", ship_objective(objective, study, storage, SECRET), queue="gpu")
    trials = study.ask(3)
    for t in trials:
        rec = study.record(t.tid).replace(book_time=T0)
        storage.put_trial(study.name, rec)
        study._cache(rec)
    executor.submit(study, trials)
    return study, executor


def warnings_in(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "distopt.coordinator.idle_watch"]


def test_waiting_trials_with_no_worker_on_the_queue_are_reported_once(setup, caplog):
    study, executor = setup
    watch = IdleQueueWatch(executor, WAIT)
    with caplog.at_level(logging.WARNING):
        watch(study, T0 + WAIT / 2)
        assert warnings_in(caplog) == []  # not waited long enough yet
        watch(study, T0 + WAIT + 1)
        watch(study, T0 + 2 * WAIT)
    (msg,) = warnings_in(caplog)
    assert "3 trial(s) have waited 11 s" in msg and "queue 'gpu'" in msg and "--queue gpu" in msg


def test_a_worker_on_the_queue_silences_the_warning_until_it_is_gone(setup, fake_redis, caplog):
    study, executor = setup
    worker = Worker(["gpu"], connection=fake_redis, serializer=JSONSerializer)
    worker.register_birth()
    watch = IdleQueueWatch(executor, WAIT)
    with caplog.at_level(logging.WARNING):
        watch(study, T0 + WAIT + 1)
        assert executor.listeners() == 1 and warnings_in(caplog) == []
        worker.register_death()
        watch(study, T0 + 2 * WAIT)
    assert len(warnings_in(caplog)) == 1


def test_a_worker_dead_by_its_own_heartbeat_does_not_listen(setup, fake_redis, caplog):
    """rq keeps a worker killed with SIGKILL registered; its stale beat says it is gone."""
    import time

    study, executor = setup
    worker = Worker(["gpu"], connection=fake_redis, serializer=JSONSerializer, name="host:77")
    worker.register_birth()
    # a long interval: the fresh beat stays fresh however long this machine takes between the lines
    beat = {"id": "host:77", "rq": "host:77", "beat": time.time(), "interval": 600.0, "dead_after": 1050.0}
    executor.storage.beat_worker("host:77", beat, keep=7200)
    assert executor.listeners() == 1
    executor.storage.beat_worker("host:77", {**beat, "beat": time.time() - 3600}, keep=7200)
    watch = IdleQueueWatch(executor, WAIT)
    with caplog.at_level(logging.WARNING):
        watch(study, T0 + WAIT + 1)
    assert executor.listeners() == 0 and len(warnings_in(caplog)) == 1


def test_a_running_trial_means_workers_exist(setup, caplog):
    study, executor = setup
    tid = study.pending_tids()[0]
    assert study.mark_running(tid, 0, "host:1", T0 + 1)
    with caplog.at_level(logging.WARNING):
        IdleQueueWatch(executor, WAIT)(study, T0 + WAIT + 1)
    assert warnings_in(caplog) == []
