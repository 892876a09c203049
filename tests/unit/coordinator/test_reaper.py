"""The reaper with an injected clock, on fakeredis with real rq jobs and no worker
processes: which silent attempts are lost, when, and what happens to them next."""

from __future__ import annotations

import pytest

from distopt import hp
from distopt.coordinator.loop import Coordinator, StopRules
from distopt.dispatch import RQExecutor, job_id, rq_queue
from distopt.coordinator.distributed import ship_objective
from distopt.coordinator.reaper import Liveness, Reaper
from distopt.trial.record import TrialState
from distopt.storage.redis.pipelined import PipelinedRedisStorage
from distopt.study.study import Study

SECRET = b"reaper-secret"
TTL = 10.0
T0 = 1_000_000.0  # the injected "now" of the first sweep


def objective(x):
    return x


@pytest.fixture
def storage(fake_redis):
    return PipelinedRedisStorage(fake_redis)


@pytest.fixture
def setup(storage):
    study = Study(hp.uniform("x", 0, 1), storage=storage, name="r", seed=0)
    ref = ship_objective(objective, study, storage, SECRET)
    executor = RQExecutor(storage, "r", ref)
    return study, executor


def reaper(executor, **kw):
    return Reaper(executor, Liveness(heartbeat_ttl=TTL, **kw))


def queued_ids(storage):
    return rq_queue(storage.client).job_ids


def take_job(storage, jid):
    """What a worker does when it pops a job: the id leaves the queue list."""
    assert storage.client.lrem(rq_queue(storage.client).key, 1, jid) == 1


def ask(study, executor, n=1, book_time=T0):
    trials = study.ask(n)
    for t in trials:  # book the trials at the injected time
        rec = study.record(t.tid).replace(book_time=book_time)
        study.storage.put_trial(study.name, rec)
        study._cache(rec)
    executor.submit(study, trials)
    return trials


def running(study, tid, start):
    assert study.mark_running(tid, study.record(tid).attempt, "host:1", start)


def test_an_expired_heartbeat_is_lost_and_runs_again_under_a_new_job_id(setup, storage):
    study, ex = setup
    (t,) = ask(study, ex)
    take_job(storage, job_id("r", t.tid, 0))
    running(study, t.tid, T0)
    storage.heartbeat("r", t.tid, 0, T0 + TTL, "host:1")
    r = reaper(ex)
    assert r.sweep(study, T0 + TTL - 1) == []
    assert r.sweep(study, T0 + TTL + 1) == [t.tid]
    rec = study.record(t.tid)
    assert rec.state == TrialState.QUEUED and rec.attempt == 1 and "stopped sending heartbeats" in rec.error
    assert queued_ids(storage) == [job_id("r", t.tid, 1)]
    assert study.pending_tids() == [t.tid] and storage.heartbeats("r") == {}  # the stale beat is cleared


def test_a_lost_trial_leaves_the_samplers_pending_set_until_requeued(setup):
    study, ex = setup
    (t,) = ask(study, ex)
    running(study, t.tid, T0)
    assert study.mark_lost(t.tid, 0, "gone") is not None
    assert study.n_pending == 0 and study.pending_array().shape[0] == 0


def test_a_running_trial_without_beats_is_alive_for_a_ttl_then_lost_after_the_grace(setup, storage):
    study, ex = setup
    (t,) = ask(study, ex)
    take_job(storage, job_id("r", t.tid, 0))
    running(study, t.tid, T0)
    r = reaper(ex, grace=3.0)
    assert r.sweep(study, T0 + TTL - 0.5) == []  # within start + ttl
    assert r.sweep(study, T0 + TTL + 1) == []  # unaccounted from now on
    assert r.sweep(study, T0 + TTL + 3.5) == []
    assert r.sweep(study, T0 + TTL + 4.1) == [t.tid]
    assert "no heartbeat within" in study.record(t.tid).error


def test_a_queued_trial_waiting_in_the_queue_is_never_lost(setup):
    study, ex = setup
    (t,) = ask(study, ex)
    r = reaper(ex)
    for later in (0, 100, 10_000, 100_000):
        assert r.sweep(study, T0 + later) == []
    assert study.record(t.tid).state == TrialState.QUEUED and study.record(t.tid).attempt == 0


def test_a_job_taken_by_a_worker_that_died_before_starting_it_is_lost(setup, storage):
    """rq 3.0 leaves no trace of a worker that died between taking a job and starting it."""
    study, ex = setup
    (t,) = ask(study, ex)
    r = reaper(ex, grace=5.0)
    assert r.liveness.period_s == 1.0
    assert r.sweep(study, T0 + 0.5) == []  # booked less than a period ago: not even looked at
    take_job(storage, job_id("r", t.tid, 0))
    assert r.sweep(study, T0 + 1.5) == []  # first seen gone from the queue
    assert r.sweep(study, T0 + 6) == []  # a short trial would have reported by now
    assert r.sweep(study, T0 + 6.5) == [t.tid]  # lost one grace after its job left the queue
    rec = study.record(t.tid)
    assert rec.state == TrialState.QUEUED and rec.attempt == 1 and "left the queue" in rec.error
    assert queued_ids(storage) == [job_id("r", t.tid, 1)]


def test_a_short_trial_whose_result_arrives_in_time_is_not_lost(setup, storage):
    study, ex = setup
    (t,) = ask(study, ex)
    r = reaper(ex, grace=5.0)
    take_job(storage, job_id("r", t.tid, 0))
    assert r.sweep(study, T0 + 6) == []
    study.record_result(t.tid, 0, True, 0.5, {"loss": 0.5, "status": "ok"})
    assert r.sweep(study, T0 + 20) == []
    assert study.record(t.tid).state == TrialState.OK


def test_after_max_retries_the_trial_fails_with_the_reason(setup, storage):
    study, ex = setup
    (t,) = ask(study, ex)
    r = reaper(ex, max_retries=1)
    now = T0
    for attempt in (0, 1):
        take_job(storage, job_id("r", t.tid, attempt))
        running(study, t.tid, now)
        storage.heartbeat("r", t.tid, attempt, now + TTL, "host:1")
        now += TTL + 1
        assert r.sweep(study, now) == [t.tid]
    rec = study.record(t.tid)
    assert rec.state == TrialState.FAIL and rec.attempt == 1
    assert rec.error.startswith("lost 2 times (max_retries=1); last: worker host:1 stopped sending heartbeats")
    assert study.n_finished == 1 and study.n_pending == 0 and queued_ids(storage) == []


def test_a_late_result_from_a_reaped_attempt_is_recorded_and_the_new_job_withdrawn(setup, storage):
    study, ex = setup
    (t,) = ask(study, ex)
    take_job(storage, job_id("r", t.tid, 0))
    running(study, t.tid, T0)
    storage.heartbeat("r", t.tid, 0, T0 + TTL, "host:1")
    reaper(ex).sweep(study, T0 + TTL + 1)
    assert queued_ids(storage) == [job_id("r", t.tid, 1)]
    coord = Coordinator(study, ex, StopRules(max_evals=1))
    late = {"tid": t.tid, "attempt": 0, "status": "ok", "loss": 0.25, "worker": "host:1"}
    assert coord.handle_many([late]) == 1
    rec = study.record(t.tid)
    assert rec.state == TrialState.OK and rec.loss == 0.25
    assert queued_ids(storage) == []  # attempt 1 will not run for nothing
    # the withdrawn attempt's result, a duplicate and a late "started" change nothing
    again = [late, dict(late, attempt=1, loss=9.0), {"type": "started", "tid": t.tid, "attempt": 1}]
    assert coord.handle_many(again) == 0
    assert study.record(t.tid).loss == 0.25 and study.n_finished == 1


def test_out_of_order_messages_are_harmless(setup):
    study, ex = setup
    (t,) = ask(study, ex)
    coord = Coordinator(study, ex, StopRules(max_evals=1))
    result = {"tid": t.tid, "attempt": 0, "status": "ok", "loss": 1.0}
    assert coord.handle_many([result, {"type": "started", "tid": t.tid, "attempt": 0, "start_time": T0}]) == 1
    assert study.record(t.tid).state == TrialState.OK
    assert coord.handle_many([{"tid": 99, "attempt": 0, "status": "ok", "loss": 0.0}]) == 0  # unknown trial


def test_a_hung_trial_past_its_timeout_fails_with_the_reason(setup, storage):
    study, ex = setup
    (t,) = ask(study, ex)
    take_job(storage, job_id("r", t.tid, 0))
    running(study, t.tid, T0)
    r = reaper(ex, trial_timeout=20.0, grace=2.0)
    storage.heartbeat("r", t.tid, 0, T0 + 100, "host:1")  # its heartbeat thread still runs
    assert r.sweep(study, T0 + 21) == []
    assert r.sweep(study, T0 + 22.5) == [t.tid]
    rec = study.record(t.tid)
    assert rec.state == TrialState.FAIL and rec.error.startswith("trial_timeout: ran longer than trial_timeout=20 s")
    assert study.n_finished == 1


def test_a_handed_back_trial_runs_again_at_once(setup, storage):
    study, ex = setup
    (t,) = ask(study, ex)
    take_job(storage, job_id("r", t.tid, 0))
    running(study, t.tid, T0)
    coord = Coordinator(study, ex, StopRules(max_evals=1), message_hooks={"handback": reaper(ex).handback})
    assert coord.handle_many([{"type": "handback", "tid": t.tid, "attempt": 0, "worker": "host:1"}]) == 0
    rec = study.record(t.tid)
    assert rec.state == TrialState.QUEUED and rec.attempt == 1 and "handed back by worker host:1" in rec.error
    assert queued_ids(storage) == [job_id("r", t.tid, 1)]


def test_a_lost_trial_left_by_a_crashed_coordinator_is_requeued_on_resume(setup, storage):
    study, ex = setup
    (t,) = ask(study, ex)
    take_job(storage, job_id("r", t.tid, 0))
    study.mark_lost(t.tid, 0, "gone")  # ... and the coordinator died before requeueing
    resumed = Study(hp.uniform("x", 0, 1), storage=storage, name="r")
    assert resumed.record(t.tid).state == TrialState.LOST
    reaper(ex).sweep(resumed, T0)
    assert resumed.record(t.tid).state == TrialState.QUEUED and resumed.record(t.tid).attempt == 1
    assert queued_ids(storage) == [job_id("r", t.tid, 1)]


def test_sweeps_are_spaced_by_the_period(setup, storage):
    study, ex = setup
    (t,) = ask(study, ex)
    running(study, t.tid, T0)
    take_job(storage, job_id("r", t.tid, 0))
    storage.heartbeat("r", t.tid, 0, T0 + TTL, "host:1")
    r = reaper(ex, period=20.0)
    r(study, T0)  # sweeps
    r(study, T0 + TTL + 1)  # too soon after the last sweep: nothing happens
    assert study.record(t.tid).state == TrialState.RUNNING
    r(study, T0 + 20)
    assert study.record(t.tid).attempt == 1


def test_a_lost_trial_still_counts_against_the_budget(setup, storage):
    """On resume, LOST trials (not pending for the sampler) will still end: the first fill
    must not ask for trials in their place."""
    study, ex = setup
    trials = ask(study, ex, n=3)
    for t in trials[:2]:
        study.tell(t, 1.0)
    study.mark_lost(trials[2].tid, 0, "gone")
    coord = Coordinator(study, ex, StopRules(max_evals=3), parallelism=4)
    coord.fill()
    assert len(study.trials) == 3 and study.n_lost == 1
    study.requeue(trials[2].tid)
    assert study.n_lost == 0 and study.n_pending == 1


@pytest.fixture
def clears(storage, monkeypatch):
    """Every clear_heartbeat call the reaper makes, as (tid, attempt, incarnation)."""
    calls = []
    clear = storage.clear_heartbeat

    def spy(name, tid, attempt=None, *, incarnation=None):
        calls.append((tid, attempt, incarnation))
        clear(name, tid, attempt, incarnation=incarnation)

    monkeypatch.setattr(storage, "clear_heartbeat", spy)
    return calls


def test_the_reaper_clears_the_beat_of_the_attempt_it_acted_on(setup, storage, clears):
    study, ex = setup
    lost, hung, ended = ask(study, ex, n=3)
    for t, start in ((lost, T0 + 5), (hung, T0), (ended, T0)):
        take_job(storage, job_id("r", t.tid, 0))
        running(study, t.tid, start)
    storage.heartbeat("r", lost.tid, 0, T0 + TTL, "host:1")
    storage.heartbeat("r", hung.tid, 0, T0 + 100, "host:2")
    storage.heartbeat("r", ended.tid, 0, T0 + 100, "host:3")
    study.record_result(ended.tid, 0, True, 0.5, {"loss": 0.5, "status": "ok"})
    assert sorted(reaper(ex, trial_timeout=TTL, grace=0.5).sweep(study, T0 + TTL + 1)) == [lost.tid, hung.tid]
    assert set(clears) == {(lost.tid, 0, study.incarnation), (hung.tid, 0, study.incarnation),
                           (ended.tid, 0, study.incarnation)}
    assert study.incarnation and storage.heartbeats("r") == {}


def test_the_reapers_clear_leaves_a_newer_attempts_beat(setup, storage):
    """The reaper clears after losing attempt 0: should attempt 1's worker have beaten by
    then, its beat stays."""
    study, ex = setup
    (t,) = ask(study, ex)
    take_job(storage, job_id("r", t.tid, 0))
    running(study, t.tid, T0)
    storage.heartbeat("r", t.tid, 1, T0 + 100, "host:2")
    assert reaper(ex).lose(study, t.tid, 0, "gone").attempt == 1
    assert storage.heartbeats("r")[t.tid]["attempt"] == 1
