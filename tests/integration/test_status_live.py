"""distopt.status against a study run by real worker processes on a real redis-server:
counts add up to the trials created, workers and their trials are the pool's, and a
worker killed mid-trial leaves its trial stale once its liveness deadline passes."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from typing import Any, Callable

from distopt import fmin, hp, status
from distopt.trial.record import TrialState
from distopt.redis_trials import RedisTrials
from distopt.storage import RedisStorage
from distopt.worker.pool import WorkerPool

SECRET = "status-live-secret"
STUDY = "live"
TTL = 30.0  # the workers' default heartbeat ttl


def wait_for(url: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        doc = status(url, STUDY)
        if predicate(doc):
            return doc
        if time.monotonic() > deadline:
            raise AssertionError(f"status never matched; last document: {json.dumps(doc)[:3000]}")
        time.sleep(0.05)


def check_counts(url: str, doc: dict[str, Any]) -> dict[str, Any]:
    st = doc["studies"][STUDY]
    records = RedisStorage(url).get_trials(STUDY)
    assert st["total"] == sum(st["counts"].values()) == len(records)
    for state in TrialState:
        assert st["counts"][state.value] == sum(1 for r in records if r.state == state)
    return st


def test_status_follows_a_live_study_and_spots_a_killed_worker(redis_url, tmp_path):
    hang = tmp_path / "hang"

    def objective(x):
        if hang.exists():
            time.sleep(120)
        time.sleep(0.05)
        return (x - 1.0) ** 2

    space = hp.uniform("x", -5, 5)
    with WorkerPool(redis_url, 2, secret=SECRET.encode(), grace=2.0) as pool:
        trials = RedisTrials(redis_url, exp_key=STUDY, secret=SECRET)
        fmin(objective, space, max_evals=12, trials=trials, parallelism=2, rstate=0, timeout=60,
             show_progressbar=False)

        # -- a finished run: counts, best, rate, the pool's workers ---------------------
        doc = wait_for(redis_url, lambda d: len(d["workers"]) == 2 and
                       all(w["state"] == "idle" for w in d["workers"].values()))
        st = check_counts(redis_url, doc)
        records = RedisStorage(redis_url).get_trials(STUDY)
        assert st["counts"]["ok"] == st["finished"] == st["total"] == 12
        assert st["status"] == "done" and st["coordinator"] is None and st["stale"] == []
        best = min(records, key=lambda r: r.loss)
        assert st["best"]["tid"] == best.tid and st["best"]["params"] == best.vals["x"]
        assert st["rate_per_minute"] > 0
        assert st["eta_seconds"] == (None if st["max_evals"] is None else 0.0)
        assert {w["pid"] for w in doc["workers"].values()} == set(pool.pids)
        assert {r.worker for r in records} <= {w["id"] for w in doc["workers"].values()}
        assert doc["queues"]["distopt"]["depth"] == 0
        assert sorted(doc["queues"]["distopt"]["workers"]) == sorted(doc["workers"])

        # -- one more trial that hangs; kill its worker ----------------------------------
        hang.touch()
        errors: list[BaseException] = []

        def coordinate() -> None:
            try:
                fmin(objective, space, max_evals=13, trials=RedisTrials(redis_url, exp_key=STUDY, secret=SECRET),
                     parallelism=1, timeout=12, show_progressbar=False)
            except BaseException as exc:  # surfaced by the assertion below
                errors.append(exc)

        thread = threading.Thread(target=coordinate, daemon=True)
        thread.start()
        doc = wait_for(redis_url, lambda d: d["studies"][STUDY]["states"]["running"] == 1 and any(
            w["trial"] and w["trial"]["study"] == STUDY for w in d["workers"].values()))
        (name, busy), = [(n, w) for n, w in doc["workers"].items() if w["trial"]]
        tid = busy["trial"]["tid"]
        assert busy["state"] == "busy" and busy["pid"] in pool.pids and doc["studies"][STUDY]["coordinator"]
        os.kill(busy["pid"], signal.SIGKILL)
        pool.procs[pool.pids.index(busy["pid"])].wait(10)

        now = time.time()
        assert status(redis_url, STUDY, now=now)["studies"][STUDY]["stale"] == []
        later = status(redis_url, STUDY, now=now + TTL + 1)
        (stale,) = later["studies"][STUDY]["stale"]
        assert stale["tid"] == tid and stale["state"] == "running" and stale["worker"] == busy["id"]
        assert 0 < stale["overdue"] <= TTL + 1
        assert later["workers"][name]["heartbeat_age"] > TTL  # rq still lists the dead worker
        check_counts(redis_url, later)

        # -- the coordinator times out and cancels the trial: nothing stale any more -----
        thread.join(30)
        assert not thread.is_alive() and not errors, errors
        st = check_counts(redis_url, status(redis_url, STUDY, now=now + 3600))
        assert st["counts"]["cancelled"] == 1 and st["total"] == 13 and st["stale"] == []


def test_numbers_add_up_at_every_poll_of_a_200_trial_study(redis_url):
    """A script polls while 200 trials run: at every poll each trial is in exactly one
    bucket, the pending buckets are the stored pending trials, nothing finished is lost
    between polls, and every worker listed is alive."""
    from distopt.errors import StudyNotFound

    def objective(x):
        time.sleep(0.01)
        return (x - 1.0) ** 2

    study, n = "poll200", 200
    errors: list[BaseException] = []

    def coordinate() -> None:
        try:
            fmin(objective, hp.uniform("x", -5, 5), max_evals=n, parallelism=4, rstate=1, show_progressbar=False,
                 trials=RedisTrials(redis_url, exp_key=study, secret=SECRET))
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    polls, last_finished = 0, 0
    with WorkerPool(redis_url, 2, secret=SECRET.encode(), grace=2.0):
        thread = threading.Thread(target=coordinate, daemon=True)
        thread.start()
        while thread.is_alive() or polls == 0:
            try:
                doc = status(redis_url, study)
            except StudyNotFound:
                continue
            st = doc["studies"][study]
            c, s = st["counts"], st["states"]
            assert sum(c.values()) == sum(s.values()) == st["total"] <= n + 4, st
            assert c["queued"] + c["taken"] + c["running"] + c["waiting"] == s["queued"] + s["running"], st
            assert c["ok"] == s["ok"] and c["fail"] == s["fail"] == 0 and st["finished"] == s["ok"], st
            assert st["finished"] >= last_finished, (st, last_finished)
            assert all(w["alive"] for w in doc["workers"].values()), doc["workers"]
            assert doc["queues"].get("distopt", {"started": 0})["started"] <= 2
            last_finished = st["finished"]
            polls += 1
        thread.join(60)
    assert not errors, errors
    assert polls >= 5
    end = status(redis_url, study)["studies"][study]
    assert end["status"] == "done" and end["counts"]["ok"] == end["total"] == n and end["eta_seconds"] == 0.0
    later = status(redis_url, study, now=time.time() + 600)["studies"][study]
    assert later["rate_per_minute"] == end["rate_per_minute"] > 0 and later["rate_frozen"]
