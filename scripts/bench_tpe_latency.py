#!/usr/bin/env python
"""Ask latency of distopt's TPE against optuna and hyperopt on long histories.

Each library's study is filled with the same n finished trials (random points, random
losses) and ``--pending`` running ones (default 0), then asked for one suggestion
``--repeats`` times; every asked trial is discarded (cancelled / failed / never inserted)
so each ask sees exactly n finished and ``--pending`` running trials. Running trials are
what a parallel study asks with: distopt and optuna (constant liar) model them, hyperopt
counts them with loss +inf. Peak memory is tracemalloc's peak during one extra ask.

    python scripts/bench_tpe_latency.py                       # n = 100, 1000, 10000
    python scripts/bench_tpe_latency.py --n 1000 --pending 31 # as asked with 32 workers
    python scripts/bench_tpe_latency.py --n 1000 --repeats 3 --json-out /tmp/latency.jsonl
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
import warnings  # noqa: E402
from typing import Any, Callable  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from benchlib import report  # noqa: E402
from benchlib.adapters import distopt_level, optuna_distribution, optuna_vals, to_hyperopt  # noqa: E402
from distopt.algo import History  # noqa: E402
from distopt.algo.prior import sample_prior_point  # noqa: E402
from distopt.space import compile_space, hp, space_eval  # noqa: E402

SPACES: dict[str, Any] = {
    "cont10": {f"x{i}": hp.uniform(f"x{i}", -5.0, 5.0) for i in range(10)},
    "mixed": {
        "lr": hp.loguniform("lr", math.log(1e-5), math.log(1.0)),
        "weight_decay": hp.loguniform("weight_decay", math.log(1e-6), math.log(1e-2)),
        "momentum": hp.uniform("momentum", 0.0, 0.99),
        "layers": hp.uniformint("layers", 1, 10),
        "units": hp.uniformint("units", 16, 512),
        "activation": hp.choice("activation", ["relu", "tanh", "sigmoid", "elu"]),
        "optimizer": hp.choice("optimizer", ["sgd", "adam", "rmsprop"]),
        "dropout": hp.uniform("dropout", 0.0, 0.8),
    },
}
LIBRARIES = ("distopt", "optuna", "hyperopt")
TARGET_RATIO = 10.0
TARGET_NS = (1000, 10000)


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", default="100,1000,10000", help="finished trials before asking (default %(default)s)")
    ap.add_argument("--spaces", default=",".join(SPACES), help="comma-separated: " + ", ".join(SPACES))
    ap.add_argument("--optimizers", default=",".join(LIBRARIES), help="comma-separated: " + ", ".join(LIBRARIES))
    ap.add_argument("--repeats", type=int, default=15, help="timed asks per (space, n, library) (default 15)")
    ap.add_argument("--pending", type=int, default=0, help="running trials while asking (default 0)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json-out", metavar="FILE", help="write one JSON line per (space, n, library)")
    args = ap.parse_args(argv)
    args.n = [int(x) for x in _csv(args.n)]
    args.spaces = _csv(args.spaces)
    args.optimizers = _csv(args.optimizers)
    for s in args.spaces:
        if s not in SPACES:
            ap.error(f"unknown space {s!r}; choose from {', '.join(SPACES)}")
    for o in args.optimizers:
        if o not in LIBRARIES:
            ap.error(f"unknown optimizer {o!r}; choose from {', '.join(LIBRARIES)}")
    if args.repeats < 1 or not args.n or min(args.n) < 1:
        ap.error("--repeats and every --n must be positive")
    if args.pending < 0:
        ap.error("--pending must be >= 0")
    return args


def history_points(space: Any, n: int, seed: int) -> tuple[list[dict], list[float]]:
    """n prior draws (flat distopt values) with random losses."""
    rng = np.random.default_rng(seed)
    compiled = compile_space(space)
    points = [sample_prior_point(compiled, rng) for _ in range(n)]
    return points, [float(x) for x in rng.random(n)]


# -- one "asker" per library: fill with the history, return a zero-argument ask ---------
def distopt_asker(space: Any, points: list[dict], losses: list[float], seed: int,
                  running: list[dict]) -> Callable[[], Any]:
    from distopt.algo import tpe  # noqa: PLC0415

    if distopt_level() == "study":
        from distopt.study.study import Study  # noqa: PLC0415

        study = Study(space, algo=tpe.suggest, seed=seed)
        for vals, loss in zip(points, losses):
            study.add_trial(vals, loss)
        for vals in running:
            study.enqueue(vals)
            study.ask()  # asked, never told: pending while the timed asks run

        def ask() -> Any:
            trial = study.ask()
            study.cancel([trial.tid])  # keep n finished, nothing pending
            return trial.params

        return ask
    compiled = compile_space(space)
    history = History(compiled)
    for vals, loss in zip(points, losses):
        history.add(vals, loss)
    rng = np.random.default_rng(seed)
    pending = history.encode_many(running)
    return lambda: space_eval(space, tpe.suggest(compiled, history, pending, 1, rng)[0])


def optuna_asker(space: Any, points: list[dict], losses: list[float], seed: int,
                 running: list[dict]) -> Callable[[], Any]:
    import optuna  # noqa: PLC0415

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    compiled = compile_space(space)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    dists = {spec.label: optuna_distribution(spec) for spec in compiled}
    trials = []
    for vals, loss in zip(points, losses):
        params = {k: dists[k][1](v) for k, v in vals.items()}
        trials.append(optuna.trial.create_trial(
            params=params, distributions={k: dists[k][0] for k in vals}, value=loss,
        ))
    study.add_trials(trials)
    for vals in running:
        study.enqueue_trial({k: dists[k][1](v) for k, v in vals.items()})
        optuna_vals(study.ask(), compiled)  # running, never told

    def ask() -> Any:
        trial = study.ask()
        params = space_eval(space, optuna_vals(trial, compiled))
        study.tell(trial, state=optuna.trial.TrialState.FAIL)  # keep n finished, nothing running
        return params

    return ask


def hyperopt_asker(space: Any, points: list[dict], losses: list[float], seed: int,
                   running: list[dict]) -> Callable[[], Any]:
    import hyperopt  # noqa: PLC0415
    from hyperopt import base  # noqa: PLC0415

    hspace = to_hyperopt(space)
    domain = base.Domain(lambda _: 0.0, hspace)
    trials = base.Trials()
    labels = list(domain.params)
    everything = points + running
    tids = trials.new_trial_ids(len(everything))
    miscs, results = [], []
    for i, (tid, vals) in enumerate(zip(tids, everything)):
        miscs.append({
            "tid": tid, "cmd": domain.cmd, "workdir": domain.workdir,
            "idxs": {k: [tid] if k in vals else [] for k in labels},
            "vals": {k: [vals[k]] if k in vals else [] for k in labels},
        })
        done = i < len(points)
        results.append({"loss": losses[i], "status": hyperopt.STATUS_OK} if done else {"status": "new"})
    docs = trials.new_trial_docs(tids, [None] * len(tids), results, miscs)
    for i, d in enumerate(docs):
        d["state"] = base.JOB_STATE_DONE if i < len(points) else base.JOB_STATE_RUNNING
    trials.insert_trial_docs(docs)
    trials.refresh()
    rstate = np.random.default_rng(seed)

    def ask() -> Any:
        # what FMinIter.run does per suggestion: new ids, refresh, algo (not inserted)
        new_ids = trials.new_trial_ids(1)
        trials.refresh()
        (doc,) = hyperopt.tpe.suggest(new_ids, domain, trials, rstate.integers(2**31 - 1))
        return hyperopt.space_eval(hspace, {k: v[0] for k, v in doc["misc"]["vals"].items() if v})

    return ask


ASKERS = {"distopt": distopt_asker, "optuna": optuna_asker, "hyperopt": hyperopt_asker}


def measure(ask: Callable[[], Any], repeats: int) -> dict[str, float]:
    ask()  # warm-up: first-call imports and caches
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ask()
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    tracemalloc.reset_peak()
    ask()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"min_s": min(times), "median_s": statistics.median(times), "peak_bytes": peak}


def ms(x: float | None) -> str:
    return "-" if x is None else (f"{x * 1e3:.2f}" if x < 1 else f"{x * 1e3:.0f}")


def summarize(rows: list[dict], optimizers: list[str]) -> str:
    pend = sorted({int(r.get("pending", 0)) for r in rows})
    pending_note = f" with {','.join(map(str, pend))} running" if pend != [0] else ""
    by = {(r["space"], r["n"], r["optimizer"]): r for r in rows}
    keys = sorted({(r["space"], r["n"]) for r in rows}, key=lambda k: (list(SPACES).index(k[0]), k[1]))
    header = ["space", "n"]
    for o in optimizers:
        header += [f"{o} min ms", f"{o} med ms"]
    others = [o for o in optimizers if o != "distopt"]
    if "distopt" in optimizers:
        header += [f"{o}/distopt {stat}" for o in others for stat in ("med", "min")]
    header += [f"{o} peak MB" for o in optimizers]
    table_rows = []
    for space, n in keys:
        row = [space, str(n)]
        for o in optimizers:
            r = by.get((space, n, o))
            row += [ms(r and r["min_s"]), ms(r and r["median_s"])]
        if "distopt" in optimizers:
            d = by.get((space, n, "distopt"))
            for o in others:
                r = by.get((space, n, o))
                for stat in ("median_s", "min_s"):
                    row.append(f"{r[stat] / d[stat]:.1f}x" if r and d else "-")
        for o in optimizers:
            r = by.get((space, n, o))
            row.append(f"{r['peak_bytes'] / 2**20:.1f}" if r else "-")
        table_rows.append(row)
    lines = [
        f"ask latency after n finished trials{pending_note} (ms; min and median over repeats); ratios of medians and of minima; "
        f"distopt driven at the {distopt_level()} level; peak = tracemalloc peak during one ask",
        report.table(header, table_rows),
    ]
    if "distopt" in optimizers and "optuna" in optimizers:
        trows = []
        for space, n in keys:
            if n not in TARGET_NS:
                continue
            d, o = by.get((space, n, "distopt")), by.get((space, n, "optuna"))
            if d and o:
                ratio = o["median_s"] / d["median_s"]
                trows.append([f"{space}, n={n}: optuna/distopt median ask >= {TARGET_RATIO:g}x",
                              f"{ratio:.1f}x (min/min {o['min_s'] / d['min_s']:.1f}x)",
                              report.verdict(ratio >= TARGET_RATIO)])
        if trows:
            lines += ["", "== targets ==", report.table(["target", "value", "result"], trows)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    warnings.simplefilter("ignore")
    rows = []
    out = open(args.json_out, "w") if args.json_out else None
    try:
        for space_name in args.spaces:
            space = SPACES[space_name]
            for n in args.n:
                points, losses = history_points(space, n + args.pending, args.seed)
                points, running, losses = points[:n], points[n:], losses[:n]
                for lib in args.optimizers:
                    t0 = time.perf_counter()
                    ask = ASKERS[lib](space, points, losses, args.seed, running)
                    fill = time.perf_counter() - t0
                    res = measure(ask, args.repeats)
                    row = {"space": space_name, "n": n, "pending": args.pending, "optimizer": lib, "repeats": args.repeats,
                           **res, "fill_s": round(fill, 3)}
                    if lib == "distopt":
                        row["level"] = distopt_level()
                    rows.append(row)
                    print(f"  {space_name} n={n} {lib}: median {ms(res['median_s'])} ms (fill {fill:.1f} s)",
                          file=sys.stderr, flush=True)
                    if out:
                        out.write(json.dumps(row) + "\n")
                        out.flush()
    finally:
        if out:
            out.close()
    print(summarize(rows, args.optimizers))


if __name__ == "__main__":
    main()
