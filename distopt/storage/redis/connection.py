"""Reaching a Redis server: URLs (checked, redacted, rebuilt from a client) and the
client itself. A password never appears in a message: ``redact_url`` hides it."""

from __future__ import annotations

import urllib.parse
from typing import Any

import redis

from ...errors import ConnectionFailed
from ...trial.names import refuse_placeholder

URL_SCHEMES = ("redis://", "rediss://", "unix://")


def redact_url(url: str) -> str:
    """The URL with any password replaced by '***', for messages and reprs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def url_from_client(client: Any) -> str | None:
    """Rebuild a URL from a real redis-py client's connection settings (None if impossible)."""
    pool = getattr(client, "connection_pool", None)
    if pool is None or type(client).__module__.startswith("fakeredis"):
        return None
    kw = pool.connection_kwargs
    cls = getattr(pool, "connection_class", None)
    db = kw.get("db", 0)
    auth = ""
    if kw.get("password") is not None:
        user = urllib.parse.quote(kw.get("username") or "", safe="")
        auth = f"{user}:{urllib.parse.quote(kw['password'], safe='')}@"
    elif kw.get("username"):
        auth = f"{urllib.parse.quote(kw['username'], safe='')}@"
    if cls is not None and issubclass(cls, redis.UnixDomainSocketConnection):
        return f"unix://{auth}{kw['path']}?db={db}"
    scheme = "rediss" if cls is not None and issubclass(cls, redis.SSLConnection) else "redis"
    return f"{scheme}://{auth}{kw.get('host', 'localhost')}:{kw.get('port', 6379)}/{db}"


def connect(url: str, socket_connect_timeout: float) -> redis.Redis:
    """A client for ``url`` (no round trip yet); a URL that is not one, or that carries a
    placeholder password, is refused here, naming the fix."""
    if not url.startswith(URL_SCHEMES):
        raise ConnectionFailed(
            f"invalid Redis URL {redact_url(url)!r}: it must start with one of "
            f"{', '.join(URL_SCHEMES)}, e.g. redis://localhost:6379/0"
        )
    password = urllib.parse.unquote(urllib.parse.urlsplit(url).password or "")
    refuse_placeholder(password or None, f"the password in Redis URL {redact_url(url)!r}",
                       "set REDIS_PASSWORD (and the URL) to a random string, e.g. "
                       "python -c 'import secrets; print(secrets.token_hex(32))'")
    try:
        return redis.Redis.from_url(url, socket_connect_timeout=socket_connect_timeout)
    except ValueError as exc:
        raise ConnectionFailed(
            f"invalid Redis URL {redact_url(url)!r} ({exc}); "
            "expected redis://[user:password@]host:port/db, rediss://... or unix:///path/to/socket"
        ) from exc


def where_of(client: Any) -> str:
    """host:port (or socket path) of the server a client talks to, for error messages."""
    kw = getattr(getattr(client, "connection_pool", None), "connection_kwargs", {})
    if type(client).__module__.startswith("fakeredis"):
        return "fakeredis (in-process)"
    if "path" in kw:
        return f"unix socket {kw['path']}"
    return f"{kw.get('host', 'localhost')}:{kw.get('port', 6379)}"


def text(value: bytes | str) -> str:
    """A Redis reply as text (replies are bytes: the client does not decode them)."""
    return value.decode() if isinstance(value, bytes) else value
