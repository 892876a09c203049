"""What every part of the Redis store stands on: the client (built from a URL, or given),
pickling as a URL, the registered scripts, and the checks each call makes (the study
exists; a fenced write was not refused because another coordinator holds the study).

The store pickles as its URL and prefix, never as a connection, so it can travel inside
an rq job and reconnect on the worker.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from ...errors import LeaseLost, StorageError
from ...trial.names import study_not_found
from ..base import Storage
from . import scripts
from .connection import connect, redact_url, text, url_from_client, where_of
from .errors import translating
from .keys import DEFAULT_PREFIX, Keys

log = logging.getLogger(__name__)


class RedisStoreCore(Storage):
    """The connection and the shared checks of ``RedisStorage``; its operations live in
    the classes that build on this one, one file each."""

    def __init__(self, target: str | Any, *, prefix: str = DEFAULT_PREFIX, socket_connect_timeout: float = 5.0,
                 retry_window: float = 0.0) -> None:
        self.keys = Keys(prefix)
        #: The lease token this storage's writes are fenced with (``Lease`` sets it).
        self.fence: str | None = None
        #: Per study, the token of the batch ``pop_results`` last handed out (acknowledged
        #: by the next pop): a new storage acknowledges nothing and gets that batch again.
        self._handouts: dict[str, str] = {}
        #: Per study, this storage's copy of the curves (``RedisReports.report`` keeps it).
        self._curve_copies: dict[str, Any] = {}
        self._curve_lock = threading.Lock()
        self._socket_connect_timeout = socket_connect_timeout
        self.retry_window = float(retry_window)
        if isinstance(target, str):
            self._url: str | None = target
            self.client = connect(target, socket_connect_timeout)
            self._owns_client = True
        else:
            if not hasattr(target, "register_script"):
                raise StorageError(f"RedisStorage needs a redis:// URL or a redis client, got {target!r}")
            kw = getattr(getattr(target, "connection_pool", None), "connection_kwargs", {})
            if kw.get("decode_responses"):
                raise StorageError(
                    "RedisStorage needs a client made with decode_responses=False "
                    "(objective blobs are bytes); pass a URL or a client without it"
                )
            self._url = url_from_client(target)
            self.client = target
            self._owns_client = False
        self._register_scripts()

    # -- construction, pickling ------------------------------------------------------
    def _register_scripts(self) -> None:
        reg = self.client.register_script
        self._create_study = reg(scripts.CREATE_STUDY)
        self._update_study = reg(scripts.UPDATE_STUDY)
        self._next_tid = reg(scripts.NEXT_TID)
        self._put_trial = reg(scripts.PUT_TRIAL)
        self._transition = reg(scripts.TRANSITION)
        self._push_result = reg(scripts.PUSH_RESULT)
        self._heartbeat = reg(scripts.HEARTBEAT)
        self._report = reg(scripts.REPORT)
        self._acquire_lease = reg(scripts.ACQUIRE_LEASE)
        self._clear_heartbeat = reg(scripts.CLEAR_HEARTBEAT)
        self._pop_results = reg(scripts.POP_RESULTS)
        self._release_lease = reg(scripts.RELEASE_LEASE)
        self._take_over_lease = reg(scripts.TAKE_OVER_LEASE)

    def __getstate__(self) -> dict[str, Any]:
        if self._url is None:
            raise StorageError(
                f"cannot pickle RedisStorage on {self.where}: it was built from a client "
                "object with no URL; build it from a URL (RedisStorage('redis://host:port/0')) "
                "to send it to other processes"
            )
        return {
            "url": self._url,
            "prefix": self.keys.prefix,
            "socket_connect_timeout": self._socket_connect_timeout,
            "retry_window": self.retry_window,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"], prefix=state["prefix"],  # type: ignore[misc]
                      socket_connect_timeout=state["socket_connect_timeout"],
                      retry_window=state.get("retry_window", 0.0))

    def __repr__(self) -> str:
        return f"RedisStorage({self.display_url!r}, prefix={self.keys.prefix!r})"

    @property
    def url(self) -> str | None:
        """The URL this storage reconnects with (None for a client that has none)."""
        return self._url

    @property
    def prefix(self) -> str:
        return self.keys.prefix

    @property
    def display_url(self) -> str:
        """The URL with its password hidden (the client's repr when there is no URL)."""
        return redact_url(self._url) if self._url else repr(self.client)

    @property
    def where(self) -> str:
        """host:port (or socket path) of the server, for error messages."""
        return where_of(self.client)

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def reset_connections(self) -> None:
        """Drop every pooled connection (the next call opens a fresh one): an interrupt
        that landed while a reply was being read leaves a connection out of step, and the
        next command on it would read the old reply."""
        try:
            self.client.connection_pool.disconnect()
        except Exception:  # fakeredis and the like: nothing to reset
            log.debug("could not reset the connections to %s", self.where, exc_info=True)

    @translating
    def ping(self) -> bool:
        """True when the server answers; raises ``ConnectionFailed`` naming host:port."""
        return bool(self.client.ping())

    # -- the checks every call makes ---------------------------------------------------
    def _missing(self, name: str) -> StorageError:
        known = [text(n) for n in self.client.smembers(self.keys.studies)]
        return study_not_found(name, known, f"Redis at {self.where} (prefix {self.keys.prefix!r})")

    def _read(self, name: str, fill: Callable[[Any], None]) -> list[Any]:
        """Run read commands in one MULTI together with the existence check."""
        pipe = self.client.pipeline(transaction=True)
        pipe.sismember(self.keys.studies, name)
        fill(pipe)
        exists, *rest = pipe.execute()
        if not exists:
            raise self._missing(name)
        return rest

    def _run(self, script: Any, name: str, keys: list[str], args: list[Any]) -> int:
        result = int(script(keys=[self.keys.studies, *keys], args=[name, *args]))
        if result == -1:
            raise self._missing(name)
        return result

    def _run_fenced(self, script: Any, name: str, keys: list[str], args: list[Any], client: Any = None) -> Any:
        """Run a ``scripts.FENCED`` script: it writes only while ``fence`` is the study's
        current lease generation (or when this storage holds no lease)."""
        result = script(keys=[self.keys.studies, *keys, self.keys.generation(name)],
                        args=[name, *args, self.fence or ""], client=client)
        return self._check_fenced(name, result)

    def _check_fenced(self, name: str, result: Any) -> Any:
        if isinstance(result, int) and result == -1:
            raise self._missing(name)
        if isinstance(result, int) and result == -3:
            raise self._lost(name)
        return result

    def _lost(self, name: str) -> LeaseLost:
        current = self.client.get(self.keys.generation(name))
        now = "its lease data is gone" if current is None else f"the study is now at {describe_token(text(current))}"
        return LeaseLost(
            f"this coordinator no longer holds study {name!r}: it held lease {describe_token(self.fence)} and {now}. "
            "Another coordinator took the study over (this one was frozen or cut off past its lease ttl), so this "
            "one wrote nothing more and stops; the other one finishes the study"
        )

    def _trial_keys(self, name: str) -> list[str]:
        return [self.keys.trials(name), *self.keys.state_sets(name)]


def describe_token(token: str | None) -> str:
    """'generation 3 (coordinator host:pid:id)' for a lease token '3:host:pid:id'."""
    number, _, owner = str(token).partition(":")
    return f"generation {number} (coordinator {owner})"
