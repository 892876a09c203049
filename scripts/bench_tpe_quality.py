#!/usr/bin/env python
"""Search quality of distopt's TPE against optuna, hyperopt and random search under
simulated asynchronous parallel workers.

Every optimizer runs on the same problems, seeds and worker schedules (exponential trial
durations seeded by (problem, seed)). Prints the median best regret per problem and
optimizer for each number of workers q, mean ranks, the paired win rate of distopt
against optuna, and how much each optimizer degrades from q=1 to larger q.

    python scripts/bench_tpe_quality.py --seeds 20 --jobs 2 --json-out /tmp/quality.jsonl
    python scripts/bench_tpe_quality.py --from-json /tmp/quality.jsonl   # tables only
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one process per core; no nested BLAS threads

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import multiprocessing  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import report, wide  # noqa: E402
from benchlib.adapters import MAIN, OPTIMIZERS, distopt_level  # noqa: E402
from benchlib.problems import ALL_PROBLEMS, HELD_OUT, PROBLEMS  # noqa: E402
from benchlib.schedule import durations, run_async  # noqa: E402

DEFAULT_OPTIMIZERS = (
    "distopt", "distopt-worst", "distopt-best", "distopt-mean", "distopt-none",
    "optuna", "optuna-indep", "hyperopt", "random",
)
TARGETS = {"win_q1": 0.55, "win_q32": 0.65, "degradation_q32": 1.5}


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="problems: " + ", ".join(PROBLEMS) + "\nheld-out problems (not used to choose defaults): "
               + ", ".join(HELD_OUT) + "\noptimizers: " + ", ".join(OPTIMIZERS),
    )
    ap.add_argument("--problems", default="all",
                    help="comma-separated problem names, 'all' (default: the main 8) or 'heldout'")
    ap.add_argument("--q", default="1,8,32", help="comma-separated worker counts (default 1,8,32)")
    ap.add_argument("--optimizers", default=",".join(DEFAULT_OPTIMIZERS),
                    help="comma-separated optimizer names (default: %(default)s)")
    ap.add_argument("--seeds", type=int, default=20, help="number of seeds (default 20)")
    ap.add_argument("--seed-start", type=int, default=0,
                    help="first seed (default 0): seeds are START..START+N-1, e.g. 100 for a fresh set")
    ap.add_argument("--budget", type=int, default=100, help="trials per run (default 100)")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes over (problem, seed) (default 1)")
    ap.add_argument("--json-out", metavar="FILE", help="write one JSON line per run to FILE")
    ap.add_argument("--from-json", metavar="FILE", help="print the tables for records saved by --json-out; run nothing")
    args = ap.parse_args(argv)
    sets = {"all": list(PROBLEMS), "heldout": list(HELD_OUT)}
    args.problems = sets[args.problems] if args.problems in sets else _csv(args.problems)
    args.q = sorted({int(x) for x in _csv(args.q)})
    args.optimizers = _csv(args.optimizers)
    for p in args.problems:
        if p not in ALL_PROBLEMS:
            ap.error(f"unknown problem {p!r}; choose from {', '.join(ALL_PROBLEMS)}")
    for o in args.optimizers:
        if o not in OPTIMIZERS:
            ap.error(f"unknown optimizer {o!r}; choose from {', '.join(OPTIMIZERS)}")
    if args.seed_start < 0:
        ap.error("--seed-start must be >= 0")
    if args.seeds < 1 or args.budget < 1 or args.jobs < 1 or not args.q or min(args.q) < 1:
        ap.error("--seeds, --budget, --jobs and every --q must be positive")
    return args


def run_task(task: tuple[str, int, list[int], list[str], int]) -> list[dict]:
    """All optimizers and worker counts for one (problem, seed)."""
    problem_name, seed, qs, optimizers, budget = task
    warnings.simplefilter("ignore")
    problem = wide.problem(problem_name)
    schedule = durations(problem_name, seed, budget)
    records = []
    for q in qs:
        for name in optimizers:
            opt = OPTIMIZERS[name].make(problem.space, seed)
            res = run_async(opt, problem.fn, problem.optimum, budget, q, schedule, problem.truth)
            records.append({
                "problem": problem_name, "optimizer": name, "q": q, "seed": seed, "budget": budget,
                "best_regret": res.best_regret, "wall_seconds": round(res.wall_seconds, 4),
            })
    return records


def run_all(args: argparse.Namespace) -> list[dict]:
    tasks = [(p, s, args.q, args.optimizers, args.budget) for p in args.problems
             for s in range(args.seed_start, args.seed_start + args.seeds)]
    out = open(args.json_out, "w") if args.json_out else None
    records: list[dict] = []
    t0 = time.perf_counter()
    try:
        if args.jobs == 1:
            results = map(run_task, tasks)
        else:
            pool = multiprocessing.get_context("fork").Pool(args.jobs)
            results = pool.imap_unordered(run_task, tasks, chunksize=1)
        for i, recs in enumerate(results, 1):
            records.extend(recs)
            if out:
                for r in recs:
                    out.write(json.dumps(r) + "\n")
                out.flush()
            print(f"  [{i}/{len(tasks)}] {recs[0]['problem']} seed {recs[0]['seed']} "
                  f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
        if args.jobs != 1:
            pool.close()
            pool.join()
    finally:
        if out:
            out.close()
    return records


def load(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def summarize(records: list[dict]) -> str:
    problems = [p for p in ALL_PROBLEMS if any(r["problem"] == p for r in records)]
    optimizers = [o for o in OPTIMIZERS if any(r["optimizer"] == o for r in records)]
    qs = sorted({int(r["q"]) for r in records})
    budget = sorted({int(r["budget"]) for r in records})
    seeds = sorted({int(r["seed"]) for r in records})
    med = report.medians(records)
    scales = {p: ALL_PROBLEMS[p].scale for p in problems}
    main = [o for o in MAIN if o in optimizers]
    lines: list[str] = []
    add = lines.append

    add(f"budget {','.join(map(str, budget))} trials, {len(seeds)} seeds ({seeds[0]}..{seeds[-1]}), q in {qs}, "
        f"{len(problems)} problems; distopt driven at the {distopt_level()} level")
    add("regret = best f(x) found - known optimum; medians over seeds")
    for o in optimizers:
        add(f"  {o:<14} {OPTIMIZERS[o].description}")

    for q in qs:
        add("")
        add(f"== median best regret, q={q} ==")
        rows = []
        for p in problems:
            row_vals = [med.get((q, p, o)) for o in optimizers]
            present = [v for v in row_vals if v is not None]
            best = min(present) if present else None
            rows.append([p] + [
                "-" if v is None else report.fmt(v) + ("*" if v == best else " ") for v in row_vals
            ])
        add(report.table(["problem"] + optimizers, rows))
    add("(* = lowest median regret on that problem)")

    add("")
    add("== mean rank of median regret over problems (1 = best) ==")
    for label, group in (("main four", main), ("all variants", optimizers)):
        if len(group) < 2:
            continue
        ranks = {q: report.mean_ranks(med, q, problems, group) for q in qs}
        add(f"-- among {label}: {', '.join(group)}")
        add(report.table(["optimizer"] + [f"q={q}" for q in qs],
                         [[o] + [f"{ranks[q][o]:.2f}" for q in qs] for o in group]))

    add("")
    add("== paired win rate, distopt vs optuna (fraction of (problem, seed) pairs where distopt's best "
        "regret is lower; ties count half) ==")
    wins = {q: report.win_rate(records, q, "distopt", "optuna") for q in qs}
    add(report.table(["q", "win rate", "pairs"], [[q, f"{w:.3f}", n] for q, (w, n) in wins.items()]))

    add("")
    add(f"== degradation: median regret(q) / median regret(q=1), geometric mean over problems "
        f"(eps = {report.EPS_REL:g} x problem scale added to both; scale = median regret of 1000 prior draws) ==")
    degr_qs = [q for q in qs if q != 1]
    degr = {(o, q): report.degradation(med, q, o, problems, scales) for o in optimizers for q in degr_qs}
    if 1 in qs and degr_qs:
        add(report.table(["optimizer"] + [f"q={q}" for q in degr_qs],
                         [[o] + [f"{degr[(o, q)]:.2f}" for q in degr_qs] for o in optimizers]))
    else:
        add("(needs q=1 and another q)")

    if "optuna" in optimizers:
        add("")
        add("== median regret / optuna's median regret at the same q, geometric mean over problems "
            "(same eps; < 1 = better than optuna) ==")
        rel = {(o, q): report.relative(med, q, o, "optuna", problems, scales) for o in optimizers for q in qs}
        add(report.table(["optimizer"] + [f"q={q}" for q in qs],
                         [[o] + [f"{rel[(o, q)]:.2f}" for q in qs] for o in optimizers if o != "optuna"]))

    add("")
    add("== median wall seconds per run (ask + tell + objective) ==")
    wall: dict = {}
    for r in records:
        wall.setdefault((r["optimizer"], int(r["q"])), []).append(float(r["wall_seconds"]))
    import numpy as np  # noqa: PLC0415

    add(report.table(["optimizer"] + [f"q={q}" for q in qs],
                     [[o] + [f"{np.median(wall[(o, q)]):.3f}" if (o, q) in wall else "-" for q in qs]
                      for o in optimizers]))

    add("")
    add("== targets ==")
    rows = []
    if "distopt" in main and len(main) > 1:
        for q in qs:
            ranks = report.mean_ranks(med, q, problems, main)
            ok = ranks["distopt"] <= min(ranks.values()) + 1e-12
            rows.append([f"distopt has the best mean rank among {'/'.join(main)}, q={q}",
                         f"{ranks['distopt']:.2f} (best {min(ranks.values()):.2f}; "
                         f"first on every problem: {'yes' if ranks['distopt'] == 1.0 else 'no'})",
                         report.verdict(ok)])
    for q, key in ((1, "win_q1"), (32, "win_q32")):
        w = wins.get(q, (math.nan, 0))[0]
        rows.append([f"win rate distopt vs optuna at q={q} >= {TARGETS[key]}", f"{w:.3f}",
                     report.verdict(None if math.isnan(w) else w >= TARGETS[key])])
    d = degr.get(("distopt", 32), math.nan)
    rows.append([f"distopt degradation at q=32 <= {TARGETS['degradation_q32']}", f"{d:.2f}",
                 report.verdict(None if math.isnan(d) else d <= TARGETS["degradation_q32"])])
    add(report.table(["target", "value", "result"], rows))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.from_json:
        records = load(args.from_json)
    else:
        print(f"running {len(args.problems)} problems x {args.seeds} seeds x q {args.q} x "
              f"{len(args.optimizers)} optimizers, budget {args.budget}, {args.jobs} job(s)",
              file=sys.stderr, flush=True)
        records = run_all(args)
    print(summarize(records))


if __name__ == "__main__":
    main()
