"""Poll ``distopt.status`` from a script and print one line whenever something changes.

    python scripts/monitor_queue.py --redis redis://host:6379/0 [--study NAME] [--every 2]

An example of watching a study from your own code (to feed a dashboard, a chat bot or
an alert): the status document is plain JSON, so pick the fields you care about.
"""

from __future__ import annotations

import argparse
import os
import time

import distopt
from distopt.errors import DistoptError


def summary(doc: dict) -> list[str]:
    """One line per study and per queue; a line that differs from last time gets printed."""
    lines = []
    for name, st in doc["studies"].items():
        c = st["counts"]
        best = "-" if st["best"] is None else f"{st['best']['loss']:.6g}"
        lines.append(f"study {name}: {st['status']}, {c['queued']} queued, {c['running']} running, "
                     f"{c['ok']} ok, {c['fail']} failed, best {best}, {len(st['stale'])} stale")
        if st.get("resume"):
            lines.append(f"study {name}: no coordinator; resume with {st['resume']}")
    for name, q in doc["queues"].items():
        busy = sum(1 for w in q["workers"] if doc["workers"][w]["state"] == "busy")
        lines.append(f"queue {name}: {q['depth']} waiting, {busy}/{len(q['workers'])} workers busy"
                     + (f", {q['workers_dead']} dead" if q.get("workers_dead") else ""))
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default=os.environ.get("DISTOPT_REDIS_URL"), help="Redis URL")
    parser.add_argument("--study", default=None, help="only this study")
    parser.add_argument("--every", type=float, default=2.0, help="seconds between polls")
    args = parser.parse_args()
    if not args.redis:
        parser.error("pass --redis URL or set DISTOPT_REDIS_URL")
    last: set[str] = set()
    try:
        while True:
            try:
                lines = summary(distopt.status(args.redis, args.study))
            except DistoptError as exc:
                lines = [f"error: {exc}"]
            for line in lines:
                if line not in last:
                    print(time.strftime("%H:%M:%S"), line, flush=True)
            last = set(lines)
            time.sleep(args.every)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
