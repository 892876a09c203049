"""A cluster coordinator (``distopt run --redis``) stopped from outside: SIGTERM prints the
real resume command and exits 143; ``distopt cancel`` makes it say so and exit 3."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from distopt.coordinator.cancel import cancel_study
from distopt.cli.common import EXIT_CANCELLED, EXIT_TERMINATED
from distopt.storage import RedisStorage

ROOT = Path(__file__).resolve().parents[2]


def start_coordinator(tmp_path: Path, redis_url: str, study: str) -> subprocess.Popen[str]:
    """A coordinator with no worker: its trials stay queued until it is stopped."""
    path = tmp_path / "idle_study.py"
    path.write_text(textwrap.dedent("""
        from distopt import hp
        space = hp.uniform("x", 0, 1)
        def objective(x):
            return x
    """))
    env = {k: v for k, v in os.environ.items() if k != "DISTOPT_REDIS_URL"}
    env["DISTOPT_SECRET"] = "signals-secret"
    proc = subprocess.Popen([sys.executable, "-m", "distopt", "run", str(path), f"--redis={redis_url}", "--study",
                             study, "--max-evals", "20", "--parallelism", "3", "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(tmp_path))
    storage = RedisStorage(redis_url)
    try:
        deadline = time.monotonic() + 30
        while not (study in storage.list_studies() and storage.get_study(study).get("status") == "running"
                   and storage.count_states(study)["queued"] == 3):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the coordinator never started the study"
            time.sleep(0.05)
    finally:
        storage.close()
    return proc


def test_sigterm_prints_the_real_resume_command(tmp_path, redis_url):
    proc = start_coordinator(tmp_path, redis_url, "sigterm")
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == EXIT_TERMINATED, stderr
    assert "terminated (SIGTERM): study 'sigterm' keeps its queued and running trials in Redis; resume it with:" in stderr
    assert f"--redis={redis_url}" in stderr and "--study sigterm" in stderr
    assert "STUDY_FILE" not in stderr and "Traceback" not in stderr
    storage = RedisStorage(redis_url)
    assert storage.get_study("sigterm")["status"] == "interrupted" and storage.lease_owner("sigterm") is None
    storage.close()


def test_a_cancelled_coordinator_says_so_and_exits_3(tmp_path, redis_url):
    proc = start_coordinator(tmp_path, redis_url, "stopme")
    result = cancel_study(redis_url, "stopme", wait=20)
    stdout, stderr = proc.communicate(timeout=30)
    assert result.by.startswith("coordinator ") and result.cancelled == 3
    assert proc.returncode == EXIT_CANCELLED, stderr
    assert "cancelled: study 'stopme' was ended by `distopt cancel`" in stderr
    assert "trials: 3 (0 ok, 0 failed, 3 cancelled)" in stdout and "no trial finished" not in stderr
