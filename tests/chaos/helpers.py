"""Real processes for the chaos tests: a supervised worker pool started as ``distopt worker
--processes N``, a coordinator started as ``distopt run``, and ways to watch them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import redis

from distopt.dispatch.inspect import worker_overview
from distopt.trial.record import TrialState
from distopt.storage import RedisStorage

SECRET = "chaos-secret"
ROOT = Path(__file__).resolve().parents[2]
STUDIES = Path(__file__).resolve().parent / "studies"
#: Short liveness settings, so that a lost trial is noticed within a few seconds.
HEARTBEAT_TTL = 1.0
LEASE_TTL = 5.0


def env(**extra: str) -> dict[str, str]:
    out = dict(os.environ, DISTOPT_SECRET=SECRET, PYTHONPATH=str(ROOT))
    out.update(extra)
    return out


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "a condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def rq_workers(url: str, queue: str = "distopt") -> dict[str, dict[str, Any]]:
    """rq's live workers on ``queue`` (name -> pid, state, trial, ...); dead ones drop out
    once their pid is gone."""
    conn = redis.Redis.from_url(url)
    try:
        workers = worker_overview(conn, time.time())
    finally:
        conn.close()
    return {n: w for n, w in workers.items() if queue in w["queues"] and _alive(w["pid"])}


def worker_pids(url: str, queue: str = "distopt") -> set[int]:
    """Processes working on ``queue``. A worker that restarted its rq loop after a Redis
    outage may still be listed under its old rq name too, until that entry expires."""
    return {w["pid"] for w in rq_workers(url, queue).values()}


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextlib.contextmanager
def worker_pool(url: str, processes: int, *, fork: bool = False, extra_env: dict[str, str] | None = None,
                queue: str = "distopt", at_least: int | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """``distopt worker --processes N``: a supervisor that restarts children killed under it.
    Entered once ``at_least`` workers (default ``processes``; count other pools' too) listen."""
    cmd = [sys.executable, "-m", "distopt", "worker", "--redis", url, "--processes", str(processes),
           "--queue", queue] + ["--fork"] * fork
    proc = subprocess.Popen(cmd, env=env(**(extra_env or {})), stdin=subprocess.DEVNULL, cwd=str(ROOT))
    try:
        want = processes if at_least is None else at_least
        wait_until(lambda: len(rq_workers(url, queue)) >= want, 60, f"{want} workers to register")
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGTERM)  # a second signal: cold shutdown
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def run_command(url: str, study: str, study_file: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "distopt", "run", str(STUDIES / study_file), "--redis", url, "--study", study,
            "--heartbeat-ttl", str(HEARTBEAT_TTL), "--lease-ttl", str(LEASE_TTL), "--no-progress", *extra]


def finished(url: str, study: str) -> int:
    storage = RedisStorage(url)
    try:
        if study not in storage.list_studies():
            return 0
        counts = storage.count_states(study)
        return counts[TrialState.OK] + counts[TrialState.FAIL] + counts[TrialState.PRUNED]
    finally:
        storage.close()


def records(url: str, study: str) -> list[Any]:
    storage = RedisStorage(url)
    try:
        return storage.get_trials(study)
    finally:
        storage.close()
