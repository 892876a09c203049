"""Where studies live: ``open_storage`` turns what a user typed into a ``Storage``."""

from __future__ import annotations

from typing import Any

from ..errors import DistoptError
from .base import Storage
from .redis.keys import DEFAULT_PREFIX, Keys
from .memory import MemoryStorage
from .redis.store import URL_SCHEMES, RedisStorage

__all__ = ["Storage", "MemoryStorage", "RedisStorage", "Keys", "DEFAULT_PREFIX", "open_storage"]


def open_storage(target: Any = None, *, prefix: str = DEFAULT_PREFIX) -> Storage:
    """None -> a new MemoryStorage; a Storage -> itself; a redis://, rediss:// or unix://
    URL -> a RedisStorage that has answered PING (so a wrong URL fails here, naming
    host:port); a redis client object -> a RedisStorage on it."""
    if target is None:
        return MemoryStorage()
    if isinstance(target, Storage):
        return target
    if isinstance(target, str) and target.startswith(URL_SCHEMES):
        storage = RedisStorage(target, prefix=prefix)
        storage.ping()
        return storage
    if not isinstance(target, str) and hasattr(target, "register_script") and hasattr(target, "blpop"):
        return RedisStorage(target, prefix=prefix)
    raise DistoptError(
        f"cannot open storage {target!r}: pass None (in-memory), a Storage, or a Redis URL "
        "such as redis://localhost:6379/0, rediss://user:password@host:6380/0 or unix:///path/redis.sock"
    )
