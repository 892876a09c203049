#!/usr/bin/env python
"""Search quality of distopt's TPE against optuna on the wide benchmark: 40 generated
mixed/conditional problems and 6 scikit-learn tasks, split into tuning and validation
instances (see benchlib/wide.py), under simulated asynchronous workers.

The same runs as ``bench_tpe_quality.py`` (same schedules, same adapters); the report
shows, per instance set and worker count, each optimizer's median regret relative to
optuna's (geometric mean over instances) and its paired win rate against optuna.
Defaults are chosen on the tuning set only; the validation set judges them.

    nice -n 19 python scripts/bench_tpe_wide.py --seeds 20 --jobs 2 --json-out /tmp/wide.jsonl
    python scripts/bench_tpe_wide.py --from-json /tmp/wide.jsonl [/tmp/more.jsonl ...]   # tables only

A setting is judged against the defaults, paired seed by seed, with ``distopt-custom``:

    DISTOPT_TPE_SETTINGS='{"local_share": 1.0}' python scripts/bench_tpe_wide.py --set tuning \
        --optimizers distopt,distopt-custom --reference distopt

The scikit-learn tasks read ``benchlib/data/sklearn_tables.json`` (committed; rebuild it
with ``scripts/build_sklearn_tables.py``). optuna's runs do not change when distopt
does: keep them in one file and pass it with ``--from-json`` next to new distopt runs.

Once the validation set has been looked at often, a fresh sample of generated instances
(any index past the 40, e.g. ``--problems gen40,...,gen79``, reported as "fresh") checks
a result on problems nothing was chosen on. ``--per-instance`` also counts the runs that
ended on each generated instance's best branch: below the other branches' lowest floor.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_tpe_quality as quality  # noqa: E402
from benchlib import report, wide  # noqa: E402
from benchlib.adapters import OPTIMIZERS  # noqa: E402

TARGET_RATIO, TARGET_WIN = 0.8, 0.6


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", default="both", choices=("tuning", "validation", "both"),
                    help="instances to run (default both)")
    ap.add_argument("--problems", help="comma-separated instance names instead of --set")
    ap.add_argument("--q", default="1,8,32", help="comma-separated worker counts (default 1,8,32)")
    ap.add_argument("--optimizers", default="distopt,optuna", help="comma-separated (default distopt,optuna)")
    ap.add_argument("--seeds", type=int, default=20, help="number of seeds (default 20)")
    ap.add_argument("--seed-start", type=int, default=0, help="first seed (default 0)")
    ap.add_argument("--budget", type=int, default=100, help="trials per run (default 100)")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes over (instance, seed) (default 1)")
    ap.add_argument("--json-out", metavar="FILE", help="write one JSON line per run to FILE")
    ap.add_argument("--from-json", metavar="FILE", nargs="+", help="report on saved records; run nothing")
    ap.add_argument("--per-instance", action="store_true", help="also print each instance's median regrets")
    ap.add_argument("--reference", default="optuna",
                    help="optimizer the others are compared with (default optuna); e.g. distopt to judge "
                         "distopt-custom's $DISTOPT_TPE_SETTINGS against the defaults, seed by seed")
    args = ap.parse_args(argv)
    sets = wide.sets()
    if args.problems:
        args.problems = [p.strip() for p in args.problems.split(",") if p.strip()]
        for p in args.problems:
            try:
                wide.problem(p)
            except KeyError:
                ap.error(f"unknown instance {p!r}; see benchlib/wide.py")
    else:
        names = ("tuning", "validation") if args.set == "both" else (args.set,)
        args.problems = [p for n in names for p in sets[n]]
    args.q = sorted({int(x) for x in args.q.split(",") if x.strip()})
    args.optimizers = [o.strip() for o in args.optimizers.split(",") if o.strip()]
    for o in args.optimizers:
        if o not in OPTIMIZERS:
            ap.error(f"unknown optimizer {o!r}; choose from {', '.join(OPTIMIZERS)}")
    if args.seeds < 1 or args.budget < 1 or args.jobs < 1 or not args.q or min(args.q) < 1:
        ap.error("--seeds, --budget, --jobs and every --q must be positive")
    return args


def summarize(records: list[dict], per_instance: bool = False, reference: str = "optuna") -> str:
    med = report.medians(records)
    qs = sorted({int(r["q"]) for r in records})
    optimizers = [o for o in OPTIMIZERS if any(r["optimizer"] == o for r in records)]
    others = [o for o in optimizers if o != reference]
    seeds = sorted({int(r["seed"]) for r in records})
    budget = sorted({int(r["budget"]) for r in records})
    lines = [f"budget {','.join(map(str, budget))}, {len(seeds)} seeds ({seeds[0]}..{seeds[-1]}), q in {qs}; "
             f"ratio = geometric mean over instances of (median regret + eps) / ({reference}'s + eps), "
             f"eps = {report.EPS_REL:g} x instance scale; win = paired win rate against {reference} (ties half)"]
    verdicts = []
    for label in ("tuning", "validation", "fresh", "classic"):
        problems = [p for p in dict.fromkeys(str(r["problem"]) for r in records) if wide.set_of(p) == label]
        if not problems:
            continue
        scales = {p: wide.problem(p).scale for p in problems}
        lines += ["", f"== {label} instances ({len(problems)}) =="]
        rows = []
        for o in others:
            row = [o]
            for q in qs:
                ratio = report.relative(med, q, o, reference, problems, scales)
                sub = [r for r in records if r["problem"] in problems]
                win, n = report.win_rate(sub, q, o, reference)
                row += [f"{ratio:.2f}", f"{win:.2f} ({n})"]
                if label == "validation" and o == "distopt":
                    verdicts.append((q, ratio, win, n))
            rows.append(row)
        lines.append(report.table(["optimizer"] + [h for q in qs for h in (f"ratio q={q}", f"win q={q}")], rows))
        if per_instance:
            for q in qs:
                lines += ["", f"-- median regret, paired win rate against {reference}, and the share of runs "
                              f"that ended on the best branch (generated instances), {label}, q={q}"]
                lines.append(report.table(
                    ["instance"] + optimizers + [f"win {o}" for o in others] + [f"branch {o}" for o in optimizers],
                    [[p] + [report.fmt(med.get((q, p, o), math.nan)) for o in optimizers]
                     + [_win_cell(records, p, q, o, reference) for o in others]
                     + [_branch_cell(records, p, q, o) for o in optimizers] for p in problems]))
                found = {o: _branch_counts(records, problems, q, o) for o in optimizers}
                if any(n for _, n in found.values()):
                    lines.append("runs that ended on the best branch: "
                                 + ", ".join(f"{o} {k}/{n}" for o, (k, n) in found.items()))
    if verdicts:
        lines += ["", f"== target on validation: ratio <= {TARGET_RATIO} and win >= {TARGET_WIN} at every q =="]
        lines.append(report.table(["q", "ratio", "win", "pairs", "result"], [
            [q, f"{ratio:.2f}", f"{win:.3f}", n, report.verdict(ratio <= TARGET_RATIO and win >= TARGET_WIN)]
            for q, ratio, win, n in verdicts]))
    wall: dict = {}
    for r in records:
        wall.setdefault((r["optimizer"], int(r["q"])), []).append(float(r["wall_seconds"]))
    lines += ["", "== median wall seconds per run =="]
    lines.append(report.table(["optimizer"] + [f"q={q}" for q in qs],
                              [[o] + [f"{np.median(wall[(o, q)]):.3f}" if (o, q) in wall else "-" for q in qs]
                               for o in optimizers]))
    return "\n".join(lines)


def _win_cell(records: list[dict], problem: str, q: int, optimizer: str, reference: str) -> str:
    """One instance's paired win rate: where an overall rate near 0.5 comes from (an
    instance both optimizers finish on the same plateau scores exactly 0.50)."""
    win, n = report.win_rate([r for r in records if r["problem"] == problem], q, optimizer, reference)
    return f"{win:.2f}" if n else "-"


def _branch_counts(records: list[dict], problems: list[str], q: int, optimizer: str) -> tuple[int, int]:
    """(runs that ended on the best branch, runs) over the generated ones of ``problems``:
    there an easy branch bottoms out above a harder one, and two optimizers that both
    settle on it tie."""
    floors = {p: wide.trap_floor(p) for p in problems}
    found = runs = 0
    for r in records:
        floor = floors.get(str(r["problem"]))
        if floor is not None and int(r["q"]) == q and r["optimizer"] == optimizer:
            runs += 1
            found += float(r["best_regret"]) < floor
    return found, runs


def _branch_cell(records: list[dict], problem: str, q: int, optimizer: str) -> str:
    found, runs = _branch_counts(records, [problem], q, optimizer)
    return f"{found}/{runs}" if runs else "-"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.from_json:
        records = [r for path in args.from_json for r in quality.load(path)]
    else:
        print(f"running {len(args.problems)} instances x {args.seeds} seeds x q {args.q} x "
              f"{len(args.optimizers)} optimizers, budget {args.budget}, {args.jobs} job(s)", file=sys.stderr, flush=True)
        records = quality.run_all(args)
    if not any(r["optimizer"] == args.reference for r in records):
        sys.exit(f"--reference {args.reference}: no runs of that optimizer in these records "
                 f"(optimizers: {sorted({r['optimizer'] for r in records})})")
    print(summarize(records, args.per_instance, args.reference))


if __name__ == "__main__":
    main()
