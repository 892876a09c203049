"""Objectives that raise, return garbage, run past trial_timeout or hang: each trial FAILs
with a reason that says why, the study finishes, and the workers live on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from distopt import fmin, hp
from distopt.errors import ObjectiveError
from distopt.trial.record import TrialState
from distopt.redis_trials import RedisTrials

from .helpers import HEARTBEAT_TTL, ROOT, SECRET, env, records, worker_pids, worker_pool

KINDS = ["ok", "raise", "nan", "inf", "string", "sleep", "hang"]
TRIAL_TIMEOUT = 1.0


def objective(kind):
    if kind == "raise":
        raise ValueError("boom")
    if kind == "nan":
        return float("nan")
    if kind == "inf":
        return float("inf")
    if kind == "string":
        return "abc"
    if kind == "sleep":
        time.sleep(30)
    if kind == "hang":  # like C code that never returns to Python: the worker cannot stop it
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        try:
            time.sleep(5)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGALRM})
    return 1.0


def run_study(url, name, kinds, parallelism):
    trials = RedisTrials(url, exp_key=name, secret=SECRET, heartbeat_ttl=HEARTBEAT_TTL)
    fmin(objective, hp.choice("kind", KINDS), max_evals=len(kinds), trials=trials, parallelism=parallelism,
         points_to_evaluate=[{"kind": KINDS.index(k)} for k in kinds], trial_timeout=TRIAL_TIMEOUT, timeout=60,
         show_progressbar=False)
    return {KINDS[r.vals["kind"]]: r for r in records(url, name)}


def test_each_bad_objective_fails_with_its_reason_and_workers_survive(redis_url):
    with worker_pool(redis_url, 3):
        pids = worker_pids(redis_url)
        started = time.monotonic()
        by_kind = run_study(redis_url, "bad", KINDS, parallelism=len(KINDS))
        elapsed = time.monotonic() - started
        assert worker_pids(redis_url) == pids  # no worker died
    assert elapsed < 20  # neither the 30 s sleep nor the hang held the study up
    assert by_kind["ok"].state == TrialState.OK and by_kind["ok"].loss == 1.0
    assert all(by_kind[k].state == TrialState.FAIL for k in KINDS[1:]) and len(by_kind) == len(KINDS)
    assert by_kind["raise"].error.startswith("ValueError: boom\nTraceback") and "in objective" in by_kind["raise"].error
    assert "non-finite loss (nan)" in by_kind["nan"].error
    assert "non-finite loss (inf)" in by_kind["inf"].error
    assert "returned loss 'abc' of type str" in by_kind["string"].error
    assert by_kind["sleep"].error.startswith("trial_timeout: the trial ran longer than its trial_timeout of 1 s")
    assert by_kind["hang"].error.startswith("trial_timeout: ran longer than trial_timeout=1 s and worker")
    timed_out_pid = int(by_kind["sleep"].worker.rsplit(":", 1)[1])
    assert timed_out_pid in pids

    out = subprocess.run([sys.executable, "-m", "distopt", "trials", "--redis", redis_url, "--study", "bad",
                          "--format", "json", "--state", "fail"], capture_output=True, text=True, env=env(),
                         cwd=str(ROOT), timeout=60)
    assert out.returncode == 0, out.stderr
    rows = {r["tid"]: r for r in json.loads(out.stdout)}
    assert len(rows) == len(KINDS) - 1
    raised = rows[by_kind["raise"].tid]["error"]
    # the traceback is there (cloudpickle names by-value code "<dynamic-code>", without its source)
    assert raised.startswith("ValueError: boom\nTraceback (most recent call last):") and ", in objective" in raised


def test_a_forking_worker_stops_a_trial_at_its_timeout_and_goes_on(redis_url):
    with worker_pool(redis_url, 1, fork=True):
        (pid,) = worker_pids(redis_url)
        by_kind = run_study(redis_url, "forked", ["sleep", "ok", "raise"], parallelism=1)
        assert worker_pids(redis_url) == {pid}
    assert by_kind["sleep"].state == TrialState.FAIL and by_kind["sleep"].error.startswith("trial_timeout:")
    assert by_kind["ok"].state == TrialState.OK and by_kind["raise"].state == TrialState.FAIL
    assert by_kind["sleep"].worker != f"{os.uname().nodename}:{pid}"  # it ran in a work-horse


def test_a_worker_without_the_objectives_module_stops_the_study_early(redis_url, tmp_path, monkeypatch):
    """The objective is an import path of a module only the coordinator has."""
    (tmp_path / "only_here.py").write_text("def loss(x):\n    return x * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    trials = RedisTrials(redis_url, exp_key="nomodule", secret=SECRET, heartbeat_ttl=HEARTBEAT_TTL)
    with worker_pool(redis_url, 2):
        started = time.monotonic()
        with pytest.raises(ObjectiveError, match=r"the first 5 trials all failed .*No module named 'only_here'"):
            fmin("only_here:loss", hp.uniform("x", 0, 1), max_evals=200, trials=trials, parallelism=2,
                 timeout=60, show_progressbar=False)
        assert time.monotonic() - started < 20
    done = records(redis_url, "nomodule")
    failed = [r for r in done if r.state == TrialState.FAIL]
    assert 5 <= len(failed) <= 7 and all("cannot load the objective" in r.error for r in failed)
    assert {r.state for r in done} <= {TrialState.FAIL, TrialState.CANCELLED}
