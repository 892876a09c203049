"""Shared fixtures: a private real Redis for the session, fresh databases, fakeredis.

Tests never touch a Redis on the default port 6379: the session starts its own
redis-server on a free loopback port and stops it at the end.
"""

from __future__ import annotations

from typing import Iterator

import fakeredis
import pytest
import redis

from distopt.storage.redis.server import RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A private redis-server for the whole test session."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """URL of the private server with every database flushed before the test."""
    client = redis.Redis.from_url(redis_server.url)
    try:
        client.flushall()
        yield redis_server.url
    finally:
        client.close()


@pytest.fixture
def fake_redis() -> Iterator[fakeredis.FakeRedis]:
    """An in-process fakeredis client (with Lua) on a server of its own."""
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    try:
        yield client
    finally:
        client.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a test imported a distopt module from another checkout: an editable
    install resolves a module name this tree no longer has (say, after a move) elsewhere."""
    import pathlib
    import sys

    here = pathlib.Path(__file__).resolve().parents[1] / "distopt"
    foreign = sorted(name for name, mod in list(sys.modules.items())
                     if (name == "distopt" or name.startswith("distopt.")) and getattr(mod, "__file__", None)
                     and not pathlib.Path(mod.__file__).resolve().is_relative_to(here))
    if foreign:
        print(f"\ndistopt modules imported from outside {here}: {', '.join(foreign)}", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
