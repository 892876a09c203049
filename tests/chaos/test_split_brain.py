"""Split brain: a coordinator frozen past its lease ttl, or one that started late, never
writes over the coordinator that holds the study. Real coordinator processes (``distopt
run``), a real worker pool and a private redis-server."""

from __future__ import annotations

import os
import signal
import subprocess

from distopt import hp
from distopt.coordinator.loop import StopRules
from distopt.coordinator.distributed import run_distributed
from distopt.trial.record import TrialState
from distopt.storage import RedisStorage
from distopt.storage.redis.pipelined import pipelined_storage
from distopt.study.study import Study

from .helpers import LEASE_TTL, ROOT, SECRET, env, finished, records, run_command, wait_until, worker_pool

N_TRIALS = 40


def study_state(storage: RedisStorage, study: str) -> dict:
    """Everything a coordinator writes about a study (not the inbox, which workers fill)."""
    keys = storage.keys
    client = storage.client
    return {
        "trials": client.hgetall(keys.trials(study)),
        "meta": client.hgetall(keys.meta(study)),
        "tid": client.get(keys.tid(study)),
        "states": [client.smembers(k) for k in keys.state_sets(study)],
        "generation": client.get(keys.generation(study)),
    }


def test_a_frozen_coordinator_writes_nothing_after_a_takeover(redis_url):
    study = "frozen"
    cmd = run_command(redis_url, study, "sleepy.py", "--max-evals", str(N_TRIALS), "--parallelism", "4", "--seed", "2")
    storage = RedisStorage(redis_url)
    with worker_pool(redis_url, 3):
        first = subprocess.Popen(cmd, env=env(), cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
        second = None
        try:
            wait_until(lambda: finished(redis_url, study) >= 8, 60, "some finished trials")
            os.kill(first.pid, signal.SIGSTOP)
            held_by_first = storage.client.get(storage.keys.generation(study))
            wait_until(lambda: storage.lease_owner(study) is None, 10 * LEASE_TTL, "the frozen lease to run out")
            second = subprocess.Popen(cmd, env=env(), cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True)
            wait_until(lambda: storage.client.get(storage.keys.generation(study)) != held_by_first, 60,
                       "the second coordinator to take the study over")
            taken_at = finished(redis_url, study)
            wait_until(lambda: finished(redis_url, study) >= taken_at + 4, 60, "the second coordinator's progress")
            # freeze the new coordinator too, so that whatever changes now could only be the old one's
            os.kill(second.pid, signal.SIGSTOP)
            before = study_state(storage, study)
            os.kill(first.pid, signal.SIGCONT)
            _, first_err = first.communicate(timeout=60)
            assert study_state(storage, study) == before  # the woken coordinator wrote nothing
            os.kill(second.pid, signal.SIGCONT)
            second_out, second_err = second.communicate(timeout=180)
        finally:
            for proc in (first, second):
                if proc is not None and proc.poll() is None:
                    proc.send_signal(signal.SIGCONT)
                    proc.kill()
                    proc.wait()
    assert first.returncode == 1, first_err
    assert "lost the lease" in first_err or "no longer holds study" in first_err, first_err
    assert "Traceback" not in first_err
    assert second.returncode == 0, second_err
    assert f"trials: {N_TRIALS} ({N_TRIALS} ok, 0 failed)" in second_out
    done = records(redis_url, study)
    assert sorted(r.tid for r in done) == list(range(N_TRIALS)) and all(r.state == TrialState.OK for r in done)
    assert storage.client.llen(storage.keys.inbox(study)) == 0 and storage.client.llen(storage.keys.claimed(study)) == 0
    assert storage.get_study(study)["status"] == "done"


def sleepy_objective(x):
    return (x - 1.0) ** 2


def test_a_late_coordinator_works_from_the_study_as_it_is_when_it_takes_the_lease(redis_url):
    """A coordinator that built its view of a study before another one ran the study to
    the end neither waits for trials that already finished nor rewrites the done status."""
    study = "late"
    storage = pipelined_storage(redis_url, retry_window=0)
    late = Study(hp.uniform("x", -5, 5), storage=storage, name=study)  # its view: an empty study
    cmd = run_command(redis_url, study, "sleepy.py", "--max-evals", "6", "--parallelism", "3")
    with worker_pool(redis_url, 2):
        out = subprocess.run(cmd, env=env(), cwd=str(ROOT), capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert storage.get_study(study)["status"] == "done"
        reason = run_distributed(late, sleepy_objective, StopRules(max_evals=6), secret=SECRET, parallelism=3,
                                 lease_ttl=LEASE_TTL)
    assert reason == "max_evals"
    assert late.n_finished == 6 and late.n_pending == 0
    assert len(records(redis_url, study)) == 6
    assert storage.get_study(study)["status"] == "done"
