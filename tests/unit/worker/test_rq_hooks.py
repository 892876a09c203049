"""distopt's workers hook into rq by overriding its methods; an rq without one of them
would skip the job guard or the stop handling silently, so the worker refuses to start."""

from __future__ import annotations

import pytest

from distopt.errors import DistoptError
from distopt.worker import rq_worker
from distopt.worker.rq_worker import missing_rq_hooks


def test_the_installed_rq_has_every_method_the_workers_override():
    assert missing_rq_hooks() == []


def test_a_base_without_an_overridden_method_is_named():
    class Mixin:
        def execute_job(self, job, queue):
            pass

        def heartbeat(self):
            pass

    class Renamed:  # an rq that renamed execute_job
        def perform(self, job, queue):
            pass

        def heartbeat(self):
            pass

    assert missing_rq_hooks([Mixin], [Renamed]) == ["Renamed.execute_job"]


def test_a_worker_does_not_start_on_an_rq_without_them(monkeypatch, fake_redis):
    monkeypatch.setattr(rq_worker, "missing_rq_hooks", lambda: ["SimpleWorker.execute_job"])
    with pytest.raises(DistoptError, match=r"lacks SimpleWorker\.execute_job.*job guard.*does not start"):
        rq_worker.make_worker(fake_redis)


def test_an_rq_worker_started_with_the_class_directly_is_checked_too(monkeypatch, fake_redis):
    """``rq worker -w distopt.worker.rq_worker.DistoptSimpleWorker`` never calls make_worker."""
    monkeypatch.setattr(rq_worker, "missing_rq_hooks", lambda: ["SimpleWorker.execute_job"])
    with pytest.raises(DistoptError, match=r"lacks SimpleWorker\.execute_job"):
        rq_worker.DistoptSimpleWorker(["q"], connection=fake_redis)


def test_a_local_pool_says_so_before_starting_any_process(monkeypatch):
    from distopt.worker.pool import WorkerPool

    monkeypatch.setattr(rq_worker, "missing_rq_hooks", lambda: ["Worker.heartbeat"])
    pool = WorkerPool("redis://127.0.0.1:1/0", 2, secret=b"rq-hooks-secret")
    with pytest.raises(DistoptError, match=r"lacks Worker\.heartbeat"):
        pool.start()
    assert pool.procs == []


def test_distopt_worker_says_so_before_starting_any_process(monkeypatch):
    from distopt.worker.pool import run_workers

    monkeypatch.setattr(rq_worker, "missing_rq_hooks", lambda: ["Worker.request_stop"])
    with pytest.raises(DistoptError, match=r"lacks Worker\.request_stop"):
        run_workers("redis://127.0.0.1:1/0", processes=2, secret="rq-hooks-secret")
