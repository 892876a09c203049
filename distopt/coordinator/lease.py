"""The coordinator's lease on a study: one coordinator at a time, and a dead one's
lease runs out by itself.

Taken once at the start (a second coordinator is refused, naming the holder and when its
lease runs out), renewed from a coordinator tick every third of its ttl, released at the
end. A coordinator that crashed holds it for at most ``ttl`` seconds; then a new run of
the same study takes over.

The lease carries a generation, raised each time a new coordinator takes it. Holding the
lease sets the storage's ``fence`` to this coordinator's token, and every write the
coordinator makes (recording a result, popping the inbox, creating, requeueing or
cancelling trials, changing the study's status) checks it in the same atomic step: a
coordinator frozen past its ttl (SIGSTOP, a swapped-out VM, a network cut) that wakes up
after another took over writes nothing at all, and stops with ``LeaseLost``.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid

from ..errors import DistoptError, LeaseError, LeaseLost
from ..storage import RedisStorage
from ..study.study import Study

log = logging.getLogger(__name__)

from ..defaults import LEASE_TTL  # noqa: E402


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
        self._renewed = 0.0

    @property
    def generation(self) -> int | None:
        return generation_of(self.token)

    def acquire(self) -> None:
        """Take the lease and fence the storage's writes with it."""
        token = self.storage.acquire_lease(self.study, self.owner, self.ttl)
        if not token:
            holder = self.storage.lease_owner(self.study)
            left = self.storage.lease_ttl(self.study)
            expiry = (f"its lease runs out in {left:.1f} s unless that coordinator renews it" if left is not None
                      else "its lease has just run out: try again")
            raise LeaseError(
                f"study {self.study!r} is already being run by coordinator {holder} (its lease is held in "
                f"Redis at {self.storage.where}); wait for that run to finish or stop it, or choose another "
                f"study name (exp_key= / --study). A crashed coordinator's lease expires by itself: {expiry}"
            )
        self.token = token
        self.storage.fence = token
        self._renewed = time.monotonic()
        log.info("coordinator %s holds study %r (lease generation %s)", self.owner, self.study, self.generation)

    def tick(self, study: Study, now: float) -> None:
        """Renew every third of the ttl; losing the lease stops this coordinator."""
        if time.monotonic() - self._renewed < self.ttl / 3:
            return
        if not self.storage.acquire_lease(self.study, self.owner, self.ttl, token=self.token):
            holder = self.storage.lease_owner(self.study)
            raise LeaseLost(
                f"coordinator {self.owner} lost the lease on study {self.study!r} (it held generation "
                f"{self.generation}; {'coordinator ' + holder if holder else 'no coordinator'} holds it now): it "
                "was frozen or cut off past its lease ttl, so it stops and writes nothing more; the study goes on "
                "with its new coordinator"
            )
        self._renewed = time.monotonic()

    def release(self) -> None:
        if self.storage.fence == self.token:
            self.storage.fence = None
        try:
            self.storage.release_lease(self.study, self.owner)
        except DistoptError:
            log.warning("could not release the lease on study %r; it expires by itself", self.study)
