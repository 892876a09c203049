"""``cancel_study``: with no coordinator it cancels itself; with one, the coordinator does."""

from __future__ import annotations

import threading
import time

import pytest

from distopt import hp
from distopt.coordinator.cancel import cancel_study
from distopt.coordinator.loop import StopRules
from distopt.dispatch import RQExecutor, job_id, rq_queue
from distopt.dispatch.signing import sign_message
from distopt.coordinator.distributed import run_distributed, ship_objective
from distopt.errors import DistoptError, StudyNotFound
from distopt.coordinator.lease import Lease
from distopt.trial.record import TrialState
from distopt.storage.redis.pipelined import PipelinedRedisStorage
from distopt.study.study import Study

SECRET = b"cancel-secret"


@pytest.fixture(autouse=True)
def secret_in_env(monkeypatch):
    """``distopt cancel`` checks results with $DISTOPT_SECRET, as an operator's shell has it."""
    monkeypatch.setenv("DISTOPT_SECRET", SECRET.decode())


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


def start_coordinator(storage, name, executor, monkeypatch):
    """A coordinator thread running ``name`` with ``executor`` until 3 jobs are queued;
    returns the thread and a dict that gets its stop reason."""
    monkeypatch.setattr("distopt.dispatch.RQExecutor", executor)
    monkeypatch.setattr("distopt.coordinator.cancel.CHECK_EVERY", 0.05)
    study = Study(hp.uniform("x", 0, 1), storage=storage, name=name)
    outcome = {}

    def coordinate():
        outcome["reason"] = run_distributed(study, objective, StopRules(max_evals=10), parallelism=3, secret=SECRET)

    runner = threading.Thread(target=coordinate)
    runner.start()
    deadline = time.monotonic() + 10
    while rq_queue(storage.client).count < 3:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return runner, outcome


def test_a_running_coordinator_stops_when_asked(storage, fake_redis, monkeypatch):
    runner, outcome = start_coordinator(storage, "c2", Idle, monkeypatch)
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


def ok_message(tid, loss, attempt=0, secret=SECRET):
    """A result as a worker holding ``secret`` sends it (signed)."""
    return sign_message({"tid": tid, "attempt": attempt, "status": "ok", "loss": loss,
                         "result": {"status": "ok", "loss": loss}, "error": None, "traceback": None, "worker": "w:1",
                         "start_time": time.time() - 1, "end_time": time.time()}, secret)


def fail_message(tid, error, attempt=0):
    return sign_message({"tid": tid, "attempt": attempt, "status": "fail", "loss": None, "result": {"status": "fail"},
                         "error": error, "traceback": None, "worker": "w:1", "start_time": time.time() - 1,
                         "end_time": time.time()}, SECRET)


@pytest.mark.parametrize("env_secret", [True, False])
def test_a_cancel_records_no_forged_result(storage, fake_redis, monkeypatch, env_secret):
    """A result that does not verify (unsigned, or under another secret) never ends a trial, and
    without $DISTOPT_SECRET nothing of a signed study can be checked, so nothing is recorded."""
    if not env_secret:
        monkeypatch.delenv("DISTOPT_SECRET")
    study = Study(hp.uniform("x", 0, 1), storage=storage, name="c7")
    ref = ship_objective(objective, study, storage, SECRET)
    storage.update_study("c7", {"queue": "distopt", "objective": ref.to_json(), "signed_results": True})
    a, b, c = study.ask(3)
    storage.push_result("c7", {**ok_message(a.tid, -1e9), "sig": "0" * 64})
    storage.push_result("c7", ok_message(b.tid, -1e9, secret=b"another"))
    storage.push_result("c7", ok_message(c.tid, 0.5))
    with pytest.raises(DistoptError, match="results waiting for trials that have not ended"):
        cancel_study(fake_redis, "c7")  # it would lose them: refused, nothing cancelled
    assert {r.state for r in storage.get_trials("c7")} == {TrialState.QUEUED}
    result = cancel_study(fake_redis, "c7", drop_unverified=True)
    states = {r.tid: (r.state, r.loss) for r in storage.get_trials("c7")}
    assert states[a.tid][0] == states[b.tid][0] == TrialState.CANCELLED
    assert states[c.tid] == ((TrialState.OK, 0.5) if env_secret else (TrialState.CANCELLED, None))
    assert result.recorded == (1 if env_secret else 0)
    assert result.unverified == (2 if env_secret else 3)


def test_without_a_secret_a_cancel_refuses_to_drop_signed_results(storage, fake_redis, monkeypatch):
    """Results of a signed study wait and nothing here can check them: cancelling would end
    their trials CANCELLED instead of OK, so it refuses, saying what to pass; nothing changes."""
    monkeypatch.delenv("DISTOPT_SECRET")
    study = Study(hp.uniform("x", 0, 1), storage=storage, name="c9")
    ref = ship_objective(objective, study, storage, SECRET)
    storage.update_study("c9", {"queue": "distopt", "objective": ref.to_json(), "signed_results": True})
    a, b = study.ask(2)
    storage.push_result("c9", ok_message(a.tid, 0.5))
    with pytest.raises(DistoptError, match=r"1 results waiting .* without the study's secret.*--secret-file.*"
                                           r"--drop-unverified.*No trial was cancelled"):
        cancel_study(fake_redis, "c9")
    assert {r.state for r in storage.get_trials("c9")} == {TrialState.QUEUED}
    assert storage.lease_owner("c9") is None and len(storage.peek_results("c9")) == 1
    with pytest.raises(DistoptError, match=r"do not verify under the secret given here"):
        cancel_study(fake_redis, "c9", secret=b"not-the-workers-secret")
    assert len(storage.peek_results("c9")) == 1  # still waiting for the right secret
    result = cancel_study(fake_redis, "c9", secret=SECRET.decode())  # the workers' secret, as text, records it
    assert result.recorded == 1 and result.unverified == 0


def test_a_cancel_is_not_refused_for_results_of_trials_that_ended(storage, fake_redis, monkeypatch):
    monkeypatch.delenv("DISTOPT_SECRET")
    study = Study(hp.uniform("x", 0, 1), storage=storage, name="c10")
    ref = ship_objective(objective, study, storage, SECRET)
    storage.update_study("c10", {"queue": "distopt", "objective": ref.to_json(), "signed_results": True})
    a, b = study.ask(2)
    study.tell(a, 0.25)
    storage.push_result("c10", ok_message(a.tid, 0.5))  # a duplicate: a's trial already ended
    result = cancel_study(fake_redis, "c10")
    assert result.cancelled == 1 and result.recorded == 0
    assert storage.get_trial("c10", a.tid).loss == 0.25


def test_a_study_run_without_a_secret_keeps_its_results_when_the_canceller_has_one(storage, fake_redis):
    """Its workers do not sign: every result is recorded, as its coordinator would have."""
    study = Study(hp.uniform("x", 0, 1), storage=storage, name="c11")
    storage.update_study("c11", {"queue": "distopt", "signed_results": False})
    a, b = study.ask(2)
    storage.push_result("c11", {"tid": a.tid, "attempt": 0, "status": "ok", "loss": 0.5,
                                "result": {"status": "ok", "loss": 0.5}, "worker": "w:1"})
    result = cancel_study(fake_redis, "c11")  # $DISTOPT_SECRET is set (autouse fixture)
    assert result.recorded == 1 and result.unverified == 0
    assert storage.get_trial("c11", a.tid).state == TrialState.OK


def test_a_running_coordinator_records_no_forged_result_when_cancelled(storage, fake_redis, monkeypatch):
    monkeypatch.delenv("DISTOPT_SECRET")  # the coordinator's own secret is what counts
    runner, outcome = start_coordinator(storage, "c8", Deaf, monkeypatch)
    first, second = sorted(r.tid for r in storage.get_trials("c8"))[:2]
    storage.push_result("c8", {**ok_message(first, -1e9), "sig": "0" * 64})
    storage.push_result("c8", ok_message(second, 0.125))
    result = cancel_study(fake_redis, "c8", wait=10)
    runner.join(10)
    assert outcome["reason"] == "cancelled" and result.recorded == 1
    assert storage.get_trial("c8", first).state == TrialState.CANCELLED
    assert storage.get_trial("c8", second).state == TrialState.OK


def test_results_waiting_in_the_inbox_are_recorded_before_the_rest_is_cancelled(storage, fake_redis):
    """No coordinator ran while the workers finished: their results are kept, not cancelled."""
    study = Study(hp.uniform("x", 0, 1), storage=storage, name="c4")
    ref = ship_objective(objective, study, storage, SECRET)
    storage.update_study("c4", {"queue": "distopt"})
    trials = study.ask(4)
    RQExecutor(storage, "c4", ref).submit(study, trials)
    storage.push_result("c4", {"type": "started", "tid": trials[0].tid, "attempt": 0, "worker": "w:1"})
    storage.push_result("c4", ok_message(trials[0].tid, 0.25))
    storage.push_result("c4", fail_message(trials[1].tid, "ValueError: boom"))
    storage.push_result("c4", ok_message(trials[0].tid, 0.25))  # a duplicate
    storage.push_result("c4", {"type": "started", "tid": trials[2].tid, "attempt": 0, "worker": "w:2"})
    result = cancel_study(fake_redis, "c4")
    assert (result.recorded, result.cancelled, result.finished, result.late) == (2, 2, 2, 0)
    records = {r.tid: r for r in storage.get_trials("c4")}
    assert records[trials[0].tid].state == TrialState.OK and records[trials[0].tid].loss == 0.25
    assert records[trials[0].tid].worker == "w:1"
    assert records[trials[1].tid].state == TrialState.FAIL and records[trials[1].tid].error == "ValueError: boom"
    assert {records[t.tid].state for t in trials[2:]} == {TrialState.CANCELLED}
    assert storage.pop_results("c4") == []
    queued = set(rq_queue(storage.client).job_ids)
    assert not queued & {job_id("c4", t.tid, 0) for t in trials[2:]}


def test_a_late_result_of_an_earlier_attempt_is_recorded_and_the_newer_job_withdrawn(storage, fake_redis):
    study = Study(hp.uniform("x", 0, 1), storage=storage, name="c5")
    ref = ship_objective(objective, study, storage, SECRET)
    storage.update_study("c5", {"queue": "distopt"})
    ex = RQExecutor(storage, "c5", ref)
    (trial,) = study.ask(1)
    study.mark_lost(trial.tid, 0, "no heartbeat")
    retried = study.requeue(trial.tid)
    ex.submit(study, [retried])
    storage.push_result("c5", ok_message(trial.tid, 0.5, attempt=0))
    result = cancel_study(fake_redis, "c5")
    assert (result.recorded, result.cancelled) == (1, 0)
    assert storage.get_trial("c5", trial.tid).state == TrialState.OK
    assert job_id("c5", trial.tid, retried.attempt) not in rq_queue(storage.client).job_ids


class Deaf(RQExecutor):
    """Jobs stay queued and results stay in the inbox: no worker, and the coordinator does
    not read them, as when they arrive right as the cancel is asked for."""

    def wait(self, timeout):
        time.sleep(0.02)
        self.flush()
        return []


def test_a_running_coordinator_records_the_inbox_before_it_cancels(storage, fake_redis, monkeypatch):
    runner, outcome = start_coordinator(storage, "c6", Deaf, monkeypatch)
    first = min(r.tid for r in storage.get_trials("c6"))
    storage.push_result("c6", ok_message(first, 0.125))
    result = cancel_study(fake_redis, "c6", wait=10)
    runner.join(10)
    assert outcome["reason"] == "cancelled" and result.by.startswith("coordinator ")
    assert (result.recorded, result.cancelled, result.finished) == (1, 2, 1)
    assert storage.get_trial("c6", first).state == TrialState.OK
