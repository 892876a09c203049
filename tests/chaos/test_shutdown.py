"""Stopping things on purpose: a worker finishes (or hands back) its trial, Ctrl-C leaves a
study resumable with the command to resume it, ``distopt cancel`` ends one."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone

import redis

from distopt import fmin, hp, rand
from distopt.trial.record import TrialState
from distopt.redis_trials import RedisTrials
from distopt.storage import RedisStorage

from .helpers import (ROOT, SECRET, env, finished, records, run_command, rq_workers, wait_until, worker_pids,
                      worker_pool)


def slow(x):
    time.sleep(2.0)
    return x


def busy_worker(url, study):
    busy = wait_until(lambda: [(n, w) for n, w in rq_workers(url).items()
                               if w["trial"] and w["trial"]["study"] == study], 30, "a busy worker")
    return busy[0]


def busy_pid(url, study):
    _, worker = busy_worker(url, study)
    return worker["pid"], worker["trial"]


def warm_shutdown_since(url, name):
    """When rq worker ``name`` noted its warm shutdown (rq writes it to the worker's hash
    when a stop arrives mid-job), as seconds before now; None until it has."""
    conn = redis.Redis.from_url(url)
    try:
        raw = conn.hget(f"rq:worker:{name}", "shutdown_requested_date")
    finally:
        conn.close()
    if not raw:
        return None
    noted = datetime.strptime(raw.decode(), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return (datetime.now(timezone.utc) - noted).total_seconds()


def joined(thread, timeout):
    """Wait for the coordinator thread; one still running means the study never finished."""
    thread.join(timeout)
    assert not thread.is_alive(), f"the coordinator did not finish within {timeout:g} s"


def slow_first_time(marker, x):
    """Long on its first run (so a test can interrupt it), quick when run again."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        time.sleep(300.0)
    return x


def coordinate_in_thread(url, study, max_evals, errors, objective=slow, **kw):
    trials = RedisTrials(url, exp_key=study, secret=SECRET, **kw)

    def run() -> None:
        try:
            fmin(objective, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=max_evals, trials=trials,
                 parallelism=1, rstate=0, timeout=60, show_progressbar=False)
        except BaseException as exc:  # surfaced by the callers
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_sigterm_lets_a_worker_finish_its_trial_before_it_exits(redis_url):
    errors: list[BaseException] = []
    with worker_pool(redis_url, 1) as first:
        thread = coordinate_in_thread(redis_url, "warm", 2, errors)
        pid, trial = busy_pid(redis_url, "warm")
        assert pid == first.pid
        with worker_pool(redis_url, 1, at_least=2):  # takes the second trial once the first worker is gone
            first.send_signal(signal.SIGTERM)
            assert first.wait(60) == 0
            joined(thread, 60)
    assert not errors, errors
    done = {r.tid: r for r in records(redis_url, "warm")}
    assert done[trial["tid"]].state == TrialState.OK and done[trial["tid"]].attempt == 0  # finished, not lost
    assert len(done) == 2 and all(r.state == TrialState.OK for r in done.values())


def test_a_second_sigterm_hands_the_trial_back_at_once(redis_url, tmp_path):
    """Cold shutdown: the trial runs again elsewhere now, not after a heartbeat ttl of 30 s."""
    errors: list[BaseException] = []
    objective = functools.partial(slow_first_time, str(tmp_path / "ran-once"))
    with worker_pool(redis_url, 2) as supervisor:
        thread = coordinate_in_thread(redis_url, "cold", 1, errors, objective=objective, heartbeat_ttl=30.0)
        name, _ = busy_worker(redis_url, "cold")
        supervisor.send_signal(signal.SIGTERM)  # forwarded: warm shutdown
        # rq ignores a second signal that reaches the worker within 1 s of the first: wait until
        # the worker noted the first (whenever the supervisor forwarded it), and a second past that
        wait_until(lambda: (warm_shutdown_since(redis_url, name) or 0.0) > 1.5, 60,
                   "the busy worker to note its warm shutdown 1.5 s ago")
        supervisor.send_signal(signal.SIGTERM)  # forwarded again: cold shutdown, the trial is handed back
        assert supervisor.wait(60) == 0  # the objective sleeps 300 s: only the cold shutdown ends it sooner
        with worker_pool(redis_url, 1):
            joined(thread, 60)
    assert not errors, errors
    (rec,) = records(redis_url, "cold")
    assert rec.state == TrialState.OK and rec.attempt == 1


def test_ctrl_c_leaves_the_study_resumable_and_says_how(redis_url):
    cmd = run_command(redis_url, "ctrlc", "sleepy.py", "--max-evals", "30", "--parallelism", "3")
    storage = RedisStorage(redis_url)
    with worker_pool(redis_url, 2):
        proc = subprocess.Popen(cmd, env=env(), cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        wait_until(lambda: finished(redis_url, "ctrlc") >= 5, 60, "a few finished trials")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert "interrupted: study 'ctrlc' keeps its queued and running trials in Redis; resume it with:" in err
        assert f"distopt run {cmd[4]} --redis {redis_url} --study ctrlc --heartbeat-ttl" in err
        counts = storage.count_states("ctrlc")
        assert counts[TrialState.CANCELLED] == 0 and counts[TrialState.QUEUED] + counts[TrialState.RUNNING] > 0
        assert storage.get_study("ctrlc")["status"] == "interrupted" and storage.lease_owner("ctrlc") is None
        again = subprocess.run(cmd, env=env(), cwd=str(ROOT), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "trials: 30 (30 ok, 0 failed)" in again.stdout


def test_distopt_cancel_ends_a_running_study(redis_url):
    cmd = run_command(redis_url, "tocancel", "sleepy.py", "--max-evals", "200", "--parallelism", "4")
    storage = RedisStorage(redis_url)
    with worker_pool(redis_url, 2):
        proc = subprocess.Popen(cmd, env=env(), cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        wait_until(lambda: finished(redis_url, "tocancel") >= 3, 60, "a few finished trials")
        out = subprocess.run([sys.executable, "-m", "distopt", "cancel", "--redis", redis_url, "--study", "tocancel"],
                             env=env(), cwd=str(ROOT), capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "study tocancel: cancelled" in out.stdout and "by coordinator" in out.stdout
        stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 3, stderr  # EXIT_CANCELLED: cancelled on purpose, neither done nor failed
    assert "cancelled: study 'tocancel' was ended by `distopt cancel`" in stderr
    counts = storage.count_states("tocancel")
    assert counts[TrialState.QUEUED] == counts[TrialState.RUNNING] == 0 and counts[TrialState.CANCELLED] > 0
    assert counts[TrialState.OK] < 200 and storage.get_study("tocancel")["status"] == "cancelled"
    ids = [j.decode() for j in storage.client.lrange("rq:queue:distopt", 0, -1)]
    assert not [j for j in ids if j.startswith("distopt-tocancel-")]


def test_an_idle_worker_stops_promptly_on_sigterm(redis_url):
    """rq's command listener reads for 60 s at a time, and redis-py waits for that read on
    shutdown: the worker must not hang for a minute after its last trial."""
    for fork in (False, True):
        with worker_pool(redis_url, 1, fork=fork) as worker:
            wait_until(lambda: worker.pid in worker_pids(redis_url), 60, "this worker to listen")
            started = time.monotonic()
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(30) == 0
            assert time.monotonic() - started < 15, f"fork={fork}: the worker took {time.monotonic() - started:.1f} s"
