"""``distopt run``, ``distopt worker`` and ``distopt cancel``: parse, call the library,
print, exit code.

Errors distopt raises on purpose print as ``Error: <message>`` (no traceback) and exit
1; Ctrl-C exits 130, and for a study on a Redis that outlives the run prints the
command that resumes it.
"""

from __future__ import annotations

import functools
import shlex
import sys
from pathlib import Path
from typing import Any, Callable

import click
from click.core import ParameterSource

from .cli_common import ENV_REDIS_URL, EXIT_ERROR, EXIT_INTERRUPTED, reported


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


def resume_command(study: str, redis_url: str, argv: list[str]) -> str:
    """The command line that continues ``study``: this one, with ``--study`` added and
    the Redis password hidden (an URL from $DISTOPT_REDIS_URL is left to the variable)."""
    from .storage.redis_store import redact_url

    args = [redact_url(a) if a == redis_url else a for a in argv]
    if "--study" not in args and not any(a.startswith("--study=") for a in args):
        args += ["--study", study]
    return shlex.join(["distopt", *args])


def _verbosity() -> int:
    ctx = click.get_current_context()
    root = ctx.find_root()
    return int(root.params.get("verbose") or 0)


@click.command("run")
@click.argument("study_file", type=click.Path(dir_okay=False))
@click.option("--redis", "redis_url", envvar=ENV_REDIS_URL, default=None, metavar="URL",
              help=f"Redis of a cluster [env {ENV_REDIS_URL}]. Without it: a private Redis when "
                   "--workers > 0, else in-process.")
@click.option("--study", default=None, help="Study name (default: file name + time); an existing one continues.")
@click.option("--max-evals", type=click.IntRange(min=0), default=None,
              help="Finished trials to run (default: the file's max_evals, else 100).")
@click.option("--parallelism", type=click.IntRange(min=1), default=None,
              help="Trials in flight (default: --workers, else 8).")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Local worker processes to start.")
@click.option("--algo", type=click.Choice(["tpe", "rand"]), default=None, help="Sampler (default: the file's algo, else tpe).")
@click.option("--seed", type=int, default=None, help="Seed of the sampler.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None, help="Stop after SEC seconds.")
@click.option("--trial-timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop and fail a trial that runs longer than SEC seconds.")
@click.option("--max-retries", type=click.IntRange(min=0), default=2, show_default=True,
              help="Runs more of a trial whose worker vanished, before it fails.")
@click.option("--heartbeat-ttl", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds a running trial may go without a heartbeat before it runs again "
                   "(default: the study's, else 30).")
@click.option("--lease-ttl", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds a crashed coordinator keeps the study before another run may take it over "
                   "(default 30).")
@click.option("--secret-file", type=click.Path(dir_okay=False), default=None,
              help="File holding the shared secret (default: $DISTOPT_SECRET).")
@click.option("--insecure", is_flag=True, help="Ship the objective unsigned when there is no secret.")
@click.option("--queue", default="distopt", show_default=True, help="rq queue of the study's jobs.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal).")
@_one_line_errors
def run_command(study_file: str, redis_url: str | None, study: str | None, max_evals: int | None,
                parallelism: int | None, workers: int, algo: str | None, seed: int | None,
                timeout: float | None, trial_timeout: float | None, max_retries: int,
                heartbeat_ttl: float | None, lease_ttl: float | None, secret_file: str | None,
                insecure: bool, queue: str, progress: bool | None) -> None:
    """Run the study STUDY_FILE defines (objective, space; optionally algo, max_evals).
    With --redis and the --study of an unfinished study, continue it."""
    from .run import default_study_name, run_study_file

    if redis_url is not None and study is None:
        study = default_study_name(Path(study_file))
    try:
        result = run_study_file(
            study_file, redis_url=redis_url, study=study, max_evals=max_evals, parallelism=parallelism,
            workers=workers, algo=algo, seed=seed, timeout=timeout, secret_file=secret_file, insecure=insecure,
            queue=queue, trial_timeout=trial_timeout, max_retries=max_retries, heartbeat_ttl=heartbeat_ttl,
            lease_ttl=lease_ttl, show_progressbar=sys.stderr.isatty() if progress is None else progress,
        )
    except KeyboardInterrupt:
        _interrupted(study, redis_url)
    if result.study:
        click.echo(f"study: {result.study} ({result.mode})")
    click.echo(f"trials: {result.n_trials} ({result.n_ok} ok, {result.n_fail} failed) in {result.elapsed:.1f} s")
    if result.best_loss is None:
        raise click.ClickException("no trial finished with status 'ok', so there is no best trial")
    click.echo(f"best loss: {result.best_loss:.6g}")
    click.echo(f"best parameters: {result.best_params!r}")


def _interrupted(study: str | None, redis_url: str | None) -> None:
    if redis_url is None or study is None:
        click.echo("interrupted (this run's Redis was private and is gone; pass --redis URL to make a study "
                   "resumable)", err=True)
    else:
        ctx = click.get_current_context()
        from_env = ctx.get_parameter_source("redis_url") == ParameterSource.ENVIRONMENT
        command = resume_command(study, "" if from_env else redis_url, sys.argv[1:])
        click.echo(f"interrupted: study {study!r} keeps its queued and running trials in Redis; "
                   f"resume it with:\n  {command}", err=True)
    sys.exit(EXIT_INTERRUPTED)


@click.command("worker")
@click.option("--redis", "redis_url", envvar=ENV_REDIS_URL, required=True, metavar="URL",
              help=f"Redis to take jobs from [env {ENV_REDIS_URL}].")
@click.option("--queue", "queues", multiple=True, default=("distopt",), show_default=True,
              help="Queue to work on (repeat for several).")
@click.option("--processes", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes to run and supervise.")
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
@click.option("--fork", is_flag=True, help="Run each trial in a forked child (isolation; ~15 ms a trial).")
@click.option("--secret-file", type=click.Path(dir_okay=False), default=None,
              help="File holding the shared secret (default: $DISTOPT_SECRET).")
@click.option("--insecure", is_flag=True, help="Accept unsigned objectives when there is no secret.")
@_one_line_errors
def worker_command(redis_url: str, queues: tuple[str, ...], processes: int, burst: bool, fork: bool,
                   secret_file: str | None, insecure: bool) -> None:
    """Run trials from the queues (rq workers; non-forking unless --fork)."""
    from .worker import run_workers

    code = run_workers(redis_url, queues=queues, processes=processes, burst=burst, fork=fork,
                       secret_file=secret_file, insecure=insecure, verbose=_verbosity())
    sys.exit(code)


@click.command("cancel")
@click.option("--redis", "redis_url", envvar=ENV_REDIS_URL, required=True, metavar="URL",
              help=f"Redis holding the study [env {ENV_REDIS_URL}].")
@click.option("--study", required=True, metavar="NAME", help="Study to end.")
@click.option("--wait", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="Seconds to wait for a running coordinator to stop.")
@_one_line_errors
def cancel_command(redis_url: str, study: str, wait: float) -> None:
    """End a study: cancel its queued and running trials and withdraw their queued jobs
    (finished trials are kept; a running coordinator stops)."""
    from .cancel import cancel_study

    result = cancel_study(redis_url, study, wait=wait)
    click.echo(f"study {study}: cancelled {result.cancelled} queued or running trials, kept {result.finished} "
               f"finished ones (by {result.by}); status {result.status}")


def register(group: click.Group) -> None:
    """Add ``run``, ``worker`` and ``cancel`` to the ``distopt`` command group."""
    group.add_command(run_command)
    group.add_command(worker_command)
    group.add_command(cancel_command)
