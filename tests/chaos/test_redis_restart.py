"""redis-server restarted (AOF on) twice mid-study, once gracefully and once with SIGKILL:
the coordinator and the workers reconnect and go on, and no finished result is lost.
(``appendfsync always``: with ``everysec`` a crash may drop the last second of writes.)"""

from __future__ import annotations

import threading
import time

from distopt import fmin, hp, rand
from distopt.errors import ConnectionFailed
from distopt.trial.record import TrialState
from distopt.storage.redis.server import RedisServer
from distopt.redis_trials import RedisTrials

from .helpers import SECRET, finished, records, rq_workers, wait_until, worker_pids, worker_pool

STUDY = "restarts"
N_TRIALS = 40
#: Nothing here needs a trial to be lost: a ttl no restart (or loaded machine) outlasts keeps
#: a trial from using up its retries on beats that Redis could not take while it was down.
TTL = 15.0


def objective(x):
    time.sleep(0.2)
    return (x - 1.0) ** 2


def test_a_study_survives_redis_restarts(tmp_path):
    errors: list[BaseException] = []
    with RedisServer(appendonly=True, appendfsync="always", dir=tmp_path) as server:
        url = server.url
        trials = RedisTrials(url, exp_key=STUDY, secret=SECRET, heartbeat_ttl=TTL)

        def coordinate() -> None:
            try:
                fmin(objective, hp.uniform("x", -5, 5), algo=rand.suggest, max_evals=N_TRIALS, trials=trials,
                     parallelism=3, rstate=0, timeout=120, show_progressbar=False)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        with worker_pool(url, 3) as supervisor:
            runner = threading.Thread(target=coordinate)
            runner.start()
            wait_until(lambda: finished(url, STUDY) >= 8, 60, "some finished trials")
            before = finished(url, STUDY)
            server.restart()  # SIGTERM: Redis writes its AOF and exits; back on the same port
            assert finished_once_loaded(url) >= before  # nothing finished was lost
            wait_until(lambda: finished(url, STUDY) >= before + 8, 60, "progress after the restart")
            before = finished(url, STUDY)
            server.restart(hard=True)  # SIGKILL, like a crash: only the AOF keeps the data
            assert finished_once_loaded(url) >= before
            runner.join(120)
            assert not runner.is_alive() and not errors, errors
            assert supervisor.poll() is None
            wait_until(lambda: len(worker_pids(url)) == 3, 60, "the 3 workers to be back")
            assert len(rq_workers(url)) == 3  # a worker that restarted its rq loop left no ghost behind
        done = records(url, STUDY)
    assert len(done) == N_TRIALS and all(r.state == TrialState.OK for r in done)
    assert trials.stop_reason == "max_evals" and trials.study.n_finished == N_TRIALS


def finished_once_loaded(url: str) -> int:
    """Finished trials, read once the restarted Redis has loaded its data (until then it
    answers LOADING, which is no answer about the study)."""
    def read() -> int | None:
        try:
            return finished(url, STUDY) + 1  # + 1: zero finished trials is an answer too
        except ConnectionFailed:
            return None

    return wait_until(read, 30, "Redis to load its data after the restart") - 1


def slow(x):
    time.sleep(1.0)
    return x


def test_a_lone_worker_outlives_redis_going_away_mid_trial(tmp_path):
    """No supervisor to restart it: the worker pushes its result once Redis is back, and
    goes on with the next trial."""
    errors: list[BaseException] = []
    with RedisServer(appendonly=True, dir=tmp_path) as server:
        url = server.url
        # no trial is lost while Redis is away, however slowly it comes back: attempts stay 0
        trials = RedisTrials(url, exp_key="lone", secret=SECRET, heartbeat_ttl=60.0)

        def coordinate() -> None:
            try:
                fmin(slow, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=4, trials=trials, parallelism=1,
                     rstate=0, timeout=120, show_progressbar=False)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        with worker_pool(url, 1) as worker:
            (pid,) = worker_pids(url)
            runner = threading.Thread(target=coordinate)
            runner.start()
            wait_until(lambda: any(w["trial"] for w in rq_workers(url).values()), 30, "a trial to start")
            server.stop()  # Redis away for longer than the trial
            time.sleep(2.0)
            server.start()
            runner.join(120)
            assert not runner.is_alive() and not errors, errors
            assert worker.poll() is None
            assert worker_pids(url) == {pid}  # the same process, still working
        done = records(url, "lone")
    assert len(done) == 4 and all(r.state == TrialState.OK and r.attempt == 0 for r in done)
