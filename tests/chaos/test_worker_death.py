"""Workers killed with SIGKILL in the middle of a trial: the trial runs again elsewhere and
the study ends with exactly the trials asked for."""

from __future__ import annotations

import os
import signal
import threading
import time

from distopt import fmin, hp, rand
from distopt.trial.record import TrialState
from distopt.redis_trials import RedisTrials

from .helpers import HEARTBEAT_TTL, SECRET, records, rq_workers, wait_until, worker_pids, worker_pool

STUDY = "kills"
N_TRIALS = 60


def objective(x):
    time.sleep(0.4)
    return (x - 1.0) ** 2


def test_killed_workers_lose_no_trial(redis_url):
    errors: list[BaseException] = []
    trials = RedisTrials(redis_url, exp_key=STUDY, secret=SECRET, heartbeat_ttl=HEARTBEAT_TTL)

    def coordinate() -> None:
        try:
            fmin(objective, hp.uniform("x", -5, 5), algo=rand.suggest, max_evals=N_TRIALS, trials=trials,
                 parallelism=3, max_retries=5, rstate=0, timeout=120, show_progressbar=False)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    kills: list[tuple[int, int]] = []
    with worker_pool(redis_url, 3) as supervisor:
        runner = threading.Thread(target=coordinate)
        runner.start()
        for _ in range(4):
            time.sleep(2.0)
            busy = wait_until(lambda: [w for w in rq_workers(redis_url).values()
                                       if w["trial"] and w["trial"]["study"] == STUDY], 10, "a busy worker")
            victim = busy[0]
            os.kill(victim["pid"], signal.SIGKILL)
            kills.append((victim["trial"]["tid"], victim["trial"]["attempt"]))
        runner.join(120)
        assert not runner.is_alive() and not errors, errors
        assert supervisor.poll() is None  # the supervisor restarted the killed workers
        wait_until(lambda: len(worker_pids(redis_url)) == 3, 20, "the pool to be back to 3 workers")

    done = records(redis_url, STUDY)
    assert len(done) == N_TRIALS and all(r.state == TrialState.OK for r in done)
    assert trials.stop_reason == "max_evals"
    by_tid = {r.tid: r for r in done}
    retried = [tid for tid, attempt in kills if by_tid[tid].attempt > attempt]
    # A kill can land after the trial pushed its result but before rq marked the worker idle:
    # that trial needs no second run. Every other killed attempt was lost and run again.
    assert len(retried) >= len(kills) - 1, (kills, {t: by_tid[t].attempt for t, _ in kills})


def three_seconds(x):
    time.sleep(3.0)
    return x


def test_a_work_horse_outliving_its_killed_parent_keeps_its_trial(redis_url):
    """Killing a forking worker's parent leaves the work-horse running: its heartbeats keep
    the trial alive and its late result is the trial's; nothing runs twice."""
    errors: list[BaseException] = []
    trials = RedisTrials(redis_url, exp_key="orphan", secret=SECRET, heartbeat_ttl=HEARTBEAT_TTL)

    def coordinate() -> None:
        try:
            fmin(three_seconds, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=1, trials=trials,
                 timeout=60, show_progressbar=False)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    with worker_pool(redis_url, 1, fork=True) as parent:
        runner = threading.Thread(target=coordinate)
        runner.start()
        wait_until(lambda: any(w["trial"] for w in rq_workers(redis_url).values()), 30, "the trial to start")
        time.sleep(0.5)
        parent.kill()
        runner.join(30)
    assert not runner.is_alive() and not errors, errors
    (rec,) = records(redis_url, "orphan")
    assert rec.state == TrialState.OK and rec.attempt == 0
    assert int(rec.worker.rsplit(":", 1)[1]) != parent.pid  # reported by the work-horse
