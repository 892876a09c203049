"""Redis without persistence restarts empty in the middle of a trial: the study is
reported lost (never silently recreated), and a result of the lost study never lands on
a trial of the study that later takes its name."""

from __future__ import annotations

import subprocess
import textwrap

from distopt.trial.record import TrialState
from distopt.storage.redis.server import RedisServer
from distopt.storage import RedisStorage

from .helpers import ROOT, env, run_command, wait_until, worker_pool

STUDY = "wiped"


def study_file(tmp_path):
    """An objective whose first call in a worker waits for the test's go (so that trial
    is still running when Redis is wiped), and says which x it got."""
    path = tmp_path / "held.py"
    path.write_text(textwrap.dedent(f"""
        import os, time
        from distopt import hp
        space = hp.uniform("x", -5, 5)
        FIRST = [True]
        def objective(x):
            if FIRST[0]:
                FIRST[0] = False
                open({str(tmp_path / "started")!r}, "w").write(repr(x))
                while not os.path.exists({str(tmp_path / "go")!r}):
                    time.sleep(0.05)
            return (x - 1.0) ** 2
    """))
    return path


def test_a_wiped_redis_loses_the_study_loudly_and_never_mixes_results(tmp_path):
    (tmp_path / "redis").mkdir()
    with RedisServer(dir=tmp_path / "redis") as server:
        url = server.url
        cmd = run_command(url, STUDY, str(study_file(tmp_path)), "--max-evals", "4", "--parallelism", "1")
        storage = RedisStorage(url)
        with worker_pool(url, 1):
            first = subprocess.Popen(cmd, env=env(), cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
            wait_until(lambda: (tmp_path / "started").exists(), 60, "the first trial to start")
            old_x = float((tmp_path / "started").read_text())
            server.restart(hard=True)  # no AOF: it comes back empty
            _, first_err = first.communicate(timeout=120)
            assert first.returncode == 1, first_err
            assert f"study '{STUDY}' existed and its data is gone: Redis lost it" in first_err, first_err

            again = subprocess.run(cmd, env=env(), cwd=str(ROOT), capture_output=True, text=True, timeout=120)
            assert again.returncode == 1 and "existed and its data is gone" in again.stderr, again.stderr
            assert STUDY not in storage.list_studies()  # refused before creating anything

            storage.forget_vanished(STUDY)  # the user chooses to reuse the name
            rerun = subprocess.Popen(cmd, env=env(), cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
            wait_until(lambda: STUDY in storage.list_studies() and storage.get_trials(STUDY), 60,
                       "the rerun to create its first trial")
            (tmp_path / "go").write_text("")  # the lost study's trial now reports to the new study's inbox
            out, err = rerun.communicate(timeout=180)
            records = storage.get_trials(STUDY)
    assert rerun.returncode == 0, err
    assert "trials: 4 (4 ok, 0 failed)" in out
    assert "another incarnation" in err  # the lost study's result came, and was dropped
    assert len(records) == 4 and all(r.state == TrialState.OK for r in records)
    for rec in records:
        assert rec.loss == (rec.vals["x"] - 1.0) ** 2  # each loss is its own parameters', never the lost trial's
    assert all(rec.vals["x"] != old_x for rec in records)
