"""Objectives that end their process (sys.exit, KeyboardInterrupt, os._exit, a segfault)
FAIL at once with the real cause, after one attempt; the workers go on."""

from __future__ import annotations

import pytest

from distopt import fmin, hp
from distopt.trial.record import TrialState
from distopt.redis_trials import RedisTrials
from distopt.storage import RedisStorage
from distopt.worker.pool import WorkerPool

SECRET = b"exit-secret"
HOWS = ["ok", "exit", "kbint", "os_exit", "segv", "ok"]


def ending(how):
    import ctypes
    import os
    import sys

    if how == "exit":
        sys.exit(3)
    if how == "kbint":
        raise KeyboardInterrupt
    if how == "os_exit":
        os._exit(4)
    if how == "segv":
        ctypes.string_at(0)  # reads address 0: SIGSEGV
    return 1.0


@pytest.mark.parametrize("fork", [False, True], ids=["simple", "fork"])
def test_process_ending_objectives_fail_with_their_cause_after_one_attempt(redis_url, fork):
    with WorkerPool(redis_url, 1, secret=SECRET, fork=fork) as pool:
        trials = RedisTrials(redis_url, exp_key="ending", secret=SECRET,
                             ticks=(lambda study, now: pool.check(restart=True),))
        fmin(ending, hp.choice("how", HOWS), points_to_evaluate=[{"how": i} for i in range(len(HOWS))],
             max_evals=len(HOWS), trials=trials, parallelism=1, timeout=120, show_progressbar=False)
    records = {r.tid: r for r in RedisStorage(redis_url).get_trials("ending")}
    assert len(records) == len(HOWS)
    expected = {1: "SystemExit(3)", 2: "KeyboardInterrupt", 3: "exited with code 4", 4: "killed by SIGSEGV"}
    for tid, cause in expected.items():
        rec = records[tid]
        assert rec.state == TrialState.FAIL and rec.attempt == 0, (tid, rec)
        assert cause in (rec.error or ""), (tid, rec.error)
    assert records[0].state == records[5].state == TrialState.OK  # the workers went on
