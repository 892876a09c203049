"""The coordinator's lease on a study: one coordinator at a time, and a dead one's
lease runs out by itself.

Taken once at the start (a second coordinator is refused, naming the holder), renewed
from a coordinator tick every third of its ttl, released at the end. A coordinator that
crashed holds it for at most ``ttl`` seconds; then a new run of the same study takes over.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid

from ..errors import DistoptError, LeaseError
from ..storage import RedisStorage
from ..study.study import Study

log = logging.getLogger(__name__)

from ..defaults import LEASE_TTL  # noqa: E402


class Lease:
    """The study's coordinator lease: taken once, renewed from a tick, released at the end."""

    def __init__(self, storage: RedisStorage, study: str, ttl: float = LEASE_TTL, owner: str | None = None) -> None:
        self.storage = storage
        self.study = study
        self.ttl = ttl
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._renewed = 0.0

    def acquire(self) -> None:
        if not self.storage.acquire_lease(self.study, self.owner, self.ttl):
            holder = self.storage.lease_owner(self.study)
            raise LeaseError(
                f"study {self.study!r} is already being run by coordinator {holder} (its lease is held in "
                f"Redis at {self.storage.where}); wait for that run to finish or stop it, or choose another "
                f"study name (exp_key= / --study). A crashed coordinator's lease expires by itself after its "
                f"lease ttl ({LEASE_TTL:g} s unless it was started with another)"
            )
        self._renewed = time.monotonic()

    def tick(self, study: Study, now: float) -> None:
        """Renew every third of the ttl; losing the lease stops this coordinator."""
        if time.monotonic() - self._renewed < self.ttl / 3:
            return
        if not self.storage.acquire_lease(self.study, self.owner, self.ttl):
            raise LeaseError(
                f"lost the lease on study {self.study!r} to coordinator {self.storage.lease_owner(self.study)}; "
                "this coordinator stops so that only one records results"
            )
        self._renewed = time.monotonic()

    def release(self) -> None:
        try:
            self.storage.release_lease(self.study, self.owner)
        except DistoptError:
            log.warning("could not release the lease on study %r; it expires by itself", self.study)
