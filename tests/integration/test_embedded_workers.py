"""Embedded runs whose local workers die: one killed worker is replaced and its trial
runs again; workers that crash-loop stop the run with their own error output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from .test_embedded import (
    ROOT, RunTree, assert_nothing_left, descendants, env_without_secret, own_processes, slow_study,
    wait_for_recorded_trial,
)


def worker_pids(pid: int) -> list[int]:
    cmds = own_processes()
    return sorted(p for p in descendants(pid) if " worker " in cmds.get(p, ""))


def test_a_killed_local_worker_is_replaced_and_the_run_finishes(tmp_path):
    tree = RunTree()
    proc = subprocess.Popen([sys.executable, "-m", "distopt", "run", str(slow_study(tmp_path, 0.3)), "--workers", "2",
                             "--max-evals", "12", "--heartbeat-ttl", "1", "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env_without_secret(),
                            cwd=str(ROOT))
    try:
        deadline = time.monotonic() + 30
        while len(worker_pids(proc.pid)) < 2:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the embedded run never started its workers"
            time.sleep(0.05)
        wait_for_recorded_trial(tree, proc)  # the workers are taking trials
        victim = worker_pids(proc.pid)[0]
        os.kill(victim, signal.SIGKILL)
        stdout, stderr = tree.follow(proc, timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert "trials: 12 (12 ok, 0 failed)" in stdout
    assert f"worker process {victim} stopped (killed by SIGKILL)" in stderr and "starting another" in stderr
    assert "keep exiting" not in stderr and "Traceback" not in stderr
    assert_nothing_left(tree)


def test_crash_looping_local_workers_stop_the_run_with_their_error(tmp_path):
    """Workers that cannot start (here: a broken environment they import at start) stop
    the run within seconds, and the message shows what they printed and how they exited."""
    broken = tmp_path / "site"
    broken.mkdir()
    (broken / "sitecustomize.py").write_text(textwrap.dedent("""
        import sys
        if "worker" in sys.argv:
            sys.stderr.write("ImportError: libcuda.so.1 is missing (simulated)\\n")
            sys.stderr.flush()
            import os; os._exit(7)
    """))
    env = dict(env_without_secret(), PYTHONPATH=os.pathsep.join([str(broken), str(ROOT)]))
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "distopt", "run", str(slow_study(tmp_path, 0.3)), "--workers", "2",
                          "--max-evals", "5", "--no-progress"], capture_output=True, text=True, env=env,
                         cwd=str(ROOT), timeout=60)
    assert out.returncode == 1, out.stderr
    assert "Error: the local worker processes keep exiting soon after they start" in out.stderr
    assert "ended with exit code 7" in out.stderr
    assert "its error output ends:\n  ImportError: libcuda.so.1 is missing (simulated)" in out.stderr
    assert "Traceback" not in out.stderr and time.monotonic() - started < 30, out.stderr
