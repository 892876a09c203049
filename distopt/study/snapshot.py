"""A study read at one moment, from any source: a ``Study``, a hyperopt-style ``Trials``
or a study stored in Redis by another process.

Export, plots and ``status`` read this one shape, so they work the same for an in-memory
search and for a remote one whose objective and space code this process never saw (the
space comes back from the JSON copy the study stores in its meta).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

from ..trial.codec import to_plain
from ..errors import DistoptError
from ..trial.record import TrialRecord, TrialState, best_of, labels_of
from ..space import CompiledSpace, compile_space, space_eval
from ..space.serialize import space_from_json
from ..storage import Storage, open_storage
from .rows import trials_dataframe


@dataclasses.dataclass(frozen=True)
class StudySnapshot:
    """Records and space of one study; ``space`` is None when it had no JSON form."""

    name: str
    records: tuple[TrialRecord, ...]
    labels: tuple[str, ...]
    space: Any = None
    compiled: CompiledSpace | None = None
    meta: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    #: tid -> ``CurveData``: the intermediate values each trial reported
    curves: Mapping[int, Any] = dataclasses.field(default_factory=dict)

    @property
    def best(self) -> TrialRecord | None:
        """The OK trial with the lowest finite loss (the earliest on ties)."""
        return best_of(self.records)

    def params(self, rec: TrialRecord) -> Any:
        """What the objective received for ``rec`` as plain JSON; the flat ``vals`` when
        the space is unknown or does not fit them."""
        if self.space is None:
            return to_plain(dict(rec.vals))
        try:
            return to_plain(space_eval(self.space, rec.vals))
        except (DistoptError, TypeError, ValueError, ArithmeticError):
            return to_plain(dict(rec.vals))


def load_snapshot(storage: Storage, name: str) -> StudySnapshot:
    """Read a stored study; raises ``StudyNotFound`` (naming the known studies)."""
    meta = storage.get_study(name)
    records = tuple(storage.get_trials(name))
    space = compiled = None
    if meta.get("space") is not None:
        try:
            space = space_from_json(meta["space"])
            compiled = compile_space(space)
        except DistoptError:
            space = compiled = None
    labels = _labels(compiled, meta.get("labels"), records)
    return StudySnapshot(name, records, labels, space, compiled, meta, storage.curves(name))


def read_study(target: Any, name: str) -> StudySnapshot:
    """Read study ``name`` from a Redis URL, a redis client or a ``Storage``."""
    storage = open_storage(target)
    try:
        return load_snapshot(storage, name)
    finally:
        if storage is not target:
            storage.close()


def as_snapshot(source: Any) -> StudySnapshot:
    """A snapshot of a ``StudySnapshot``, ``Study`` or ``Trials`` (None or an unused
    ``Trials`` gives an empty one)."""
    if isinstance(source, StudySnapshot):
        return source
    if isinstance(source, StudyView):
        return source.snapshot
    if source is None:
        return StudySnapshot("", (), ())
    if callable(getattr(source, "snapshot", None)):  # a Study
        return source.snapshot()
    if hasattr(source, "study"):  # a Trials: its study, None before its first trial
        return as_snapshot(source.study)
    raise DistoptError(
        f"expected a Study, a Trials or a StudySnapshot, got {type(source).__name__}; "
        "for a study stored in Redis use load_snapshot(open_storage(url), name)"
    )


def _labels(compiled: CompiledSpace | None, stored: Any, records: Sequence[TrialRecord]) -> tuple[str, ...]:
    if compiled is not None:
        return tuple(compiled.labels)
    if isinstance(stored, list) and all(isinstance(x, str) for x in stored):
        return tuple(stored)
    return tuple(labels_of(records))


class StudyView:
    """A stored study, read-only: its trials, best trial and a DataFrame, read from Redis
    (``distopt.load_study(url, name)``). It has no way to ask for or record a trial, so
    reading a finished study can never change it; ``refresh()`` reads it again."""

    def __init__(self, target: Any, name: str, *, prefix: str | None = None) -> None:
        self._target = target
        self._prefix = prefix
        self.name = name
        self._snap = self._read()

    def _read(self) -> StudySnapshot:
        storage = open_storage(self._target) if self._prefix is None else open_storage(self._target,
                                                                                       prefix=self._prefix)
        try:
            return load_snapshot(storage, self.name)
        finally:
            if storage is not self._target:
                storage.close()

    def refresh(self) -> "StudyView":
        """Read the study again (a running study keeps changing); returns itself."""
        self._snap = self._read()
        return self

    def __repr__(self) -> str:
        return f"StudyView({self.name!r}, {len(self._snap.records)} trials, status {self.status!r})"

    def __len__(self) -> int:
        return len(self._snap.records)

    @property
    def snapshot(self) -> StudySnapshot:
        return self._snap

    @property
    def trials(self) -> list[TrialRecord]:
        """Every trial record, in tid order."""
        return list(self._snap.records)

    @property
    def status(self) -> Any:
        """The status its coordinator last wrote (``distopt.status`` says whether one runs it)."""
        return self._snap.meta.get("status")

    @property
    def meta(self) -> dict[str, Any]:
        return dict(self._snap.meta)

    @property
    def labels(self) -> list[str]:
        return list(self._snap.labels)

    @property
    def space(self) -> Any:
        """The search space, rebuilt from the JSON form stored with the study (None without one)."""
        return self._snap.space

    @property
    def best_trial(self) -> TrialRecord | None:
        return self._snap.best

    @property
    def best_loss(self) -> float | None:
        best = self._snap.best
        return None if best is None else best.loss

    @property
    def best_params(self) -> Any:
        """What the objective received in the best trial (choices as their values)."""
        best = self._snap.best
        return None if best is None else self._snap.params(best)

    def states(self, *states: TrialState | str) -> list[TrialRecord]:
        wanted = {TrialState(s) for s in states}
        return [r for r in self._snap.records if r.state in wanted]

    def to_dataframe(self, indices: bool = False) -> Any:
        """One row per trial, a choice as the option chosen (its index with ``indices``;
        needs ``pip install distopt[pandas]``)."""
        return trials_dataframe(self._snap, indices)


def load_study(target: Any, name: str, *, prefix: str | None = None) -> StudyView:
    """Study ``name`` from a Redis URL, a redis client or a ``Storage``, as a read-only
    ``StudyView``; raises ``StudyNotFound`` naming the studies that exist."""
    return StudyView(target, name, prefix=prefix)
