"""``distopt run STUDY_FILE`` behind the CLI: run the study a file defines.

Three ways to run, one code path for the two distributed ones:

- ``redis_url`` given: a cluster; the coordinator runs here, workers anywhere (plus
  ``workers`` local ones when asked).
- no ``redis_url``, ``workers > 0``: embedded; a private redis-server on loopback and
  ``workers`` local worker processes, all stopped at the end (also on Ctrl-C, SIGTERM
  or an error). Without a configured secret a random one is made for this run.
- no ``redis_url``, ``workers == 0``: inline, in this process, like hyperopt.

The file itself is loaded and checked by ``study_file``; ``--save`` is ``save_trials``.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import logging
import os
import secrets
import signal
import threading
import time
from typing import Any, Iterator

from ..coordinator.failfast import THRESHOLD as FAIL_FAST
from ..coordinator.interrupts import stopping
from ..errors import AllTrialsFailed, DistoptError, Terminated
from ..compat.fmin import fmin
from ..dispatch.objective import import_objective
from ..dispatch.secret import resolve_secret, secret_configured
from ..space import space_eval
from ..compat.trials import Trials
from ..defaults import DEFAULT_QUEUE
from ..defaults import MAX_RETRIES as DEFAULT_MAX_RETRIES
from .save_trials import finished_and_pending, saved
from .study_file import DEFAULT_MAX_EVALS, StudyFile, algo_by_name, default_study_name, load_study_file

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Interruption:
    """What an interrupted run left, attached to the exception as ``run_interruption``
    so the CLI can say it truthfully (a private Redis takes its results with it)."""

    study: str
    mode: str  # "embedded" or "cluster"
    n_finished: int
    n_pending: int


@dataclasses.dataclass
class RunResult:
    """The outcome of ``run_study_file``."""

    study: str | None
    mode: str  # "inline", "embedded" or "cluster"
    best_loss: float | None
    best_params: Any
    argmin: dict[str, Any] | None
    n_trials: int
    n_ok: int
    n_fail: int
    elapsed: float
    n_cancelled: int = 0
    #: Why the coordinator stopped ("max_evals", "timeout", "cancelled", ...); None in-process.
    stop_reason: str | None = None
    #: The most common first line of the failed trials' errors, and how many had it.
    top_failure: tuple[str, int] | None = None
    n_pruned: int = 0
    #: The best trial's parameters by label, a choice as the option chosen (for printing).
    best_labeled: dict[str, Any] | None = None


def run_study_file(
    path: str | os.PathLike[str],
    *,
    redis_url: str | None = None,
    study: str | None = None,
    max_evals: int | None = None,
    parallelism: int | None = None,
    workers: int = 0,
    algo: str | None = None,
    seed: int | None = None,
    timeout: float | None = None,
    pruner: str | None = None,
    secret_file: str | None = None,
    insecure: bool = False,
    queue: str = DEFAULT_QUEUE,
    trial_timeout: float | None = None,
    show_progressbar: bool = False,
    max_retries: int = DEFAULT_MAX_RETRIES,
    heartbeat_ttl: float | None = None,
    lease_ttl: float | None = None,
    save: str | None = None,
    fail_fast: int = FAIL_FAST,
    max_consecutive_failures: int | None = None,
    wait_for_redis: float = 0.0,
    wait_for_lease: bool = True,
) -> RunResult:
    """Run the study a file defines; see the module docstring for the three modes.
    ``max_retries``, ``heartbeat_ttl`` and ``lease_ttl`` are those of ``RedisTrials``.
    ``save``: a file that gets every trial (CSV for ``.csv``, else JSON) when the run ends,
    interrupted or not: the only copy of an in-process or embedded run's results.

    In-process, the settings only workers use are ignored, with one warning naming them.
    An interrupted embedded or cluster run (Ctrl-C, or SIGTERM as ``Terminated``) raises
    with an ``Interruption`` attached as ``run_interruption``."""
    spec = load_study_file(path)
    if workers < 0:
        raise DistoptError(f"--workers must be 0 or more, got {workers!r}")
    chosen_algo = algo_by_name(algo) if algo is not None else spec.algo
    evals = max_evals if max_evals is not None else (spec.max_evals if spec.max_evals is not None
                                                     else DEFAULT_MAX_EVALS)
    common = dict(algo=chosen_algo, max_evals=int(evals), timeout=timeout, rstate=seed, return_argmin=False,
                  show_progressbar=show_progressbar, pruner=pruner if pruner is not None else spec.pruner)
    started = time.monotonic()
    if redis_url is None and workers == 0:
        _warn_ignored_inline(study=study, parallelism=parallelism, trial_timeout=trial_timeout,
                             max_retries=max_retries, heartbeat_ttl=heartbeat_ttl, lease_ttl=lease_ttl,
                             queue=queue, secret_file=secret_file, insecure=insecure, fail_fast=fail_fast,
                             max_consecutive_failures=max_consecutive_failures, wait_for_redis=wait_for_redis,
                             wait_for_lease=wait_for_lease)
        objective = import_objective(spec.objective) if isinstance(spec.objective, str) else spec.objective
        trials = Trials()
        with saved(trials, save), contextlib.suppress(AllTrialsFailed):  # the summary gives the reason
            fmin(objective, spec.space, trials=trials, catch_eval_exceptions=True, **common)
        return _result(trials, None, "inline", spec, started)
    common.update(trial_timeout=trial_timeout, max_retries=max_retries)
    name = study or default_study_name(spec.path)
    parallelism = parallelism or (workers if workers > 0 else None)
    from ..coordinator.lease import LEASE_TTL
    from ..compat.redis_trials import RedisTrials

    liveness = dict(heartbeat_ttl=heartbeat_ttl, lease_ttl=lease_ttl or LEASE_TTL, fail_fast=fail_fast,
                    max_consecutive_failures=max_consecutive_failures, wait_for_lease=wait_for_lease)

    if redis_url is None:
        with _embedded(workers, queue) as (url, key, ticks):
            trials = RedisTrials(url, exp_key=name, queue=queue, secret=key, ticks=ticks, **liveness)
            with saved(trials, save):  # while the private Redis still runs
                _fmin_noting_interruption(trials, spec, "embedded", parallelism, common, saved=save)
            return _result(trials, name, "embedded", spec, started)
    if wait_for_redis:
        _wait_for_redis(redis_url, wait_for_redis)
    key = None
    if secret_configured(secret_file):
        key = resolve_secret(None, secret_file)
    elif not insecure:
        resolve_secret()  # raises before anything starts, saying what to set
    with _local_workers(redis_url, workers, queue, key, insecure) as ticks:
        trials = RedisTrials(redis_url, exp_key=name, queue=queue, secret=key, insecure=insecure, ticks=ticks,
                             **liveness)
        with saved(trials, save):
            _fmin_noting_interruption(trials, spec, "cluster", parallelism, common)
        return _result(trials, name, "cluster", spec, started)


def _wait_for_redis(redis_url: str, seconds: float) -> None:
    """Wait up to ``seconds`` for the cluster's Redis to answer (it may still be booting)."""
    from ..storage import RedisStorage
    from ..storage.redis.retry import wait_for_redis

    storage = RedisStorage(redis_url)
    try:
        wait_for_redis(storage.ping, seconds, storage.where, role="coordinator")
    finally:
        storage.close()


def _fmin_noting_interruption(trials: Any, spec: StudyFile, mode: str, parallelism: int | None,
                              common: dict[str, Any], saved: str | None = None) -> None:
    """``fmin`` on workers; an interruption carries what the study holds at that moment,
    read while its Redis still runs (an embedded one is gone right after)."""
    from ..coordinator.distributed import caller_reports_interruption, interruption_reported

    tell_here = mode == "embedded" and not caller_reports_interruption()
    try:
        # an embedded study is not resumable: the generic "resume it with ..." would be untrue
        with interruption_reported() if mode == "embedded" else contextlib.nullcontext():
            with contextlib.suppress(AllTrialsFailed):  # the summary says so, with the failures' reason
                fmin(spec.objective, spec.space, trials=trials, parallelism=parallelism, **common)
    except (KeyboardInterrupt, SystemExit) as exc:
        study = trials.study
        if study is not None:
            n_finished, n_pending = finished_and_pending(study)
            exc.run_interruption = Interruption(  # type: ignore[union-attr]
                study=study.name, mode=mode, n_finished=n_finished, n_pending=n_pending)
            if tell_here:
                kept = f"its trials are saved to {saved}" if saved else "results included (save=FILE keeps them)"
                log.warning("study %r interrupted with %d trials finished and %d queued or running; it was in "
                            "this run's private Redis, which stops now, %s (a run on a Redis given as "
                            "redis_url can be resumed)", study.name, n_finished, n_pending, kept)
        raise


#: In-process runs ignore these (CLI spelling, the default that means "not given").
_WORKER_ONLY: tuple[tuple[str, str, Any], ...] = (
    ("study", "--study", None), ("parallelism", "--parallelism", None),
    ("trial_timeout", "--trial-timeout", None), ("max_retries", "--max-retries", DEFAULT_MAX_RETRIES),
    ("heartbeat_ttl", "--heartbeat-ttl", None), ("lease_ttl", "--lease-ttl", None),
    ("queue", "--queue", DEFAULT_QUEUE), ("secret_file", "--secret-file", None), ("insecure", "--insecure", False),
    ("fail_fast", "--fail-fast", FAIL_FAST), ("max_consecutive_failures", "--max-consecutive-failures", None),
    ("wait_for_redis", "--wait-for-redis", 0.0), ("wait_for_lease", "--no-wait", True),
)


def ignored_inline(**given: Any) -> list[str]:
    """The options among ``given`` an in-process run ignores, as the CLI spells them."""
    return [flag for name, flag, default in _WORKER_ONLY if name in given and given[name] != default]


def _warn_ignored_inline(**given: Any) -> None:
    """One warning naming what an in-process run ignores: silently dropping a
    --trial-timeout the user relies on would be worse than the noise."""
    ignored = ignored_inline(**given)
    if ignored:
        log.warning("%s %s ignored in-process (no --redis, no --workers): %s only to embedded (--workers N) "
                    "and cluster (--redis URL) runs", ", ".join(ignored), "is" if len(ignored) == 1 else "are",
                    "it applies" if len(ignored) == 1 else "they apply")


def _top_failure(records: list[Any]) -> tuple[str, int] | None:
    """The most common first line of the failed trials' errors, and its count: when
    nothing succeeded, the reason belongs in the final message, not only in -v logs."""
    lines = collections.Counter(
        (str(r.error).strip().splitlines() or ["(no error message)"])[0] if r.error else "(no error message)"
        for r in records if r.state.value == "fail"
    )
    if not lines:
        return None
    return lines.most_common(1)[0]


def labeled_values(space: Any, vals: Any) -> dict[str, Any]:
    """``vals`` by label, each choice whose options are plain values as the option chosen."""
    from ..study.rows import choice_options, chosen_value

    options = choice_options(space)
    return {label: chosen_value(options.get(label), value) for label, value in dict(vals).items()}


def _result(trials: Trials, name: str | None, mode: str, spec: StudyFile, started: float) -> RunResult:
    study = trials.study
    records = study.trials if study is not None else []
    best = study.best_trial if study is not None else None
    return RunResult(
        study=name,
        mode=mode,
        best_loss=None if best is None else best.loss,
        best_params=None if best is None else space_eval(spec.space, best.vals),
        argmin=None if best is None else dict(best.vals),
        n_trials=len(records),
        n_ok=sum(1 for r in records if r.state.value == "ok"),
        n_fail=sum(1 for r in records if r.state.value == "fail"),
        elapsed=time.monotonic() - started,
        n_cancelled=sum(1 for r in records if r.state.value == "cancelled"),
        stop_reason=getattr(trials, "stop_reason", None),
        top_failure=_top_failure(records),
        n_pruned=sum(1 for r in records if r.state.value == "pruned"),
        best_labeled=None if best is None else labeled_values(spec.space, best.vals),
    )


@contextlib.contextmanager
def _embedded(workers: int, queue: str) -> Iterator[tuple[str, bytes, tuple]]:
    """A private Redis and ``workers`` local workers, all gone when the block exits. The
    Redis has a random password (in its config file, never on a command line), so other
    local users cannot write to it: they could not make the workers run anything, but
    could disturb the study."""
    from ..storage.redis.server import RedisServer
    from ..worker.pool import WorkerPool

    key = resolve_secret() if secret_configured() else secrets.token_hex(32).encode()
    with _sigterm_as_exit(), RedisServer(password=secrets.token_urlsafe(32)) as server:
        with WorkerPool(server.url, workers, queues=(queue,), secret=key, quiet=True) as pool:
            yield server.url, key, (functools.partial(_check_pool, pool),)


@contextlib.contextmanager
def _local_workers(redis_url: str, workers: int, queue: str, key: bytes | None,
                   insecure: bool) -> Iterator[tuple]:
    if workers == 0:
        with _sigterm_as_exit():  # a stopped coordinator leaves its study resumable, lease released
            yield ()
        return
    from ..worker.pool import WorkerPool

    with _sigterm_as_exit(), WorkerPool(redis_url, workers, queues=(queue,), secret=key, insecure=insecure,
                                        quiet=True) as pool:
        yield (functools.partial(_check_pool, pool),)


def _check_pool(pool: Any, study: Any, now: float) -> None:
    """A coordinator tick: replace a local worker that died (the reaper re-runs its
    trial); fail, with the workers' own error, only when they crash-loop."""
    pool.check(restart=True)


@contextlib.contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """Turn SIGTERM into ``Terminated`` (exit 143) while local processes run, so the cleanup runs.

    Not ``on_shutdown_signals``: Ctrl-C must stay KeyboardInterrupt (exit 130), and this is the
    SIGTERM handler ``coordinator.interrupts.stopping_once`` hands the first SIGTERM to."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum: int, frame: Any) -> None:
        if stopping():  # already shutting down: let the cleanup finish
            return
        raise Terminated(signum)

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:  # shutting down after a signal: another one must not cut the rest short
        signal.signal(signal.SIGTERM, signal.SIG_IGN if stopping() else previous)
