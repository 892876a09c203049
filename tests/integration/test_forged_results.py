"""Someone who can write to Redis forges results: real workers, a real coordinator, a
forger thread that copies each job's identity (study incarnation, trial, attempt,
parameter digest) from rq's job and pushes a result with a better loss than any real one."""

import threading
import time

import pytest
from rq.job import Job
from rq.registry import StartedJobRegistry

from ..chaos.helpers import wait_until
from rq.serializers import JSONSerializer

from distopt import fmin, hp, tpe
from distopt.dispatch.inspect import listening_versions
from distopt.dispatch.inspect import parse_job_id, queued_job_ids
from distopt.redis_trials import RedisTrials
from distopt.storage import RedisStorage
from distopt.trial.record import TrialState
from distopt.worker.pool import WorkerPool

SECRET = "forgery-secret"
FORGED_LOSS = -1e9


def slow_square(x):
    time.sleep(0.05)  # long enough that forgeries often arrive before the real result
    return x * x


class Forger(threading.Thread):
    """Pushes one forged result per job it sees, waiting or taken by a worker, as a Redis
    writer could. One about a waiting job is dropped (no worker took it); one about a taken
    job makes the coordinator run the trial again, and the real result, arriving later, is
    still recorded (a late attempt's result ends a trial that has not ended)."""

    def __init__(self, url: str, study: str) -> None:
        super().__init__(daemon=True)
        self.storage = RedisStorage(url)
        self.study = study
        self.stop = threading.Event()
        self.forged: set[str] = set()  # job ids: one forged result each, whether the job waits or runs
        self.waiting: set[str] = set()
        self.taken: set[str] = set()

    def run(self) -> None:
        conn = self.storage.client
        while not self.stop.is_set():
            taken = set(StartedJobRegistry("distopt", connection=conn).get_job_ids())
            for jid in queued_job_ids(conn, "distopt") | taken:
                parsed = parse_job_id(jid) or {}
                if jid in self.forged or parsed.get("study") != self.study or parsed.get("attempt") != 0:
                    continue  # one forgery per trial and state: each costs the trial a retry
                try:
                    payload = Job.fetch(jid, connection=conn, serializer=JSONSerializer).args[0]
                except Exception:  # taken and gone meanwhile
                    continue
                self.forged.add(jid)
                (self.taken if jid in taken else self.waiting).add(jid)
                self.storage.push_result(self.study, {
                    "tid": payload["tid"], "attempt": payload["attempt"], "status": "ok", "loss": FORGED_LOSS,
                    "result": {"status": "ok", "loss": FORGED_LOSS}, "worker": "forger:1", "start_time": time.time(),
                    "end_time": time.time(), "incarnation": payload["incarnation"], "params": payload["params"],
                    "sig": "0" * 64,
                })
            self.stop.wait(0.005)


def test_forged_results_never_become_results(redis_url):
    forger = Forger(redis_url, "forged")
    forger.start()
    try:
        with WorkerPool(redis_url, 2, secret=SECRET.encode()):
            # forged messages name a worker that does not listen; while the real ones do, the study goes on
            # (with no worker listening, messages the coordinator cannot verify stop it: the fail-fast rule)
            conn = RedisStorage(redis_url).client
            wait_until(lambda: len(listening_versions(conn, "distopt", time.time(), set())) == 2, 60,
                       "both workers to listen")
            trials = RedisTrials(redis_url, exp_key="forged", secret=SECRET)
            best = fmin(slow_square, hp.uniform("x", -2, 2), algo=tpe.suggest, max_evals=16, trials=trials,
                        parallelism=4, rstate=0, timeout=120, show_progressbar=False)
    finally:
        forger.stop.set()
        forger.join(10)
    assert forger.waiting and forger.taken  # the forger reached jobs in both states
    records = [r for r in RedisStorage(redis_url).get_trials("forged") if r.state == TrialState.OK]
    assert len(records) == 16  # the budget went to real evaluations: a rerouted trial uses none
    assert all(r.loss == pytest.approx(slow_square(r.vals["x"])) and r.worker != "forger:1" for r in records)
    assert min(r.loss for r in records) >= 0 and best["x"] ** 2 == pytest.approx(min(r.loss for r in records))
