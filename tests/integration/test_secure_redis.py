"""Guarded Redis servers end to end: a password, an ACL user, TLS (``rediss://``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import redis

from distopt import fmin, hp, rand
from distopt.errors import ConnectionFailed, DistoptError
from distopt.trial.record import TrialState
from distopt.storage.redis.server import RedisServer, TLSFiles, find_redis_server
from distopt.redis_trials import RedisTrials
from distopt.storage import RedisStorage
from distopt.worker.pool import WorkerPool

SECRET = "secure-redis-secret"


def objective(x):
    return (x - 0.5) ** 2


def run_study(url: str, name: str) -> list:
    with WorkerPool(url, 2, secret=SECRET.encode()):
        trials = RedisTrials(url, exp_key=name, secret=SECRET)
        fmin(objective, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=10, trials=trials, parallelism=2,
             timeout=60, show_progressbar=False)
    storage = RedisStorage(url)
    try:
        return storage.get_trials(name)
    finally:
        storage.close()


def test_a_password_protected_redis(tmp_path):
    with RedisServer(password="s3cret/with:odd@chars", dir=tmp_path) as server:
        done = run_study(server.url, "guarded")
        assert len(done) == 10 and all(r.state == TrialState.OK for r in done)
        wrong = server.url.replace("s3cret", "wrong")
        with pytest.raises(ConnectionFailed, match=r"refused the credentials.*redis://user:password@host"):
            RedisStorage(wrong).ping()
        assert "s3cret" not in repr(RedisStorage(server.url))


def test_an_acl_user(tmp_path):
    with RedisServer(password="admin-pw", dir=tmp_path) as server:
        admin = server.client()
        admin.acl_setuser("alice", enabled=True, passwords=["+alice-pw"], keys=["*"], channels=["*"],
                          commands=["+@all"])
        admin.close()
        url = f"redis://alice:alice-pw@{server.host}:{server.port}/0"
        done = run_study(url, "acl")
        assert len(done) == 10 and all(r.state == TrialState.OK for r in done)


def test_a_rediss_url_reaches_redis_py_with_tls():
    storage = RedisStorage("rediss://bob:pw@db.example:6380/2?ssl_ca_certs=/etc/ca.pem&ssl_cert_reqs=required")
    pool = storage.client.connection_pool
    assert issubclass(pool.connection_class, redis.SSLConnection)
    kw = pool.connection_kwargs
    assert (kw["host"], kw["port"], kw["db"], kw["username"]) == ("db.example", 6380, 2, "bob")
    assert kw["ssl_ca_certs"] == "/etc/ca.pem" and kw["ssl_cert_reqs"] == "required"
    assert storage.where == "db.example:6380" and "pw" not in repr(storage)


def _make_certs(folder: Path) -> TLSFiles:
    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "1",
        "-subj", "/CN=distopt test CA")
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    (folder / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "1", "-extfile", "san.cnf")
    return TLSFiles(cert=str(folder / "server.crt"), key=str(folder / "server.key"), ca=str(folder / "ca.crt"))


def _tls_server(tmp_path: Path) -> RedisServer:
    """A TLS server from the first redis-server binary built with TLS, else skip."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl to make certificates")
    tls = _make_certs(tmp_path)
    candidates = dict.fromkeys(p for p in (find_redis_server(), shutil.which("redis-server"), "/usr/bin/redis-server")
                               if p and os.access(p, os.X_OK))
    for i, binary in enumerate(candidates):
        (tmp_path / f"server{i}").mkdir()
        server = RedisServer(tls=tls, password="tls-pw", executable=binary, dir=tmp_path / f"server{i}")
        try:
            return server.start()
        except DistoptError as exc:
            if "tls" not in str(exc).lower():
                raise
    pytest.skip(f"no redis-server built with TLS among {list(candidates)}")


def test_a_tls_redis_end_to_end(tmp_path):
    server = _tls_server(tmp_path)
    try:
        assert server.url.startswith("rediss://:tls-pw@127.0.0.1:")
        done = run_study(server.url, "tls")
        assert len(done) == 10 and all(r.state == TrialState.OK for r in done)
        plain = f"redis://:tls-pw@127.0.0.1:{server.port}/0"  # the same port without TLS fails, naming it
        started = time.monotonic()
        with pytest.raises(ConnectionFailed, match=f"127.0.0.1:{server.port}"):
            RedisStorage(plain, socket_connect_timeout=1.0).ping()
        assert time.monotonic() - started < 15
    finally:
        server.stop()
