"""Riding out a Redis restart or a network blip: retry with backoff, then give up loudly.

A coordinator and its workers outlive a Redis restart only if each call that touches
Redis waits for the server to come back instead of failing the whole study. Only
transient failures are retried (the connection dropped, a timeout, Redis still loading
its AOF); a refused password or a wrong URL fails at once, because waiting cannot fix
them. After ``window`` seconds without success ``ConnectionFailed`` is raised, naming
what was being done and for how long it was tried.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from typing import Any, Callable, TypeVar

import redis.exceptions

from ...errors import ConnectionFailed

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds a coordinator or worker keeps retrying Redis before it gives up.
RECONNECT_WINDOW = 60.0


def is_transient(exc: BaseException) -> bool:
    """True for failures that waiting may cure: a dropped connection, a timeout, a
    server still loading its data. A refused password is not one of them."""
    if isinstance(exc, ConnectionFailed):
        cause = exc.__cause__
        return cause is not None and is_transient(cause)
    if isinstance(exc, redis.exceptions.AuthenticationError):
        return False
    return isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError))


@dataclasses.dataclass(frozen=True)
class Backoff:
    """Delays of ``first * factor**n`` seconds, at most ``cap``, with some jitter, for
    ``window`` seconds in all."""

    window: float = RECONNECT_WINDOW
    first: float = 0.05
    factor: float = 2.0
    cap: float = 2.0

    def delay(self, failures: int) -> float:
        base = min(self.cap, self.first * self.factor ** max(0, failures - 1))
        return base * (0.5 + random.random() / 2)


def call_with_retry(
    fn: Callable[..., T],
    *args: Any,
    backoff: Backoff = Backoff(),
    what: str = "talking to Redis",
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    **kwargs: Any,
) -> T:
    """``fn(*args, **kwargs)``, retried on transient Redis failures for ``backoff.window``
    seconds; then ``ConnectionFailed`` (any other exception passes straight through)."""
    started = clock()
    failures = 0
    while True:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if not is_transient(exc):
                raise
            failures += 1
            elapsed = clock() - started
            if elapsed >= backoff.window:
                raise ConnectionFailed(
                    f"gave up {what} after {elapsed:.0f} s of retries ({failures} attempts): {exc}; "
                    "check that redis-server is running and reachable from this machine"
                ) from exc
            pause = min(backoff.delay(failures), max(0.0, backoff.window - elapsed))
            if failures == 1 or failures % 10 == 0:
                log.warning("Redis unavailable while %s (%s); retrying for up to %.0f s more",
                            what, exc, backoff.window - elapsed)
            sleep(pause)
