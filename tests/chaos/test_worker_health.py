"""``distopt worker --check``, the container health check: healthy while the host's
worker takes jobs; unhealthy when there is none, or when it hangs in a trial."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from distopt import fmin, hp, rand
from distopt.redis_trials import RedisTrials

from .helpers import HEARTBEAT_TTL, ROOT, SECRET, env, rq_workers, wait_until, worker_pool


def check(url):
    return subprocess.run([sys.executable, "-m", "distopt", "worker", "--check", "--redis", url], env=env(),
                          cwd=str(ROOT), capture_output=True, text=True, timeout=60)


def slow(x):
    time.sleep(3.0)
    return x


def test_the_health_check_follows_the_worker(redis_url):
    out = check(redis_url)
    assert out.returncode == 1 and "no worker of host" in out.stderr
    with worker_pool(redis_url, 1) as worker:
        out = check(redis_url)
        assert out.returncode == 0 and "take jobs" in out.stdout, out.stderr
        trials = RedisTrials(redis_url, exp_key="health", secret=SECRET, heartbeat_ttl=HEARTBEAT_TTL)
        failures: list[BaseException] = []

        def run() -> None:
            try:
                fmin(slow, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=2, trials=trials, timeout=60,
                     show_progressbar=False)
            except BaseException as exc:  # noqa: BLE001  -- reported by the test, not lost in the thread
                failures.append(exc)

        runner = threading.Thread(target=run)
        runner.daemon = True
        runner.start()
        wait_until(lambda: any(w["trial"] for w in rq_workers(redis_url).values()), 30, "a busy worker")
        os.kill(worker.pid, signal.SIGSTOP)  # hung: neither the trial nor the heartbeat goes on
        try:
            def unhealthy():
                out = check(redis_url)
                return out.returncode == 1 and "heartbeat expired" in out.stderr
            wait_until(unhealthy, 30, "the hung worker to be reported unhealthy")
        finally:
            os.kill(worker.pid, signal.SIGCONT)
        # the study finishes once the worker goes on; a run left behind would outlive this
        # test's Redis and fail in a later one
        runner.join(120)
        assert not runner.is_alive() and not failures, failures
