"""A study that cannot succeed stops early, naming the error: the same objective error from the
start, failures in a row, or workers that cannot load the objective."""

from __future__ import annotations

import pytest

from distopt import hp
from distopt.coordinator.loop import StopRules
from distopt.dispatch import RQExecutor, rq_queue
from distopt.worker import guard
from distopt.worker import job as job_mod
from distopt.worker.rq_worker import make_worker
from distopt.coordinator.distributed import run_distributed
from distopt.errors import ObjectiveError
from distopt.coordinator.failfast import LOAD_FAILURES_AFTER_SUCCESS, FailureGuard
from distopt.trial.record import TrialRecord, TrialState
from distopt.storage.redis.pipelined import PipelinedRedisStorage
from distopt.study.study import Study

SECRET = b"failfast-secret"
REC = TrialRecord(0, {})


def raised(error="FileNotFoundError: [Errno 2] No such file or directory: 'data.csv'", status="fail"):
    tb = 'Traceback (most recent call last):\n  File "/home/me/study.py", line 7, in objective\n'
    return {"status": status, "error": error, "reported": False, "traceback": tb}


def test_the_fifth_identical_objective_error_stops_the_study_naming_the_users_line():
    guard = FailureGuard()
    for _ in range(4):
        guard.observe(raised(), REC)
    with pytest.raises(ObjectiveError, match=r"the first 5 trials all failed with the same error.*fail_fast=5\): "
                                             r"FileNotFoundError.*data\.csv.*study\.py\", line 7"):
        guard.observe(raised(), REC)


def test_fail_fast_is_settable_and_zero_turns_it_off():
    guard = FailureGuard(fail_fast=2)
    guard.observe(raised(), REC)
    with pytest.raises(ObjectiveError, match="the first 2 trials"):
        guard.observe(raised(), REC)
    off = FailureGuard(fail_fast=0)
    for _ in range(50):
        off.observe(raised(), REC)


def test_a_success_a_reported_failure_or_another_error_first_disarms_it():
    for first in ({"status": "ok", "loss": 1.0}, {"status": "fail", "error": "reported", "reported": True},
                  raised("ValueError: another")):
        guard = FailureGuard(fail_fast=3)
        guard.observe(first, REC)
        for _ in range(10):
            guard.observe(raised(), REC)


def test_max_consecutive_failures_counts_any_failure_in_a_row():
    guard = FailureGuard(fail_fast=0, max_consecutive_failures=3)
    guard.observe(raised("A"), REC)
    guard.observe(raised("B"), REC)
    guard.observe({"status": "ok", "loss": 1.0}, REC)  # the run is broken only by failures in a row
    guard.observe(raised("C"), REC)
    guard.observe({"status": "fail", "error": "reported", "reported": True}, REC)
    with pytest.raises(ObjectiveError, match=r"3 trials in a row failed \(max_consecutive_failures=3\).*: D"):
        guard.observe(raised("D"), REC)


def test_load_failures_stop_only_when_no_listening_worker_can_load():
    listening = {"a:1", "b:2"}
    guard = FailureGuard(listening=lambda: listening)
    for _ in range(20):  # a:1 lacks a package; b:2 may have it: its trials go there
        guard.load_failed("ModuleNotFoundError: No module named 'sklearn'", "a:1")
    with pytest.raises(ObjectiveError, match=r"the first 21 trials all failed on the workers before the objective "
                                             r"ran.*No module named 'sklearn'"):
        guard.load_failed("ModuleNotFoundError: No module named 'sklearn'", "b:2")


def test_after_a_trial_ran_load_failures_need_a_longer_run_to_stop():
    guard = FailureGuard(listening=set)
    guard.observe({"status": "ok", "loss": 1.0}, REC)
    for _ in range(LOAD_FAILURES_AFTER_SUCCESS - 1):
        guard.load_failed("ImportError: x", "a:1")
    with pytest.raises(ObjectiveError, match="no listening worker could load the objective"):
        guard.load_failed("ImportError: x", "a:1")


class InProcessRQ(RQExecutor):
    def wait(self, timeout):
        make_worker(self.storage.client).work(burst=True, logging_level="WARNING")
        return super().wait(0)


def test_run_distributed_stops_early_and_cancels_the_rest(fake_redis, monkeypatch):
    monkeypatch.setattr("distopt.dispatch.RQExecutor", InProcessRQ)
    monkeypatch.setattr(job_mod, "LOAD_FAILURE_PAUSE", 0.0)
    guard.configure(SECRET, insecure=False)
    try:
        storage = PipelinedRedisStorage(fake_redis)
        study = Study(hp.uniform("x", 0, 1), storage=storage, name="nomodule")
        with pytest.raises(ObjectiveError, match="No module named 'distopt_nowhere'"):
            run_distributed(study, "distopt_nowhere.objectives:loss", StopRules(max_evals=100), parallelism=2,
                            secret=SECRET)
    finally:
        job_mod.reset()
    counts = storage.count_states("nomodule")
    assert counts[TrialState.FAIL] == counts[TrialState.OK] == 0  # trials that never ran use no budget
    assert counts[TrialState.CANCELLED] >= 1
    assert counts[TrialState.QUEUED] == counts[TrialState.RUNNING] == 0
    meta = storage.get_study("nomodule")
    assert meta["status"] == "failed" and "distopt_nowhere" in meta["error"]
    assert rq_queue(storage.client).count == 0


def test_the_same_error_is_the_same_type_and_line_whatever_values_its_message_holds():
    guard = FailureGuard(fail_fast=3)
    guard.observe(raised("ValueError: x=0.1 too large"), REC)
    guard.observe(raised("ValueError: x=0.7 too large"), REC)
    with pytest.raises(ObjectiveError, match="the first 3 trials"):
        guard.observe(raised("ValueError: x=0.9 too large"), REC)
