"""What a trial says while it runs, in Redis: its intermediate values (the curves a
pruner judges) and the attachments it stores."""

from __future__ import annotations

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
        """One script call: the value is appended and, with ``want``, every curve comes back."""
        step, value = check_report(tid, step, value)
        keys = [self.keys.studies, self.keys.curves(name), self.keys.state(name, TrialState.OK)]
        out = self._report(keys=keys, args=[name, int(tid), int(attempt), step, repr(value), 1 if want else 0])
        if not isinstance(out, list):
            if int(out) == -1:
                raise self._missing(name)
            raise StorageError(f"unexpected reply {out!r} from Redis at {self.where} to a report")
        if not want:
            return ReportReply(bool(int(out[0])))
        curves = {int(out[i]): _curve(out[i + 1], bool(int(out[i + 2]))) for i in range(2, len(out), 3)}
        return ReportReply(bool(int(out[0])), curves, int(out[1]))

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


def _curve(raw: bytes | str, complete: bool) -> CurveData:
    c = codec.loads(raw)
    steps, values = c.get("s") or [], c.get("v") or []  # cjson writes an empty list as {}
    return CurveData(int(c["a"]), [int(s) for s in steps], [float(v) for v in values], complete)
