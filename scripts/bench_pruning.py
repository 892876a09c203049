#!/usr/bin/env python
"""Pruning on learning-curve problems: regret against steps consumed, with and without
pruners, for distopt and optuna, under simulated asynchronous workers.

Time is steps: each of ``q`` workers runs one step (an epoch) per tick; a worker whose
trial completes or is pruned asks for the next one at once, while the others' trials are
still pending (the sampler sees them). Every optimizer gets the same total number of steps.
After each completed trial the user's pick is the complete trial with the lowest observed
final value; its regret is its true final value minus the problem's optimum.

Problems (27 steps a trial, so Hyperband's rungs are 1, 3, 9, 27):
- ``synthetic``: curves ``final(x) + exp(-k(lr) * t) + noise``; a larger ``lr`` converges
  faster to a worse final value, so early values mislead (crossing curves).
- ``synthetic-scaled``: curves ``final(x) * (1 + 3 exp(-k(lr) * t)) + noise``: early values
  rank trials much as final ones do (speed still depends on ``lr``).
- ``sgd-digits``: scikit-learn's ``SGDClassifier.partial_fit`` on the digits data set, one
  epoch a step, validation error as the value. Tabular: the curves of a 10 x 8 x 3 x 2 grid of
  (alpha, eta0, learning_rate schedule, loss) are computed once and cached; samplers search the
  continuous (log alpha, log eta0) and the two choices, snapped to the grid.

    nice -n 19 python scripts/bench_pruning.py --seeds 20 --jobs 2 --json-out /tmp/pruning.json --plot /tmp/pruning.png
    python scripts/bench_pruning.py --from-json /tmp/pruning.json --plot /tmp/pruning.png   # tables only
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import multiprocessing  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distopt import Study, hp, rand, tpe  # noqa: E402
from distopt.pruners import Curve, Snapshot, make_pruner  # noqa: E402

STEPS = 27
CACHE = Path(os.environ.get("DISTOPT_BENCH_CACHE", Path.home() / ".cache" / "distopt-bench"))


# -- problems ----------------------------------------------------------------------------
@dataclasses.dataclass
class Problem:
    name: str
    space: dict[str, Any]
    #: (name, kind, low, high or choices) for optuna's suggest_* calls
    params: list[tuple[str, str, Any, Any]]
    curve: Callable[[dict[str, Any], np.random.Generator], np.ndarray]  # observed values, STEPS long
    true_final: Callable[[dict[str, Any]], float]
    optimum: float


def synthetic() -> Problem:
    def final(v: dict[str, Any]) -> float:
        return (v["x1"] - 0.3) ** 2 + (v["x2"] - 0.65) ** 2 + 0.3 * v["lr"]

    def speed(v: dict[str, Any]) -> float:
        return 0.6 * math.sqrt(v["lr"])

    def curve(v: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        t = np.arange(1, STEPS + 1)
        return final(v) + np.exp(-speed(v) * t) + rng.normal(0.0, 0.01, STEPS)

    def true_final(v: dict[str, Any]) -> float:
        return final(v) + math.exp(-speed(v) * STEPS)

    lrs = np.exp(np.linspace(math.log(1e-3), 0.0, 200001))
    optimum = float(np.min(0.3 * lrs + np.exp(-0.6 * np.sqrt(lrs) * STEPS)))
    space = {"x1": hp.uniform("x1", 0, 1), "x2": hp.uniform("x2", 0, 1), "lr": hp.loguniform("lr", math.log(1e-3), 0)}
    params = [("x1", "float", 0.0, 1.0), ("x2", "float", 0.0, 1.0), ("lr", "log", 1e-3, 1.0)]
    return Problem("synthetic", space, params, curve, true_final, optimum)


def synthetic_scaled() -> Problem:
    """Curves ``final(x) * (1 + 3 exp(-k(lr) t)) + noise``: a trial's distance to its final
    value scales with the final value, so early values rank trials much as final ones do
    (speed still varies with ``lr``): the case pruning is made for."""
    def final(v: dict[str, Any]) -> float:
        return (v["x1"] - 0.3) ** 2 + (v["x2"] - 0.65) ** 2 + 0.05 * (math.log10(v["lr"]) + 1.0) ** 2

    def speed(v: dict[str, Any]) -> float:
        return 0.1 + 0.4 * math.sqrt(v["lr"])

    def curve(v: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        t = np.arange(1, STEPS + 1)
        return final(v) * (1.0 + 3.0 * np.exp(-speed(v) * t)) + rng.normal(0.0, 0.01, STEPS)

    def true_final(v: dict[str, Any]) -> float:
        return final(v) * (1.0 + 3.0 * math.exp(-speed(v) * STEPS))

    space = {"x1": hp.uniform("x1", 0, 1), "x2": hp.uniform("x2", 0, 1), "lr": hp.loguniform("lr", math.log(1e-3), 0)}
    params = [("x1", "float", 0.0, 1.0), ("x2", "float", 0.0, 1.0), ("lr", "log", 1e-3, 1.0)]
    return Problem("synthetic-scaled", space, params, curve, true_final, 0.0)


ALPHAS = np.logspace(-6, -1, 10)
ETAS = np.logspace(-4, 0, 8)
SCHEDULES = ("constant", "invscaling", "adaptive")
LOSSES = ("hinge", "log_loss")


def _sgd_table() -> dict[str, list[float]]:
    """Validation error after each epoch for every grid point, computed once and cached."""
    path = CACHE / f"sgd_digits_{STEPS}.json"
    if path.exists():
        return json.loads(path.read_text())
    from sklearn.datasets import load_digits
    from sklearn.linear_model import SGDClassifier
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.33, random_state=0, stratify=y)
    scaler = StandardScaler().fit(X_tr)
    X_tr, X_va = scaler.transform(X_tr), scaler.transform(X_va)
    classes = np.unique(y)
    table = {}
    started = time.time()
    for a in range(len(ALPHAS)):
        for e in range(len(ETAS)):
            for s, schedule in enumerate(SCHEDULES):
                for lo, loss in enumerate(LOSSES):
                    clf = SGDClassifier(loss=loss, alpha=ALPHAS[a], eta0=ETAS[e], learning_rate=schedule,
                                        random_state=0)
                    errs = []
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        for _ in range(STEPS):
                            clf.partial_fit(X_tr, y_tr, classes=classes)
                            errs.append(float(1.0 - clf.score(X_va, y_va)))
                    table[f"{a},{e},{s},{lo}"] = errs
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(table))
    print(f"cached {len(table)} SGD learning curves in {path} ({time.time() - started:.0f} s)", file=sys.stderr)
    return table


def sgd_digits() -> Problem:
    table = _sgd_table()

    def key(v: dict[str, Any]) -> str:
        a = int(np.argmin(np.abs(np.log10(ALPHAS) - v["log10_alpha"])))
        e = int(np.argmin(np.abs(np.log10(ETAS) - v["log10_eta0"])))
        return f"{a},{e},{SCHEDULES.index(v['schedule'])},{LOSSES.index(v['loss'])}"

    def curve(v: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        return np.asarray(table[key(v)])

    def true_final(v: dict[str, Any]) -> float:
        return table[key(v)][-1]

    space = {"log10_alpha": hp.uniform("log10_alpha", -6.25, -0.75),
             "log10_eta0": hp.uniform("log10_eta0", -4.25, 0.25),
             "schedule": hp.choice("schedule", list(SCHEDULES)), "loss": hp.choice("loss", list(LOSSES))}
    params = [("log10_alpha", "float", -6.25, -0.75), ("log10_eta0", "float", -4.25, 0.25),
              ("schedule", "cat", None, list(SCHEDULES)), ("loss", "cat", None, list(LOSSES))]
    return Problem("sgd-digits", space, params, curve, true_final, min(c[-1] for c in table.values()))


PROBLEMS: dict[str, Callable[[], Problem]] = {"synthetic": synthetic, "synthetic-scaled": synthetic_scaled,
                                              "sgd-digits": sgd_digits}


# -- optimizers --------------------------------------------------------------------------
class DistoptRun:
    """distopt's Study (ask/tell) with a pruner deciding on the curves reported so far:
    the same pure decision a worker takes on the curves one Redis round trip returns."""

    def __init__(self, problem: Problem, seed: int, algo: Any, pruner: Any) -> None:
        self.study = Study(problem.space, algo=algo, seed=seed, pruner=pruner)
        self.pruner = self.study.pruner
        self.steps: dict[int, tuple[list[int], list[float]]] = {}
        self.curves: dict[int, Curve] = {}
        self.n_complete = 0

    def ask(self) -> tuple[Any, dict[str, Any]]:
        trial = self.study.ask()
        return trial, trial.params

    def report(self, trial: Any, step: int, value: float) -> bool:
        steps, values = self.steps.setdefault(trial.tid, ([], []))
        steps.append(step)
        values.append(value)
        self.curves[trial.tid] = Curve(np.asarray(steps), np.asarray(values))
        return self.pruner.prune(Snapshot(trial.tid, self.curves, self.n_complete, self.study.name))

    def tell(self, trial: Any, value: float) -> None:
        self.study.tell(trial, value)
        c = self.curves[trial.tid]
        self.curves[trial.tid] = Curve(c.steps, c.values, True)
        self.n_complete += 1

    def tell_pruned(self, trial: Any) -> None:
        steps, values = self.steps[trial.tid]
        self.study.record_results([{"tid": trial.tid, "attempt": None, "ok": False, "loss": None, "result": {},
                                    "pruned": True, "last_step": steps[-1], "last_value": values[-1]}])


class OptunaRun:
    def __init__(self, problem: Problem, seed: int, pruner: Any) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        self.optuna = optuna
        self.problem = problem
        self.study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed), pruner=pruner)

    def ask(self) -> tuple[Any, dict[str, Any]]:
        t = self.study.ask()
        vals = {}
        for name, kind, low, high in self.problem.params:
            if kind == "cat":
                vals[name] = t.suggest_categorical(name, high)
            else:
                vals[name] = t.suggest_float(name, low, high, log=kind == "log")
        return t, vals

    def report(self, trial: Any, step: int, value: float) -> bool:
        trial.report(value, step)
        return trial.should_prune()

    def tell(self, trial: Any, value: float) -> None:
        self.study.tell(trial, value)

    def tell_pruned(self, trial: Any) -> None:
        self.study.tell(trial, state=self.optuna.trial.TrialState.PRUNED)


def _optuna_pruner(name: str) -> Any:
    import optuna

    return {"median": optuna.pruners.MedianPruner(), "hyperband": optuna.pruners.HyperbandPruner()}[name]


OPTIMIZERS: dict[str, Callable[[Problem, int], Any]] = {
    "distopt-tpe": lambda p, s: DistoptRun(p, s, tpe.suggest, None),
    "distopt-tpe+median": lambda p, s: DistoptRun(p, s, tpe.suggest, "median"),
    "distopt-tpe+percentile": lambda p, s: DistoptRun(p, s, tpe.suggest, "percentile"),
    "distopt-tpe+asha": lambda p, s: DistoptRun(p, s, tpe.suggest, "asha"),
    "distopt-tpe+hyperband": lambda p, s: DistoptRun(p, s, tpe.suggest, "hyperband"),
    "optuna-tpe+median": lambda p, s: OptunaRun(p, s, _optuna_pruner("median")),
    "optuna-tpe+hyperband": lambda p, s: OptunaRun(p, s, _optuna_pruner("hyperband")),
    "random+asha": lambda p, s: DistoptRun(p, s, rand.suggest, "asha"),
}


# -- the simulation ------------------------------------------------------------------------
def simulate(problem: Problem, optimizer: str, q: int, budget: int, seed: int) -> dict[str, Any]:
    """Run until ``budget`` steps are consumed; returns the regret after each completed
    trial as (steps consumed, regret) pairs, and the counts of trials."""
    rng = np.random.default_rng([seed, q, len(problem.name)])
    opt = OPTIMIZERS[optimizer](problem, seed)
    workers: list[list[Any] | None] = [None] * q
    consumed, n_complete, n_pruned, n_asked = 0, 0, 0, 0
    best_observed, regret = math.inf, math.inf
    trace: list[tuple[int, float]] = []
    started = time.perf_counter()
    while consumed < budget:
        for w in range(q):
            if consumed >= budget:
                break
            if workers[w] is None:
                handle, vals = opt.ask()
                workers[w] = [handle, vals, problem.curve(vals, rng), 0]
                n_asked += 1
            handle, vals, curve, step = workers[w]
            value = float(curve[step])
            consumed += 1
            if opt.report(handle, step, value):
                opt.tell_pruned(handle)
                n_pruned += 1
                workers[w] = None
            elif step == STEPS - 1:
                opt.tell(handle, value)
                n_complete += 1
                workers[w] = None
                if value < best_observed:
                    best_observed = value
                    regret = problem.true_final(vals) - problem.optimum
                trace.append((consumed, regret))
            else:
                workers[w][3] = step + 1
    return {"problem": problem.name, "optimizer": optimizer, "q": q, "seed": seed, "budget": budget,
            "trace": trace, "final_regret": regret, "n_complete": n_complete, "n_pruned": n_pruned,
            "n_trials": n_asked, "seconds": time.perf_counter() - started}


@functools.lru_cache(maxsize=None)
def _problem(name: str) -> Problem:
    return PROBLEMS[name]()


def _task(args: tuple[str, str, int, int, int]) -> dict[str, Any]:
    name, optimizer, q, budget, seed = args
    return simulate(_problem(name), optimizer, q, budget, seed)


# -- summaries -----------------------------------------------------------------------------
def regret_at(trace: list[list[float]], steps: int) -> float:
    out = math.inf
    for consumed, regret in trace:
        if consumed > steps:
            break
        out = regret
    return out


def checkpoints(budget: int, n: int = 24) -> list[int]:
    return sorted({int(round(budget * (i + 1) / n)) for i in range(n)})


def curves_of(records: list[dict[str, Any]], budget: int) -> dict[tuple[str, int, str], dict[str, list[float]]]:
    """(problem, q, optimizer) -> median and IQR of regret at each checkpoint."""
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["problem"], r["q"], r["optimizer"]), []).append(r)
    out = {}
    points = checkpoints(budget)
    for key, rs in groups.items():
        at = np.array([[regret_at(r["trace"], s) for s in points] for r in rs])  # inf before a first complete trial
        with np.errstate(invalid="ignore"):  # inf - inf between percentiles before any complete trial
            q25, med, q75 = (np.nan_to_num(np.percentile(at, p, axis=0), nan=np.inf).tolist() for p in (25, 50, 75))
        out[key] = {"steps": points, "median": med, "q25": q25, "q75": q75,
                    "n_seeds": len(rs),
                    "trials": float(np.median([r["n_trials"] for r in rs])),
                    "pruned": float(np.median([r["n_pruned"] for r in rs]))}
    return out


def fmt(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return "0" if x == 0 else (f"{x:.3g}" if abs(x) >= 1e-3 else f"{x:.2e}")


def steps_to_match(curve: dict[str, list[float]], target: float) -> int | None:
    """The first checkpoint at which the median regret is at most ``target``."""
    for s, m in zip(curve["steps"], curve["median"]):
        if m <= target:
            return s
    return None


def report(records: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    budget = records[0]["budget"]
    cur = curves_of(records, budget)
    problems = sorted({k[0] for k in cur})
    qs = sorted({k[1] for k in cur})
    lines, verdicts = [], {}
    for problem in problems:
        for q in qs:
            keys = [k for k in cur if k[0] == problem and k[1] == q]
            if not keys:
                continue
            base = cur.get((problem, q, "distopt-tpe"))
            lines.append(f"\n== {problem}, q={q}, budget {budget} steps ({budget // STEPS} full trials), "
                         f"{cur[keys[0]]['n_seeds']} seeds ==")
            half = budget // 2
            header = f"{'optimizer':<24}{'regret@25%':>12}{'@50%':>10}{'@100% median [IQR]':>30}{'trials':>8}" \
                     f"{'pruned':>8}{'steps to match':>16}"
            lines += [header, "-" * len(header)]
            for opt in OPTIMIZERS:
                c = cur.get((problem, q, opt))
                if c is None:
                    continue
                n = len(c["steps"])
                match = steps_to_match(c, base["median"][-1]) if base is not None else None
                lines.append(f"{opt:<24}{fmt(c['median'][n // 4 - 1]):>12}{fmt(c['median'][n // 2 - 1]):>10}"
                             f"{fmt(c['median'][-1]) + ' [' + fmt(c['q25'][-1]) + ', ' + fmt(c['q75'][-1]) + ']':>30}"
                             f"{c['trials']:>8.0f}{c['pruned']:>8.0f}{(str(match) if match else '-'):>16}")
            if base is None:
                continue
            for opt in ("distopt-tpe+asha", "distopt-tpe+hyperband"):
                c = cur.get((problem, q, opt))
                if c is None:
                    continue
                match = steps_to_match(c, base["median"][-1])
                verdicts[f"{problem} q={q} {opt}: lower final median regret than distopt-tpe"] = \
                    c["median"][-1] < base["median"][-1]
                verdicts[f"{problem} q={q} {opt}: matches distopt-tpe's final regret within half the steps"] = \
                    match is not None and match <= half
                hb = cur.get((problem, q, "optuna-tpe+hyperband"))
                if q == 8 and hb is not None:
                    verdicts[f"{problem} q={q} {opt}: lower final median regret than optuna-tpe+hyperband"] = \
                        c["median"][-1] < hb["median"][-1]
    lines.append("\n== targets ==")
    for name, ok in verdicts.items():
        lines.append(f"{'PASS' if ok else 'MISS'}  {name}")
    return "\n".join(lines), {"curves": {f"{k[0]}|q={k[1]}|{k[2]}": v for k, v in cur.items()},
                              "targets": verdicts}


def plot(records: list[dict[str, Any]], out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budget = records[0]["budget"]
    cur = curves_of(records, budget)
    problems = sorted({k[0] for k in cur})
    qs = sorted({k[1] for k in cur})
    fig, axes = plt.subplots(len(problems), len(qs), figsize=(5.6 * len(qs), 3.8 * len(problems)), squeeze=False)
    for ax, (problem, q) in zip(axes.flat, [(p, q) for p in problems for q in qs]):
        for opt in OPTIMIZERS:
            c = cur.get((problem, q, opt))
            if c is None:
                continue
            style = "-" if opt.startswith("distopt") else ("--" if opt.startswith("optuna") else ":")
            med = np.array(c["median"], dtype=float)
            line, = ax.plot(c["steps"], med, style, label=opt, linewidth=1.6)
            ax.fill_between(c["steps"], c["q25"], c["q75"], color=line.get_color(), alpha=0.08)
        ax.set_yscale("symlog", linthresh=1e-3)  # a regret of 0 stays on the plot
        ax.set_xlabel("steps consumed")
        ax.set_ylabel("regret of the best complete trial")
        ax.set_title(f"{problem}, q={q}")
        ax.grid(True, alpha=0.3)
    axes[0][-1].legend(fontsize=7, frameon=False, loc="upper right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


class _Serial:
    """The pool's interface, in this process (``--jobs 1``)."""

    def __enter__(self) -> "_Serial":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def imap_unordered(self, fn: Callable[[Any], Any], items: Any, chunksize: int = 1) -> Any:
        return map(fn, items)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", default=",".join(PROBLEMS))
    ap.add_argument("--optimizers", default=",".join(OPTIMIZERS))
    ap.add_argument("--q", default="1,8")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--budget", type=int, default=40 * STEPS, help="total steps per run (default: 40 full trials)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--json-out", default=None)
    ap.add_argument("--from-json", default=None, help="a --json-out file, or a --partial file of JSON lines")
    ap.add_argument("--partial", default=None, help="append each run's record to this file as it ends")
    ap.add_argument("--plot", default=None, help="PNG of median regret (and IQR) against steps consumed")
    args = ap.parse_args()
    if args.from_json:
        text = Path(args.from_json).read_text()
        records = json.loads(text)["records"] if text.lstrip().startswith("{\"records\"") else \
            [json.loads(line) for line in text.splitlines() if line.strip()]
    else:
        # seeds outermost: a run stopped early still has every optimizer on the same seeds
        tasks = [(p, o, q, args.budget, s) for s in range(args.seeds) for p in args.problems.split(",")
                 for q in map(int, args.q.split(",")) for o in args.optimizers.split(",")]
        unknown = sorted({t[1] for t in tasks} - set(OPTIMIZERS)) + sorted({t[0] for t in tasks} - set(PROBLEMS))
        if unknown:
            ap.error(f"unknown optimizer or problem {unknown}; known: {sorted(OPTIMIZERS)}, {sorted(PROBLEMS)}")
        for name in {t[0] for t in tasks}:
            _problem(name)  # build (and cache) the tables before forking
        started = time.time()
        records = []
        partial = open(args.partial, "a") if args.partial else None
        with multiprocessing.get_context("fork").Pool(args.jobs) if args.jobs > 1 else _Serial() as pool:
            for record in pool.imap_unordered(_task, tasks, chunksize=1):
                records.append(record)
                if partial is not None:  # one JSON line per run, as it ends: --from-json reads it back
                    partial.write(json.dumps(record) + "\n")
                    partial.flush()
        print(f"{len(records)} runs in {time.time() - started:.0f} s", file=sys.stderr)
    text, summary = report(records)
    print(text)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"records": records, **summary}, allow_nan=True))
    if args.plot:
        plot(records, args.plot)
        print(f"plot: {args.plot}", file=sys.stderr)


if __name__ == "__main__":
    main()
