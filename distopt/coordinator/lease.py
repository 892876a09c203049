"""The coordinator's lease on a study: one coordinator at a time, and a dead one's
lease runs out by itself.

Taken once at the start, renewed from a coordinator tick every third of its ttl,
released at the end. A second coordinator takes a study over at once when the holder
ran on the same host and its process is gone (kill -9, a crash); otherwise it waits for
the holder's lease to lapse (at most ``ttl`` seconds), saying how long, and is refused
when the holder renews it meanwhile (it is alive), or at once with ``wait=False``.

The lease carries a generation, raised each time a new coordinator takes it (a takeover
of a dead holder included). Holding the lease sets the storage's ``fence`` to this
coordinator's token, and every write the coordinator makes (recording a result, popping
the inbox, creating, requeueing or cancelling trials, changing the study's status) checks
it in the same atomic step: a coordinator frozen past its ttl (SIGSTOP, a swapped-out VM,
a network cut) that wakes up after another took over writes nothing at all, and stops
with ``LeaseLost``.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from typing import Callable

from ..errors import DistoptError, LeaseError, LeaseLost
from ..storage import RedisStorage
from .loop import Interval
from ..study.study import Study

log = logging.getLogger(__name__)

from ..defaults import LEASE_TTL  # noqa: E402


def holder_alive(holder: str) -> bool | None:
    """Whether lease holder ``host:pid:tag`` is alive, when that can be known: it ran on
    this host, so its process either exists (True) or is gone (False: provably dead, its
    study can be taken over without waiting for the lease to lapse). None for another host."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def holder_is_dead(holder: str) -> bool:
    return holder_alive(holder) is False


def generation_of(token: str | None) -> int | None:
    """The generation number in a lease token ``"<n>:<owner>"``."""
    if not token:
        return None
    head = token.partition(":")[0]
    return int(head) if head.isdigit() else None


class Lease:
    """The study's coordinator lease: taken once, renewed from a tick, released at the end."""

    def __init__(self, storage: RedisStorage, study: str, ttl: float = LEASE_TTL, owner: str | None = None) -> None:
        self.storage = storage
        self.study = study
        self.ttl = ttl
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.token: str | None = None
        # renewed at most once per third of the ttl, on the monotonic clock: the lease's
        # ttl runs in Redis in real seconds, whatever clock the coordinator loop is given
        self._renewal = Interval(ttl / 3)

    @property
    def generation(self) -> int | None:
        return generation_of(self.token)

    def acquire(self, wait: bool = True, clock: Callable[[], float] = time.monotonic,
                sleep: Callable[[float], None] = time.sleep) -> None:
        """Take the lease. Held by a coordinator on this host: take it over at once when its
        process is gone, refuse at once when it runs. Held from another host: with ``wait``,
        wait for it to lapse, saying how long that takes; but a holder that renews it is
        alive, and is refused (as at once without ``wait``). Either way the lease comes with a
        new generation, and the storage's writes are fenced with it."""
        left_before: float | None = None
        said = -1.0
        while not (token := self.storage.acquire_lease(self.study, self.owner, self.ttl)):
            holder = self.storage.lease_owner(self.study)
            left = self.storage.lease_left(self.study)
            if holder is None or left is None:
                continue  # it lapsed or was released just now: try again
            alive = holder_alive(holder)
            if alive is False:
                token = self.storage.take_over_lease(self.study, holder, self.owner, self.ttl)
                if token:
                    log.warning("study %r: took over from coordinator %s, whose process is gone", self.study, holder)
                    break
                continue
            if alive or not wait or (left_before is not None and left > left_before + 0.5):
                raise self._refused(holder, left, renewed=left_before is not None, here=bool(alive))
            if said < 0 or said - left >= 5 or left < 1:
                log.warning("study %r is held by coordinator %s, which may have died on another host; its lease "
                            "lapses in %.0f s, then this run takes over (Ctrl-C to stop; --no-wait fails at once)",
                            self.study, holder, left)
                said = left
            left_before = left
            sleep(min(0.5, max(0.05, left)))
        self.token = token
        self.storage.fence = token
        self._renewal.restart(time.monotonic())
        log.info("coordinator %s holds study %r (lease generation %s)", self.owner, self.study, self.generation)

    def _refused(self, holder: str | None, left: float | None, renewed: bool, here: bool = False) -> LeaseError:
        alive = ("its process runs on this host; " if here else
                 "it renewed its lease while this run waited, so it is alive; " if renewed else "")
        where = getattr(self.storage, "where", "this storage")
        expiry = (f"its lease runs out in {left:.1f} s unless that coordinator renews it" if left is not None
                  else "its lease has just run out: try again")
        return LeaseError(
            f"study {self.study!r} is already being run by coordinator {holder} (its lease is held in "
            f"Redis at {where}); {alive}wait for that run to finish or stop it, or choose another "
            f"study name (exp_key= / --study). A crashed coordinator's lease is taken over at once on the same "
            f"host, else when it runs out: {expiry}"
        )

    def tick(self, study: Study, now: float) -> None:
        """Renew every third of the ttl; losing the lease stops this coordinator."""
        if not self._renewal.due(time.monotonic()):
            return
        if not self.storage.acquire_lease(self.study, self.owner, self.ttl, token=self.token):
            holder = self.storage.lease_owner(self.study)
            raise LeaseLost(
                f"coordinator {self.owner} lost the lease on study {self.study!r} (it held generation "
                f"{self.generation}; {'coordinator ' + holder if holder else 'no coordinator'} holds it now): it "
                "was frozen or cut off past its lease ttl, so it stops and writes nothing more; the study goes on "
                "with its new coordinator"
            )

    def release(self) -> None:
        if self.storage.fence == self.token:
            self.storage.fence = None
        try:
            self.storage.release_lease(self.study, self.owner)
        except DistoptError:
            log.warning("could not release the lease on study %r; it expires by itself", self.study)
