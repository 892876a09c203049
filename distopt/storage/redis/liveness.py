"""Who is alive, in Redis: per-trial heartbeats (a sorted set of deadlines, plus which
attempt and worker each beat is from) and the records workers publish about themselves."""

from __future__ import annotations

from typing import Any, Mapping

from ...trial import codec
from ...errors import StudyNotFound
from .connection import text
from .core import RedisStoreCore
from .errors import translating


class RedisLiveness(RedisStoreCore):
    """Heartbeat and worker-record operations of ``RedisStorage``."""

    @translating
    def heartbeat(self, name: str, tid: int, attempt: int, deadline: float, worker: str | None = None, *,
                  incarnation: str | None = None) -> None:
        """A beat from an older attempt than the one recorded, or from another incarnation
        of the study, is ignored, so a worker that was presumed dead cannot hide the
        liveness of the attempt that replaced it."""
        info = codec.dumps({"attempt": int(attempt), "worker": worker})
        self._run(self._heartbeat, name, self._beat_keys(name),
                  [int(tid), int(attempt), repr(float(deadline)), info, incarnation or ""])

    @translating
    def clear_heartbeat(self, name: str, tid: int, attempt: int | None = None, *,
                        incarnation: str | None = None) -> None:
        args = [str(int(tid)), "" if attempt is None else int(attempt), incarnation or ""]
        try:
            self._run_fenced(self._clear_heartbeat, name, self._beat_keys(name), args)
        except StudyNotFound:  # nothing left to clear
            pass

    def _beat_keys(self, name: str) -> list[str]:
        """The keys the heartbeat scripts take after the study set: the deadlines, who
        beat, and the meta holding the study's incarnation."""
        return [self.keys.heartbeats(name), self.keys.heartbeat_info(name), self.keys.meta(name)]

    def _beats(self, name: str, max_score: float | str) -> list[tuple[int, float, dict[str, Any]]]:
        zset, info = self.keys.heartbeats(name), self.keys.heartbeat_info(name)

        def fill(pipe: Any) -> None:
            pipe.zrangebyscore(zset, "-inf", max_score, withscores=True)
            pipe.hgetall(info)

        members, infos = self._read(name, fill)
        out = []
        for member, score in members:
            raw = infos.get(member)
            detail = codec.loads(raw) if raw is not None else {"attempt": 0, "worker": None}
            out.append((int(member), float(score), detail))
        return sorted(out, key=lambda b: b[0])

    @translating
    def expired_heartbeats(self, name: str, now: float) -> list[tuple[int, int]]:
        return [(tid, int(d["attempt"])) for tid, _, d in self._beats(name, f"({float(now)!r}")]

    @translating
    def heartbeats(self, name: str) -> dict[int, dict[str, Any]]:
        return {
            tid: {"attempt": int(d["attempt"]), "deadline": deadline, "worker": d.get("worker")}
            for tid, deadline, d in self._beats(name, "+inf")
        }

    # -- worker records ----------------------------------------------------------------
    @translating
    def beat_worker(self, worker: str, record: Mapping[str, Any], keep: float) -> None:
        """One MULTI: the record (expiring after ``keep``), its beat in the index, and the
        index pruned of workers silent for longer than ``keep``."""
        beat = float(record["beat"])
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self.keys.worker(worker), codec.dumps(dict(record)), px=max(1, int(round(float(keep) * 1000))))
        pipe.zadd(self.keys.workers, {worker: beat})
        pipe.zremrangebyscore(self.keys.workers, "-inf", f"({beat - float(keep)!r}")
        pipe.execute()

    @translating
    def forget_worker(self, worker: str) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(self.keys.worker(worker))
        pipe.zrem(self.keys.workers, worker)
        pipe.execute()

    @translating
    def worker_records(self) -> dict[str, dict[str, Any]]:
        ids = sorted(text(w) for w in self.client.zrange(self.keys.workers, 0, -1))
        if not ids:
            return {}
        texts = self.client.mget([self.keys.worker(w) for w in ids])
        return {w: codec.loads(t) for w, t in zip(ids, texts) if t is not None}
