"""Worker processes' own liveness records on a real redis-server: a live worker beats, a
worker stopped with SIGTERM removes its record, one killed with SIGKILL stops beating."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from distopt.storage import RedisStorage
from tests.chaos.helpers import ROOT, env, wait_until

INTERVAL = 0.2


def start_worker(url: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "distopt", "worker", "--redis", url, "--processes", "1"]
    return subprocess.Popen(cmd, env=env(DISTOPT_WORKER_HEARTBEAT=str(INTERVAL)), stdin=subprocess.DEVNULL,
                            cwd=str(ROOT))


def record_of(store: RedisStorage, pid: int) -> dict | None:
    return next((r for r in store.worker_records().values() if r["pid"] == pid), None)


def test_worker_record_follows_the_process(redis_url: str) -> None:
    store = RedisStorage(redis_url)
    stopped, killed = start_worker(redis_url), start_worker(redis_url)
    try:
        for proc in (stopped, killed):
            # the first beat may come before the rq worker is made; the next one names it
            rec = wait_until(lambda: (r := record_of(store, proc.pid)) and r["rq"] and r, 30,
                             f"worker {proc.pid} to beat naming its rq worker")
            assert rec["state"] == "idle" and rec["queues"] == ["distopt"] and rec["interval"] == INTERVAL
            assert rec["rq"]  # the rq worker it runs, for joining rq's records
            first = rec["beat"]
            wait_until(lambda: record_of(store, proc.pid)["beat"] > first, 10, "a later beat")

        stopped.send_signal(signal.SIGTERM)
        assert stopped.wait(20) == 0
        assert record_of(store, stopped.pid) is None  # a clean stop leaves no record

        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(10)
        last = record_of(store, killed.pid)["beat"]
        time.sleep(3 * INTERVAL)  # no process can beat for it any more
        assert record_of(store, killed.pid)["beat"] == last
    finally:
        for proc in (stopped, killed):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        store.close()
