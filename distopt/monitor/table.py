"""The status document as text tables for a terminal (``distopt status``).

Pure formatting of what ``distopt.monitor.document.status`` returns, so the text can be tested
without Redis and scripts can render a document they saved.
"""

from __future__ import annotations

import datetime
import json
from typing import Any, Mapping, Sequence

from ..trial.record import TrialState

#: Columns of the studies table: pending trials by what they are doing, then ended states.
_COUNTS = ["queued", "taken", "running", "waiting"] + [s.value for s in TrialState if not s.pending]
#: Studies that are not active beyond this many are folded into one line.
SHOW_INACTIVE = 5
_ACTIVE = ("running", "interrupted", "created")


def duration(seconds: float | None) -> str:
    """12s, 4m05s, 2h03m, 3d04h: short enough for a column."""
    if seconds is None:
        return "-"
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _loss(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[int] = ()) -> list[str]:
    """Columns padded to their widest cell; indexes in ``right`` are right-aligned."""
    cells = [[str(c) for c in headers]] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(parts).rstrip())
    return lines


def _count(st: Mapping[str, Any], name: str) -> Any:
    return st["counts"].get(name, 0)


def _studies(studies: Mapping[str, Any], width: int, show_inactive: int | None = SHOW_INACTIVE) -> list[str]:
    """Active studies (running, interrupted, created) all shown; of the others the
    ``show_inactive`` most recent, the rest folded into one line."""
    active = {n: st for n, st in studies.items() if st["status"] in _ACTIVE}
    others = [(n, st) for n, st in studies.items() if st["status"] not in _ACTIVE]
    shown_others = others if show_inactive is None else others[:show_inactive]
    shown = {**active, **dict(shown_others)}
    headers = ["STUDY", "STATUS", *(c.upper() for c in _COUNTS), "DONE", "BEST LOSS", "RATE/MIN", "ETA", "STALE"]
    rows = []
    for name, st in shown.items():
        done = f"{st['finished']}/{st['max_evals']}" if st["max_evals"] is not None else str(st["finished"])
        best = st["best"]
        rows.append([name, st["status"] or "-", *(_count(st, c) for c in _COUNTS), done,
                     _loss(best and best["loss"]), f"{st['rate_per_minute']:.1f}",
                     duration(st["eta_seconds"]), len(st["stale"])])
    lines = table(headers, rows, right=range(2, len(headers)))
    folded = len(others) - len(shown_others)
    if folded:
        lines.append(f"  ... and {folded} older ended studies (`distopt studies` lists them all)")
    for name, st in shown.items():
        if st["status"] not in _ACTIVE:
            continue
        if st.get("resume"):
            lines.append(_clip(f"  {name}: INTERRUPTED, no coordinator holds it; resume it with: {st['resume']}",
                               max(width, 160)))
        best = st["best"]
        if best is not None:
            params = json.dumps(best["params"], sort_keys=True)
            lines.append(_clip(f"  {name}: best trial {best['tid']}, loss {_loss(best['loss'])}: {params}", width))
        if _count(st, "waiting"):
            lines.append(f"  {name}: {_count(st, 'waiting')} results wait in the inbox for a coordinator to record them")
        for s in st["stale"]:
            lines.append(
                f"  {name}: STALE trial {s['tid']} (attempt {s['attempt']}, {s['state']}) on {s['worker'] or '?'}: "
                f"liveness deadline passed {duration(s['overdue'])} ago"
            )
    return lines


def _queues(queues: Mapping[str, Any]) -> list[str]:
    rows = [[name, q["depth"], q["started"], q["failed"], len(q["workers"]), q.get("workers_dead", 0)]
            for name, q in queues.items()]
    return table(["QUEUE", "WAITING", "STARTED", "FAILED", "WORKERS", "DEAD"], rows, right=(1, 2, 3, 4, 5))


def _workers(workers: Mapping[str, Any]) -> list[str]:
    rows = []
    for name, w in workers.items():
        t = w["trial"]
        trial = f"{t['study']} #{t['tid']} (attempt {t['attempt']})" if t else (w["job"] or "-")
        age = "-" if w["heartbeat_age"] is None else f"{duration(w['heartbeat_age'])} ago"
        v = w.get("versions") or {}
        versions = f"py {v.get('python', '?')}, cloudpickle {v.get('cloudpickle', '?')}" if v else "-"
        rows.append([name, w["hostname"], w["pid"], w["state"], ",".join(w["queues"]), trial, age, versions])
    return table(["WORKER", "HOST", "PID", "STATE", "QUEUES", "TRIAL", "HEARTBEAT", "VERSIONS"], rows, right=(2,))


def render(doc: Mapping[str, Any], width: int = 120, show_inactive: int | None = SHOW_INACTIVE) -> str:
    """The whole document: a header line, then studies (ended ones beyond
    ``show_inactive`` folded; None shows all), queues and workers."""
    when = datetime.datetime.fromtimestamp(doc["time"], tz=datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [f"distopt status · Redis {doc['redis']} · {when}", ""]
    lines += _studies(doc["studies"], width, show_inactive) if doc["studies"] else ["no studies"]
    lines.append("")
    lines += _queues(doc["queues"]) if doc["queues"] else ["no rq queues"]
    lines.append("")
    lines += _workers(doc["workers"]) if doc["workers"] else ["no workers: start some with `distopt worker --redis URL`"]
    return "\n".join(lines) + "\n"
