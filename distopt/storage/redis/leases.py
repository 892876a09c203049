"""The coordinator's lease on a study, in Redis: one holder at a time, each new holder a
new generation (the fence every write of ``RedisStorage`` checks)."""

from __future__ import annotations

from ...errors import LeaseError
from .connection import text
from .core import RedisStoreCore
from .errors import translating


def _ttl_ms(ttl: float) -> int:
    if ttl <= 0:
        raise LeaseError(f"lease ttl must be a positive number of seconds, got {ttl!r}")
    return max(1, int(round(ttl * 1000)))


class RedisLeases(RedisStoreCore):
    """Lease operations of ``RedisStorage``, each one script call or one MULTI."""

    @translating
    def acquire_lease(self, name: str, owner: str, ttl: float, token: str | None = None) -> str | None:
        keys = [self.keys.studies, self.keys.lease(name), self.keys.generation(name)]
        result = self._acquire_lease(keys=keys, args=[name, owner, _ttl_ms(ttl), token or ""])
        if isinstance(result, int) and result == -1:
            raise self._missing(name)
        return None if result is None else text(result)

    @translating
    def release_lease(self, name: str, owner: str) -> None:
        self._release_lease(keys=[self.keys.lease(name)], args=[owner])

    @translating
    def lease_owner(self, name: str) -> str | None:
        (owner,) = self._read(name, lambda p: p.get(self.keys.lease(name)))
        return None if owner is None else text(owner)

    @translating
    def lease_left(self, name: str) -> float | None:
        (ms,) = self._read(name, lambda p: p.pttl(self.keys.lease(name)))
        return None if ms is None or int(ms) < 0 else int(ms) / 1000.0

    @translating
    def take_over_lease(self, name: str, holder: str, owner: str, ttl: float) -> str | None:
        keys = [self.keys.studies, self.keys.lease(name), self.keys.generation(name)]
        result = self._take_over_lease(keys=keys, args=[name, holder, owner, _ttl_ms(ttl)])
        if isinstance(result, int) and result == -1:
            raise self._missing(name)
        return None if result is None else text(result)
