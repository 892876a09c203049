"""What a worker refuses or stops, in one process: trials past their timeout, jobs naming
an objective their study never shipped, import paths without a valid signature."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from distopt import hp
from distopt.dispatch import RQExecutor, rq_queue
from distopt.dispatch.jobs import JOB_FUNC, make_payload
from distopt.worker import job as job_mod
from distopt.worker.time_limit import TrialTimeout, time_limit
from distopt.coordinator.distributed import ship_objective
from distopt.dispatch.objective import ObjectiveRef
from distopt.storage.redis.pipelined import PipelinedRedisStorage
from distopt.study.study import Study

from ..inprocess_rq import burst, clean_worker

SECRET = b"limits-secret"


def stubborn(x):
    """Sleeps long and swallows every Exception, as careless objectives do."""
    try:
        time.sleep(120 if x > 0.5 else 0)
    except Exception:
        return 0.0
    return x


def other(x):
    return -x


@pytest.fixture(autouse=True)
def worker_secret():
    yield from clean_worker(SECRET)


@pytest.fixture
def storage(fake_redis):
    return PipelinedRedisStorage(fake_redis)


def results(storage, study):
    return {m["tid"]: m for m in storage.pop_results(study, timeout=0) if m.get("type") is None}


def unloadable(storage, study):
    """What a worker that refused to load the objective says: not a result (the trial never
    ran), a request to run the trial elsewhere, with the reason."""
    return [m for m in storage.pop_results(study, timeout=0) if m.get("type") == "unloadable"]


@pytest.fixture(autouse=True)
def no_pause(monkeypatch):
    monkeypatch.setattr(job_mod, "LOAD_FAILURE_PAUSE", 0.0)


# -- the time limit -----------------------------------------------------------------------
def test_time_limit_raises_a_base_exception_and_restores_the_outer_alarm():
    fired = []
    previous = signal.signal(signal.SIGALRM, lambda s, f: fired.append(s))
    try:
        signal.setitimer(signal.ITIMER_REAL, 1.0)  # rq's backstop alarm
        with pytest.raises(TrialTimeout, match="trial_timeout of 0.1 s"):
            with time_limit(0.1):
                try:
                    time.sleep(2)
                except Exception:  # user code cannot swallow it
                    pytest.fail("TrialTimeout was caught as an Exception")
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 0.0 < left < 1.0  # what was left of the outer alarm, re-armed
        assert signal.getsignal(signal.SIGALRM) is not None and fired == []
        deadline = time.monotonic() + 10
        while not fired and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fired == [signal.SIGALRM]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_time_limit_does_nothing_without_a_limit_or_off_the_main_thread():
    with time_limit(None):
        time.sleep(0.01)
    errors = []

    def run():
        try:
            with time_limit(0.01):
                time.sleep(0.05)
        except BaseException as exc:  # pragma: no cover - would be the failure
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert errors == []


def test_a_trial_past_its_timeout_fails_and_the_worker_takes_the_next_one(storage):
    study = Study(hp.uniform("x", 0, 1), storage=storage, name="slowpoke")
    ref = ship_objective(stubborn, study, storage, SECRET)
    ex = RQExecutor(storage, "slowpoke", ref, trial_timeout=0.3, secret=SECRET)
    slow, fast = study.ask(2)
    study.storage.put_trial("slowpoke", study.record(slow.tid).replace(vals={"x": 0.9}))
    study.storage.put_trial("slowpoke", study.record(fast.tid).replace(vals={"x": 0.1}))
    study._load()
    ex.submit(study, [study.trial_for(study.record(slow.tid)), study.trial_for(study.record(fast.tid))])
    started = time.monotonic()
    burst(storage)  # one in-process worker runs both jobs
    assert time.monotonic() - started < 60  # the slow one was stopped, not slept out (120 s)
    got = results(storage, "slowpoke")
    assert got[slow.tid]["status"] == "fail" and got[slow.tid]["error_kind"] == "timeout"
    assert got[slow.tid]["error"].startswith("trial_timeout: the trial ran longer than its trial_timeout of 0.3 s")
    assert got[fast.tid]["status"] == "ok" and got[fast.tid]["loss"] == pytest.approx(0.1)


# -- which objective a job may name --------------------------------------------------------
def test_a_job_naming_another_studys_objective_is_refused(storage):
    """A validly signed blob of study A must not run with a job forged for study B."""
    a = Study(hp.uniform("x", 0, 1), storage=storage, name="a")
    ref_a = ship_objective(other, a, storage, SECRET)
    b = Study(hp.uniform("x", 0, 1), storage=storage, name="b")
    ship_objective(stubborn, b, storage, SECRET)
    (trial,) = b.ask(1)
    payload = make_payload("b", trial.tid, 0, trial.vals, ref_a, storage.prefix, secret=SECRET)
    rq_queue(storage.client).enqueue(JOB_FUNC, payload, job_id="distopt-b-0-0")
    burst(storage)
    (msg,) = unloadable(storage, "b")
    assert f"names objective {ref_a.digest!r}, which study 'b' never shipped" in msg["reason"]


def test_an_import_path_with_a_forged_signature_is_refused(storage):
    study = Study(hp.uniform("x", 1, 4), storage=storage, name="p")
    ref = ship_objective("math:sqrt", study, storage, SECRET)
    assert ref.sig is not None
    ex = RQExecutor(storage, "p", ObjectiveRef(name=ref.name, path=ref.path, sig="00" * 32), secret=SECRET)
    ex.submit(study, study.ask(1))
    burst(storage)
    (msg,) = unloadable(storage, "p")
    assert "signature of the import path does not verify" in msg["reason"]


def test_an_unsigned_import_path_is_refused_by_a_worker_with_a_secret(storage):
    study = Study(hp.uniform("x", 1, 4), storage=storage, name="u")
    ref = ship_objective("math:sqrt", study, storage, None)
    assert ref.sig is None
    ex = RQExecutor(storage, "u", ref, secret=SECRET)
    ex.submit(study, study.ask(1))
    burst(storage)
    (msg,) = unloadable(storage, "u")
    assert "unsigned import path" in msg["reason"]
