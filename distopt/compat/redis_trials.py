"""``RedisTrials``: hand it to ``fmin`` and trials run on RQ workers.

    fmin(fn, space, algo=tpe.suggest, max_evals=200, parallelism=8,
         trials=RedisTrials("redis://host:6379/0", exp_key="exp1"))

The study lives in Redis under ``exp_key``: a later ``fmin`` with the same key continues
it (also after a crash or Ctrl-C: queued and running trials are adopted), monitors read
it, and a second coordinator on it is refused while this one runs.
Workers: ``distopt worker --redis redis://host:6379/0`` on each machine, with the same
``DISTOPT_SECRET`` as the coordinator.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Callable, Mapping, MutableMapping, Sequence

from ..trial.codec import decode_attachment
from ..coordinator.loop import StopRules, Tick
from ..coordinator.distributed import run_distributed
from ..coordinator.failfast import THRESHOLD as FAIL_FAST
from ..errors import DistoptError
from ..coordinator.lease import LEASE_TTL
from ..trial.names import validate_study_name
from ..dispatch.secret import resolve_secret
from ..storage.redis.retry import RECONNECT_WINDOW
from ..space.serialize import space_from_json, space_to_json
from ..storage import DEFAULT_PREFIX
from ..storage.redis.pipelined import pipelined_storage
from ..study.settings import Algo
from ..study.study import Study
from .attachments import StoredAttachments
from .trials import Trials
from ..defaults import DEFAULT_QUEUE, MAX_RETRIES

log = logging.getLogger(__name__)


class RedisTrials(Trials):
    """``Trials`` whose study is stored in Redis and evaluated by workers.

    ``secret`` signs the shipped objective (default: $DISTOPT_SECRET); without one,
    ``insecure=True`` must be given explicitly. ``ticks`` are called every coordinator
    loop turn with ``(study, now)`` (e.g. to supervise local worker processes).

    ``heartbeat_ttl``: seconds a running trial may go without a heartbeat before it is
    presumed lost and runs again (default: the study's, else 30; workers beat six times
    per ttl). ``lease_ttl``: seconds a crashed coordinator keeps the study (default 30).
    ``reconnect_window``: seconds the coordinator keeps retrying while Redis is away.
    ``fail_fast``: the study stops when its first this many results failed with the same
    error (default 5; 0: never); ``max_consecutive_failures``: ... when this many failed in
    a row (default: never). ``wait_for_lease``: a study held by a coordinator that may be
    dead on another host is taken over once its lease lapses (False: refused at once).
    """

    __module__ = "distopt.redis_trials"  # the public import path, which pickles name
    asynchronous = True

    def __init__(
        self,
        url: str,
        exp_key: str | None = None,
        queue: str = DEFAULT_QUEUE,
        secret: str | bytes | None = None,
        insecure: bool = False,
        prefix: str = DEFAULT_PREFIX,
        *,
        ticks: Sequence[Tick] = (),
        heartbeat_ttl: float | None = None,
        lease_ttl: float = LEASE_TTL,
        reconnect_window: float = RECONNECT_WINDOW,
        fail_fast: int = FAIL_FAST,
        max_consecutive_failures: int | None = None,
        wait_for_lease: bool = True,
    ) -> None:
        if exp_key is not None:
            validate_study_name(exp_key)
        super().__init__(exp_key=exp_key)
        self.url = url
        self.queue = queue
        self.prefix = prefix
        self.insecure = insecure
        self.ticks = tuple(ticks)
        self.heartbeat_ttl = heartbeat_ttl
        self.lease_ttl = lease_ttl
        self.reconnect_window = reconnect_window
        self.fail_fast = fail_fast
        self.max_consecutive_failures = max_consecutive_failures
        self.wait_for_lease = wait_for_lease
        self.stop_reason: str | None = None
        self._secret = secret
        self._key: bytes | None = None
        self._key_resolved = False
        self._name = exp_key
        self._running = False
        self._saved_from_redis = False
        if exp_key is not None:
            self._load_stored(quiet=True)

    @property
    def study_name(self) -> str | None:
        """The study's name in Redis: ``exp_key``, or a generated one once attached."""
        return self._study.name if self._study is not None else self._name

    def _new_study(self, space: Any, algo: Algo | None, rstate: Any, pruner: Any = None) -> Study:
        self._secret_key()  # first, so a missing secret leaves nothing behind in Redis
        storage = pipelined_storage(self.url, self.prefix, retry_window=self.reconnect_window)
        name = self._name or f"fmin-{uuid.uuid4().hex[:12]}"
        if name in storage.list_studies():
            stored = storage.get_study(name).get("space")
            if stored is not None and stored != space_to_json(space):
                raise DistoptError(
                    f"study {name!r} already exists in Redis with a different search space; continue it with "
                    "the same space, or choose another exp_key"
                )
        return Study(space, algo=algo, seed=rstate, storage=storage, name=name, meta={"queue": self.queue},
                     pruner=pruner)

    def run_fmin(
        self,
        fn: Callable[[Any], Any] | str,
        rules: StopRules,
        *,
        parallelism: int | None = None,
        trial_timeout: float | None = None,
        max_retries: int = MAX_RETRIES,
        show_progressbar: Any = True,
    ) -> None:
        """What ``fmin`` calls: run the attached study on the workers of ``queue``."""
        if self._study is None:
            raise DistoptError("RedisTrials.run_fmin needs a study: call it through fmin(...)")
        self._running = True
        try:
            self.stop_reason = run_distributed(
                self._study, fn, rules, queue=self.queue, parallelism=parallelism, secret=self._secret_key(),
                insecure=self.insecure, secret_resolved=True, trial_timeout=trial_timeout, max_retries=max_retries,
                show_progressbar=show_progressbar, ticks=self.ticks, heartbeat_ttl=self.heartbeat_ttl,
                lease_ttl=self.lease_ttl, fail_fast=self.fail_fast,
                max_consecutive_failures=self.max_consecutive_failures, wait_for_lease=self.wait_for_lease,
            )
        finally:
            self._running = False

    def _secret_key(self) -> bytes | None:
        """The signing key, settled once (a missing secret raises, saying what to set)."""
        if not self._key_resolved:
            self._key = resolve_secret(self._secret, insecure=self.insecure, role="coordinator")
            self._key_resolved = True
        return self._key

    # -- pickling: the URL and the study's name, never a connection or the secret ----
    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "exp_key": self._exp_key, "name": self.study_name, "queue": self.queue,
                "prefix": self.prefix, "insecure": self.insecure, "heartbeat_ttl": self.heartbeat_ttl,
                "lease_ttl": self.lease_ttl, "reconnect_window": self.reconnect_window,
                "fail_fast": self.fail_fast, "max_consecutive_failures": self.max_consecutive_failures}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"], state["exp_key"], state["queue"], None, state["insecure"], state["prefix"],
                      heartbeat_ttl=state.get("heartbeat_ttl"), lease_ttl=state.get("lease_ttl", LEASE_TTL),
                      reconnect_window=state.get("reconnect_window", RECONNECT_WINDOW),
                      fail_fast=state.get("fail_fast", FAIL_FAST),
                      max_consecutive_failures=state.get("max_consecutive_failures"))
        self._name = state.get("name") or state["exp_key"]
        if self._name is not None and self._study is None and not self._saved:
            self._reattach()

    def _reattach(self) -> None:
        self._load_stored(quiet=True)

    # -- attachments stored with the study --------------------------------------------
    def trial_attachments(self, trial: Mapping[str, Any]) -> MutableMapping[str, Any]:
        """One trial's attachments: those of this process, then those stored in Redis by
        the coordinator that recorded the trial (attachments returned on a worker), so a
        script reading the study elsewhere sees them too."""
        return StoredAttachments(super().trial_attachments(trial), lambda: self._stored_attachments(trial["tid"]))

    def _stored_attachments(self, tid: int) -> dict[str, Any]:
        name = self.study_name
        if name is None:
            return {}
        if self._study is not None:
            stored = self._study.storage.get_attachments(name, tid)
        else:
            storage = pipelined_storage(self.url, self.prefix, retry_window=self.reconnect_window)
            try:
                stored = storage.get_attachments(name, tid) if name in storage.list_studies() else {}
            finally:
                storage.close()
        return {k: decode_attachment(v) for k, v in stored.items()}

    # -- reading a stored study (hyperopt's MongoTrials(url, exp_key=...)) -----------------
    def attach(self, space: Any, algo: Algo | None, rstate: Any, pruner: Any = None) -> Study:
        if self._saved_from_redis:  # records read from Redis are already in the study there
            self._saved, self._saved_labels, self._saved_from_redis = [], [], False
        return super().attach(space, algo, rstate, pruner)

    def refresh(self) -> None:
        """Read the study's trials from Redis again (hyperopt's ``MongoTrials.refresh``),
        so a script sees what a coordinator elsewhere recorded since. Does nothing while
        this object's own ``fmin`` runs (its records are the current ones). Documents
        inserted by hand show from now on, as with ``Trials``."""
        super().refresh()
        if not self._running and self.study_name is not None:
            self._load_stored(quiet=False)

    def _load_stored(self, quiet: bool) -> None:
        """Load the study stored under this name, if it exists: as a ``Study`` when its
        space has a JSON form, else as records (readable, not resumable from here).
        ``quiet``: a Redis that cannot be reached is logged, not raised (the constructor
        does not need Redis)."""
        name = self.study_name
        try:
            storage = pipelined_storage(self.url, self.prefix, retry_window=self.reconnect_window)
            if name not in storage.list_studies():
                storage.close()
                return
            meta = storage.get_study(name)
            if meta.get("space") is None:
                self._saved = storage.get_trials(name)
                self._saved_labels = [str(x) for x in meta.get("labels") or []]
                self._saved_from_redis = True
                storage.close()
                return
            old = self._study
            study = Study(space_from_json(meta["space"]) if old is None else old.space,
                          algo=None if old is None else old.algo, storage=storage, name=name)
            if old is not None:
                study.rng = old.rng
                old.storage.close()
            study.raw_results, study.attachments = self._raw, self._attachments
            self._study = study
        except DistoptError as exc:
            if not quiet:
                raise
            log.warning("could not read study %r from %s: %s", name, self.url, exc)
