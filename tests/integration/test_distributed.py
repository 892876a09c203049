"""Distributed runs end to end: a private redis-server and real worker processes."""

import functools
import os
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from distopt import fmin, hp, rand, tpe
from distopt.dispatch import RQExecutor, rq_queue
from distopt.coordinator.distributed import ship_objective
from distopt.errors import DistoptError, LeaseError, ObjectiveError
from distopt.trial.record import TrialState
from distopt.redis_trials import RedisTrials
from distopt.storage import RedisStorage
from distopt.study.study import Study
from distopt.trials import AllTrialsFailed
from distopt.worker.pool import WorkerPool

SECRET = "integration-secret"
ROOT = Path(__file__).resolve().parents[2]
POLYNOMIAL = ROOT / "scripts" / "polynomial_study.py"


def shifted_a(x):
    return (x - 1.0) ** 2


def shifted_b(x):
    return (x + 2.0) ** 2 + 10.0


def slow(x):
    time.sleep(0.05)
    return x * x


def held(flag, x):
    """Waits while the file ``flag`` exists (at most 120 s), so a study stays running until
    the test lets it go."""
    deadline = time.monotonic() + 120
    while os.path.exists(flag) and time.monotonic() < deadline:
        time.sleep(0.02)
    return x * x


def pool(url, n=2, secret=SECRET, **kw):
    return WorkerPool(url, n, secret=secret.encode(), **kw)


def cli(*args, env=None, timeout=60):
    full_env = dict(os.environ, DISTOPT_SECRET=SECRET, **(env or {}))
    return subprocess.run([sys.executable, "-m", "distopt", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=str(ROOT))


def test_fmin_with_redis_trials(redis_url):
    space = hp.uniform("x", -5, 5)
    with pool(redis_url, 2):
        trials = RedisTrials(redis_url, exp_key="exp1", secret=SECRET)
        best = fmin(shifted_a, space, algo=tpe.suggest, max_evals=40, trials=trials, parallelism=4,
                    rstate=0, timeout=60, show_progressbar=False)
    records = RedisStorage(redis_url).get_trials("exp1")
    assert len(records) == 40 and all(r.state == TrialState.OK for r in records)
    assert all(r.loss == pytest.approx(shifted_a(r.vals["x"])) for r in records)
    low = min(records, key=lambda r: r.loss)
    assert best == {"x": low.vals["x"]} and trials.best_trial["result"]["loss"] == low.loss
    assert len({r.worker for r in records}) >= 1 and trials.stop_reason == "max_evals"


def test_distopt_run_on_a_cluster(redis_url):
    out = cli("run", str(POLYNOMIAL), "--redis", redis_url, "--workers", "2", "--max-evals", "40",
              "--study", "poly", "--seed", "1")
    assert out.returncode == 0, out.stderr
    records = RedisStorage(redis_url).get_trials("poly")
    assert len(records) == 40 and all(r.state == TrialState.OK for r in records)
    best = min(r.loss for r in records)
    assert "trials: 40 (40 ok, 0 failed)" in out.stdout
    assert f"best loss: {best:.6g}" in out.stdout


def test_two_studies_on_one_redis_do_not_interfere(redis_url):
    space = hp.uniform("x", -5, 5)
    results = {}

    def run(name, fn):
        trials = RedisTrials(redis_url, exp_key=name, secret=SECRET)
        fmin(fn, space, algo=rand.suggest, max_evals=20, trials=trials, parallelism=3, rstate=1,
             timeout=60, show_progressbar=False)
        results[name] = trials

    with pool(redis_url, 2):
        threads = [threading.Thread(target=run, args=a) for a in (("sa", shifted_a), ("sb", shifted_b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
    storage = RedisStorage(redis_url)
    for name, fn in (("sa", shifted_a), ("sb", shifted_b)):
        records = storage.get_trials(name)
        assert len(records) == 20 and all(r.state == TrialState.OK for r in records)
        assert all(r.loss == pytest.approx(fn(r.vals["x"])) for r in records), name
        assert results[name].best_trial["result"]["loss"] == min(r.loss for r in records)


def test_second_coordinator_on_a_running_study_is_refused(redis_url, tmp_path):
    space = hp.uniform("x", -1, 1)
    storage = RedisStorage(redis_url)
    flag = tmp_path / "hold"
    flag.touch()  # the first study's trials wait on it: it is still running when the second comes
    objective = functools.partial(held, str(flag))
    first = RedisTrials(redis_url, exp_key="busy", secret=SECRET)
    runner = threading.Thread(target=fmin, args=(objective, space), kwargs=dict(
        algo=rand.suggest, max_evals=30, trials=first, parallelism=2, timeout=120, show_progressbar=False))
    with pool(redis_url, 2):
        runner.start()
        try:
            deadline = time.monotonic() + 60
            while storage.lease_owner("busy") is None if "busy" in storage.list_studies() else True:
                assert time.monotonic() < deadline, "the first coordinator never took the lease"
                time.sleep(0.02)
            with pytest.raises(LeaseError, match="'busy' is already being run by coordinator"):
                fmin(slow, space, algo=rand.suggest, max_evals=40, show_progressbar=False,
                     trials=RedisTrials(redis_url, exp_key="busy", secret=SECRET))
        finally:
            flag.unlink()
        runner.join(120)
        assert not runner.is_alive()
    records = storage.get_trials("busy")
    assert len(records) == 30 and all(r.state == TrialState.OK for r in records)


def _one_trial_study(redis_url, name, secret):
    storage = RedisStorage(redis_url)
    study = Study(hp.uniform("x", 0, 1), storage=storage, name=name)
    ref = ship_objective(shifted_a, study, storage, secret)
    executor = RQExecutor(storage, name, ref, secret=secret)
    return storage, study, ref, executor


def _results(executor):
    return [m for m in executor.wait(1.0) if m.get("type") != "started"]


def test_tampered_blob_is_refused_by_the_worker(redis_url):
    storage, study, ref, executor = _one_trial_study(redis_url, "tamper", SECRET.encode())
    blob = storage.get_blob(ref.digest)
    storage.put_blob(ref.digest, blob[:-1] + bytes([blob[-1] ^ 0x55]))
    executor.submit(study, study.ask(2))
    out = cli("worker", "--redis", redis_url, "--burst", "--processes", "2")
    assert out.returncode == 0, out.stderr
    results = _results(executor)
    assert len(results) == 2  # not results: the trials never ran, the coordinator runs them elsewhere
    assert all(m["type"] == "unloadable" and "altered" in m["reason"] for m in results)


def test_blob_signed_with_another_secret_is_refused(redis_url):
    trials = RedisTrials(redis_url, exp_key="othersecret", secret="not-the-workers-secret")
    # the guarded worker refuses the signed job itself before any objective loads, and its refusal is not
    # signed with the coordinator's secret: the trials never ran, so no budget is spent and the study stops
    # naming why once the only listening worker refused the first ones
    with pool(redis_url, 1), pytest.raises(ObjectiveError, match="refused the job: .*different secret"):
        fmin(shifted_a, hp.uniform("x", 0, 1), max_evals=3, trials=trials, parallelism=3, timeout=60,
             show_progressbar=False)
    records = RedisStorage(redis_url).get_trials("othersecret")
    assert records and not any(r.state in (TrialState.OK, TrialState.FAIL) for r in records)


def test_unpicklable_objective_fails_fast(redis_url):
    lock = threading.Lock()

    def holds_a_lock(x):
        with lock:
            return x

    started = time.monotonic()
    with pytest.raises(ObjectiveError, match=r"holds_a_lock cannot be sent to workers: .*lock"):
        fmin(holds_a_lock, hp.uniform("x", 0, 1), max_evals=5, show_progressbar=False,
             trials=RedisTrials(redis_url, exp_key="unpicklable", secret=SECRET))
    assert time.monotonic() - started < 30  # what it guards against is a hang
    storage = RedisStorage(redis_url)
    assert rq_queue(storage.client).count == 0 and storage.get_trials("unpicklable") == []


def test_worker_without_a_secret_refuses_to_start(redis_url):
    out = subprocess.run([sys.executable, "-m", "distopt", "worker", "--redis", redis_url, "--burst"],
                         capture_output=True, text=True, timeout=30,
                         env={k: v for k, v in os.environ.items() if k != "DISTOPT_SECRET"})
    assert out.returncode == 1
    assert out.stderr.startswith("Error: no shared secret") and "Traceback" not in out.stderr
    assert "DISTOPT_SECRET" in out.stderr and "--insecure" in out.stderr


def test_coordinator_without_a_secret_refuses_before_writing(redis_url, monkeypatch):
    monkeypatch.delenv("DISTOPT_SECRET", raising=False)
    with pytest.raises(DistoptError, match="no shared secret.*DISTOPT_SECRET"):
        fmin(shifted_a, hp.uniform("x", 0, 1), max_evals=2, show_progressbar=False,
             trials=RedisTrials(redis_url, exp_key="nosecret"))
    assert RedisStorage(redis_url).list_studies() == []


def test_redis_trials_pickle_as_url_and_name(redis_url, monkeypatch):
    trials = RedisTrials(redis_url, exp_key="pickled", secret=SECRET)
    with pool(redis_url, 1):
        fmin(shifted_a, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=5, trials=trials,
             show_progressbar=False, timeout=60)
        data = pickle.dumps(trials)
        assert SECRET.encode() not in data and b"integration-secret" not in data
        again = pickle.loads(data)
        assert len(again) == 5 and again.argmin == trials.argmin
        monkeypatch.setenv("DISTOPT_SECRET", SECRET)  # never pickled: a restored object reads it again
        fmin(shifted_a, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=8, trials=again,
             show_progressbar=False, timeout=60)
    assert len(RedisStorage(redis_url).get_trials("pickled")) == 8


def test_insecure_cluster_run_warns_on_both_sides(redis_url):
    env = {k: v for k, v in os.environ.items() if k != "DISTOPT_SECRET"}
    out = subprocess.run([sys.executable, "-m", "distopt", "run", str(POLYNOMIAL), "--redis", redis_url,
                          "--workers", "1", "--max-evals", "5", "--insecure", "--study", "open"],
                         capture_output=True, text=True, env=env, timeout=60, cwd=str(ROOT))
    assert out.returncode == 0, out.stderr
    assert "trials: 5 (5 ok, 0 failed)" in out.stdout
    assert "coordinator ships objectives unsigned" in out.stderr
    assert "worker accepts unsigned objectives" in out.stderr


def test_forking_worker_runs_trials(redis_url):
    storage, study, ref, executor = _one_trial_study(redis_url, "forked", SECRET.encode())
    trials = study.ask(2)
    executor.submit(study, trials)
    out = cli("worker", "--redis", redis_url, "--burst", "--fork")
    assert out.returncode == 0, out.stderr
    results = sorted(_results(executor), key=lambda m: m["tid"])
    assert [m["status"] for m in results] == ["ok", "ok"]
    assert [m["loss"] for m in results] == pytest.approx([shifted_a(t.params) for t in trials])
