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

from .helpers import ROOT, SECRET, env, records, worker_pids, worker_pool

KINDS = ["ok", "raise", "nan", "inf", "string", "sleep", "hang"]
TRIAL_TIMEOUT = 1.0
#: Also the reaper's grace past a trial_timeout: a worker that stops its trial at the timeout
#: has 10 s to report it, and a loaded machine never makes a trial miss its heartbeats.
HEARTBEAT_TTL = 10.0


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
        time.sleep(60)
    if kind == "hang":  # like C code that never returns to Python: the worker cannot stop it
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        try:
            time.sleep(60)  # past trial_timeout + the reaper's grace
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGALRM})
    return 1.0


def run_study(url, name, kinds, parallelism):
    trials = RedisTrials(url, exp_key=name, secret=SECRET, heartbeat_ttl=HEARTBEAT_TTL)
    fmin(objective, hp.choice("kind", KINDS), max_evals=len(kinds), trials=trials, parallelism=parallelism,
         points_to_evaluate=[{"kind": KINDS.index(k)} for k in kinds], trial_timeout=TRIAL_TIMEOUT, timeout=120,
         show_progressbar=False)
    return {KINDS[r.vals["kind"]]: r for r in records(url, name)}


def test_each_bad_objective_fails_with_its_reason_and_workers_survive(redis_url):
    with worker_pool(redis_url, 3):
        pids = worker_pids(redis_url)
        started = time.monotonic()
        by_kind = run_study(redis_url, "bad", KINDS, parallelism=len(KINDS))
        elapsed = time.monotonic() - started
        assert worker_pids(redis_url) == pids  # no worker died
    assert elapsed < 45  # neither the 60 s sleep nor the 60 s hang held the study up
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
    """The objective is an import path of a module only the coordinator has: no listening
    worker can load it, so the study stops, and no trial used the budget."""
    (tmp_path / "only_here.py").write_text("def loss(x):\n    return x * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    trials = RedisTrials(redis_url, exp_key="nomodule", secret=SECRET, heartbeat_ttl=HEARTBEAT_TTL)
    with worker_pool(redis_url, 2):
        started = time.monotonic()
        with pytest.raises(ObjectiveError, match=r"the first \d+ trials all failed .*No module named 'only_here'"):
            fmin("only_here:loss", hp.uniform("x", 0, 1), max_evals=200, trials=trials, parallelism=2,
                 timeout=60, show_progressbar=False)
        assert time.monotonic() - started < 30
    done = records(redis_url, "nomodule")
    assert done and {r.state for r in done} <= {TrialState.LOST, TrialState.CANCELLED}  # none FAILed: no budget
    assert all("cannot load the objective" in (r.error or "") or r.state == TrialState.CANCELLED for r in done)


def test_a_missing_package_on_one_of_two_workers_sends_its_trials_to_the_other(redis_url, tmp_path, monkeypatch):
    """One machine lacks the objective's module: its trials run on the machine that has it,
    none FAILs, none uses a retry, and the budget is the whole max_evals."""
    (tmp_path / "only_there.py").write_text("def loss(x):\n    return x * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    trials = RedisTrials(redis_url, exp_key="onemissing", secret=SECRET, heartbeat_ttl=HEARTBEAT_TTL)
    with_module = {"PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}"}
    with worker_pool(redis_url, 1, queue="distopt") as lacking:
        with worker_pool(redis_url, 1, extra_env=with_module, at_least=2) as having:
            fmin("only_there:loss", hp.uniform("x", 0, 1), max_evals=12, trials=trials, parallelism=2,
                 max_retries=0, timeout=120, show_progressbar=False)
    done = records(redis_url, "onemissing")
    ok = [r for r in done if r.state == TrialState.OK]
    assert len(ok) == 12 and not [r for r in done if r.state == TrialState.FAIL]
    assert {int(r.worker.rsplit(":", 1)[1]) for r in ok} == {having.pid}
    rerouted = [r for r in done if r.state == TrialState.LOST]
    assert all(f":{lacking.pid} cannot load the objective" in r.error for r in rerouted)


def always_raises(x):
    raise FileNotFoundError(f"[Errno 2] No such file or directory: 'data.csv' (x={x:.3f})")


def test_an_objective_that_always_raises_stops_after_five_naming_the_error(redis_url):
    trials = RedisTrials(redis_url, exp_key="alwaysraises", secret=SECRET, heartbeat_ttl=HEARTBEAT_TTL)
    with worker_pool(redis_url, 2):
        with pytest.raises(ObjectiveError, match=r"the first 5 trials all failed with the same error.*"
                                                 r"FileNotFoundError.*data\.csv.*test_bad_objectives\.py"):
            fmin(always_raises, hp.uniform("x", 0, 1), max_evals=200, trials=trials, parallelism=2,
                 timeout=60, show_progressbar=False)
    done = records(redis_url, "alwaysraises")
    failed = [r for r in done if r.state == TrialState.FAIL]
    assert 5 <= len(failed) <= 7 and len(done) < 20  # stopped, not 200
    assert all("<dynamic-code>" not in r.error and "test_bad_objectives.py" in r.error for r in failed)
