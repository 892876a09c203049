"""Deleting a study removes its keys and its waiting jobs, and nothing of another study
(even one whose name starts with the same letters)."""

from __future__ import annotations

import pytest

from distopt.dispatch.rq_executor import rq_queue
from distopt.dispatch.jobs import JOB_FUNC, job_id
from distopt.errors import StudyRunning
from distopt.monitor.manage import delete_study, list_studies
from distopt.trial.record import TrialRecord
from distopt.storage import RedisStorage


def test_delete_withdraws_only_its_own_jobs(redis_url):
    storage = RedisStorage(redis_url)
    queue = rq_queue(storage.client)
    for name in ("a", "a-1"):
        storage.create_study(name, {"status": "interrupted", "queue": "distopt"})
        for tid in range(3):
            storage.put_trial(name, TrialRecord(tid, {"x": 0.0}))
            queue.enqueue(JOB_FUNC, {}, job_id=job_id(name, tid, 0))
        storage.push_result(name, {"tid": 0, "attempt": 0, "status": "ok", "loss": 1.0})
        storage.heartbeat(name, 1, 0, 1e12, "h:1")
    done = delete_study(redis_url, "a")
    assert done == {"study": "a", "trials": 3, "jobs_withdrawn": 3, "coordinator": None}
    assert storage.list_studies() == ["a-1"]
    assert storage.client.keys("distopt:study:a:*") == []
    assert sorted(queue.get_job_ids()) == [job_id("a-1", t, 0) for t in range(3)]
    assert len(storage.get_trials("a-1")) == 3 and storage.peek_results("a-1") and storage.heartbeats("a-1")


def test_delete_refuses_a_live_coordinator(redis_url):
    storage = RedisStorage(redis_url)
    storage.create_study("live", {"status": "running"})
    storage.acquire_lease("live", "h:1:c", 60)
    with pytest.raises(StudyRunning, match="coordinator h:1:c .*--force"):
        delete_study(storage, "live")
    assert list_studies(storage)[0]["coordinator_alive"] is True
    assert delete_study(storage, "live", force=True)["coordinator"] == "h:1:c"
    assert list_studies(storage) == []
