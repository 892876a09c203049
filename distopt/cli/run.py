"""``distopt run``, ``distopt worker`` and ``distopt cancel``: parse, call the library,
print, exit code.

Errors distopt raises on purpose print as ``Error: <message>`` (no traceback) and exit
1; a run whose study ``distopt cancel`` ended exits 3; Ctrl-C exits 130 and SIGTERM 143,
and both print, for a study on a Redis that outlives the run, the command that resumes
it (without the Redis password), or else that the private Redis took the study with it.
"""

from __future__ import annotations

import functools
import shlex
import sys
from pathlib import Path
from typing import Any, Callable, NoReturn

import click
from click.core import ParameterSource

from ..coordinator.failfast import THRESHOLD as FAIL_FAST
from ..defaults import CANCEL_WAIT, DEFAULT_QUEUE, ENV_SECRET, HEARTBEAT_TTL, LEASE_TTL, MAX_RETRIES
from ..monitor.document import URL_FROM_ENV, holds_secret
from .common import (ENV_PROCESSES, ENV_QUEUE, ENV_REDIS_URL, EXIT_CANCELLED, EXIT_ERROR, EXIT_INTERRUPTED,
                     reported)


def _one_line_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with reported():
                return fn(*args, **kwargs)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)

    return wrapper


def resume_command(study: str, argv: list[str]) -> tuple[str, bool]:
    """The command line that continues ``study``: this one, with ``--study`` added; a
    Redis URL holding a password (``--redis URL`` or ``--redis=URL``) becomes
    ``"$DISTOPT_REDIS_URL"``, so the command runs as printed without showing the secret.
    Returns the command and whether it needs that variable set."""
    words: list[str] = []
    needs_env = False
    args = iter(argv)
    for arg in args:
        if arg == "--redis":
            value = next(args, None)
            if value is None:
                words.append(shlex.quote(arg))
            elif holds_secret(value):
                words += ["--redis", URL_FROM_ENV]
                needs_env = True
            else:
                words += ["--redis", shlex.quote(value)]
        elif arg.startswith("--redis="):
            value = arg.split("=", 1)[1]
            needs_env |= holds_secret(value)
            words.append(f"--redis={URL_FROM_ENV}" if holds_secret(value) else shlex.quote(arg))
        else:
            words.append(shlex.quote(arg))
    if "--study" not in argv and not any(a.startswith("--study=") for a in argv):
        words += ["--study", shlex.quote(study)]
    return " ".join(["distopt", *words]), needs_env


def format_labeled(values: dict[str, Any]) -> str:
    """``x=4.87, opt='adam'``: each value with its label, floats to 6 significant digits."""
    return ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v!r}" for k, v in values.items()) or "-"


def _verbosity() -> int:
    ctx = click.get_current_context()
    root = ctx.find_root()
    return int(root.params.get("verbose") or 0)


RUN_EPILOG = f"""\b
Modes:
  cluster     --redis URL (or ${ENV_REDIS_URL}): workers anywhere, resumable
  embedded    --workers N without --redis: a private Redis, gone after the run
  in-process  neither: trials run here one at a time, like hyperopt
Options marked [workers] apply to cluster and embedded runs only (in-process
runs ignore them, with a warning); [cluster] ones to cluster runs only.

\b
Exit codes: 0 done; 1 error (also: no trial succeeded); 3 the study was
cancelled by `distopt cancel`; 130 Ctrl-C; 143 SIGTERM.
"""


@click.command("run", epilog=RUN_EPILOG)
@click.argument("study_file", type=click.Path(dir_okay=False))
@click.option("--redis", "redis_url", envvar=ENV_REDIS_URL, default=None, metavar="URL",
              help=f"Redis of a cluster [env {ENV_REDIS_URL}]. Without it: a private Redis when "
                   "--workers > 0, else in-process.")
@click.option("--study", default=None,
              help="[workers] Study name (default: the file's name and a hash of its path, so running the same "
                   "command again continues it); an existing one continues (cluster).")
@click.option("--max-evals", type=click.IntRange(min=0), default=None,
              help="Finished trials to run (default: the file's max_evals, else 100).")
@click.option("--parallelism", type=click.IntRange(min=1), default=None,
              help="[workers] Trials in flight (default: --workers, else 8).")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Local worker processes to start (without --redis: embedded mode).")
@click.option("--algo", type=click.Choice(["tpe", "rand", "anneal"]), default=None, help="Sampler (default: the file's algo, else tpe).")
@click.option("--seed", type=int, default=None, help="Seed of the sampler.")
@click.option("--pruner", type=click.Choice(["none", "median", "percentile", "asha", "hyperband"]), default=None,
              help="Stop trials early from the values the objective passes to distopt.report (default: the "
                   "file's pruner, else none).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None, help="Stop after SEC seconds.")
@click.option("--trial-timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="[workers] Stop and fail a trial that runs longer than SEC seconds.")
@click.option("--max-retries", type=click.IntRange(min=0), default=MAX_RETRIES, show_default=True,
              help="[workers] Runs more of a trial whose worker vanished, before it fails.")
@click.option("--heartbeat-ttl", type=click.FloatRange(min=0, min_open=True), default=None,
              help="[workers] Seconds a running trial may go without a heartbeat before it runs again "
                   f"(default: the study's, else {HEARTBEAT_TTL:g}).")
@click.option("--lease-ttl", type=click.FloatRange(min=0, min_open=True), default=None,
              help="[workers] Seconds a crashed coordinator keeps the study before another run may take it over "
                   f"(default {LEASE_TTL:g}).")
@click.option("--secret-file", type=click.Path(dir_okay=False), default=None,
              help=f"[cluster] File holding the shared secret (default: ${ENV_SECRET}).")
@click.option("--insecure", is_flag=True, help="[cluster] Ship the objective unsigned when there is no secret.")
@click.option("--queue", default=DEFAULT_QUEUE, show_default=True, envvar=ENV_QUEUE,
              help=f"[workers] rq queue of the study's jobs [env {ENV_QUEUE}].")
@click.option("--save", "save", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Write every trial to FILE when the run ends, interrupted or not (CSV for .csv, else "
                   "JSON, as `distopt trials` exports them): the only copy of an in-process or embedded "
                   "run's results.")
@click.option("--fail-fast", type=click.IntRange(min=0), default=FAIL_FAST, show_default=True, metavar="N",
              help="[workers] Stop when the first N trials all fail with the same error (0: never).")
@click.option("--max-consecutive-failures", type=click.IntRange(min=1), default=None, metavar="N",
              help="[workers] Stop when N trials in a row fail (default: never).")
@click.option("--wait-for-redis", type=click.FloatRange(min=0), default=0.0, show_default=True, metavar="SECONDS",
              help="[cluster] Wait this long for Redis to answer at start, retrying with backoff (a machine "
                   "booting starts Redis and the coordinator together).")
@click.option("--no-wait", is_flag=True,
              help="[cluster] Fail at once when another coordinator holds the study, instead of waiting for its "
                   "lease to lapse (one that died on this host is taken over at once either way).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal).")
@_one_line_errors
def run_command(study_file: str, redis_url: str | None, study: str | None, max_evals: int | None,
                parallelism: int | None, workers: int, algo: str | None, seed: int | None, pruner: str | None,
                timeout: float | None, trial_timeout: float | None, max_retries: int,
                heartbeat_ttl: float | None, lease_ttl: float | None, secret_file: str | None,
                insecure: bool, queue: str, save: str | None, fail_fast: int,
                max_consecutive_failures: int | None, wait_for_redis: float, no_wait: bool,
                progress: bool | None) -> None:
    """Run the study STUDY_FILE defines (objective, space; optionally algo, max_evals).
    With --redis and the --study of an unfinished study, continue it."""
    from ..coordinator.interrupts import stopping_once
    from .save_trials import check_save_path
    from .study_file import default_study_name

    check_save_path(save)
    if redis_url is not None and study is None:
        study = default_study_name(Path(study_file))
    with stopping_once(exiting=True):  # a second Ctrl-C or SIGTERM waits for the shutdown to finish
        result = _run_reporting(study_file, redis_url, study, save, dict(
            max_evals=max_evals, parallelism=parallelism,
            workers=workers, algo=algo, seed=seed, timeout=timeout, pruner=pruner, secret_file=secret_file,
            insecure=insecure, queue=queue, trial_timeout=trial_timeout, max_retries=max_retries,
            heartbeat_ttl=heartbeat_ttl, lease_ttl=lease_ttl, save=save, fail_fast=fail_fast,
            max_consecutive_failures=max_consecutive_failures, wait_for_redis=wait_for_redis,
            wait_for_lease=not no_wait, show_progressbar=sys.stderr.isatty() if progress is None else progress))
    _report(result, save)


def _run_reporting(study_file: str, redis_url: str | None, study: str | None, save: str | None,
                   options: dict[str, Any]) -> Any:
    """``run_study_file``; an interruption is reported (how to resume) and exits."""
    from ..coordinator.distributed import interruption_reported
    from ..coordinator.interrupts import first_signal
    from ..errors import Terminated
    from .run_study import run_study_file

    try:
        with interruption_reported():  # _interrupted says how to resume, with the real command
            return run_study_file(study_file, redis_url=redis_url, study=study, **options)
    except (KeyboardInterrupt, Terminated) as exc:
        # the exit status is the first signal's, whichever exception the shutdown ended with
        first = first_signal()
        code = 128 + first if first is not None else int(exc.code) if isinstance(exc, Terminated) else EXIT_INTERRUPTED
        _interrupted(exc, study, redis_url, code, save)


def _report(result: Any, save: str | None) -> None:
    """Print what the run did; exit 3 when cancelled, 1 when no trial succeeded."""
    if save is not None:
        click.echo(f"trials saved to {save}", err=True)
    if result.study:
        click.echo(f"study: {result.study} ({result.mode})")
    cancelled = f", {result.n_cancelled} cancelled" if result.n_cancelled else ""
    cancelled = (f", {result.n_pruned} pruned" if result.n_pruned else "") + cancelled
    click.echo(f"trials: {result.n_trials} ({result.n_ok} ok, {result.n_fail} failed{cancelled}) "
               f"in {result.elapsed:.1f} s")
    if result.best_loss is not None:
        click.echo(f"best loss: {result.best_loss:.6g}")
        click.echo(f"best parameters: {format_labeled(result.best_labeled or {})}")
        if isinstance(result.best_params, (dict, list, tuple)) and result.best_params != result.best_labeled:
            click.echo(f"best point: {result.best_params!r}")
    if result.stop_reason == "cancelled":
        click.echo(f"cancelled: study {result.study!r} was ended by `distopt cancel` before it finished; its "
                   f"finished trials are kept (a later run with --study {result.study} continues it)", err=True)
        sys.exit(EXIT_CANCELLED)
    if result.best_loss is None:
        message = "no trial finished with status 'ok', so there is no best trial"
        if result.top_failure is not None:
            error, count = result.top_failure
            share = ("the failed trial" if result.n_fail == 1 else f"all {count} failed trials"
                     if count == result.n_fail else f"{count} of the {result.n_fail} failed trials")
            message += f"; {share} failed with: {error}"
        raise click.ClickException(message)


def _interrupted(exc: BaseException, study: str | None, redis_url: str | None, code: int,
                 save: str | None = None) -> NoReturn:
    """Say truthfully how the study was left: a cluster study can be resumed (print the
    command, runnable as printed); an embedded one went with its private Redis."""
    what = "interrupted" if code == EXIT_INTERRUPTED else "terminated (SIGTERM)"
    if redis_url is None or study is None:
        info = getattr(exc, "run_interruption", None)
        if info is not None:
            held = (f"study {info.study!r} ({info.n_finished} finished trials, {info.n_pending} queued or "
                    "running) was in this run's private Redis, which is gone with it")
            held += f"; its trials are saved to {save}" if save else ", results included (--save FILE keeps them)"
        else:
            held = "this run's Redis was private and is gone, with the study's results"
        click.echo(f"{what}: {held}; pass --redis URL (a Redis that outlives the run) to make a study "
                   "resumable", err=True)
    else:
        ctx = click.get_current_context()
        from_env = ctx.get_parameter_source("redis_url") == ParameterSource.ENVIRONMENT
        command, needs_env = resume_command(study, sys.argv[1:])
        click.echo(f"{what}: study {study!r} keeps its queued and running trials in Redis; "
                   f"resume it with:\n  {command}", err=True)
        if needs_env:
            click.echo(f"  (with {ENV_REDIS_URL} set to the Redis URL, password included: "
                       f"export {ENV_REDIS_URL}='redis://:PASSWORD@host:port/db')", err=True)
        elif from_env:
            click.echo(f"  (with {ENV_REDIS_URL} set as for this run)", err=True)
    sys.exit(code)


@click.command("worker")
@click.option("--redis", "redis_url", envvar=ENV_REDIS_URL, required=True, metavar="URL",
              help=f"Redis to take jobs from [env {ENV_REDIS_URL}].")
@click.option("--queue", "queues", multiple=True, default=(DEFAULT_QUEUE,), show_default=True, envvar=ENV_QUEUE,
              help=f"Queue to work on (repeat for several) [env {ENV_QUEUE}, space-separated].")
@click.option("--processes", type=click.IntRange(min=1), default=1, show_default=True, envvar=ENV_PROCESSES,
              help=f"Worker processes to run and supervise [env {ENV_PROCESSES}].")
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
@click.option("--fork", is_flag=True, help="Run each trial in a forked child (isolation; ~15 ms a trial).")
@click.option("--secret-file", type=click.Path(dir_okay=False), default=None,
              help=f"File holding the shared secret (default: ${ENV_SECRET}).")
@click.option("--insecure", is_flag=True, help="Accept unsigned objectives when there is no secret.")
@click.option("-q", "--quiet", is_flag=True, help="Log only warnings and errors, not a line per trial.")
@click.option("--wait-for-redis", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="Wait this long for Redis to answer at start, retrying with backoff (default: as long as it "
                   "takes, logging; 0: fail at once).")
@click.option("--check", is_flag=True,
              help="Do not work: exit 0 when this host's workers take jobs (registered, and busy with a trial "
                   "that beats or idle with a fresh heartbeat), else 1 saying why. For container health checks.")
@_one_line_errors
def worker_command(redis_url: str, queues: tuple[str, ...], processes: int, burst: bool, fork: bool,
                   secret_file: str | None, insecure: bool, quiet: bool, wait_for_redis: float | None,
                   check: bool) -> None:
    """Run trials from the queues (rq workers named host:pid; non-forking unless --fork).
    Logs one line per trial (start; end with duration and loss, or the error) and when
    Redis goes away or comes back."""
    from ..worker.pool import check_health, run_workers

    if check:
        healthy, why = check_health(redis_url)
        click.echo(why, err=not healthy)
        sys.exit(0 if healthy else EXIT_ERROR)

    code = run_workers(redis_url, queues=queues, processes=processes, burst=burst, fork=fork,
                       secret_file=secret_file, insecure=insecure, verbose=_verbosity(), quiet=quiet,
                       wait_for_redis=wait_for_redis)
    sys.exit(code)


@click.command("cancel")
@click.option("--redis", "redis_url", envvar=ENV_REDIS_URL, required=True, metavar="URL",
              help=f"Redis holding the study [env {ENV_REDIS_URL}].")
@click.option("--study", required=True, metavar="NAME", help="Study to end.")
@click.option("--wait", type=click.FloatRange(min=0), default=CANCEL_WAIT, show_default=True,
              help="Seconds to wait for a running coordinator to stop.")
@click.option("--secret-file", type=click.Path(dir_okay=False), default=None,
              help=f"File holding the shared secret that checks the results already sent, when no coordinator "
                   f"runs (default: ${ENV_SECRET}).")
@click.option("--drop-unverified", is_flag=True,
              help="Cancel even when results already sent wait and there is no secret to check them (they are "
                   "not recorded; without this flag the command refuses).")
@_one_line_errors
def cancel_command(redis_url: str, study: str, wait: float, secret_file: str | None, drop_unverified: bool) -> None:
    """End a study: record the results workers already sent, then cancel its queued and
    running trials and withdraw their queued jobs (finished trials are kept; a running
    coordinator stops, and its `distopt run` exits 3)."""
    from ..coordinator.cancel import cancel_study
    from ..dispatch.secret import resolve_secret

    secret = resolve_secret(None, secret_file) if secret_file is not None else None
    result = cancel_study(redis_url, study, wait=wait, secret=secret, drop_unverified=drop_unverified)
    click.echo(f"study {study}: cancelled {result.cancelled} queued or running trials, kept {result.finished} "
               f"finished ones (by {result.by}), having first recorded {result.recorded} results that had already "
               f"come back; status {result.status}")
    if result.late:
        click.echo(f"{result.late} results arrived while the trials were being cancelled and were not recorded",
                   err=True)
    if result.unverified:
        click.echo(f"{result.unverified} results were dropped unrecorded (--drop-unverified): they could not be "
                   f"verified with the secret here (--secret-file FILE or ${ENV_SECRET})", err=True)


def register(group: click.Group) -> None:
    """Add ``run``, ``worker`` and ``cancel`` to the ``distopt`` command group."""
    group.add_command(run_command)
    group.add_command(worker_command)
    group.add_command(cancel_command)
