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
import math
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


def retrying(
    fn: Callable[[], T],
    backoff: Backoff,
    *,
    note: Callable[[BaseException, int, float, float], None],
    give_up: Callable[[BaseException, int, float], BaseException],
    stop: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[T | None, int]:
    """The one retry loop: ``(fn(), failures before it succeeded)``, calling ``fn`` again
    after each transient Redis failure (any other exception passes straight through)
    with ``backoff``'s delays. ``note(exc, failures, seconds left, pause)`` is called on
    the first failure and every tenth; after ``backoff.window`` seconds the exception
    ``give_up(exc, failures, elapsed)`` is raised. ``(None, failures)`` when ``stop()``
    turns true before ``fn`` succeeds."""
    started = clock()
    failures = 0
    while not stop():
        try:
            return fn(), failures
        except Exception as exc:
            if not is_transient(exc):
                raise
            failures += 1
            elapsed = clock() - started
            if elapsed >= backoff.window:
                error = give_up(exc, failures, elapsed)
                if error is exc:
                    raise
                raise error from exc
            pause = min(backoff.delay(failures), max(0.0, backoff.window - elapsed))
            if failures == 1 or failures % 10 == 0:
                note(exc, failures, backoff.window - elapsed, pause)
            sleep(pause)
    return None, failures


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
    def note(exc: BaseException, failures: int, left: float, pause: float) -> None:
        log.warning("Redis unavailable while %s (%s); retrying for up to %.0f s more", what, exc, left)

    def give_up(exc: BaseException, failures: int, elapsed: float) -> BaseException:
        return ConnectionFailed(
            f"gave up {what} after {elapsed:.0f} s of retries ({failures} attempts): {exc}; "
            "check that redis-server is running and reachable from this machine"
        )

    result, _ = retrying(lambda: fn(*args, **kwargs), backoff, note=note, give_up=give_up, sleep=sleep, clock=clock)
    return result  # type: ignore[return-value]


def wait_for_redis(
    ping: Callable[[], Any],
    seconds: float | None,
    where: str,
    *,
    role: str = "worker",
    stop: Callable[[], bool] = lambda: False,
    pace: Backoff = Backoff(first=0.5, cap=10.0),
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Return once ``ping()`` succeeds (True): at boot Redis may come up after its
    clients, and a worker waits out an outage. False when ``stop()`` turned true first.

    ``seconds=None`` waits for as long as it takes (a worker under a service manager),
    ``0`` tries once; the wait logs on the first failure and every tenth, and when Redis
    answers. Raises ``ConnectionFailed`` after ``seconds``; a refused password at once.
    ``pace`` gives the delays between tries (its window is ``seconds``)."""
    backoff = dataclasses.replace(pace, window=math.inf if seconds is None else float(seconds))

    def note(exc: BaseException, failures: int, left: float, pause: float) -> None:
        limit = "until it answers" if seconds is None else f"up to {left:.0f} s more"
        log.warning("%s: Redis at %s does not answer (%s); waiting %s, next try in %.1f s", role, where, exc, limit,
                    pause)

    def give_up(exc: BaseException, failures: int, elapsed: float) -> BaseException:
        if failures == 1:
            return exc
        return ConnectionFailed(f"Redis at {where} did not answer within --wait-for-redis {seconds:g} s "
                                f"({failures} attempts): {exc}")

    started = clock()
    answered = False

    def call() -> None:
        nonlocal answered
        ping()
        answered = True

    _, failures = retrying(call, backoff, note=note, give_up=give_up, stop=stop, sleep=sleep, clock=clock)
    if answered and failures:
        log.warning("%s: Redis at %s answers after %.1f s", role, where, clock() - started)
    return answered
