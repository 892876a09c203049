"""distopt.status: schema, counts, rate, ETA and stale trials, with an injected clock."""

from __future__ import annotations

import json
import sys
import time

import pytest
from rq import get_current_job

from distopt import hp, status
from distopt.dispatch.rq_executor import rq_queue
from distopt.dispatch.inspect import parse_job_id
from distopt.dispatch.jobs import job_id
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from distopt.errors import StudyNotFound
from distopt.monitor.activity import stale_trials
from distopt.monitor.document import SCHEMA_VERSION
from distopt.monitor.rates import eta_seconds, rate_per_minute
from distopt.trial.record import TrialRecord, TrialState
from distopt.space import compile_space
from distopt.space.serialize import space_to_json
from distopt.storage import MemoryStorage, RedisStorage

NOW = 1_700_000_000.0
SPACE = {"lr": hp.loguniform("lr", -7, 0), "opt": hp.choice("opt", ["adam", "sgd"])}

S = TrialState


def rec(tid, state=S.OK, loss=None, end=None, start=None, book=NOW - 600, attempt=0, worker="h:1", opt=0):
    if state == S.OK and loss is None:
        loss = float(tid)
    return TrialRecord(tid=tid, vals={"lr": 0.01 * (tid + 1), "opt": opt}, state=state, attempt=attempt,
                       loss=loss if state == S.OK else None, worker=worker, book_time=book,
                       start_time=start, end_time=end)


def make_study(storage, name, records, space=SPACE, **meta):
    storage.create_study(name, {"space": space_to_json(space), "labels": compile_space(space).labels,
                                "status": "running", "created": NOW - 700, **meta})
    for r in records:
        storage.put_trial(name, r)
    if meta.get("status", "running") == "running":  # a live coordinator holds it
        storage.acquire_lease(name, "host:1:coord", 3600)


@pytest.fixture
def storage(fake_redis):
    return RedisStorage(fake_redis)


def mixed_records():
    return [
        rec(0, S.OK, 0.5, end=NOW - 400),
        rec(1, S.OK, 0.2, end=NOW - 100, opt=1),
        rec(2, S.FAIL, end=NOW - 50),
        rec(3, S.RUNNING, start=NOW - 5),
        rec(4, S.QUEUED),
        rec(5, S.CANCELLED),
        rec(6, S.LOST, start=NOW - 900),
    ]


def test_schema_is_json_and_counts_add_up(storage, fake_redis):
    make_study(storage, "s1", mixed_records(), max_evals=10)
    doc = status(fake_redis, now=NOW)
    assert json.loads(json.dumps(doc, allow_nan=False)) == doc
    assert set(doc) == {"version", "time", "redis", "queues", "workers", "studies"}
    assert doc["version"] == SCHEMA_VERSION and doc["time"] == NOW
    st = doc["studies"]["s1"]
    assert set(st) >= {"status", "coordinator", "queue", "created", "counts", "total", "finished", "max_evals",
                       "best", "rate_per_minute", "rate_window", "eta_seconds", "stale"}  # version 1's fields
    assert set(st) - {"status", "coordinator", "queue", "created", "counts", "total", "finished", "max_evals",
                      "best", "rate_per_minute", "rate_window", "eta_seconds", "stale"} == {
        "stored_status", "coordinator_alive", "resume", "states", "last_activity", "rate_frozen"}
    assert st["counts"] == {"queued": 1, "taken": 0, "running": 1, "waiting": 0, "ok": 2, "fail": 1, "pruned": 0,
                            "lost": 1, "cancelled": 1}
    assert st["states"] == {"queued": 1, "running": 1, "ok": 2, "fail": 1, "pruned": 0, "lost": 1, "cancelled": 1}
    assert sum(st["counts"].values()) == sum(st["states"].values()) == st["total"] == 7
    assert st["coordinator"] == "host:1:coord" and st["coordinator_alive"] and st["resume"] is None
    assert st["finished"] == 3 and st["max_evals"] == 10 and st["status"] == "running"


def test_best_params_come_from_the_stored_space(storage, fake_redis):
    make_study(storage, "s1", mixed_records())
    best = status(fake_redis, "s1", now=NOW)["studies"]["s1"]["best"]
    assert best["tid"] == 1 and best["loss"] == 0.2
    assert best["vals"] == {"lr": 0.02, "opt": 1}
    assert best["params"] == {"lr": 0.02, "opt": "sgd"}


def test_best_params_fall_back_to_vals_without_a_json_space(storage, fake_redis):
    odd_space = {"opt": hp.choice("opt", [object, int]), "lr": hp.uniform("lr", 0, 1)}
    make_study(storage, "s1", [rec(0, S.OK, 1.0, end=NOW - 1)], space=odd_space)
    assert storage.get_study("s1")["space"] is None
    best = status(fake_redis, "s1", now=NOW)["studies"]["s1"]["best"]
    assert best["params"] == best["vals"] == {"lr": 0.01, "opt": 0}


def test_no_best_before_a_trial_is_ok(storage, fake_redis):
    make_study(storage, "s1", [rec(0, S.FAIL, end=NOW - 1), rec(1, S.QUEUED)])
    assert status(fake_redis, "s1", now=NOW)["studies"]["s1"]["best"] is None


def test_rate_counts_finishes_in_the_window():
    records = [rec(i, S.OK, end=NOW - 10 * (i + 1)) for i in range(6)] + [rec(9, S.OK, end=NOW - 1000)]
    assert rate_per_minute(records, NOW, window=300) == pytest.approx(6 / 300 * 60)
    assert rate_per_minute(records, NOW, window=30) == pytest.approx(2 / 30 * 60)  # (NOW - 30, NOW]


def test_rate_of_a_young_study_uses_its_age():
    records = [rec(i, S.OK, end=NOW - i, book=NOW - 60) for i in range(6)]
    assert rate_per_minute(records, NOW, window=300) == pytest.approx(6.0)
    assert rate_per_minute([], NOW) == 0.0


def test_eta():
    assert eta_seconds(None, 5, 10.0) is None
    assert eta_seconds(20, 5, 0.0) is None
    assert eta_seconds(20, 20, 0.0) == 0.0
    assert eta_seconds(20, 5, 3.0) == pytest.approx(15 / 3 * 60)


def test_rate_and_eta_in_the_document(storage, fake_redis):
    records = [rec(i, S.OK, end=NOW - 10 * (i + 1)) for i in range(6)]
    make_study(storage, "s1", records, max_evals=20)
    st = status(fake_redis, "s1", now=NOW, window=300)["studies"]["s1"]
    assert st["rate_per_minute"] == pytest.approx(1.2)
    assert st["rate_window"] == 300
    assert st["eta_seconds"] == pytest.approx(14 / 1.2 * 60)


@pytest.mark.parametrize("ended, eta", [("done", 0.0), ("cancelled", None), ("failed", None), ("interrupted", None)])
def test_an_ended_study_has_no_eta_left(storage, fake_redis, ended, eta):
    records = [rec(i, S.OK, end=NOW - 10 * (i + 1)) for i in range(6)]
    make_study(storage, "s1", records, max_evals=20, status=ended)
    st = status(fake_redis, "s1", now=NOW, window=300)["studies"]["s1"]
    assert st["status"] == ended and st["rate_per_minute"] > 0 and st["eta_seconds"] == eta


@pytest.mark.parametrize("max_evals", [None, sys.maxsize, "many"])
def test_eta_is_null_without_a_usable_max_evals(storage, fake_redis, max_evals):
    make_study(storage, "s1", [rec(0, S.OK, end=NOW - 1)], **({} if max_evals is None else {"max_evals": max_evals}))
    st = status(fake_redis, "s1", now=NOW)["studies"]["s1"]
    assert st["max_evals"] is None and st["eta_seconds"] is None


def test_stale_heartbeat_is_reported_with_an_injected_clock(storage, fake_redis):
    make_study(storage, "s1", [rec(0, S.RUNNING, start=NOW - 100, worker="gpu:7"), rec(1, S.RUNNING, start=NOW - 100)])
    storage.heartbeat("s1", 0, 0, deadline=NOW - 40, worker="gpu:7")
    storage.heartbeat("s1", 1, 0, deadline=NOW + 20, worker="gpu:8")
    assert status(fake_redis, "s1", now=NOW - 50)["studies"]["s1"]["stale"] == []
    stale = status(fake_redis, "s1", now=NOW)["studies"]["s1"]["stale"]
    assert stale == [{"tid": 0, "attempt": 0, "state": "running", "worker": "gpu:7", "deadline": NOW - 40,
                      "overdue": 40.0, "source": "heartbeat"}]


def test_running_trial_without_a_beat_is_stale_after_start_plus_ttl():
    records = [rec(0, S.RUNNING, start=NOW - 31), rec(1, S.RUNNING, start=NOW - 29), rec(2, S.QUEUED)]
    stale = stale_trials(records, {}, NOW, ttl=30)
    assert [(s["tid"], s["source"]) for s in stale] == [(0, "start")]
    assert stale[0]["overdue"] == pytest.approx(1.0)


def test_beats_of_older_attempts_and_ended_trials_are_not_stale():
    records = [rec(0, S.RUNNING, start=NOW - 5, attempt=1), rec(1, S.OK, end=NOW - 5), rec(2, S.QUEUED)]
    beats = {0: {"attempt": 0, "deadline": NOW - 60, "worker": "a"}, 1: {"attempt": 0, "deadline": NOW - 60}}
    assert stale_trials(records, beats, NOW) == []


def test_queued_trial_with_an_expired_beat_is_stale():
    """The worker started it but no coordinator marked it running (the coordinator is gone)."""
    beats = {2: {"attempt": 0, "deadline": NOW - 1, "worker": "a"}}
    assert [s["tid"] for s in stale_trials([rec(2, S.QUEUED)], beats, NOW)] == [2]


def test_the_study_meta_sets_the_ttl(storage, fake_redis):
    make_study(storage, "s1", [rec(0, S.RUNNING, start=NOW - 50)], heartbeat_ttl=100)
    assert status(fake_redis, "s1", now=NOW)["studies"]["s1"]["stale"] == []


def test_all_studies_without_a_name_and_unknown_study(storage, fake_redis):
    make_study(storage, "a", [])
    make_study(storage, "b", [rec(0, S.QUEUED)])
    assert list(status(fake_redis, now=NOW)["studies"]) == ["a", "b"]
    with pytest.raises(StudyNotFound, match="known studies: a, b"):
        status(fake_redis, "zzz")


def test_memory_storage_has_no_queues_or_workers():
    mem = MemoryStorage()
    make_study(mem, "m", [rec(0, S.OK, end=NOW - 1)])
    doc = status(mem, now=NOW)
    assert doc["queues"] == {} and doc["workers"] == {} and doc["studies"]["m"]["counts"]["ok"] == 1


def test_coordinator_lease_is_reported(storage, fake_redis):
    make_study(storage, "s1", [], status="created")
    storage.acquire_lease("s1", "host:1:abc", ttl=30)
    assert status(fake_redis, "s1")["studies"]["s1"]["coordinator"] == "host:1:abc"


# -- rq queues and workers -----------------------------------------------------------------
SEEN: list[dict] = []


def probe(_: str) -> None:
    """A job that takes a status from inside a busy worker."""
    SEEN.append(status(get_current_job().connection))


def test_queues_and_a_busy_worker(fake_redis, storage):
    make_study(storage, "my-st-1", [])
    queue = rq_queue(fake_redis)
    queue.enqueue(f"{__name__}.probe", "x", job_id=job_id("my-st-1", 7, 2))
    queue.enqueue(f"{__name__}.probe", "y", job_id="someone-elses-job")
    SEEN.clear()
    # rq's own SimpleWorker: distopt's worker class would refuse these foreign jobs
    SimpleWorker([queue], connection=fake_redis, serializer=JSONSerializer, name="w1").work(
        burst=True, logging_level="ERROR")
    first, second = SEEN
    assert first["queues"]["distopt"] == {"depth": 1, "started": 1, "rq_started": 1, "failed": 0, "workers": ["w1"],
                                          "workers_dead": 0}
    worker = first["workers"]["w1"]
    assert worker["state"] == "busy" and worker["queues"] == ["distopt"]
    assert worker["liveness"] == "unknown" and worker["alive"] is None  # no heartbeat of its own
    assert worker["trial"] == {"study": "my-st-1", "tid": 7, "attempt": 2}
    assert worker["id"] == f"{worker['hostname']}:{worker['pid']}"
    assert 0 <= worker["heartbeat_age"] < 60 and worker["last_heartbeat"] <= time.time()
    assert second["workers"]["w1"]["trial"] is None and second["workers"]["w1"]["job"] == "someone-elses-job"
    json.dumps(first, allow_nan=False)


@pytest.mark.parametrize("study", ["s", "a-1-2", "x_9-0"])
def test_job_ids_parse_back(study):
    assert parse_job_id(job_id(study, 31, 4)) == {"study": study, "tid": 31, "attempt": 4}


@pytest.mark.parametrize("jid", [None, "", "abc", "distopt-s-1", "distopt--1-2", "rq-s-1-2"])
def test_other_job_ids_are_not_trials(jid):
    assert parse_job_id(jid) is None


def test_redis_failure_while_reading_rq_is_named(storage, fake_redis, monkeypatch):
    import redis

    from distopt.errors import ConnectionFailed

    def down(*args, **kwargs):
        raise redis.exceptions.ConnectionError("Connection refused")

    monkeypatch.setattr("distopt.dispatch.inspect.rq_overview", down)
    with pytest.raises(ConnectionFailed, match="cannot reach Redis at fakeredis .* rq's queues"):
        status(fake_redis)


def test_an_orphaned_study_is_interrupted_with_a_resume_command_without_password(fake_redis):
    from distopt.monitor.document import resume_command

    storage = RedisStorage(fake_redis)
    make_study(storage, "orphan", [rec(0, S.OK, end=NOW - 5), rec(1, S.RUNNING, start=NOW - 2)], status="running",
               max_evals=10)
    storage.release_lease("orphan", "host:1:coord")  # hold none: as after the lease lapsed
    storage.client.delete(storage.keys.lease("orphan"))
    st = status(fake_redis, "orphan", now=NOW)["studies"]["orphan"]
    assert st["status"] == "interrupted" and st["stored_status"] == "running" and st["eta_seconds"] is None
    assert st["coordinator"] is None and st["coordinator_alive"] is False
    assert st["resume"] == 'distopt run STUDY_FILE --redis "$DISTOPT_REDIS_URL" --study orphan'  # no URL known

    class Secret(RedisStorage):
        url = "redis://:hunter2@db:6379/0"

    assert "hunter2" not in resume_command("x", Secret(fake_redis))
    assert '"$DISTOPT_REDIS_URL"' in resume_command("x", Secret(fake_redis))


def test_a_done_study_keeps_the_rate_it_ended_with(storage, fake_redis):
    records = [rec(i, S.OK, end=NOW - 100 - 10 * i) for i in range(6)]
    make_study(storage, "s1", records, max_evals=6, status="done")
    first = status(fake_redis, "s1", now=NOW)["studies"]["s1"]
    later = status(fake_redis, "s1", now=NOW + 86400)["studies"]["s1"]
    assert first["rate_per_minute"] == later["rate_per_minute"] > 0 and later["rate_frozen"]
    assert later["eta_seconds"] == 0.0


def test_results_in_the_inbox_are_waiting_not_running_or_stale(storage, fake_redis):
    make_study(storage, "s1", [rec(0, S.RUNNING, start=NOW - 600), rec(1, S.QUEUED), rec(2, S.QUEUED)],
               status="interrupted")
    storage.push_result("s1", {"tid": 0, "attempt": 0, "status": "ok", "loss": 1.0})
    storage.push_result("s1", {"type": "started", "tid": 1, "attempt": 0})
    st = status(fake_redis, "s1", now=NOW)["studies"]["s1"]
    assert st["counts"]["waiting"] == 1 and st["counts"]["running"] == 1 and st["counts"]["queued"] == 1
    assert st["stale"] == []  # trial 0 started 10 min ago without a beat, but its result is here
