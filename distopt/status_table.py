"""The status document as text tables for a terminal (``distopt status``).

Pure formatting of what ``distopt.monitor.status`` returns, so the text can be tested
without Redis and scripts can render a document they saved.
"""

from __future__ import annotations

import datetime
import json
from typing import Any, Mapping, Sequence

from .records import TrialState

_STATES = [s.value for s in TrialState]


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


def _studies(studies: Mapping[str, Any], width: int) -> list[str]:
    headers = ["STUDY", "STATUS", *(s.upper() for s in _STATES), "DONE", "BEST LOSS", "RATE/MIN", "ETA", "STALE"]
    rows = []
    for name, st in studies.items():
        done = f"{st['finished']}/{st['max_evals']}" if st["max_evals"] is not None else str(st["finished"])
        best = st["best"]
        rows.append([name, st["status"] or "-", *(st["counts"].get(s, 0) for s in _STATES), done,
                     _loss(best and best["loss"]), f"{st['rate_per_minute']:.1f}",
                     duration(st["eta_seconds"]), len(st["stale"])])
    lines = table(headers, rows, right=range(2, len(headers)))
    for name, st in studies.items():
        best = st["best"]
        if best is not None:
            params = json.dumps(best["params"], sort_keys=True)
            lines.append(_clip(f"  {name}: best trial {best['tid']}, loss {_loss(best['loss'])}: {params}", width))
        for s in st["stale"]:
            lines.append(
                f"  {name}: STALE trial {s['tid']} (attempt {s['attempt']}, {s['state']}) on {s['worker'] or '?'}: "
                f"liveness deadline passed {duration(s['overdue'])} ago"
            )
    return lines


def _queues(queues: Mapping[str, Any]) -> list[str]:
    rows = [[name, q["depth"], q["started"], q["failed"], len(q["workers"])] for name, q in queues.items()]
    return table(["QUEUE", "WAITING", "STARTED", "FAILED", "WORKERS"], rows, right=(1, 2, 3, 4))


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


def render(doc: Mapping[str, Any], width: int = 120) -> str:
    """The whole document: a header line, then studies, queues and workers."""
    when = datetime.datetime.fromtimestamp(doc["time"], tz=datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [f"distopt status · Redis {doc['redis']} · {when}", ""]
    lines += _studies(doc["studies"], width) if doc["studies"] else ["no studies"]
    lines.append("")
    lines += _queues(doc["queues"]) if doc["queues"] else ["no rq queues"]
    lines.append("")
    lines += _workers(doc["workers"]) if doc["workers"] else ["no workers: start some with `distopt worker --redis URL`"]
    return "\n".join(lines) + "\n"
