"""Taking a study over from another coordinator: at once when it died on this host,
after its lease lapses (with a countdown) otherwise, never from a live one."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys

import pytest

from distopt import hp
from distopt.errors import LeaseError
from distopt.coordinator.lease import Lease, holder_is_dead
from distopt.storage import MemoryStorage
from distopt.study.study import Study

HOST = socket.gethostname()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def storage_with(holder: str, ttl: float, clock: Clock) -> MemoryStorage:
    storage = MemoryStorage(clock=clock)
    Study(hp.uniform("x", 0, 1), storage=storage, name="s")
    assert storage.acquire_lease("s", holder, ttl)
    return storage


def test_a_holder_on_this_host_whose_process_is_gone_is_dead():
    assert holder_is_dead(f"{HOST}:{dead_pid()}:abcd1234")
    assert not holder_is_dead(f"{HOST}:{os.getppid()}:abcd1234")  # alive
    assert not holder_is_dead(f"{HOST}:{os.getpid()}:abcd1234")  # this process
    assert not holder_is_dead(f"other-host-{HOST}:{dead_pid()}:abcd1234")  # cannot tell: not here


def test_a_dead_holder_on_this_host_is_taken_over_at_once(caplog):
    clock = Clock()
    storage = storage_with(f"{HOST}:{dead_pid()}:abcd1234", 30.0, clock)
    lease = Lease(storage, "s", 30.0)
    with caplog.at_level(logging.WARNING):
        lease.acquire(clock=clock, sleep=clock.sleep)
    assert storage.lease_owner("s") == lease.owner and clock.now == 1000.0  # no waiting at all
    assert "took over from coordinator" in caplog.text


def test_a_holder_elsewhere_is_waited_for_with_a_countdown(caplog):
    clock = Clock()
    storage = storage_with("far-away:1234:abcd1234", 12.0, clock)
    lease = Lease(storage, "s", 30.0)
    with caplog.at_level(logging.WARNING):
        lease.acquire(clock=clock, sleep=clock.sleep)
    assert storage.lease_owner("s") == lease.owner and 12.0 <= clock.now - 1000.0 <= 13.0
    said = [r.getMessage() for r in caplog.records if "lapses in" in r.getMessage()]
    assert said[0].startswith("study 's' is held by coordinator far-away:1234:abcd1234") and "12 s" in said[0]
    assert len(said) >= 3 and "--no-wait" in said[0]  # a countdown, not one line per poll
    assert len(said) < 12


def test_a_live_holder_on_this_host_is_refused_at_once():
    clock = Clock()
    storage = storage_with(f"{HOST}:{os.getppid()}:abcd1234", 30.0, clock)
    with pytest.raises(LeaseError, match="its process runs on this host"):
        Lease(storage, "s", 30.0).acquire(clock=clock, sleep=clock.sleep)
    assert clock.now == 1000.0


def test_no_wait_and_a_live_holder_are_refused():
    clock = Clock()
    storage = storage_with("far-away:1234:abcd1234", 12.0, clock)
    with pytest.raises(LeaseError, match="already being run by coordinator far-away:1234"):
        Lease(storage, "s", 30.0).acquire(wait=False, clock=clock, sleep=clock.sleep)

    def renewing_sleep(seconds: float) -> None:  # the holder is alive: it renews every ttl/3
        clock.sleep(seconds)
        if storage.lease_left("s") < 8.0:
            storage.acquire_lease("s", "far-away:1234:abcd1234", 12.0)

    with pytest.raises(LeaseError, match="renewed its lease while this run waited, so it is alive"):
        Lease(storage, "s", 30.0).acquire(clock=clock, sleep=renewing_sleep)
    assert storage.lease_owner("s") == "far-away:1234:abcd1234"
