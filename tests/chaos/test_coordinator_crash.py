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
        wait_until(lambda: storage.client.llen(storage.keys.inbox(STUDY)) > 0, 60, "results arriving with no coordinator")
        wait_until(lambda: storage.lease_owner(STUDY) is None, LEASE_TTL + 60, "the lease to run out")  # ... by itself

        second = subprocess.run(cmd, env=env(), cwd=str(ROOT), capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert f"trials: {N_TRIALS} ({N_TRIALS} ok, 0 failed)" in second.stdout
    done = records(redis_url, STUDY)
    assert len(done) == N_TRIALS and all(r.state == TrialState.OK for r in done)
    assert sorted(r.tid for r in done) == list(range(N_TRIALS))  # each trial once, no extra ones
    assert killed_at < N_TRIALS and storage.client.llen(storage.keys.inbox(STUDY)) == 0
    meta = storage.get_study(STUDY)
    assert meta["status"] == "done" and meta["max_evals"] == N_TRIALS and meta["heartbeat_ttl"] == 1.0


def test_kill_9_then_rerun_takes_over_at_once_on_the_same_host(redis_url):
    """The dead coordinator ran on this host and its process is gone: the rerun does not
    wait out its 300 s lease, and without --study both runs name the study alike."""
    cmd = [c for c in run_command(redis_url, "unused", "sleepy.py", "--max-evals", "30", "--parallelism", "4",
                                  "--lease-ttl", "300")]
    cmd = cmd[:cmd.index("--study")] + cmd[cmd.index("--study") + 2:]  # the default, stable name
    storage = RedisStorage(redis_url)
    with worker_pool(redis_url, 2):
        first = subprocess.Popen(cmd, env=env(), cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        (study,) = wait_until(lambda: storage.list_studies(), 60, "the study to be created")
        wait_until(lambda: finished(redis_url, study) >= 3, 60, "a few finished trials")
        dead = storage.lease_owner(study)
        first.kill()
        first.wait(10)
        left = storage.lease_left(study)
        assert storage.lease_owner(study) == dead and left > 20  # the lease outlives it (renewed every 100 s)
        lapses = time.monotonic() + left
        second = subprocess.Popen(cmd, env=env(), cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        owner = wait_until(lambda: (storage.lease_owner(study) or dead) != dead and storage.lease_owner(study), 120,
                           "the rerun to take the lease")
        taken = time.monotonic()
        out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    # the rule that fired: a take-over from the dead holder, not a wait for its lease to lapse
    assert owner.split(":")[1] == str(second.pid) and f"took over from coordinator {dead}" in err
    assert "which may have died on another host" not in err and "lapses in" not in err
    assert taken < lapses, "the rerun took the lease only once the dead coordinator's lease had lapsed"
    assert "trials: 30 (30 ok, 0 failed)" in out and f"study: {study} " in out
