"""Any number of Ctrl-C while a coordinator stops: the study is left resumable and its
status true. The first interrupt stops the loop; the others wait for the final writes,
and no reply an interrupt cut short is read by the next command."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from distopt.storage import RedisStorage

from .helpers import ROOT, env, finished, run_command, wait_until, worker_pool

#: Rounds of double Ctrl-C (the issue's acceptance asks for 20: DISTOPT_TEST_REPEAT=20).
REPEAT = int(os.environ.get("DISTOPT_TEST_REPEAT", "6"))
#: Seconds between the two signals: at once, inside the shutdown's first writes, later.
GAPS = (0.0, 0.002, 0.01, 0.03, 0.1, 0.3)


def interrupt_twice(cmd: list[str], url: str, study: str, gap: float,
                    signals: tuple[int, int] = (signal.SIGINT, signal.SIGINT)) -> subprocess.CompletedProcess:
    before = finished(url, study)
    proc = subprocess.Popen(cmd, env=env(), cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: finished(url, study) > before, 60, "this run to record a trial")
        proc.send_signal(signals[0])
        if gap:
            time.sleep(gap)
        proc.send_signal(signals[1])
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def test_double_ctrl_c_always_leaves_a_resumable_truthful_study(redis_url):
    study = "twice"
    cmd = run_command(redis_url, study, "sleepy.py", "--max-evals", "100000", "--parallelism", "4")
    storage = RedisStorage(redis_url)
    with worker_pool(redis_url, 2):
        for round_ in range(REPEAT):
            gap = GAPS[round_ % len(GAPS)]
            out = interrupt_twice(cmd, redis_url, study, gap)
            where = f"round {round_}, {gap:g} s between the signals"
            assert out.returncode == 130, f"{where}: {out.stderr}"
            assert "Traceback" not in out.stderr and "resume it with:" in out.stderr, f"{where}: {out.stderr}"
            meta = storage.get_study(study)
            assert meta["status"] == "interrupted", f"{where}: status {meta['status']!r}"
            assert storage.lease_owner(study) is None, f"{where}: the lease was not released"
        done = finished(redis_url, study)
        target = done + 4
        resumed = run_command(redis_url, study, "sleepy.py", "--max-evals", str(target), "--parallelism", "4")
        again = subprocess.run(resumed, env=env(), cwd=str(ROOT), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert f"trials: {target} ({target} ok, 0 failed)" in again.stdout
    assert storage.get_study(study)["status"] == "done"


def test_sigterm_then_ctrl_c_leaves_it_resumable_too(redis_url):
    study = "termthenint"
    cmd = run_command(redis_url, study, "sleepy.py", "--max-evals", "100000", "--parallelism", "4")
    storage = RedisStorage(redis_url)
    with worker_pool(redis_url, 2):
        for gap, signals in ((0.0, (signal.SIGTERM, signal.SIGINT)), (0.01, (signal.SIGTERM, signal.SIGTERM)),
                             (0.05, (signal.SIGINT, signal.SIGTERM))):
            out = interrupt_twice(cmd, redis_url, study, gap, signals)
            assert out.returncode in (130, 143), out.stderr  # 128 + the first signal, as a rule
            assert "Traceback" not in out.stderr and "resume it with:" in out.stderr, out.stderr
            assert storage.get_study(study)["status"] == "interrupted" and storage.lease_owner(study) is None
