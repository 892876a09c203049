"""The status document tells the truth about what is alive, with real processes on a real
redis-server: a coordinator killed with SIGKILL leaves its study `interrupted` once its
lease lapses (no ETA, the command that resumes it); workers killed with SIGKILL, idle or
busy, are dead within two of their heartbeat intervals and then dropped; results that
wait in the inbox after Ctrl-C are `waiting`, not running or stale."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from typing import Any

from distopt import status
from distopt.worker.pool import WorkerPool

from .helpers import LEASE_TTL, ROOT, SECRET, env, finished, run_command, wait_until, worker_pool

INTERVAL = 1.0  # the workers' own heartbeat interval in these tests


def check_sums(st: dict[str, Any]) -> None:
    """Every trial in one bucket; the pending buckets are the stored pending states."""
    c, s = st["counts"], st["states"]
    assert sum(c.values()) == sum(s.values()) == st["total"], st
    assert c["queued"] + c["taken"] + c["running"] + c["waiting"] == s["queued"] + s["running"], st
    assert all(c[k] == s[k] for k in s if k not in ("queued", "running")), st
    assert st["finished"] == s["ok"] + s["fail"], st
    assert all(v >= 0 for v in c.values()), st


def test_killed_coordinator_study_is_interrupted_after_its_lease(redis_url):
    study = "coordkill"
    cmd = run_command(redis_url, study, "sleepy.py", "--max-evals", "200", "--parallelism", "2")
    with worker_pool(redis_url, 2):
        proc = subprocess.Popen(cmd, env=env(), cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: finished(redis_url, study) >= 4, 60, "a few finished trials")
            live = status(redis_url, study)["studies"][study]
            assert live["status"] == "running" and live["coordinator_alive"] and live["eta_seconds"] is not None
            assert live["resume"] is None
            proc.kill()
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        st = wait_until(lambda: (lambda s: s if s["status"] == "interrupted" else None)(
            status(redis_url, study)["studies"][study]), LEASE_TTL + 60, "the study to show interrupted")
        assert st["stored_status"] == "running"  # what the dead coordinator last wrote
        assert st["coordinator"] is None and not st["coordinator_alive"] and st["eta_seconds"] is None
        assert st["resume"] == f"distopt run STUDY_FILE --redis {redis_url} --study {study}"
        check_sums(st)
        later = status(redis_url, study, now=time.time() + 3600)["studies"][study]
        assert later["status"] == "interrupted" and later["eta_seconds"] is None  # forever, not "2m00s"


HANGING_STUDY = """
import os, time
from distopt import hp
space = hp.uniform("x", 0, 1)
max_evals = 1
def objective(x):
    while os.path.exists({flag!r}):
        time.sleep(0.05)
    return x
"""


def test_killed_workers_idle_and_busy_are_dead_then_dropped(redis_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DISTOPT_WORKER_HEARTBEAT", str(INTERVAL))
    flag = tmp_path / "hold"
    flag.touch()
    study_file = tmp_path / "hanging.py"
    study_file.write_text(HANGING_STUDY.format(flag=str(flag)))
    cmd = [*run_command(redis_url, "wkill", "sleepy.py", "--parallelism", "1")]
    cmd[cmd.index(str(ROOT / "tests" / "chaos" / "studies" / "sleepy.py"))] = str(study_file)
    cmd[cmd.index("--heartbeat-ttl") + 1] = "30"  # the trial is not lost while we look
    with WorkerPool(redis_url, 2, secret=SECRET.encode(), grace=1.0) as pool:
        coordinator = subprocess.Popen(cmd, env=env(), cwd=str(ROOT), stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        try:
            # both shown alive (a beat within dead_after), one of them busy
            doc = wait_until(lambda: (lambda d: d if len(d["workers"]) == 2 and any(
                w["trial"] for w in d["workers"].values()) and all(
                w["alive"] is True for w in d["workers"].values()) else None)(status(redis_url)), 60,
                "a busy worker, both workers alive")
            (busy_name, busy), = [(n, w) for n, w in doc["workers"].items() if w["trial"]]
            (idle_name, idle), = [(n, w) for n, w in doc["workers"].items() if not w["trial"]]
            assert busy["alive"] is True and idle["alive"] is True and idle["job"] is None
            # deep in a long trial (it ends only when the flag goes), a non-forking worker still
            # beats on its own: beats 4 intervals after the one seen at its start, and is alive
            first_beat = busy["last_heartbeat"]
            deep = wait_until(lambda: (lambda w: w if w["last_heartbeat"] >= first_beat + 4 * INTERVAL and
                                       w["alive"] is True else None)(status(redis_url)["workers"][busy_name]), 60,
                              "the busy worker to beat 4 intervals into its trial")
            assert deep["alive"] is True and deep["state"] == "busy" and deep["heartbeat_age"] <= 2 * INTERVAL
            assert deep["trial"]["study"] == "wkill" and deep["trial"]["tid"] == busy["trial"]["tid"]

            for w in (busy, idle):
                os.kill(w["pid"], signal.SIGKILL)
            killed = time.time()
            for proc in pool.procs:
                proc.wait(10)
            time.sleep(max(0.0, killed + 2 * INTERVAL - time.time()))
            doc = status(redis_url)
            for name in (busy_name, idle_name):  # dead within two heartbeat intervals
                w = doc["workers"][name]
                assert w["alive"] is False and w["state"] == "dead" and w["liveness"] == "dead", w
                assert w["job"] is None and w["trial"] is None
            assert doc["workers"][busy_name]["last_job"] and doc["workers"][busy_name]["rq_state"] == "busy"
            q = doc["queues"]["distopt"]
            assert q["workers"] == [] and q["started"] == 0 and q["workers_dead"] == 2
            assert q["rq_started"] == 1  # rq itself still believes the killed worker runs its job
            (orphan,) = doc["studies"]["wkill"]["stale"]  # at once, not after the trial's 30 s ttl
            assert orphan["source"] == "worker" and orphan["worker"] == busy["id"]
            assert orphan["tid"] == busy["trial"]["tid"]
            json.dumps(doc, allow_nan=False)

            dropped = wait_until(lambda: (lambda d: d if not d["workers"] else None)(status(redis_url)), 60,
                                 "the dead workers to be dropped")
            assert dropped["queues"]["distopt"]["workers_dead"] == 0
            assert dropped["studies"]["wkill"]["coordinator_alive"]  # the coordinator lives on
        finally:
            flag.unlink()
            coordinator.kill()
            coordinator.wait()


def test_results_waiting_after_ctrl_c_are_waiting_not_running(redis_url):
    study = "waiting"
    cmd = run_command(redis_url, study, "sleepy.py", "--max-evals", "40", "--parallelism", "4")
    with worker_pool(redis_url, 2):
        proc = subprocess.Popen(cmd, env=env(), cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: finished(redis_url, study) >= 4, 60, "a few finished trials")
            proc.send_signal(signal.SIGINT)
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        # the workers finish the jobs left queued; nobody records their results
        st = wait_until(lambda: (lambda s: s if s["counts"]["waiting"] >= 1 and s["counts"]["waiting"] ==
                                 s["states"]["queued"] + s["states"]["running"] else None)(
            status(redis_url, study)["studies"][study]),
                        60, "results waiting in the inbox")
    assert st["status"] == "interrupted" and st["stored_status"] == "interrupted" and st["eta_seconds"] is None
    check_sums(st)
    assert st["counts"]["waiting"] == st["states"]["queued"] + st["states"]["running"]  # every pending one finished
    much_later = status(redis_url, study, now=time.time() + 3600)["studies"][study]
    assert much_later["stale"] == []  # finished results are not stale trials
    assert much_later["rate_per_minute"] == st["rate_per_minute"] and much_later["rate_frozen"]
