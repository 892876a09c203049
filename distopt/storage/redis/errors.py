"""Redis's exceptions as distopt's, by one rule for the store and for everything else
that reads Redis (rq's queues in ``distopt status``): the message names where Redis was
expected, what was being done, and what to fix. ``translating`` applies it to every
method of the store, after riding out transient failures."""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable, Iterator, TypeVar

import redis.exceptions

from ...errors import ConnectionFailed, DistoptError, StorageError
from .retry import Backoff, call_with_retry


def translate_redis_error(exc: redis.exceptions.RedisError, where: str, doing: str,
                          url: str | None = None) -> DistoptError:
    """The distopt error for ``exc``, raised by Redis at ``where`` while ``doing``
    (e.g. "reading rq's queues"); ``url`` (redacted) is named as a thing to fix when
    the server cannot be reached. A refused password and an unreachable server are
    ``ConnectionFailed``, anything else ``StorageError``."""
    if isinstance(exc, redis.exceptions.AuthenticationError):
        return ConnectionFailed(
            f"Redis at {where} refused the credentials ({exc}) while {doing}; "
            "put the right user and password in the URL: redis://user:password@host:port/0"
        )
    if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
        fix = f", or fix the URL {url}" if url else ""
        return ConnectionFailed(
            f"cannot reach Redis at {where} ({exc}) while {doing}; check that redis-server is running "
            f"there and reachable from this machine{fix}"
        )
    return StorageError(f"Redis at {where} failed while {doing}: {exc}")


@contextlib.contextmanager
def redis_errors(where: str, doing: str, url: str | None = None) -> Iterator[None]:
    """Run the block with Redis's exceptions translated by ``translate_redis_error``."""
    try:
        yield
    except redis.exceptions.RedisError as exc:
        raise translate_redis_error(exc, where, doing, url) from exc


F = TypeVar("F", bound=Callable[..., Any])


def translating(method: F) -> F:
    """Decorate a store method: transient failures are retried for the store's
    ``retry_window`` seconds (none when 0), then Redis's exceptions are translated by
    ``translate_redis_error``, naming the store's server, the method and its URL."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            if self.retry_window > 0:
                return call_with_retry(method, self, *args, backoff=Backoff(self.retry_window),
                                       what=f"{method.__name__} on Redis at {self.where}", **kwargs)
            return method(self, *args, **kwargs)
        except redis.exceptions.RedisError as exc:
            raise translate_redis_error(exc, self.where, f"running {method.__name__}", self.display_url) from exc

    return wrapper  # type: ignore[return-value]
