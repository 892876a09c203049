"""Only distopt's own, signed trial jobs run on a distopt worker: real worker processes on a
private redis-server, attacked the ways anyone who can write to Redis could."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import redis
from rq import Callback, Queue
from rq.job import Job
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer

from distopt import fmin, hp, rand
from distopt.dispatch import RQExecutor, rq_queue
from distopt.dispatch.jobs import JOB_FUNC, LEGACY_JOB_FUNC, make_payload
from distopt.coordinator.distributed import ship_objective
from distopt.trial.record import TrialState
from distopt.redis_trials import RedisTrials
from distopt.storage import RedisStorage
from distopt.study.study import Study
from distopt.worker.pool import WorkerPool

from tests.chaos.helpers import wait_until

SECRET = b"guard-secret"
ROOT = Path(__file__).resolve().parents[2]


def square(x):
    return x * x


def touch_marker(*args, **kwargs):
    """What a forged callback would run: it must never be called on a worker."""
    Path(os.environ["GUARD_MARKER"]).write_text("callback ran")


@pytest.fixture
def marker(tmp_path, monkeypatch):
    path = tmp_path / "marker.txt"
    monkeypatch.setenv("GUARD_MARKER", str(path))  # the pool's children inherit it
    return path


def failed_ids(url: str) -> list[str]:
    conn = redis.Redis.from_url(url)
    try:
        return FailedJobRegistry("distopt", connection=conn, serializer=JSONSerializer).get_job_ids()
    finally:
        conn.close()


def run_a_study(url: str, name: str, n: int = 4) -> list:
    trials = RedisTrials(url, exp_key=name, secret=SECRET)
    fmin(square, hp.uniform("x", -1, 1), algo=rand.suggest, max_evals=n, trials=trials, parallelism=2,
         timeout=60, show_progressbar=False)
    return RedisStorage(url).get_trials(name)


@pytest.mark.parametrize("fork", [False, True], ids=["simple", "fork"])
def test_a_raw_forged_job_naming_os_system_never_runs(redis_url, marker, fork):
    conn = redis.Redis.from_url(redis_url)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    conn.hset("rq:job:evil1", mapping={
        "data": f'["os.system", null, ["echo pwned > {marker}"], {{}}]', "status": "queued", "origin": "distopt",
        "created_at": stamp, "enqueued_at": stamp, "description": "x", "timeout": 60,
    })
    conn.rpush("rq:queue:distopt", "evil1")
    with WorkerPool(redis_url, 1, secret=SECRET, fork=fork):
        wait_until(lambda: "evil1" in failed_ids(redis_url), 30, "the forged job to be refused")
        assert run_a_study(redis_url, "after-raw")[-1].state == TrialState.OK  # the worker goes on working
    assert not marker.exists()
    conn.close()


def test_an_enqueued_builtins_exec_job_never_runs(redis_url, marker):
    conn = redis.Redis.from_url(redis_url)
    code = f"open({str(marker)!r}, 'w').write('pwned')"
    job = Queue("distopt", connection=conn, serializer=JSONSerializer).enqueue("builtins.exec", code)
    with WorkerPool(redis_url, 1, secret=SECRET):
        wait_until(lambda: job.id in failed_ids(redis_url), 30, "the exec job to be refused")
    assert not marker.exists()
    assert conn.hget(job.key, "status") == b"failed"
    assert "refused by distopt" in Job.fetch(job.id, connection=conn, serializer=JSONSerializer).latest_result().exc_string
    conn.close()


def _signed_trial_job(url: str, name: str, func: str = JOB_FUNC, **enqueue_kw):
    storage = RedisStorage(url)
    study = Study(hp.uniform("x", -1, 1), storage=storage, name=name)
    ref = ship_objective(square, study, storage, SECRET)
    (trial,) = study.ask(1)
    payload = make_payload(name, trial.tid, 0, trial.vals, ref, storage.prefix, secret=SECRET)
    job = rq_queue(storage.client).enqueue(func, payload, job_id=f"distopt-{name}-{trial.tid}-0", **enqueue_kw)
    return storage, job


@pytest.mark.parametrize("fork", [False, True], ids=["simple", "fork"])
def test_a_job_queued_under_the_old_function_path_still_runs(redis_url, fork):
    """Jobs enqueued before the trial function moved name distopt.dispatch.jobs.run_trial,
    which no longer exists: a distopt worker runs distopt.worker.job.run_trial for them."""
    storage, job = _signed_trial_job(redis_url, "legacy", func=LEGACY_JOB_FUNC)
    assert job.func_name == "distopt.dispatch.jobs.run_trial"
    with WorkerPool(redis_url, 1, secret=SECRET, fork=fork):
        wait_until(lambda: job.get_status(refresh=True) == "finished", 30, "rq to record the job as finished")
    # a "started" may come first: loading the objective on a loaded machine can outlast the started delay
    (msg,) = [m for m in storage.pop_results("legacy", limit=10) if m.get("type") != "started"]
    (rec,) = storage.get_trials("legacy")
    assert msg["status"] == "ok" and msg["loss"] == pytest.approx(rec.vals["x"] ** 2)
    assert job.id not in failed_ids(redis_url)


@pytest.mark.parametrize("callback", ["on_success", "on_failure", "on_stopped"])
def test_a_signed_trial_job_with_a_forged_callback_never_runs_it(redis_url, marker, callback):
    hook = Callback(f"{__name__}.touch_marker")
    storage, job = _signed_trial_job(redis_url, "hooked", **{callback: hook})
    with WorkerPool(redis_url, 1, secret=SECRET):
        wait_until(lambda: job.id in failed_ids(redis_url), 30, "the job with a callback to be refused")
    assert not marker.exists()
    (rec,) = storage.get_trials("hooked")
    assert rec.state == TrialState.QUEUED  # nothing of the job ran, not even the objective


def test_a_job_depending_on_another_is_refused(redis_url):
    storage, first = _signed_trial_job(redis_url, "deps")
    first.set_status("finished")
    evil = Queue("distopt", connection=storage.client, serializer=JSONSerializer).enqueue(
        JOB_FUNC, first.args[0], job_id="distopt-deps-0-1", depends_on=[])
    storage.client.hset(evil.key, mapping={"dependency_ids": '["x"]', "dependency_id": "x"})
    with WorkerPool(redis_url, 1, secret=SECRET):
        wait_until(lambda: evil.id in failed_ids(redis_url), 30, "the job with dependencies to be refused")


def test_unsigned_and_badly_signed_payloads_are_refused_and_reported(redis_url):
    storage = RedisStorage(redis_url)
    study = Study(hp.uniform("x", -1, 1), storage=storage, name="badsig")
    ref = ship_objective(square, study, storage, SECRET)
    unsigned, forged = study.ask(2)
    RQExecutor(storage, "badsig", ref).submit(study, [unsigned])  # no secret: unsigned payloads
    RQExecutor(storage, "badsig", ref, secret=b"another-secret").submit(study, [forged])
    with WorkerPool(redis_url, 1, secret=SECRET):
        wait_until(lambda: storage.client.llen(storage.keys.inbox("badsig")) >= 2, 30, "two refusals")
    msgs = {m["tid"]: m for m in storage.pop_results("badsig", limit=10)}
    assert msgs[unsigned.tid]["status"] == "fail" and "unsigned" in msgs[unsigned.tid]["error"]
    assert "does not verify" in msgs[forged.tid]["error"] and "different secret" in msgs[forged.tid]["error"]
    assert all(m["error_kind"] == "objective" and "refused the job" in m["error"] for m in msgs.values())


def test_insecure_does_not_make_a_worker_with_a_secret_accept_unsigned_objectives(redis_url, tmp_path):
    storage = RedisStorage(redis_url)
    study = Study(hp.uniform("x", -1, 1), storage=storage, name="halfopen")
    ref = ship_objective(square, study, storage, None)  # an unsigned blob...
    (trial,) = study.ask(1)
    RQExecutor(storage, "halfopen", ref, secret=SECRET).submit(study, [trial])  # ...in a signed job
    env = dict(os.environ, DISTOPT_SECRET=SECRET.decode(), PYTHONPATH=str(ROOT))
    with open(tmp_path / "stderr", "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "distopt", "worker", "--redis", redis_url, "--insecure"],
                                stderr=err, env=env, cwd=str(ROOT))
        try:
            wait_until(lambda: any(m.get("type") != "started" for m in storage.peek_results("halfopen")), 60,
                       "the worker's answer (a \"started\" may come first)")
        finally:
            proc.kill()  # how a worker stops is not what this test is about
            proc.wait(30)
    assert "insecure mode has no effect" in (tmp_path / "stderr").read_text()
    # the objective is refused, not run: the worker reports it cannot load it (the trial would run on another
    # worker, and a study no listening worker can load stops, see the fail-fast tests)
    msgs = [m for m in storage.pop_results("halfopen", limit=10) if m.get("type") != "started"]
    assert [m["type"] for m in msgs] == ["unloadable"] and "unsigned" in msgs[0]["reason"]
    assert msgs[0]["incarnation"] == study.incarnation


def test_pool_children_never_import_from_the_working_directory(redis_url, tmp_path, monkeypatch):
    marker = tmp_path / "imported.txt"
    (tmp_path / "string.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\n")
    monkeypatch.chdir(tmp_path)
    with WorkerPool(redis_url, 2, secret=SECRET) as pool:
        records = run_a_study(redis_url, "cwd")
        assert len(records) == 4 and all(r.state == TrialState.OK for r in records)
        cmdlines = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in pool.pids]
    assert not marker.exists()
    for cmdline in cmdlines:
        assert SECRET not in cmdline and b"redis://" not in cmdline


def test_the_embedded_redis_has_a_password_nobody_sees(tmp_path):
    from distopt.cli.run_study import _embedded

    with _embedded(1, "distopt") as (url, key, _ticks):
        parts = redis.connection.parse_url(url)
        assert parts.get("password")
        anonymous = redis.Redis(host=parts["host"], port=parts["port"])
        with pytest.raises(redis.exceptions.AuthenticationError):
            anonymous.set("x", "1")
        anonymous.close()
        time.sleep(0)  # the pool's child and the server run now: read what `ps` shows of them
        procs = [p for p in Path("/proc").iterdir() if p.name.isdigit()]
        shown = b"\n".join(_cmdline(p) for p in procs)
        assert parts["password"].encode() not in shown and key not in shown


def _cmdline(proc: Path) -> bytes:
    try:
        return proc.joinpath("cmdline").read_bytes()
    except OSError:
        return b""
