"""A coordinator killed with SIGKILL mid-study, then started again on the same study: it
adopts the trials still queued or running, records what arrived meanwhile, and ends
with exactly max_evals finished trials, none recorded twice."""

from __future__ import annotations

import subprocess
import time

from distopt.trial.record import TrialState
from distopt.storage import RedisStorage

from .helpers import LEASE_TTL, ROOT, env, finished, records, run_command, wait_until, worker_pool

STUDY = "crash"
N_TRIALS = 40


def test_a_killed_coordinator_is_resumed_with_exact_counts(redis_url):
    cmd = run_command(redis_url, STUDY, "sleepy.py", "--max-evals", str(N_TRIALS), "--parallelism", "4",
                      "--seed", "1")
    storage = RedisStorage(redis_url)
    with worker_pool(redis_url, 3):
        first = subprocess.Popen(cmd, env=env(), cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_until(lambda: finished(redis_url, STUDY) >= 12, 60, "a dozen finished trials")
        first.kill()
        first.wait(10)
        killed_at = finished(redis_url, STUDY)
        pending = storage.count_states(STUDY)
        assert pending[TrialState.QUEUED] + pending[TrialState.RUNNING] > 0  # left in flight
        assert storage.lease_owner(STUDY) is not None  # the dead coordinator's lease ...
        wait_until(lambda: storage.client.llen(storage.keys.inbox(STUDY)) > 0, 10, "results arriving with no coordinator")
        time.sleep(LEASE_TTL)  # ... runs out by itself
        assert storage.lease_owner(STUDY) is None

        second = subprocess.run(cmd, env=env(), cwd=str(ROOT), capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert f"trials: {N_TRIALS} ({N_TRIALS} ok, 0 failed)" in second.stdout
    done = records(redis_url, STUDY)
    assert len(done) == N_TRIALS and all(r.state == TrialState.OK for r in done)
    assert sorted(r.tid for r in done) == list(range(N_TRIALS))  # each trial once, no extra ones
    assert killed_at < N_TRIALS and storage.client.llen(storage.keys.inbox(STUDY)) == 0
    meta = storage.get_study(STUDY)
    assert meta["status"] == "done" and meta["max_evals"] == N_TRIALS and meta["heartbeat_ttl"] == 1.0
