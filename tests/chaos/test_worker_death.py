"""Workers killed with SIGKILL in the middle of a trial: the trial runs again elsewhere and
the study ends with exactly the trials asked for."""

from __future__ import annotations

import functools
import os
import signal
import threading
import time

from distopt import fmin, hp, rand
from distopt.trial.record import TrialState
from distopt.redis_trials import RedisTrials
from distopt.storage import RedisStorage

from .helpers import SECRET, finished, records, rq_workers, wait_until, worker_pids, worker_pool

STUDY = "kills"
N_TRIALS = 60
#: The killed attempts are noticed a ttl later; a live worker on a loaded machine never
#: misses one (it beats every ttl/6), so only the kills cost retries.
TTL = 4.0


def objective(x):
    time.sleep(0.4)
    return (x - 1.0) ** 2


def test_killed_workers_lose_no_trial(redis_url):
    errors: list[BaseException] = []
    trials = RedisTrials(redis_url, exp_key=STUDY, secret=SECRET, heartbeat_ttl=TTL)

    def coordinate() -> None:
        try:
            fmin(objective, hp.uniform("x", -5, 5), algo=rand.suggest, max_evals=N_TRIALS, trials=trials,
                 parallelism=3, max_retries=5, rstate=0, timeout=120, show_progressbar=False)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    kills: list[tuple[int, int, float]] = []
    with worker_pool(redis_url, 3) as supervisor:
        runner = threading.Thread(target=coordinate)
        runner.start()
        for _ in range(4):
            time.sleep(2.0)
            busy = wait_until(lambda: [w for w in rq_workers(redis_url).values()
                                       if w["trial"] and w["trial"]["study"] == STUDY], 60, "a busy worker")
            victim = busy[0]
            os.kill(victim["pid"], signal.SIGKILL)
            kills.append((victim["trial"]["tid"], victim["trial"]["attempt"], time.time()))
        runner.join(120)
        assert not runner.is_alive() and not errors, errors
        assert supervisor.poll() is None  # the supervisor restarted the killed workers
        wait_until(lambda: len(worker_pids(redis_url)) == 3, 60, "the pool to be back to 3 workers")

    done = records(redis_url, STUDY)
    assert len(done) == N_TRIALS and all(r.state == TrialState.OK for r in done)
    assert trials.stop_reason == "max_evals"
    by_tid = {r.tid: r for r in done}
    # A kill can land after the trial pushed its result but before rq marked the worker idle:
    # that trial needs no second run (its result was made before the kill). Every other
    # killed attempt was lost and run again.
    unretried = [(tid, attempt, at) for tid, attempt, at in kills if by_tid[tid].attempt <= attempt]
    assert all(by_tid[tid].attempt == attempt and by_tid[tid].end_time is not None and by_tid[tid].end_time <= at
               for tid, attempt, at in unretried), (kills, {t: (by_tid[t].attempt, by_tid[t].end_time)
                                                            for t, _, _ in kills})


def held(flag, x):
    """Runs while the file ``flag`` exists (at most 120 s)."""
    deadline = time.monotonic() + 120
    while os.path.exists(flag) and time.monotonic() < deadline:
        time.sleep(0.05)
    return x


def test_a_work_horse_outliving_its_killed_parent_keeps_its_trial(redis_url, tmp_path):
    """Killing a forking worker's parent leaves the work-horse running: its heartbeats keep
    the trial alive and its late result is the trial's; nothing runs twice."""
    ttl = 10.0  # the horse beats every ttl/6: a loaded machine does not make it miss a ttl
    errors: list[BaseException] = []
    trials = RedisTrials(redis_url, exp_key="orphan", secret=SECRET, heartbeat_ttl=ttl)
    flag = tmp_path / "hold"
    flag.touch()
    objective = functools.partial(held, str(flag))
    storage = RedisStorage(redis_url)

    def coordinate() -> None:
        try:
            fmin(objective, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=1, trials=trials,
                 timeout=120, show_progressbar=False)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    with worker_pool(redis_url, 1, fork=True) as parent:
        runner = threading.Thread(target=coordinate)
        runner.start()
        try:
            wait_until(lambda: any(w["trial"] for w in rq_workers(redis_url).values()), 30, "the trial to start")
            wait_until(lambda: storage.heartbeats("orphan"), 30, "the work-horse's first heartbeat")
            parent.kill()
            killed = time.time()
            # the horse goes on beating: a beat sent over a ttl after the kill, so every deadline
            # from before it has passed and only the horse's beats kept the trial alive meanwhile
            wait_until(lambda: any(b["deadline"] > killed + 2 * ttl for b in storage.heartbeats("orphan").values()),
                       60 + 2 * ttl, "a heartbeat from the work-horse a ttl after its parent died")
        finally:
            flag.unlink()
        runner.join(60)
    assert not runner.is_alive() and not errors, errors
    (rec,) = records(redis_url, "orphan")
    assert rec.state == TrialState.OK and rec.attempt == 0
    assert int(rec.worker.rsplit(":", 1)[1]) != parent.pid  # reported by the work-horse


def long_first_time(marker, x):
    """Runs 60 s the first time (its worker is killed meanwhile), at once afterwards."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        time.sleep(60.0)
    return x


def test_a_worker_killed_right_after_taking_a_trial_is_noticed_within_the_ttl(redis_url, tmp_path, caplog):
    """The first heartbeat goes with (just before) the trial's start, so the trial runs
    again when that heartbeat's deadline passes, not a ttl plus a grace period after the
    start: the reaper says which rule it applied (a time bound would measure the machine)."""
    ttl = 12.0  # workers beat every ttl/6 = 2 s: the kill lands before the second beat
    errors: list[BaseException] = []
    trials = RedisTrials(redis_url, exp_key="earlykill", secret=SECRET, heartbeat_ttl=ttl)
    objective = functools.partial(long_first_time, str(tmp_path / "ran-once"))

    def coordinate() -> None:
        try:
            fmin(objective, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=1, trials=trials, timeout=120,
                 show_progressbar=False)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    with worker_pool(redis_url, 1):
        with worker_pool(redis_url, 1, at_least=2):
            runner = threading.Thread(target=coordinate)
            runner.start()
            busy = wait_until(lambda: [w for w in rq_workers(redis_url).values() if w["trial"]], 30, "a busy worker")
            wait_until(lambda: [r for r in records(redis_url, "earlykill") if r.state == TrialState.RUNNING], 30,
                       "the trial to be reported started")
            os.kill(busy[0]["pid"], signal.SIGKILL)
            killed = time.monotonic()
            wait_until(lambda: finished(redis_url, "earlykill") == 1 or errors, 60, "the trial to run again and finish")
            noticed = time.monotonic() - killed
            runner.join(30)
    assert not runner.is_alive() and not errors, errors
    (rec,) = records(redis_url, "earlykill")
    assert rec.state == TrialState.OK and rec.attempt == 1
    lost = [r.getMessage() for r in caplog.records if r.name == "distopt.coordinator.reaper" and "is lost" in r.getMessage()]
    assert lost and all("stopped sending heartbeats" in m for m in lost), (lost, f"re-run {noticed:.1f} s after the kill")
