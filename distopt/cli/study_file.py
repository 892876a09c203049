"""``distopt run STUDY_FILE`` behind the CLI: load a study file and run it.

Three ways to run, one code path for the two distributed ones:

- ``redis_url`` given: a cluster; the coordinator runs here, workers anywhere (plus
  ``workers`` local ones when asked).
- no ``redis_url``, ``workers > 0``: embedded; a private redis-server on loopback and
  ``workers`` local worker processes, all stopped at the end (also on Ctrl-C, SIGTERM
  or an error). Without a configured secret a random one is made for this run.
- no ``redis_url``, ``workers == 0``: inline, in this process, like hyperopt.

A study file is Python defining ``objective`` (a function or an import path
'package.module:function') and ``space``, and optionally ``algo`` and ``max_evals``.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import hashlib
import importlib.util
import logging
import os
import re
import secrets
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from ..coordinator.failfast import THRESHOLD as FAIL_FAST
from ..coordinator.interrupts import stopping
from ..errors import AllTrialsFailed, DistoptError, Terminated
from ..compat.fmin import fmin
from ..dispatch.objective import ENV_SECRET, import_objective, is_import_path, resolve_secret
from ..space import space_eval
from ..trial.record import TrialState
from ..compat.trials import Trials

log = logging.getLogger(__name__)

ALGOS = ("tpe", "rand", "anneal")
DEFAULT_MAX_EVALS = 100
from ..defaults import DEFAULT_QUEUE, NO_LIMIT, max_evals_count  # noqa: E402
from ..defaults import MAX_RETRIES as DEFAULT_MAX_RETRIES  # noqa: E402


@dataclasses.dataclass
class Interruption:
    """What an interrupted run left, attached to the exception as ``run_interruption``
    so the CLI can say it truthfully (a private Redis takes its results with it)."""

    study: str
    mode: str  # "embedded" or "cluster"
    n_finished: int
    n_pending: int


@dataclasses.dataclass
class StudyFile:
    """What a study file defines."""

    path: Path
    objective: Callable[[Any], Any] | str
    space: Any
    algo: Callable[..., Any] | None = None
    max_evals: int | None = None
    #: ``pruner = "median"`` (or a ``distopt.pruners`` instance, or a JSON spec) in the file
    pruner: Any = None


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


def load_study_file(path: str | os.PathLike[str]) -> StudyFile:
    """Import a study file as a module of its own (its directory joins ``sys.path``, as
    for ``python FILE``), so its functions pickle by value for the workers."""
    file = Path(path).resolve()
    if not file.is_file():
        raise DistoptError(f"study file {str(path)!r} does not exist")
    digest = hashlib.sha1(str(file).encode()).hexdigest()[:8]
    name = f"distopt_study_{re.sub(r'[^0-9A-Za-z_]', '_', file.stem)}_{digest}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise DistoptError(f"cannot load {str(path)!r} as Python: give a .py file")
    module = importlib.util.module_from_spec(spec)
    if str(file.parent) not in sys.path:
        sys.path.insert(0, str(file.parent))
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise DistoptError(f"study file {str(path)!r} failed to run: {type(exc).__name__}: {exc}") from exc
    missing = [n for n in ("objective", "space") if not hasattr(module, n)]
    if missing:
        raise DistoptError(
            f"study file {str(path)!r} defines no {' and no '.join(missing)}: it needs `objective` "
            "(a function of one argument, or 'package.module:function') and `space` (an hp expression)"
        )
    objective = module.objective
    if not callable(objective) and not is_import_path(objective):
        raise DistoptError(f"`objective` in {str(path)!r} must be a function or 'package.module:function', "
                           f"got {objective!r}")
    algo = _file_algo(getattr(module, "algo", None), path)
    max_evals = _file_max_evals(getattr(module, "max_evals", None), path)
    return StudyFile(file, objective, module.space, algo, max_evals, _file_pruner(getattr(module, "pruner", None), path))


def _file_pruner(value: Any, path: str | os.PathLike[str]) -> Any:
    """A study file's ``pruner``: a name, a JSON spec or a ``distopt.pruners`` instance."""
    if value is None:
        return None
    from ..pruners import make_pruner

    try:
        return make_pruner(value)
    except DistoptError as exc:
        raise DistoptError(f"`pruner = {value!r}` in {str(path)!r}: {exc}") from exc


def _file_algo(value: Any, path: str | os.PathLike[str]) -> Callable[..., Any] | None:
    """A study file's ``algo``: a suggest function, or the name of a built-in one (a
    string is a common slip, and saying so beats a TypeError deep in the sampler)."""
    if value is None or callable(value):
        return value
    if isinstance(value, str) and value.strip().lower() in ALGOS:
        return algo_by_name(value.strip().lower())
    raise DistoptError(
        f"`algo = {value!r}` in {str(path)!r} is not a sampler: write `algo = tpe.suggest` or "
        f"`algo = rand.suggest` (from distopt import tpe, rand), or one of the names {', '.join(map(repr, ALGOS))}"
    )


def _file_max_evals(value: Any, path: str | os.PathLike[str]) -> int | None:
    """A study file's ``max_evals``: a whole number >= 0 (0 runs no trial, as
    ``--max-evals 0`` does); anything else is named with the fix, not a ValueError."""
    if value is None:
        return None
    try:
        count = max_evals_count(value)
        return NO_LIMIT if count is None else count  # infinity: no limit, as fmin takes it
    except ValueError:
        pass
    raise DistoptError(
        f"`max_evals = {value!r}` in {str(path)!r} is not a number of trials: write a whole number >= 0, "
        f"e.g. `max_evals = {DEFAULT_MAX_EVALS}`, or leave it out for {DEFAULT_MAX_EVALS} (--max-evals overrides it)"
    )


def algo_by_name(name: str) -> Callable[..., Any]:
    """The built-in sampler called ``name`` ("tpe", "rand" or "anneal")."""
    from ..algo import anneal, rand, tpe

    table = {"tpe": tpe.suggest, "rand": rand.suggest, "anneal": anneal.suggest}
    if name not in table:
        raise DistoptError(f"unknown algo {name!r}: choose one of {', '.join(ALGOS)}")
    return table[name]


def default_study_name(path: str | os.PathLike[str]) -> str:
    """The study name of a run without --study: the file's name and a short hash of its
    full path, the same every time the file is run on this machine, so running the same
    command again resumes the study (two files called study.py get two names)."""
    file = Path(path).resolve()
    stem = re.sub(r"[^A-Za-z0-9_-]", "-", file.stem)[:60] or "study"
    return f"{stem}-{hashlib.sha1(str(file).encode()).hexdigest()[:6]}"


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
        with _saved(trials, save), contextlib.suppress(AllTrialsFailed):  # the summary gives the reason
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
            with _saved(trials, save):  # while the private Redis still runs
                _fmin_noting_interruption(trials, spec, "embedded", parallelism, common, saved=save)
            return _result(trials, name, "embedded", spec, started)
    if wait_for_redis:
        _wait_for_redis(redis_url, wait_for_redis)
    key = None
    if _has_secret(secret_file):
        key = resolve_secret(None, secret_file)
    elif not insecure:
        resolve_secret()  # raises before anything starts, saying what to set
    with _local_workers(redis_url, workers, queue, key, insecure) as ticks:
        trials = RedisTrials(redis_url, exp_key=name, queue=queue, secret=key, insecure=insecure, ticks=ticks,
                             **liveness)
        with _saved(trials, save):
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
            n_finished, n_pending = _counts(study)
            exc.run_interruption = Interruption(  # type: ignore[union-attr]
                study=study.name, mode=mode, n_finished=n_finished, n_pending=n_pending)
            if tell_here:
                kept = f"its trials are saved to {saved}" if saved else "results included (save=FILE keeps them)"
                log.warning("study %r interrupted with %d trials finished and %d queued or running; it was in "
                            "this run's private Redis, which stops now, %s (a run on a Redis given as "
                            "redis_url can be resumed)", study.name, n_finished, n_pending, kept)
        raise


def _counts(study: Any) -> tuple[int, int]:
    """Finished (OK or FAIL) and pending (QUEUED, RUNNING or LOST, which runs again) trials,
    read from the same records ``--save`` writes, so the message and the file never disagree."""
    states = [record.state for record in study.trials]
    finished = sum(state in (TrialState.OK, TrialState.FAIL) for state in states)
    pending = sum(state in (TrialState.QUEUED, TrialState.RUNNING, TrialState.LOST) for state in states)
    return finished, pending


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


def _has_secret(secret_file: str | None) -> bool:
    return secret_file is not None or bool(os.environ.get(ENV_SECRET))


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


def check_save_path(save: str | None) -> None:
    """Fail before the run, not after it, when the file for ``save`` cannot be written."""
    if save is None:
        return
    folder = os.path.dirname(os.path.abspath(save))
    if os.path.isdir(save) or not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise DistoptError(f"cannot write the trials to {save!r}: {folder} is not a writable folder "
                           "(or the path is a folder); choose another --save FILE")


@contextlib.contextmanager
def _saved(trials: Any, save: str | None) -> Iterator[None]:
    """Write every trial of ``trials`` to ``save`` when the block ends, however it ends;
    a failed write after a failed run is logged, so the run's own error stays the one raised."""
    try:
        yield
    finally:
        study = trials.study
        if save is not None and study is not None:
            failing = sys.exc_info()[0] is not None
            try:
                n = write_trials(study, save)
                log.info("wrote %d trials to %s", n, save)
                note = getattr(sys.exc_info()[1], "run_interruption", None)
                if note is not None:  # count what was written, after any result recorded since
                    note.n_finished, note.n_pending = _counts(study)
            except (OSError, DistoptError) as exc:
                if not failing:
                    raise DistoptError(f"cannot write the trials to {save!r}: {exc}") from exc
                log.error("cannot write the trials to %s: %s", save, exc)


def labeled_values(space: Any, vals: Any) -> dict[str, Any]:
    """``vals`` by label, each choice whose options are plain values as the option chosen."""
    from ..study.rows import choice_options, chosen_value

    options = choice_options(space)
    return {label: chosen_value(options.get(label), value) for label, value in dict(vals).items()}


def write_trials(study: Any, path: str) -> int:
    """Every trial of ``study`` as ``distopt trials`` exports it: CSV for a ``.csv`` path,
    else JSON; the number written."""
    from ..study.rows import atomic_write, choice_options, trials_rows, write_rows

    labels = list(study.compiled.labels)
    fmt = "csv" if path.lower().endswith(".csv") else "json"
    rows = trials_rows(study.trials, labels, choices=choice_options(study.space), curves=study.curves(),
                       intermediate=fmt == "json")
    with atomic_write(path) as fh:
        write_rows(rows, fh, fmt, labels)
    return len(rows)


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

    key = resolve_secret() if os.environ.get(ENV_SECRET) else secrets.token_hex(32).encode()
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
    """Turn SIGTERM into SystemExit while local processes run, so the cleanup runs."""
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
