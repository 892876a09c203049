"""Cost of one pruning report (a value in, every curve out) as a study grows.

On one private redis-server, a study holds N trials with S reported steps each; one more
trial then reports S steps with a pruner's reply wanted. Two ways are timed in the same
run: the storage as it is (only curves changed since its last report travel), and the same
storage with its copy dropped before each report (every curve travels, as a worker's first
report does). Then the same for a whole report through ``Reporter`` with a median pruner:
as it is (curves the storage did not change are not rebuilt) and with every curve rebuilt
for the pruner. Prints medians and their ratios; ``--json-out`` writes them.

    python scripts/bench_report_cost.py                      # N = 500, 2000; S = 50
    python scripts/bench_report_cost.py --trials 200,1000 --steps 100 --json-out /tmp/rc.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distopt import hp  # noqa: E402
from distopt.pruners import MedianPruner  # noqa: E402
from distopt.storage import RedisStorage  # noqa: E402
from distopt.storage.redis.server import RedisServer  # noqa: E402
from distopt.study.study import Study  # noqa: E402
from distopt.trial.reporting import Reporter  # noqa: E402


def measure(url: str, name: str, n: int, steps: int) -> dict[str, float]:
    storage = RedisStorage(url)
    study = Study(hp.uniform("x", 0, 1), storage=storage, name=name, seed=0)
    trials = study.ask(n + 1)
    for t in trials[:-1]:  # the other trials' curves (no reply wanted)
        for s in range(steps):
            storage.report(name, t.tid, 0, s, 1.0 / (s + 1) + t.tid * 1e-6, want=False)
    last = trials[-1].tid
    incremental, full = [], []
    for s in range(steps):
        for times, drop in ((incremental, False), (full, True)):
            if drop:
                storage._curve_copies.clear()  # what a worker's first report on the study costs
            start = time.perf_counter()
            reply = storage.report(name, last, 0, 2 * s + drop, 0.5, want=True)
            times.append(time.perf_counter() - start)
            assert reply.curves is not None and len(reply.curves) == n + 1
    kept, rebuilt = [], []
    reporter = Reporter(storage, name, last, 0, pruner=MedianPruner(n_startup_trials=0, n_warmup_steps=0))
    for s in range(steps):
        for times, rebuild in ((kept, False), (rebuilt, True)):
            if rebuild:
                reporter._built.clear()  # every curve built anew for the pruner
            start = time.perf_counter()
            reporter.report(10 * steps + 2 * s + rebuild, 0.5)
            times.append(time.perf_counter() - start)
    storage.close()
    inc, whole = statistics.median(incremental[1:]), statistics.median(full)
    rep, rep_all = statistics.median(kept[1:]), statistics.median(rebuilt)
    return {"trials": n, "steps": steps, "incremental_ms": inc * 1e3, "full_ms": whole * 1e3, "ratio": whole / inc,
            "report_ms": rep * 1e3, "report_rebuild_ms": rep_all * 1e3, "report_ratio": rep_all / rep}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", default="500,2000", help="comma-separated numbers of other trials")
    ap.add_argument("--steps", type=int, default=50, help="steps each trial reported")
    ap.add_argument("--json-out", help="write the rows as JSON to this file")
    args = ap.parse_args()
    rows = []
    with RedisServer() as server:
        for i, n in enumerate(int(x) for x in args.trials.split(",")):
            rows.append(measure(server.url, f"cost{i}", n, args.steps))
    print("storage call: curves changed since the last report only, or every curve; whole report (storage call "
          "+ median pruner): changed curves rebuilt only, or every curve rebuilt")
    print(f"{'trials':>7} {'steps':>6} {'changed only (ms)':>18} {'every curve (ms)':>17} {'ratio':>7} "
          f"{'report (ms)':>12} {'rebuilt all (ms)':>17} {'ratio':>7}")
    for r in rows:
        print(f"{r['trials']:>7} {r['steps']:>6} {r['incremental_ms']:>18.2f} {r['full_ms']:>17.2f} {r['ratio']:>7.0f}x "
              f"{r['report_ms']:>12.2f} {r['report_rebuild_ms']:>17.2f} {r['report_ratio']:>7.1f}x")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
