"""``distopt run`` and ``distopt worker``: parse, call the library, print, exit code.

Errors distopt raises on purpose print as one line (no traceback) and exit 1; Ctrl-C
exits 130.
"""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable

import click

from .errors import DistoptError

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def _one_line_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DistoptError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_ERROR)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)

    return wrapper


def _verbosity() -> int:
    ctx = click.get_current_context()
    root = ctx.find_root()
    return int(root.params.get("verbose") or 0)


@click.command("run")
@click.argument("study_file", type=click.Path(dir_okay=False))
@click.option("--redis", "redis_url", envvar="DISTOPT_REDIS_URL", default=None, metavar="URL",
              help="Redis of a cluster [env DISTOPT_REDIS_URL]. Without it: a private Redis when "
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
              help="Fail a trial that runs longer than SEC seconds.")
@click.option("--secret-file", type=click.Path(dir_okay=False), default=None,
              help="File holding the shared secret (default: $DISTOPT_SECRET).")
@click.option("--insecure", is_flag=True, help="Ship the objective unsigned when there is no secret.")
@click.option("--queue", default="distopt", show_default=True, help="rq queue of the study's jobs.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal).")
@_one_line_errors
def run_command(study_file: str, redis_url: str | None, study: str | None, max_evals: int | None,
                parallelism: int | None, workers: int, algo: str | None, seed: int | None,
                timeout: float | None, trial_timeout: float | None, secret_file: str | None,
                insecure: bool, queue: str, progress: bool | None) -> None:
    """Run the study STUDY_FILE defines (objective, space; optionally algo, max_evals)."""
    from .run import run_study_file

    result = run_study_file(
        study_file, redis_url=redis_url, study=study, max_evals=max_evals, parallelism=parallelism,
        workers=workers, algo=algo, seed=seed, timeout=timeout, secret_file=secret_file, insecure=insecure,
        queue=queue, trial_timeout=trial_timeout,
        show_progressbar=sys.stderr.isatty() if progress is None else progress,
    )
    if result.study:
        click.echo(f"study: {result.study} ({result.mode})")
    click.echo(f"trials: {result.n_trials} ({result.n_ok} ok, {result.n_fail} failed) in {result.elapsed:.1f} s")
    if result.best_loss is None:
        click.echo("error: no trial finished with status 'ok', so there is no best trial", err=True)
        sys.exit(EXIT_ERROR)
    click.echo(f"best loss: {result.best_loss:.6g}")
    click.echo(f"best parameters: {result.best_params!r}")


@click.command("worker")
@click.option("--redis", "redis_url", envvar="DISTOPT_REDIS_URL", required=True, metavar="URL",
              help="Redis to take jobs from [env DISTOPT_REDIS_URL].")
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


def register(group: click.Group) -> None:
    """Add ``run`` and ``worker`` to the ``distopt`` command group."""
    group.add_command(run_command)
    group.add_command(worker_command)
