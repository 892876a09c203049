"""Retrying Redis calls through a restart: what is retried, for how long, and what is not."""

from __future__ import annotations

import time

import pytest
import redis

from distopt.errors import ConnectionFailed, StorageError
from distopt.storage.redis.server import RedisServer, free_port
from distopt.storage.redis.retry import Backoff, call_with_retry, is_transient
from distopt.storage import RedisStorage


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def flaky(failures: int, exc: Exception):
    calls = []

    def call() -> str:
        calls.append(1)
        if len(calls) <= failures:
            raise exc
        return "ok"

    return call, calls


def test_transient_failures_are_retried_with_growing_delays():
    clock = Clock()
    call, calls = flaky(4, redis.exceptions.ConnectionError("gone"))
    assert call_with_retry(call, backoff=Backoff(window=60), sleep=clock.sleep, clock=clock) == "ok"
    assert len(calls) == 5 and len(clock.slept) == 4
    assert clock.slept[-1] > clock.slept[0]


def test_after_the_window_it_gives_up_naming_what_it_was_doing():
    clock = Clock()
    call, calls = flaky(10**6, redis.exceptions.TimeoutError("slow"))
    with pytest.raises(ConnectionFailed, match=r"gave up pushing a result after 5 s of retries"):
        call_with_retry(call, backoff=Backoff(window=5), what="pushing a result", sleep=clock.sleep, clock=clock)
    assert 5 <= clock.now <= 5.01


@pytest.mark.parametrize("exc", [redis.exceptions.AuthenticationError("WRONGPASS"), ValueError("bug"),
                                 redis.exceptions.ResponseError("ERR")])
def test_other_failures_pass_straight_through(exc):
    clock = Clock()
    call, calls = flaky(1, exc)
    with pytest.raises(type(exc)):
        call_with_retry(call, sleep=clock.sleep, clock=clock)
    assert len(calls) == 1 and clock.slept == []


def test_what_counts_as_transient():
    assert is_transient(redis.exceptions.BusyLoadingError("LOADING"))  # Redis still reading its AOF
    wrapped = ConnectionFailed("x")
    wrapped.__cause__ = redis.exceptions.ConnectionError("y")
    assert is_transient(wrapped)
    refused = ConnectionFailed("x")
    refused.__cause__ = redis.exceptions.AuthenticationError("y")
    assert not is_transient(refused) and not is_transient(ConnectionFailed("no cause"))
    assert not is_transient(StorageError("x"))


def test_a_storage_with_a_retry_window_rides_out_a_redis_restart(tmp_path):
    with RedisServer(appendonly=True, appendfsync="always", dir=tmp_path) as server:
        storage = RedisStorage(server.url, retry_window=20.0)
        storage.create_study("s", {"status": "running"})
        server.restart(hard=True)
        assert storage.get_study("s")["status"] == "running"
        storage.close()


def test_a_storage_without_a_window_fails_at_once():
    storage = RedisStorage(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(ConnectionFailed, match="cannot reach Redis"):
        storage.list_studies()
    assert time.monotonic() - started < 5


def test_a_storage_with_a_window_gives_up_after_it():
    storage = RedisStorage(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2, retry_window=1.0)
    started = time.monotonic()
    with pytest.raises(ConnectionFailed, match="gave up list_studies on Redis at 127.0.0.1"):
        storage.list_studies()
    assert 1.0 <= time.monotonic() - started < 8


# -- waiting for Redis at start ----------------------------------------------------------------
def refused():
    import redis.exceptions

    return redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6399. Connection refused.")


def test_wait_for_redis_waits_with_backoff_and_says_so(caplog):
    from distopt.storage.redis.retry import wait_for_redis

    clock = Clock()
    answers = [refused()] * 12 + [True]

    def ping():
        result = answers.pop(0)
        if isinstance(result, Exception):
            raise result
        return result

    with caplog.at_level("WARNING"):
        wait_for_redis(ping, None, "127.0.0.1:6399", sleep=clock.sleep, clock=clock)
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 3  # the first failure, the tenth, and the answer
    assert "does not answer" in said[0] and "until it answers" in said[0] and "answers after" in said[-1]
    assert max(clock.slept) <= 10.0 and len(clock.slept) == 12  # backoff, capped


def test_wait_for_redis_gives_up_after_its_seconds_and_zero_fails_at_once():
    from distopt.storage.redis.retry import wait_for_redis

    def ping():
        raise refused()

    clock = Clock()
    with pytest.raises(ConnectionFailed, match=r"did not answer within --wait-for-redis 5 s"):
        wait_for_redis(ping, 5.0, "127.0.0.1:6399", sleep=clock.sleep, clock=clock)
    assert 4.0 <= clock.now <= 5.5
    import redis.exceptions

    with pytest.raises(redis.exceptions.ConnectionError):
        wait_for_redis(ping, 0, "127.0.0.1:6399", sleep=clock.sleep, clock=clock)


def test_wait_for_redis_ends_without_an_answer_when_told_to_stop():
    from distopt.storage.redis.retry import wait_for_redis

    clock = Clock()

    def ping():
        raise refused()

    assert wait_for_redis(ping, None, "127.0.0.1:6399", stop=lambda: len(clock.slept) >= 3, sleep=clock.sleep,
                          clock=clock) is False
    assert len(clock.slept) == 3
    assert wait_for_redis(lambda: True, None, "127.0.0.1:6399", sleep=clock.sleep, clock=clock) is True
