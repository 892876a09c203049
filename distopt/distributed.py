"""Running a study on workers: the objective shipped, one coordinator, the same loop.

``run_distributed`` takes the study's lease (a second coordinator on the same study is
refused), ships the objective (pickled and signed, or as an import path), and drives
the ``Coordinator`` through an ``RQExecutor``. The lease is renewed from a coordinator
tick; the fault-tolerance ticks (a reaper of lost trials) plug in beside it.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from typing import Any, Callable, Sequence

from .coordinator import Coordinator, StopRules, Tick
from .errors import DistoptError, LeaseError
from .objective import ObjectiveRef, check_import_path, pickle_objective, resolve_secret
from .storage import RedisStorage
from .study import Study

log = logging.getLogger(__name__)

#: Trials in flight when the caller does not say.
DEFAULT_PARALLELISM = 8
#: Seconds a coordinator's lease lasts without renewal (a crashed coordinator's study can
#: be taken over after this long).
LEASE_TTL = 30.0


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
                f"study name (exp_key= / --study). A crashed coordinator's lease expires within {self.ttl:g} s"
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


def ship_objective(
    objective: Callable[[Any], Any] | str, study: Study, storage: RedisStorage, secret: bytes | None,
) -> ObjectiveRef:
    """Store the objective where workers find it; an import path is only checked."""
    if isinstance(objective, str):
        path = check_import_path(objective)
        if study.storage.get_study(study.name).get("space") is None:
            raise DistoptError(
                f"objective {path!r} is an import path, so workers rebuild the space from its JSON form, "
                "but this space holds non-JSON constants; pass the objective function itself instead"
            )
        return ObjectiveRef(name=path, path=path)
    if not callable(objective):
        raise DistoptError(f"the objective must be a callable or an import path 'package.module:function', "
                           f"got {objective!r}")
    ref, blob = pickle_objective(objective, study.space, secret=secret)
    assert ref.digest is not None
    storage.put_blob(ref.digest, blob)
    return ref


def run_distributed(
    study: Study,
    objective: Callable[[Any], Any] | str,
    rules: StopRules,
    *,
    queue: str = "distopt",
    parallelism: int | None = None,
    secret: str | bytes | None = None,
    insecure: bool = False,
    trial_timeout: float | None = None,
    max_retries: int = 2,
    show_progressbar: bool = False,
    ticks: Sequence[Tick] = (),
    lease_ttl: float = LEASE_TTL,
    secret_resolved: bool = False,
) -> str:
    """Run ``study`` on the workers of ``queue`` until a stop rule fires; returns its name.

    ``secret`` defaults to $DISTOPT_SECRET; without one, ``insecure=True`` ships the
    objective unsigned. Trials left pending when it stops (a timeout, Ctrl-C, an error)
    are cancelled and their queued jobs withdrawn, so workers do not run them for
    nothing; after losing the lease it writes nothing more (the study has a new owner).
    """
    from .dispatch import RQExecutor  # only the distributed path needs rq

    storage = study.storage
    if not isinstance(storage, RedisStorage):
        raise DistoptError(f"distributed runs need a study on Redis, but this study is on {storage!r}")
    if isinstance(objective, str):
        check_import_path(objective)
    if secret_resolved:  # the caller already settled it (and warned when insecure)
        key = secret.encode() if isinstance(secret, str) else secret
    else:
        key = resolve_secret(secret, insecure=insecure, role="coordinator")
    lease = Lease(storage, study.name, lease_ttl)
    lease.acquire()
    try:
        ref = ship_objective(objective, study, storage, key)
        storage.update_study(study.name, {"queue": queue, "objective": ref.to_json(), "status": "running",
                                          "coordinator": lease.owner, "max_retries": int(max_retries)})
        parallelism = parallelism or DEFAULT_PARALLELISM
        executor = RQExecutor(storage, study.name, ref, queue=queue, trial_timeout=trial_timeout,
                              batch=max(4, parallelism // 4))
        coordinator = Coordinator(study, executor, rules, parallelism=parallelism,
                                  show_progressbar=show_progressbar, ticks=(lease.tick, *ticks))
        try:
            reason = coordinator.run()
        except LeaseError:
            raise
        except BaseException:
            _withdraw(study, executor)
            raise
        finally:
            executor.close()
        storage.update_study(study.name, {"status": "done", "stop_reason": reason})
        return reason
    finally:
        lease.release()


def _withdraw(study: Study, executor: Any) -> None:
    """Cancel what is still pending after a failure, without hiding that failure."""
    try:
        leftover = study.pending_tids()
        if leftover:
            executor.cancel(study, leftover)
            study.cancel(leftover)
        study.storage.update_study(study.name, {"status": "interrupted"})
    except Exception:
        log.warning("could not cancel the pending trials of study %r", study.name, exc_info=True)
