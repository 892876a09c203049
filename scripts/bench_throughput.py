#!/usr/bin/env python
"""Throughput of distributed trials: distopt against raw RQ and optuna, on one private
redis-server, with the same number of worker processes.

For 1, 2 and 4 processes and a trivial objective (1,000 trials):

- distopt: ``fmin`` + ``RedisTrials`` with TPE (and random search, to isolate the
  dispatch cost), ``distopt worker`` processes (rq SimpleWorker);
- raw RQ: the same worker processes running 1,000 trivial rq jobs enqueued at once;
- optuna: that many processes each running ``study.optimize`` with TPE on
  ``JournalStorage(JournalRedisBackend(url))``.

Rates are trials per second over the whole run and over its first and last 20 % (a
sampler or storage that slows down as the history grows shows there). Then a scale
check: 32 workers, an objective sleeping 0.5 s, 320 trials, against the ideal 64/s.

    python scripts/bench_throughput.py                       # everything, table on stdout
    python scripts/bench_throughput.py --repeat 3 --json-out /tmp/tp.json   # medians of 3
    python scripts/bench_throughput.py --workers 1,2 --skip-optuna --sleep-workers 0
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import multiprocessing  # noqa: E402
import secrets  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any, Callable, Iterator  # noqa: E402

import redis  # noqa: E402

from distopt import fmin, hp, rand, tpe  # noqa: E402
from distopt.dispatch import rq_queue  # noqa: E402
from distopt.worker.rq_worker import count_workers  # noqa: E402
from distopt.storage.redis.server import RedisServer  # noqa: E402
from distopt.redis_trials import RedisTrials  # noqa: E402
from distopt.worker.pool import WorkerPool  # noqa: E402

TARGETS = {"vs_optuna": 3.0, "vs_raw_rq": 0.8, "sleep_efficiency": 0.95, "decline": 0.8}
SPACE = hp.uniform("x", -5.0, 5.0)


def trivial(x: float) -> float:
    return x * x


def sleepy(x: float) -> float:
    time.sleep(0.5)
    return x * x


# -- rates -------------------------------------------------------------------------------
def rates(start: float, ends: list[float]) -> dict[str, float]:
    """Trials/s overall and over the first and last 20 % of completions."""
    ends = sorted(ends)
    n = len(ends)
    k = max(1, n // 5)
    overall = n / (ends[-1] - start)
    first = k / (ends[k - 1] - start)
    last = k / max(1e-9, ends[-1] - ends[n - k - 1])
    return {"n": n, "overall": overall, "first20": first, "last20": last, "elapsed": ends[-1] - start}


def wait_for_workers(url: str, queue: str, n: int, timeout: float = 120.0) -> None:
    conn = redis.Redis.from_url(url)
    deadline = time.monotonic() + timeout
    while count_workers(conn, queue) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {count_workers(conn, queue)} of {n} workers registered on {queue!r}")
        time.sleep(0.05)
    conn.close()


# -- distopt -----------------------------------------------------------------------------
def run_distopt(url: str, secret: bytes, queue: str, name: str, fn: Callable[[float], float], n_trials: int,
                parallelism: int, algo: Any) -> dict[str, float]:
    trials = RedisTrials(url, exp_key=name, queue=queue, secret=secret)
    start = time.time()
    fmin(fn, SPACE, algo=algo, max_evals=n_trials, trials=trials, parallelism=parallelism, rstate=0,
         show_progressbar=False)
    records = [r for r in trials.study.trials if r.state.finished]
    result = rates(start, [r.refresh_time for r in records])
    result["failed"] = sum(1 for r in records if r.state.value != "ok")
    return result


# -- raw rq ------------------------------------------------------------------------------
@contextlib.contextmanager
def plain_rq_workers(url: str, queue: str, n: int) -> Iterator[None]:
    """``n`` rq SimpleWorker processes of rq's own CLI on ``queue``: a distopt worker refuses
    any job but distopt's trial job, so raw RQ gets workers of its own (idle ones block in
    one BLPOP and cost nothing while distopt is measured)."""
    cmd = [sys.executable, "-c", "from rq.cli.cli import main; main()", "worker", "--url", url, "--quiet",
           "--worker-class", "rq.worker.SimpleWorker", "--serializer", "json", queue]
    procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(n)]
    try:
        wait_for_workers(url, queue, n)
        yield
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def _raw_rq_batch(url: str, queue: str, func: str, args: list[tuple], tag: str, poll: float) -> tuple[Any, Any, list[str], float]:
    """Enqueue one plain rq job per ``args`` in one pipeline and wait until all finished;
    returns (connection, queue, job ids, start time). The caller closes the connection."""
    from rq import Queue

    conn = redis.Redis.from_url(url)
    q = rq_queue(conn, queue)
    run = secrets.token_hex(4)
    datas = [Queue.prepare_data(func, args=a, job_id=f"{tag}-{run}-{i}") for i, a in enumerate(args)]
    finished = q.finished_job_registry
    done_before = finished.count
    start = time.time()
    pipe = conn.pipeline()
    q.enqueue_many(datas, pipeline=pipe)
    pipe.execute()
    while finished.count < done_before + len(datas):
        time.sleep(poll)
    return conn, q, [d.job_id for d in datas], start


def run_raw_rq(url: str, queue: str, n_jobs: int) -> dict[str, float]:
    from rq.job import Job

    conn, q, ids, start = _raw_rq_batch(url, queue, "math.fabs", [(float(i),) for i in range(n_jobs)], "raw", 0.02)
    jobs = Job.fetch_many(ids, connection=conn, serializer=q.serializer)
    ends = [j.ended_at.timestamp() for j in jobs if j is not None and j.ended_at is not None]
    conn.close()
    return rates(start, ends)


# -- optuna ------------------------------------------------------------------------------
def _optuna_process(url: str, study_name: str, n_trials: int, seed: int, barrier: Any) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalRedisBackend(url))
    study = optuna.load_study(study_name=study_name, storage=storage,
                              sampler=optuna.samplers.TPESampler(seed=seed, constant_liar=True))
    barrier.wait()
    study.optimize(lambda t: trivial(t.suggest_float("x", -5.0, 5.0)), n_trials=n_trials)


def run_optuna(url: str, processes: int, n_trials: int, name: str) -> dict[str, float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalRedisBackend(url))
    optuna.create_study(study_name=name, storage=storage)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(processes + 1)
    per = [n_trials // processes + (1 if i < n_trials % processes else 0) for i in range(processes)]
    procs = [ctx.Process(target=_optuna_process, args=(url, name, per[i], i, barrier)) for i in range(processes)]
    for p in procs:
        p.start()
    barrier.wait()
    start = time.time()
    for p in procs:
        p.join()
    study = optuna.load_study(study_name=name, storage=storage)
    ends = [t.datetime_complete.timestamp() for t in study.trials if t.datetime_complete is not None]
    return rates(start, ends)


# -- the benchmark -------------------------------------------------------------------------
def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median overall rate (the machine may be shared: repeat, take the middle)."""
    ranked = sorted(runs, key=lambda r: r["overall"])
    chosen = dict(ranked[len(ranked) // 2])
    chosen["all_overall"] = [round(r["overall"], 1) for r in runs]
    return chosen


def throughput(url: str, secret: bytes, workers: int, n_trials: int, skip_optuna: bool,
               factor: float, repeat: int) -> dict[str, Any]:
    queue = f"bench-w{workers}"
    parallelism = max(workers, int(round(workers * factor)))
    row: dict[str, Any] = {"workers": workers, "parallelism": parallelism, "trials": n_trials}
    runs: dict[str, list] = {"distopt_tpe": [], "distopt_rand": [], "raw_rq": [], "optuna": []}
    with WorkerPool(url, workers, queues=(queue,), secret=secret), plain_rq_workers(url, f"{queue}-raw", workers):
        wait_for_workers(url, queue, workers)
        for i in range(repeat):  # interleaved, so a busy spell hits every system alike
            runs["distopt_tpe"].append(run_distopt(url, secret, queue, f"tp-tpe-w{workers}-{i}", trivial,
                                                   n_trials, parallelism, tpe.suggest))
            runs["distopt_rand"].append(run_distopt(url, secret, queue, f"tp-rand-w{workers}-{i}", trivial,
                                                    n_trials, parallelism, rand.suggest))
            runs["raw_rq"].append(run_raw_rq(url, f"{queue}-raw", n_trials))
    for i in range(0 if skip_optuna else repeat):
        runs["optuna"].append(run_optuna(url, workers, n_trials, f"optuna-w{workers}-{i}"))
    row.update({k: median_run(v) for k, v in runs.items() if v})
    return row


def run_raw_rq_sleep(url: str, queue: str, n_jobs: int) -> float:
    """Seconds raw RQ needs for ``n_jobs`` jobs of time.sleep(0.5), all enqueued at once."""
    conn, _, _, start = _raw_rq_batch(url, queue, "time.sleep", [(0.5,)] * n_jobs, "sleep", 0.01)
    elapsed = time.time() - start
    conn.close()
    return elapsed


def sleep_check(url: str, secret: bytes, workers: int, n_trials: int) -> dict[str, Any]:
    queue = "bench-sleep"
    ideal = workers / 0.5
    with WorkerPool(url, workers, queues=(queue,), secret=secret, grace=2.0):
        wait_for_workers(url, queue, workers)
        result = run_distopt(url, secret, queue, "sleep", sleepy, n_trials, workers, tpe.suggest)
    with plain_rq_workers(url, f"{queue}-raw", workers):
        raw_elapsed = run_raw_rq_sleep(url, f"{queue}-raw", n_trials)
    raw_rate = n_trials / raw_elapsed
    return {"workers": workers, "trials": n_trials, "achieved": result["overall"], "ideal": ideal,
            "efficiency": result["overall"] / ideal, "elapsed": result["elapsed"],
            "raw_rq_rate": raw_rate, "raw_rq_efficiency": raw_rate / ideal}


def print_report(rows: list[dict[str, Any]], sleep: dict[str, Any] | None) -> list[str]:
    failures = []
    print(f"{'workers':>7} {'P':>3} {'system':<13} {'overall/s':>10} {'first20%/s':>11} {'last20%/s':>10} "
          f"{'last/first':>10}")
    for row in rows:
        for key in ("distopt_tpe", "distopt_rand", "raw_rq", "optuna"):
            r = row.get(key)
            if r is None:
                continue
            print(f"{row['workers']:>7} {row['parallelism']:>3} {key:<13} {r['overall']:>10.1f} "
                  f"{r['first20']:>11.1f} {r['last20']:>10.1f} {r['last20'] / r['first20']:>10.2f}")
        d, raw, opt = row["distopt_tpe"], row["raw_rq"], row.get("optuna")
        checks = [("distopt(tpe)/raw rq", d["overall"] / raw["overall"], TARGETS["vs_raw_rq"]),
                  ("distopt(rand)/raw rq", row["distopt_rand"]["overall"] / raw["overall"], TARGETS["vs_raw_rq"]),
                  ("distopt(tpe) last/first 20%", d["last20"] / d["first20"], TARGETS["decline"])]
        if opt is not None:
            checks.append(("distopt(tpe)/optuna", d["overall"] / opt["overall"], TARGETS["vs_optuna"]))
        for label, value, target in checks:
            ok = value >= target
            print(f"        {label:<28} {value:6.2f}  (target >= {target})  {'ok' if ok else 'MISSED'}")
            if not ok:
                failures.append(f"w={row['workers']}: {label} {value:.2f} < {target}")
    if sleep is not None:
        ok = sleep["efficiency"] >= TARGETS["sleep_efficiency"]
        print(f"\nscale check: {sleep['workers']} workers, 0.5 s objective, {sleep['trials']} trials: "
              f"{sleep['achieved']:.1f}/s of ideal {sleep['ideal']:.0f}/s = {sleep['efficiency']:.3f} "
              f"(target >= {TARGETS['sleep_efficiency']})  {'ok' if ok else 'MISSED'}")
        print(f"   for reference, raw RQ with the same workers and all {sleep['trials']} sleep jobs enqueued "
              f"at once: {sleep['raw_rq_rate']:.1f}/s = {sleep['raw_rq_efficiency']:.3f} of ideal")
        if not ok:
            failures.append(f"sleep efficiency {sleep['efficiency']:.3f}")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default="1,2,4", help="comma-separated worker process counts")
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--parallelism-factor", type=float, default=2.0,
                        help="distopt parallelism = factor * workers (trials in flight)")
    parser.add_argument("--skip-optuna", action="store_true")
    parser.add_argument("--repeat", type=int, default=1, help="runs per system; the median is reported")
    parser.add_argument("--sleep-workers", type=int, default=32, help="0 skips the scale check")
    parser.add_argument("--sleep-trials", type=int, default=320)
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    secret = secrets.token_hex(16).encode()
    rows = []
    sleep = None
    with RedisServer() as server:
        for w in (int(x) for x in args.workers.split(",") if x):
            rows.append(throughput(server.url, secret, w, args.trials, args.skip_optuna, args.parallelism_factor,
                                   args.repeat))
            print(f"done: {w} workers", file=sys.stderr)
        if args.sleep_workers:
            sleep = sleep_check(server.url, secret, args.sleep_workers, args.sleep_trials)
    failures = print_report(rows, sleep)
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump({"targets": TARGETS, "throughput": rows, "sleep": sleep, "missed": failures}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
