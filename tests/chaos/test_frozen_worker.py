"""A worker frozen past its heartbeat ttl: its trial runs again on another worker, and when
the frozen one wakes up and ends its old attempt, it leaves the new attempt's heartbeat
alone. Real worker pools, a real coordinator (``distopt run``) and a private redis-server."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from distopt.trial.record import TrialState
from distopt.storage import RedisStorage

from .helpers import ROOT, env, records, run_command, rq_workers, wait_until, worker_pool

STUDY = "frozen-worker"
#: Long enough that a loaded machine never makes the running attempt miss its ttl.
TTL = 4.0

#: The first run of the trial holds while ``first`` exists, any later run while ``second`` does.
HELD_STUDY = """
import os, time
from distopt import hp
space = hp.uniform("x", 0, 1)
max_evals = 1
def objective(x):
    try:
        os.close(os.open({ran!r}, os.O_CREAT | os.O_EXCL))
        flag = {first!r}
    except FileExistsError:
        flag = {second!r}
    deadline = time.monotonic() + 300
    while os.path.exists(flag) and time.monotonic() < deadline:
        time.sleep(0.05)
    return x
"""


def beat_of(storage: RedisStorage, attempt: int) -> dict | None:
    """Trial 0's heartbeat when attempt ``attempt`` wrote it (None before the study exists)."""
    if STUDY not in storage.list_studies():
        return None
    beat = storage.heartbeats(STUDY).get(0)
    return beat if beat is not None and beat["attempt"] == attempt else None


def test_a_woken_workers_old_attempt_leaves_the_new_attempts_heartbeat(redis_url: str, tmp_path: Path) -> None:
    ran, first, second = tmp_path / "ran", tmp_path / "hold-first", tmp_path / "hold-second"
    first.touch()
    second.touch()
    study_file = tmp_path / "held.py"
    study_file.write_text(HELD_STUDY.format(ran=str(ran), first=str(first), second=str(second)))
    cmd = run_command(redis_url, STUDY, str(study_file), "--max-evals", "1", "--parallelism", "1")
    cmd[cmd.index("--heartbeat-ttl") + 1] = str(TTL)
    storage = RedisStorage(redis_url)
    frozen: list[int] = []
    with worker_pool(redis_url, 1) as one, worker_pool(redis_url, 1, at_least=2) as two:
        coordinator = subprocess.Popen(cmd, env=env(), cwd=str(ROOT), stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
        try:
            wait_until(lambda: beat_of(storage, 0) and ran.exists(), 60, "attempt 0 to run and beat")
            (old,) = wait_until(lambda: [w["pid"] for w in rq_workers(redis_url).values() if w["trial"]], 30,
                                "the worker running attempt 0")
            assert old in (one.pid, two.pid)
            new = two.pid if old == one.pid else one.pid
            os.kill(old, signal.SIGSTOP)
            frozen.append(old)
            # the reaper finds attempt 0 silent past its ttl and the other worker runs attempt 1
            wait_until(lambda: beat_of(storage, 1), 60 + TTL, "attempt 1's heartbeat")
            # nothing else may touch the beat now: the coordinator (its reaper) and attempt 1's worker stop
            os.kill(coordinator.pid, signal.SIGSTOP)
            frozen.append(coordinator.pid)
            os.kill(new, signal.SIGSTOP)
            frozen.append(new)
            beat = storage.heartbeats(STUDY)[0]
            assert beat["attempt"] == 1

            first.unlink()  # attempt 0 ends as soon as its worker wakes up
            os.kill(old, signal.SIGCONT)
            frozen.remove(old)
            wait_until(lambda: not [w for w in rq_workers(redis_url).values() if w["pid"] == old and w["trial"]], 60,
                       "the woken worker to end attempt 0 (its result pushed, its heartbeat cleared)")
            assert [m["attempt"] for m in storage.peek_results(STUDY) if "status" in m] == [0]
            assert storage.heartbeats(STUDY) == {0: beat}  # attempt 1's beat, as it was

            second.unlink()
            os.kill(new, signal.SIGCONT)
            frozen.remove(new)
            wait_until(lambda: (lambda b: b is None or b["deadline"] > beat["deadline"])(beat_of(storage, 1)), 60,
                       "attempt 1's worker to beat again or end")
            os.kill(coordinator.pid, signal.SIGCONT)
            frozen.remove(coordinator.pid)
            out, err = coordinator.communicate(timeout=120)
        finally:
            for pid in frozen:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
            if coordinator.poll() is None:
                coordinator.kill()
                coordinator.communicate()
            for flag in (first, second):
                flag.unlink(missing_ok=True)
    assert coordinator.returncode == 0, err
    (rec,) = records(redis_url, STUDY)
    assert rec.state == TrialState.OK and rec.attempt >= 1
    assert storage.get_study(STUDY)["status"] == "done"
