"""A worker process's own heartbeat: published on start, renewed from a thread while
the process runs anything, removed when it stops cleanly."""

from __future__ import annotations

import time

import pytest

from distopt.defaults import DEAD_AFTER_INTERVALS
from distopt.worker.presence import Presence, process_id, worker_heartbeat_interval
from distopt.storage import MemoryStorage
from tests.chaos.helpers import wait_until


def test_presence_beats_from_a_thread_and_forgets_on_stop() -> None:
    store = MemoryStorage()
    jobs = iter(["distopt-s-1-0"] * 1000)
    presence = Presence(store, ["q"], interval=0.05, extra={"version": "9.9"})
    presence.current_job = lambda: next(jobs)
    presence.start()
    try:
        first = store.worker_records()[process_id()]
        assert first["id"] == process_id() and first["queues"] == ["q"] and first["version"] == "9.9"
        assert first["interval"] == 0.05 and first["dead_after"] == pytest.approx(0.05 * DEAD_AFTER_INTERVALS)
        assert first["state"] == "busy" and first["job"] == "distopt-s-1-0"
        # the main thread is busy (a long trial); the beat goes on
        wait_until(lambda: store.worker_records()[process_id()]["beat"] > first["beat"], 10, "a second beat")
    finally:
        presence.stop()
    assert store.worker_records() == {}


def test_presence_survives_a_failing_job_probe_and_storage() -> None:
    class Broken(MemoryStorage):
        def beat_worker(self, *args, **kwargs):
            raise ConnectionError("Redis is away")

    presence = Presence(MemoryStorage(), ["q"], interval=1.0)
    presence.current_job = lambda: 1 / 0
    rec = presence.record(time.time())
    assert rec["state"] == "idle" and rec["job"] is None
    assert Presence(Broken(), ["q"], interval=1.0).beat() is False


def test_interval_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTOPT_WORKER_HEARTBEAT", "0.25")
    assert worker_heartbeat_interval() == 0.25
    assert worker_heartbeat_interval(2) == 2.0
    monkeypatch.setenv("DISTOPT_WORKER_HEARTBEAT", "soon")
    assert worker_heartbeat_interval() == 5.0
    with pytest.raises(ValueError, match="positive"):
        worker_heartbeat_interval(0)


def test_dead_worker_names_by_their_own_beat() -> None:
    from distopt.worker.presence import dead_worker_names, is_dead

    now = 1000.0
    records = {
        "h:1": {"id": "h:1", "rq": "h:1", "beat": now - 1.0, "interval": 1.0, "dead_after": 1.75},
        "h:2": {"id": "h:2", "rq": "h:2-1", "beat": now - 2.0, "interval": 1.0, "dead_after": 1.75},
        "h:3": {"id": "h:3", "beat": now - 9.0, "interval": 5.0},  # dead_after from the interval: 8.75
    }
    assert not is_dead(records["h:1"], now) and is_dead(records["h:2"], now) and is_dead(records["h:3"], now)
    assert dead_worker_names(records, now) == {"h:2", "h:2-1", "h:3"}
