"""Pruning across real worker processes: reports go to Redis, each worker decides from
every trial's curve, pruned trials free their worker, and a worker killed mid-curve leaves
a retried attempt that starts its curve afresh."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

from distopt import fmin, hp, report, tpe
from distopt.pruners import MedianPruner
from distopt.trial.record import TrialState
from distopt.storage.redis.server import RedisServer
from distopt.redis_trials import RedisTrials
from distopt.storage import RedisStorage

from .helpers import (HEARTBEAT_TTL, LEASE_TTL, ROOT, SECRET, env, finished, records, rq_workers, run_command,
                      wait_until, worker_pool)

STEPS = 20
MAX_EVALS = 30


def learning_curve(x):
    """Converges to (x - 1)^2; 20 epochs of 20 ms."""
    v = None
    for step in range(STEPS):
        time.sleep(0.02)
        v = (x - 1.0) ** 2 + 2.0 * 0.7 ** step
        report(step, v)
    return v


def slow_curve(x):
    v = None
    for step in range(STEPS):
        time.sleep(0.15)
        v = (x - 1.0) ** 2 + 0.7 ** step
        report(step, v)
    return v


def curves(url, study):
    storage = RedisStorage(url)
    try:
        return storage.curves(study)
    finally:
        storage.close()


def coordinate(trials, fn, errors, pruner, max_evals=MAX_EVALS, parallelism=3):
    try:
        fmin(fn, hp.uniform("x", -4, 4), algo=tpe.suggest, max_evals=max_evals, trials=trials,
             parallelism=parallelism, pruner=pruner, max_retries=5, rstate=0, timeout=180, show_progressbar=False)
    except BaseException as exc:  # surfaced by the test
        errors.append(exc)


def test_workers_prune_from_every_trials_curve(redis_url):
    errors: list[BaseException] = []
    trials = RedisTrials(redis_url, exp_key="prune", secret=SECRET, heartbeat_ttl=HEARTBEAT_TTL)
    with worker_pool(redis_url, 3):
        coordinate(trials, learning_curve, errors, MedianPruner(n_startup_trials=3))
    assert not errors, errors
    done = records(redis_url, "prune")
    states = [r.state for r in done]
    n_ok, n_pruned = states.count(TrialState.OK), states.count(TrialState.PRUNED)
    assert len(done) == MAX_EVALS and n_ok + n_pruned == MAX_EVALS, states
    assert n_pruned >= 5 and n_ok >= 3
    stored = curves(redis_url, "prune")
    executed = sum(len(c.steps) for c in stored.values())
    assert executed < MAX_EVALS * STEPS  # fewer steps than without pruning
    for rec in done:
        c = stored[rec.tid]
        assert c.steps == list(range(len(c.steps)))  # each step once
        if rec.state == TrialState.PRUNED:
            assert rec.result["last_step"] == c.steps[-1] < STEPS - 1
            assert rec.result["last_value"] == c.values[-1]
        else:
            assert len(c.steps) == STEPS and rec.loss == c.values[-1]
    # the sampler saw the pruned trials as finished trials
    assert trials.study.n_finished == MAX_EVALS and trials.study.history.n_pruned == n_pruned


def test_a_worker_killed_mid_curve_leaves_a_fresh_curve_to_its_retry(redis_url):
    errors: list[BaseException] = []
    trials = RedisTrials(redis_url, exp_key="prunekill", secret=SECRET, heartbeat_ttl=HEARTBEAT_TTL)
    runner = threading.Thread(target=coordinate, args=(trials, slow_curve, errors, "asha", 8, 2))
    with worker_pool(redis_url, 2) as supervisor:
        runner.start()

        def mid_curve():
            for w in rq_workers(redis_url).values():
                t = w["trial"]
                if t and t["study"] == "prunekill":
                    c = curves(redis_url, "prunekill").get(t["tid"])
                    if c is not None and c.attempt == t["attempt"] and 3 <= len(c.steps) < STEPS - 5:
                        return w
            return None

        victim = wait_until(mid_curve, 60, "a worker in the middle of a curve")
        tid, attempt = victim["trial"]["tid"], victim["trial"]["attempt"]
        os.kill(victim["pid"], signal.SIGKILL)
        runner.join(180)
        assert not runner.is_alive() and not errors, errors
        assert supervisor.poll() is None
    done = {r.tid: r for r in records(redis_url, "prunekill")}
    assert len(done) == 8 and all(r.state in (TrialState.OK, TrialState.PRUNED) for r in done.values())
    assert done[tid].attempt > attempt  # run again after the kill
    c = curves(redis_url, "prunekill")[tid]
    assert c.attempt == done[tid].attempt
    assert c.steps == list(range(len(c.steps)))  # afresh: from step 0, each step once
    if done[tid].state == TrialState.OK:
        assert len(c.steps) == STEPS


def assert_whole_curves(url, study, n):
    """n trials, each OK or PRUNED, each curve's steps reported once from 0, the pruned
    ones ending where their record says."""
    done = records(url, study)
    assert len(done) == n and sorted(r.tid for r in done) == list(range(n))
    assert all(r.state in (TrialState.OK, TrialState.PRUNED) for r in done), [r.state for r in done]
    stored = curves(url, study)
    for rec in done:
        c = stored[rec.tid]
        assert c.attempt == rec.attempt and c.steps == list(range(len(c.steps)))
        if rec.state == TrialState.PRUNED:
            assert rec.result["last_step"] == c.steps[-1]
        else:
            assert len(c.steps) == STEPS
    return done


def test_a_killed_coordinator_is_resumed_with_reports_in_flight(redis_url):
    cmd = run_command(redis_url, "curvecrash", "curves.py", "--parallelism", "3", "--seed", "1")
    with worker_pool(redis_url, 3):
        first = subprocess.Popen(cmd, env=env(), cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: finished(redis_url, "curvecrash") >= 8, 60, "some finished trials")
        first.kill()
        first.wait(10)
        n_steps = sum(len(c.steps) for c in curves(redis_url, "curvecrash").values())
        # the workers go on reporting (and deciding) with no coordinator
        wait_until(lambda: sum(len(c.steps) for c in curves(redis_url, "curvecrash").values()) > n_steps, 10,
                   "reports while the coordinator is dead")
        time.sleep(LEASE_TTL)
        second = subprocess.run(cmd, env=env(), cwd=str(ROOT), capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    done = assert_whole_curves(redis_url, "curvecrash", 30)
    assert any(r.state == TrialState.PRUNED for r in done)


def test_reports_ride_out_a_redis_restart(tmp_path):
    errors: list[BaseException] = []
    with RedisServer(appendonly=True, appendfsync="always", dir=tmp_path) as server:
        url = server.url
        trials = RedisTrials(url, exp_key="curverestart", secret=SECRET, heartbeat_ttl=HEARTBEAT_TTL)
        runner = threading.Thread(target=coordinate, args=(trials, learning_curve, errors,
                                                           MedianPruner(n_startup_trials=3)))
        with worker_pool(url, 3) as supervisor:
            runner.start()
            wait_until(lambda: finished(url, "curverestart") >= 6, 60, "some finished trials")
            server.restart(hard=True)  # SIGKILL mid-report: only the AOF keeps the curves
            runner.join(180)
            assert not runner.is_alive() and not errors, errors
            assert supervisor.poll() is None
        done = assert_whole_curves(url, "curverestart", MAX_EVALS)
    assert any(r.state == TrialState.PRUNED for r in done)
