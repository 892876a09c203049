"""A study read at one moment, from any source: a ``Study``, a hyperopt-style ``Trials``
or a study stored in Redis by another process.

Export, plots and ``status`` read this one shape, so they work the same for an in-memory
search and for a remote one whose objective and space code this process never saw (the
space comes back from the JSON copy the study stores in its meta).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping, Sequence

from .codec import to_plain
from .errors import DistoptError
from .records import TrialRecord, TrialState
from .space import CompiledSpace, compile_space, space_eval
from .space.serialize import space_from_json
from .storage import Storage, open_storage


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
        best = None
        for rec in self.records:
            if rec.state == TrialState.OK and rec.loss is not None and math.isfinite(rec.loss):
                if best is None or rec.loss < best.loss:
                    best = rec
        return best

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
    from .study import Study
    from .trials import Trials

    if isinstance(source, StudySnapshot):
        return source
    if isinstance(source, Trials):
        source = source.study
    if source is None:
        return StudySnapshot("", (), ())
    if isinstance(source, Study):
        records = tuple(source.trials)
        return StudySnapshot(source.name, records, tuple(source.compiled.labels), source.space, source.compiled,
                             curves=source.curves())
    raise DistoptError(
        f"expected a Study, a Trials or a StudySnapshot, got {type(source).__name__}; "
        "for a study stored in Redis use load_snapshot(open_storage(url), name)"
    )


def _labels(compiled: CompiledSpace | None, stored: Any, records: Sequence[TrialRecord]) -> tuple[str, ...]:
    if compiled is not None:
        return tuple(compiled.labels)
    if isinstance(stored, list) and all(isinstance(x, str) for x in stored):
        return tuple(stored)
    seen: dict[str, None] = {}
    for rec in records:
        seen.update(dict.fromkeys(rec.vals))
    return tuple(seen)
