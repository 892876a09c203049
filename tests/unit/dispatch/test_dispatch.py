"""The rq layer in one process: fakeredis and rq's SimpleWorker, no subprocesses."""

import threading
import time

import pytest
from rq.job import JOB_ID_PATTERN

from distopt import hp
from distopt.coordinator.loop import Coordinator, StopRules
from distopt.dispatch import RQExecutor, job_id, rq_queue
from distopt.worker import heartbeat
from distopt.worker import job as job_mod
from distopt.worker import loading
from distopt.dispatch.rq_executor import RQ_TIMEOUT_MARGIN, coalesce
from distopt.worker.heartbeat import Heartbeater
from distopt.coordinator.distributed import Lease, run_distributed, ship_objective
from distopt.errors import LeaseError, LeaseLost, ObjectiveError
from distopt.trial.names import InvalidName
from distopt.trial.record import TrialState
from distopt.storage import MemoryStorage
from distopt.storage.redis.pipelined import PipelinedRedisStorage
from distopt.study.study import Study

from ..inprocess_rq import burst, clean_worker

SECRET = b"unit-secret"
SPACE = {"x": hp.uniform("x", -3, 3), "k": hp.choice("k", [(1, 2), "b"])}


def objective(p):
    return (p["x"] - 1) ** 2 + (0 if p["k"] == (1, 2) else 1)


def sleepy(x):
    time.sleep(0.2)
    return x


def failing(p):
    raise ValueError("bad point")


@pytest.fixture(autouse=True)
def worker_secret():
    yield from clean_worker(SECRET)


@pytest.fixture
def storage(fake_redis):
    return PipelinedRedisStorage(fake_redis)


class InProcessRQ(RQExecutor):
    """An RQExecutor whose wait first lets an in-process worker drain the queue."""

    def wait(self, timeout):
        burst(self.storage)
        return super().wait(0)


def test_job_ids_are_what_rq_accepts():
    jid = job_id("exp_1-a", 12, 3)
    assert jid == "distopt-exp_1-a-12-3"
    assert JOB_ID_PATTERN.fullmatch(jid)
    with pytest.raises(InvalidName):
        job_id("exp:1", 0, 0)


def test_trials_run_as_rq_jobs_and_report_to_the_inbox(storage, monkeypatch):
    # "short" is set by the delay, not by how fast this machine is: a loaded CI machine can
    # spend more than the default 0.05 s unpickling the objective for the first trial
    monkeypatch.setattr(heartbeat, "STARTED_DELAY", 60.0)
    study = Study(SPACE, storage=storage, name="s1", seed=0)
    ref = ship_objective(objective, study, storage, SECRET)
    ex = RQExecutor(storage, "s1", ref, secret=SECRET)
    trials = study.ask(3)
    assert all(r.state == TrialState.QUEUED for r in study.trials)
    ex.submit(study, trials)
    queue = rq_queue(storage.client)
    assert sorted(queue.job_ids) == sorted(job_id("s1", t.tid, 0) for t in trials)
    job = queue.fetch_job(job_id("s1", trials[0].tid, 0))
    assert job.args[0]["vals"] == dict(trials[0].vals) and job.args[0]["objective"]["digest"] == ref.digest
    assert job.func_name == "distopt.worker.job.run_trial"  # the function's home; dispatch imports no worker code
    burst(storage)
    msgs = storage.pop_results("s1", timeout=0)
    started = [m for m in msgs if m.get("type") == "started"]
    results = [m for m in msgs if m.get("type") != "started"]
    assert started == [] and len(results) == 3  # short trials go straight to their result
    by_tid = {m["tid"]: m for m in results}
    for t in trials:
        assert by_tid[t.tid]["status"] == "ok"
        assert by_tid[t.tid]["loss"] == pytest.approx(objective(t.params))
    assert len(loading._objectives) == 1  # unpickled once, not per trial


def test_coordinator_runs_a_study_through_rq(storage):
    study = Study(SPACE, storage=storage, name="s2", seed=1)
    ref = ship_objective(objective, study, storage, SECRET)
    coord = Coordinator(study, InProcessRQ(storage, "s2", ref, secret=SECRET), StopRules(max_evals=12), parallelism=4)
    assert coord.run() == "max_evals"
    assert study.n_finished == 12
    assert {r.state for r in storage.get_trials("s2")} == {TrialState.OK}
    assert all(r.worker and r.start_time for r in storage.get_trials("s2"))
    best = min(r.loss for r in study.trials)
    assert study.best_trial.loss == best


def test_run_distributed_holds_and_releases_the_lease(storage, monkeypatch):
    monkeypatch.setattr("distopt.dispatch.RQExecutor", InProcessRQ)
    study = Study(SPACE, storage=storage, name="s3", seed=2)
    seen = []

    def tick(s, now):
        seen.append(storage.lease_owner("s3"))

    reason = run_distributed(study, objective, StopRules(max_evals=5), parallelism=2, secret=SECRET, ticks=(tick,))
    assert reason == "max_evals" and study.n_finished == 5
    assert seen and all(owner is not None for owner in seen)
    assert storage.lease_owner("s3") is None
    meta = storage.get_study("s3")
    assert meta["status"] == "done" and meta["queue"] == "distopt" and meta["objective"]["digest"]


def test_second_coordinator_is_refused(storage):
    Study(SPACE, storage=storage, name="busy")
    Lease(storage, "busy", owner="first").acquire()
    with pytest.raises(LeaseError, match="already being run by coordinator first"):
        run_distributed(Study(SPACE, storage=storage, name="busy"), objective, StopRules(max_evals=1),
                        secret=SECRET, wait_for_lease=False)
    assert rq_queue(storage.client).count == 0


def test_unpicklable_objective_fails_before_anything_is_enqueued(storage):
    lock = threading.Lock()
    study = Study(SPACE, storage=storage, name="s4")
    with pytest.raises(ObjectiveError, match="cannot be sent to workers"):
        run_distributed(study, lambda p: lock and 1.0, StopRules(max_evals=3), secret=SECRET)
    assert rq_queue(storage.client).count == 0 and storage.get_trials("s4") == []
    assert storage.lease_owner("s4") is None


def test_an_exception_in_the_objective_fails_the_trial(storage):
    study = Study(SPACE, storage=storage, name="s5")
    ref = ship_objective(failing, study, storage, SECRET)
    ex = RQExecutor(storage, "s5", ref, secret=SECRET)
    ex.submit(study, study.ask(2))
    burst(storage)
    results = [m for m in ex.wait(0) if m.get("type") != "started"]
    assert [m["status"] for m in results] == ["fail", "fail"]
    assert "ValueError: bad point" in results[0]["error"] and results[0]["traceback"]
    assert "error_kind" not in results[0]


def test_worker_with_another_secret_reports_the_refusal(storage, monkeypatch):
    """Not a failed trial: the trial never ran, so the coordinator runs it elsewhere."""
    monkeypatch.setattr(job_mod, "LOAD_FAILURE_PAUSE", 0.0)
    study = Study(SPACE, storage=storage, name="s6")
    ref = ship_objective(objective, study, storage, b"coordinator-secret")
    ex = RQExecutor(storage, "s6", ref, secret=SECRET)
    ex.submit(study, study.ask(2))
    burst(storage)
    results = [m for m in ex.wait(0) if m.get("type") != "started"]
    assert len(results) == 2
    for m in results:
        assert m["type"] == "unloadable" and m["worker"] and m["rq_worker"]
        assert "different secret" in m["reason"]


def test_import_path_objective_gets_params_from_the_stored_space(storage):
    study = Study(hp.uniform("x", 1, 4), storage=storage, name="s7")
    ref = ship_objective("math:sqrt", study, storage, SECRET)
    assert ref.path == "math:sqrt" and ref.digest is None
    ex = RQExecutor(storage, "s7", ref, secret=SECRET)
    (trial,) = study.ask(1)
    ex.submit(study, [trial])
    burst(storage)
    (result,) = [m for m in ex.wait(0) if m.get("type") != "started"]
    assert result["loss"] == pytest.approx(trial.params ** 0.5)


def test_cancel_withdraws_queued_jobs(storage):
    study = Study(SPACE, storage=storage, name="s8")
    ref = ship_objective(objective, study, storage, SECRET)
    ex = RQExecutor(storage, "s8", ref, secret=SECRET)
    trials = study.ask(3)
    ex.submit(study, trials)
    ex.cancel(study, [trials[0].tid, trials[2].tid])
    queue = rq_queue(storage.client)
    assert queue.job_ids == [job_id("s8", trials[1].tid, 0)]
    assert queue.fetch_job(job_id("s8", trials[0].tid, 0)) is None


def test_leftover_trials_are_cancelled_and_their_jobs_withdrawn_by_one_rule(storage):
    from distopt.coordinator.loop import cancel_leftover
    from distopt.dispatch.rq_executor import withdraw_study_jobs, withdraw_trial_jobs

    study = Study(SPACE, storage=storage, name="s9")
    ref = ship_objective(objective, study, storage, SECRET)
    ex = RQExecutor(storage, "s9", ref, secret=SECRET)
    trials = study.ask(4)
    ex.submit(study, trials)
    ex.flush()
    # a job of an attempt that is not queued is not withdrawn, and not reported as withdrawn
    gone = study.record(trials[0].tid).replace(attempt=5)
    assert withdraw_trial_jobs(storage.client, "distopt", "s9", [gone, study.record(trials[1].tid)]) == [trials[1].tid]
    assert sorted(cancel_leftover(study, ex)) == [t.tid for t in trials]
    assert all(r.state == TrialState.CANCELLED for r in storage.get_trials("s9"))
    assert rq_queue(storage.client).job_ids == [] and withdraw_study_jobs(storage.client, "distopt", "s9") == 0


def test_coalesce_keeps_started_only_without_its_result():
    msgs = [{"type": "started", "tid": 1, "attempt": 0}, {"tid": 1, "attempt": 0, "status": "ok"},
            {"type": "started", "tid": 2, "attempt": 0}, {"tid": 3, "attempt": 1, "status": "ok"},
            {"type": "started", "tid": 3, "attempt": 2}]
    assert coalesce(msgs) == msgs[1:]


def test_trial_timeout_travels_in_the_payload_and_rq_keeps_a_backstop(storage):
    """The worker stops a trial at trial_timeout itself (fractions of a second); rq's
    whole-second job timeout only backs it up, later."""
    study = Study(SPACE, storage=storage, name="s9")
    ref = ship_objective(objective, study, storage, SECRET)
    assert RQExecutor(storage, "s9", ref, secret=SECRET).job_timeout == -1
    ex = RQExecutor(storage, "s9", ref, trial_timeout=2.5, secret=SECRET)
    assert ex.job_timeout == 3 + RQ_TIMEOUT_MARGIN
    (trial,) = study.ask(1)
    ex.submit(study, [trial])
    job = rq_queue(storage.client).fetch_job(job_id("s9", trial.tid, 0))
    assert job.args[0]["trial_timeout"] == 2.5 and job.timeout == 3 + RQ_TIMEOUT_MARGIN


class StepClock:
    """A clock that moves only when told: what is due never depends on how fast this machine is."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def test_heartbeats_only_for_trials_that_outlast_the_interval():
    storage = MemoryStorage()
    storage.create_study("hb", {})
    clock = StepClock()
    hb = Heartbeater(clock=clock)
    with hb.beating(storage, "hb", 1, 0, "w", interval=0.05, ttl=1.0):
        pass  # ended before its first beat was due
    assert storage.heartbeats("hb") == {}
    seen = {}
    with hb.beating(storage, "hb", 2, 0, "w", interval=0.05, ttl=1.0):
        clock.now += 1.0  # this one outlasts the interval
        deadline = time.monotonic() + 30  # the heartbeat thread beats once it is scheduled
        while not seen and time.monotonic() < deadline:
            seen = storage.heartbeats("hb")
            time.sleep(0.01)
    assert seen[2]["attempt"] == 0 and seen[2]["worker"] == "w"
    assert storage.heartbeats("hb") == {}  # cleared once the trial ended


class BeatLog(MemoryStorage):
    """Memory storage that notes every heartbeat and clear it is asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple] = []
        self.beaten = threading.Event()

    def heartbeat(self, name, tid, attempt, deadline, worker=None, *, incarnation=None):
        super().heartbeat(name, tid, attempt, deadline, worker, incarnation=incarnation)
        self.calls.append(("beat", tid, attempt, incarnation))
        self.beaten.set()

    def clear_heartbeat(self, name, tid, attempt=None, *, incarnation=None):
        super().clear_heartbeat(name, tid, attempt, incarnation=incarnation)
        self.calls.append(("clear", tid, attempt, incarnation))


@pytest.mark.parametrize("kept_attempt, incarnation", [(1, "inc"), (0, "old")],
                         ids=["newer-attempt", "other-incarnation"])
def test_a_replaced_attempts_beats_and_clear_leave_the_beat_that_replaced_it(kept_attempt, incarnation):
    """A worker frozen past its ttl wakes up after its trial ran again as attempt 1, or runs
    a trial of a study deleted and created again: its beats and the clear when its attempt
    ends name the attempt and the incarnation, and the other attempt's beat stays as it was."""
    storage = BeatLog()
    storage.create_study("hb", {"incarnation": "inc"})
    storage.heartbeat("hb", 1, kept_attempt, 500.0, "new")
    storage.beaten.clear()
    clock = StepClock()
    hb = Heartbeater(clock=clock)
    with hb.beating(storage, "hb", 1, 0, "old", interval=0.05, ttl=1.0, incarnation=incarnation):
        clock.now += 1.0
        assert storage.beaten.wait(30)
    assert storage.calls[-2:] == [("beat", 1, 0, incarnation), ("clear", 1, 0, incarnation)]
    assert storage.heartbeats("hb") == {1: {"attempt": kept_attempt, "deadline": 500.0, "worker": "new"}}


def test_started_is_reported_only_for_trials_that_run_a_while():
    storage = MemoryStorage()
    storage.create_study("st", {})
    clock = StepClock()
    hb = Heartbeater(clock=clock)
    with hb.beating(storage, "st", 1, 0, "w", started={"type": "started", "tid": 1}, started_delay=0.05):
        pass  # ended before its started delay passed
    with hb.beating(storage, "st", 2, 0, "w", started={"type": "started", "tid": 2}, started_delay=0.05):
        clock.now += 1.0  # this one runs past it
        deadline = time.monotonic() + 30  # the heartbeat thread reports once it is scheduled
        during = []
        while not during and time.monotonic() < deadline:
            during = storage.pop_results("st", timeout=0)
            time.sleep(0.01)
    assert during == [{"type": "started", "tid": 2}]
    assert storage.pop_results("st", timeout=0) == []


def test_a_job_beats_under_its_attempt_and_the_studys_incarnation(storage, monkeypatch):
    seen = []
    beating = heartbeat.beating

    def spy(*args, **kwargs):
        seen.append((args[2:4], kwargs.get("incarnation")))
        return beating(*args, **kwargs)

    monkeypatch.setattr(heartbeat, "beating", spy)
    study = Study(hp.uniform("x", 0, 1), storage=storage, name="inc")
    ex = RQExecutor(storage, "inc", ship_objective(objective_x, study, storage, SECRET), secret=SECRET)
    ex.submit(study, study.ask(1))
    burst(storage)
    assert study.incarnation and seen == [((0, 0), study.incarnation)]


def objective_x(x):
    return x


def test_a_slow_trial_is_marked_running_before_it_ends(storage):
    study = Study(hp.uniform("x", 0, 1), storage=storage, name="slow")
    ref = ship_objective(sleepy, study, storage, SECRET)
    ex = RQExecutor(storage, "slow", ref, secret=SECRET)
    (trial,) = study.ask(1)
    ex.submit(study, [trial])
    burst(storage)
    msgs = storage.pop_results("slow", timeout=0)
    assert [m.get("type", "result") for m in msgs] == ["started", "result"]
    assert msgs[0]["start_time"] <= msgs[1]["start_time"] and msgs[0]["worker"] == msgs[1]["worker"]


def test_a_coordinator_that_loses_its_lease_stops_writing(storage, monkeypatch):
    monkeypatch.setattr("distopt.dispatch.RQExecutor", InProcessRQ)
    study = Study(SPACE, storage=storage, name="stolen", seed=3)

    def steal(s, now):
        if s.n_finished >= 2 and storage.lease_owner("stolen") != "thief":
            storage.release_lease("stolen", storage.lease_owner("stolen"))
            assert storage.acquire_lease("stolen", "thief", 30)
            time.sleep(0.02)  # past a third of the ttl: the next tick renews, and fails

    with pytest.raises(LeaseLost, match="no longer holds study 'stolen': it held lease generation 1 .*generation 2 "
                                        r"\(coordinator thief\)"):
        run_distributed(study, objective, StopRules(max_evals=50), parallelism=2, secret=SECRET,
                        ticks=(steal,), lease_ttl=0.05)
    assert storage.lease_owner("stolen") == "thief"
    states = {r.state for r in storage.get_trials("stolen")}
    assert TrialState.CANCELLED not in states and storage.get_study("stolen")["status"] == "running"


def test_a_forged_result_about_a_waiting_job_is_dropped_and_about_a_taken_one_reroutes(storage):
    study = Study(SPACE, storage=storage, name="forge", seed=0)
    ref = ship_objective(objective, study, storage, SECRET)
    ex = RQExecutor(storage, "forge", ref, secret=SECRET)
    (trial,) = study.ask(1)
    ex.submit(study, [trial])
    payload = rq_queue(storage.client).fetch_job(job_id("forge", trial.tid, 0)).args[0]
    forged = {"tid": trial.tid, "attempt": 0, "status": "ok", "loss": -1e9, "worker": "x:1",
              "incarnation": payload["incarnation"], "params": payload["params"]}
    storage.push_result("forge", forged)
    assert ex.wait(0) == []  # the job still waits: no worker wrote this
    storage.client.lrem(rq_queue(storage.client).key, 0, job_id("forge", trial.tid, 0))  # a worker took it
    storage.push_result("forge", forged)
    (msg,) = ex.wait(0)
    assert msg["type"] == "unloadable" and msg["unverified"] and "not signed" in msg["reason"]
    assert "loss" not in msg
    (rec,) = storage.get_trials("forge")
    assert rec.state == TrialState.QUEUED and rec.loss is None  # nothing recorded: the reaper reroutes it
