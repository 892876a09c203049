"""Boot order: a worker or a coordinator started before Redis waits for it (with backoff,
saying so) instead of exiting, so a machine that boots them together works."""

from __future__ import annotations

import subprocess
import sys
import threading

from distopt.storage.redis.server import RedisServer, free_port

from ..chaos.helpers import ROOT, STUDIES, env, wait_until


class Lines:
    """A child's stderr, read as it comes, so a test can wait for what it says."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(proc.stderr,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append(line)

    def text(self) -> str:
        return "".join(self.lines)


def test_a_worker_and_a_coordinator_started_before_redis_wait_for_it(tmp_path):
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    worker = subprocess.Popen([sys.executable, "-m", "distopt", "worker", "--redis", url], env=env(),
                              cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    run = subprocess.Popen([sys.executable, "-m", "distopt", "run", str(STUDIES / "sleepy.py"), "--redis", url,
                            "--study", "boot", "--max-evals", "4", "--parallelism", "2", "--wait-for-redis", "120",
                            "--no-progress"], env=env(), cwd=str(ROOT), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    werr, rerr = Lines(worker), Lines(run)
    try:
        waiting = f"Redis at 127.0.0.1:{port} does not answer"
        wait_until(lambda: waiting in werr.text() and waiting in rerr.text(), 60, "both to wait for Redis")
        assert worker.poll() is None and run.poll() is None, "a process exited instead of waiting for Redis"
        with RedisServer(port=port):
            out = run.stdout.read()
            assert run.wait(120) == 0, rerr.text()
            assert "trials: 4 (4 ok, 0 failed)" in out
            worker.terminate()
            assert worker.wait(60) == 0, werr.text()
    finally:
        for proc in (worker, run):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    werr.thread.join(10)
    rerr.thread.join(10)
    assert "coordinator: Redis at" in rerr.text() and "answers after" in rerr.text()
    assert "until it answers" in werr.text() and "answers after" in werr.text()
    assert "ended in" in werr.text() and "loss" in werr.text()  # a line per trial at the default level


def test_without_waiting_they_fail_at_once_naming_the_server():
    url = f"redis://127.0.0.1:{free_port()}/0"
    for cmd in (["worker", "--redis", url, "--wait-for-redis", "0"],
                ["run", str(STUDIES / "sleepy.py"), "--redis", url, "--study", "nowait"]):
        out = subprocess.run([sys.executable, "-m", "distopt", *cmd], env=env(), cwd=str(ROOT),
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 1 and "127.0.0.1" in out.stderr and "Traceback" not in out.stderr, out.stderr
