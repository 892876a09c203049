"""hyperopt's ``trials.trial_attachments(doc)``: a trial's attachments by name, in this
process (``TrialAttachments``) or falling back to the ones a coordinator stored in Redis
(``StoredAttachments``)."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, Callable, Iterator


class TrialAttachments(MutableMapping):
    """hyperopt's ``trials.trial_attachments(doc)``: one trial's attachments by name,
    stored in ``trials.attachments`` under "ATTACH::<tid>::<name>"."""

    def __init__(self, store: dict[str, Any], tid: int) -> None:
        self._store = store
        self._prefix = f"ATTACH::{tid}::"

    def __getitem__(self, name: str) -> Any:
        return self._store[self._prefix + name]

    def __setitem__(self, name: str, value: Any) -> None:
        self._store[self._prefix + name] = value

    def __delitem__(self, name: str) -> None:
        del self._store[self._prefix + name]

    def __iter__(self) -> Iterator[str]:
        n = len(self._prefix)
        return iter([k[n:] for k in list(self._store) if k.startswith(self._prefix)])

    def __len__(self) -> int:
        return sum(1 for _ in self)



class StoredAttachments(MutableMapping):
    """A trial's attachments in this process, falling back to the ones stored in Redis
    (read once, when first needed). Writes stay in this process, as in hyperopt's Trials."""

    def __init__(self, local: MutableMapping[str, Any], load: Callable[[], dict[str, Any]]) -> None:
        self._local = local
        self._load = load
        self._stored: dict[str, Any] | None = None

    def _remote(self) -> dict[str, Any]:
        if self._stored is None:
            self._stored = self._load()
        return self._stored

    def __getitem__(self, name: str) -> Any:
        if name in self._local:
            return self._local[name]
        return self._remote()[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self._local[name] = value

    def __delitem__(self, name: str) -> None:
        del self._local[name]

    def __iter__(self) -> Iterator[str]:
        names = list(self._local)
        return iter(names + [k for k in self._remote() if k not in names])

    def __len__(self) -> int:
        return sum(1 for _ in self)
