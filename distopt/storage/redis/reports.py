"""What a trial says while it runs, in Redis: its intermediate values (the curves a
pruner judges) and the attachments it stores."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from ...trial import codec
from ...errors import StorageError
from ...trial.record import TrialState
from ..base import CurveData, ReportReply, check_report
from .connection import text
from .core import RedisStoreCore
from .errors import translating


class RedisReports(RedisStoreCore):
    """Report, curve and attachment operations of ``RedisStorage``."""

    @translating
    def report(self, name: str, tid: int, attempt: int, step: int, value: float, want: bool = True) -> ReportReply:
        """One script call: the value is appended and, with ``want``, every curve comes back.

        Only the curves that changed since this storage's last report on the study travel
        (and are decoded): the rest comes from its copy, so a report costs what changed, not
        every value of every trial. The copy is keyed by the study's incarnation, so one of
        a deleted and recreated study is never mixed in."""
        step, value = check_report(tid, step, value)
        keys = [self.keys.studies, self.keys.curves(name), self.keys.state(name, TrialState.OK),
                self.keys.meta(name), self.keys.curve_versions(name)]
        with self._curve_lock:
            copy = self._curve_copies.get(name) if want else None
            epoch, since = (copy.epoch, copy.version) if copy is not None else (_NO_COPY, 0)
            out = self._report(keys=keys, args=[name, int(tid), int(attempt), step, repr(value), 1 if want else 0,
                                                epoch, since])
            if not isinstance(out, list):
                if int(out) == -1:
                    raise self._missing(name)
                raise StorageError(f"unexpected reply {out!r} from Redis at {self.where} to a report")
            if not want:
                return ReportReply(bool(int(out[0])))
            copy = _merge(copy, out)
            self._curve_copies.pop(name, None)
            self._curve_copies[name] = copy  # most recent last
            while len(self._curve_copies) > MAX_CURVE_COPIES:  # a long-lived worker serves many studies
                del self._curve_copies[next(iter(self._curve_copies))]
            return ReportReply(bool(int(out[0])), dict(copy.curves), int(out[1]))

    @translating
    def curves(self, name: str) -> dict[int, CurveData]:
        def fill(pipe: Any) -> None:
            pipe.hgetall(self.keys.curves(name))
            pipe.smembers(self.keys.state(name, TrialState.OK))

        raw, ok = self._read(name, fill)
        ok = {text(t) for t in ok}
        return {int(t): _curve(v, text(t) in ok) for t, v in raw.items()}

    # -- attachments -------------------------------------------------------------------
    @translating
    def put_attachments(self, name: str, tid: int, items: Mapping[str, Any]) -> None:
        if not items:
            return
        tid = int(tid)
        (names,) = self._read(name, lambda p: p.hget(self.keys.attachment_index(name), str(tid)))
        known = codec.loads(names) if names is not None else []
        known += [str(k) for k in items if str(k) not in known]
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(self.keys.attachments(name), mapping={f"{tid}:{k}": codec.dumps(v) for k, v in items.items()})
        pipe.hset(self.keys.attachment_index(name), str(tid), codec.dumps(known))
        pipe.execute()

    @translating
    def get_attachments(self, name: str, tid: int) -> dict[str, Any]:
        tid = int(tid)
        (names,) = self._read(name, lambda p: p.hget(self.keys.attachment_index(name), str(tid)))
        if names is None:
            return {}
        known = codec.loads(names)
        values = self.client.hmget(self.keys.attachments(name), [f"{tid}:{k}" for k in known]) if known else []
        return {k: codec.loads(v) for k, v in zip(known, values) if v is not None}


#: Studies whose curves one storage keeps a copy of (the least recently reported on goes).
MAX_CURVE_COPIES = 8
#: The epoch a storage with no copy of a study's curves sends: never an incarnation.
_NO_COPY = "-"


@dataclasses.dataclass
class CurveCopy:
    """One storage's copy of a study's curves: of incarnation ``epoch``, at ``version``."""

    epoch: str
    version: int
    curves: dict[int, CurveData]


def _merge(copy: CurveCopy | None, out: list[Any]) -> CurveCopy:
    """The copy updated from a REPORT reply (see the script): replaced when the reply is
    full, else the changed curves replaced and every curve's ``complete`` set anew."""
    epoch, version, full = text(out[2]), int(out[3]), bool(int(out[4]))
    if full or copy is None:
        curves = {int(out[i]): _curve(out[i + 1], bool(int(out[i + 2]))) for i in range(5, len(out), 3)}
        return CurveCopy(epoch, version, curves)
    end = _separator(out)
    curves = dict(copy.curves)
    for i in range(5, end, 3):
        curves[int(out[i])] = _curve(out[i + 1], bool(int(out[i + 2])))
    ok = {int(t) for t in out[end + 1:]}
    for t, c in curves.items():
        if c.complete != (t in ok):
            curves[t] = dataclasses.replace(c, complete=t in ok)
    return CurveCopy(epoch, version, curves)


def _separator(out: list[Any]) -> int:
    """Index of the empty string between the changed curves and the OK tids."""
    for i in range(5, len(out), 3):
        if not out[i]:
            return i
    raise StorageError("a report's reply lacks the list of trials that ended OK")


def _curve(raw: bytes | str, complete: bool) -> CurveData:
    c = codec.loads(raw)
    steps, values = c.get("s") or [], c.get("v") or []  # cjson writes an empty list as {}
    return CurveData(int(c["a"]), [int(s) for s in steps], [float(v) for v in values], complete)
