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
