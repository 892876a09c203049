"""A study whose workers cannot load its objective stops early, naming the error."""

from __future__ import annotations

import pytest
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from distopt import hp
from distopt.coordinator.loop import StopRules
from distopt.dispatch import RQExecutor, rq_queue
from distopt.dispatch import jobs as jobs_mod
from distopt.coordinator.distributed import run_distributed
from distopt.errors import ObjectiveError
from distopt.coordinator.failfast import LoadFailureGuard
from distopt.trial.record import TrialRecord, TrialState
from distopt.storage.redis.pipelined import PipelinedRedisStorage
from distopt.study.study import Study

SECRET = b"failfast-secret"
REC = TrialRecord(0, {})


def load_failure(reason="ImportError: no module named 'x'"):
    return {"status": "fail", "error_kind": "objective", "reason": reason, "error": f"worker w:1 cannot load: {reason}"}


def test_the_fifth_identical_load_failure_stops_the_study():
    guard = LoadFailureGuard()
    for _ in range(4):
        guard.observe(load_failure(), REC)
    with pytest.raises(ObjectiveError, match=r"the first 5 trials all failed .*: ImportError: no module named 'x'"):
        guard.observe(load_failure(), REC)


def test_a_trial_that_ran_or_another_error_disarms_it():
    guard = LoadFailureGuard(threshold=2)
    guard.observe({"status": "fail", "error": "ValueError: the objective's own"}, REC)
    for _ in range(5):
        guard.observe(load_failure(), REC)  # some workers lack the module, others ran trials
    mixed = LoadFailureGuard(threshold=2)
    mixed.observe(load_failure("one"), REC)
    for _ in range(5):
        mixed.observe(load_failure("another"), REC)


class InProcessRQ(RQExecutor):
    def wait(self, timeout):
        worker = SimpleWorker([rq_queue(self.storage.client)], connection=self.storage.client,
                              serializer=JSONSerializer)
        worker.work(burst=True, logging_level="WARNING")
        return super().wait(0)


def test_run_distributed_stops_early_and_cancels_the_rest(fake_redis, monkeypatch):
    monkeypatch.setattr("distopt.dispatch.RQExecutor", InProcessRQ)
    jobs_mod.configure(SECRET, insecure=False)
    try:
        storage = PipelinedRedisStorage(fake_redis)
        study = Study(hp.uniform("x", 0, 1), storage=storage, name="nomodule")
        with pytest.raises(ObjectiveError, match="No module named 'distopt_nowhere'"):
            run_distributed(study, "distopt_nowhere.objectives:loss", StopRules(max_evals=100), parallelism=2,
                            secret=SECRET)
    finally:
        jobs_mod.reset()
    counts = storage.count_states("nomodule")
    assert 5 <= counts[TrialState.FAIL] <= 5 + 2 and counts[TrialState.OK] == 0  # not 100: the budget is kept
    assert counts[TrialState.QUEUED] == counts[TrialState.RUNNING] == 0
    meta = storage.get_study("nomodule")
    assert meta["status"] == "failed" and "distopt_nowhere" in meta["error"]
    assert rq_queue(storage.client).count == 0
