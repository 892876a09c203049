"""``distopt status | trials | best | plot``: watching and reading a study on Redis.

``register(main)`` adds them to the ``distopt`` group. Each command opens the Redis named by ``--redis`` (default ``$DISTOPT_REDIS_URL``),
calls one library function (``monitor.status``, ``export.trials_rows``,
``plotting.plot_*``) and prints. Every error distopt raises on purpose becomes a
one-line message and exit code 1; bad flags exit with 2.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
from typing import Any, Callable, Iterator

import click

from .common import ENV_REDIS_URL, reported
from ..errors import ConnectionFailed, DistoptError, StudyNotFound
from ..study.rows import choice_options, trials_rows, write_rows
from ..monitor.document import status as get_status
from ..trial.record import TrialState
from ..study.snapshot import StudySnapshot, load_snapshot
from ..monitor.manage import delete_study, list_studies
from ..monitor.table import duration, render, table
from ..storage import URL_SCHEMES, Storage, open_storage

#: Cursor home and clear screen: ``--watch`` redraws in place.
CLEAR = "\x1b[H\x1b[2J"


def redis_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--redis", "redis_url", envvar=ENV_REDIS_URL, metavar="URL",
        help=f"Redis holding the studies, e.g. redis://host:6379/0 (default: ${ENV_REDIS_URL}).",
    )(func)


def study_option(required: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--study", "study", required=required, metavar="NAME",
                        help="Study name." if required else "Only this study (default: all).")


def connect(redis_url: str | None) -> Storage:
    """The storage at ``redis_url``; it has answered PING."""
    if not redis_url:
        raise click.UsageError(f"no Redis URL: pass --redis redis://host:6379/0 or set ${ENV_REDIS_URL}")
    if not redis_url.startswith(URL_SCHEMES):
        raise click.UsageError(f"--redis {redis_url!r} is not a Redis URL; pass one such as redis://host:6379/0 "
                               f"(also rediss:// for TLS, unix:///path/redis.sock)")
    return open_storage(redis_url)


@contextlib.contextmanager
def opened(redis_url: str | None) -> Iterator[Storage]:
    with reported():
        storage = connect(redis_url)
        try:
            yield storage
        finally:
            storage.close()


def _snapshot(redis_url: str | None, study: str) -> StudySnapshot:
    with opened(redis_url) as storage:
        return load_snapshot(storage, study)


# -- status --------------------------------------------------------------------------------
@click.command("status", short_help="Queues, workers, studies: counts, best, rate, ETA.")
@redis_option
@study_option(required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the status document as JSON (one line per refresh).")
@click.option("--watch", type=click.FloatRange(min=0.1), metavar="SECONDS",
              help="Refresh every SECONDS until Ctrl-C (redraws one screen on a terminal); with --study, "
                   "waits for the study to appear.")
@click.option("--all", "show_all", is_flag=True, help="List every ended study too (by default the most recent "
                                                      "few are shown and the others folded into one line).")
def status_command(redis_url: str | None, study: str | None, as_json: bool, watch: float | None,
                   show_all: bool) -> None:
    """Queues, workers and studies on a Redis: trial counts, best loss, rate, ETA, stale
    trials. Active studies come first; a study whose coordinator is gone is shown
    interrupted, with the command that resumes it; dead workers are shown dead."""
    with opened(redis_url) as storage:
        if watch is None:
            click.echo(_format(get_status(storage, study), as_json, show_all), nl=False)
            return
        with contextlib.suppress(KeyboardInterrupt):
            _watch(storage, study, as_json, watch, show_all)


def _format(doc: dict[str, Any], as_json: bool, show_all: bool = False) -> str:
    if as_json:
        return json.dumps(doc, allow_nan=False) + "\n"
    return render(doc, width=shutil.get_terminal_size().columns, show_inactive=None if show_all else 5)


def _terminal() -> bool:
    """Whether standard output is a terminal (``--watch`` redraws in place only there)."""
    return sys.stdout.isatty()


def _watch(storage: Storage, study: str | None, as_json: bool, every: float, show_all: bool = False) -> None:
    """Redraw until interrupted: one screen redrawn in place on a terminal, blocks one
    after another otherwise (a file or a pipe gets no escape codes). A study that does
    not exist yet is waited for; after a first success a lost connection is shown and
    retried rather than ending the watch (Redis may be restarting)."""
    shown = False
    redraw = _terminal() and not as_json
    while True:
        try:
            text = _format(get_status(storage, study), as_json, show_all)
        except StudyNotFound as exc:
            text = f"{time.strftime('%H:%M:%S')} waiting for study {study!r} to appear ({exc}); Ctrl-C to stop\n"
            text = json.dumps({"waiting_for": study, "error": str(exc)}) + "\n" if as_json else text
            click.echo(CLEAR + text if redraw else text, nl=False)
            shown = True
        except ConnectionFailed as exc:
            if not shown:
                raise
            click.echo(f"{time.strftime('%H:%M:%S')} {exc}; retrying every {every:g} s", err=True)
        else:
            click.echo(CLEAR + text if redraw else text + ("" if as_json else "\n"), nl=False)
            shown = True
        time.sleep(every)


# -- studies -------------------------------------------------------------------------------
@click.command("studies", short_help="List the studies: status, counts, best loss, age.")
@redis_option
@click.option("--active", is_flag=True, help="Only studies that are running, interrupted or created.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def studies_command(redis_url: str | None, active: bool, as_json: bool) -> None:
    """Every study on the Redis, active ones first: status (a study whose coordinator is
    gone is interrupted), trial counts, best loss and how long ago it last changed."""
    with opened(redis_url) as storage:
        rows = list_studies(storage, active=active)
    if as_json:
        click.echo(json.dumps(rows, allow_nan=False))
        return
    if not rows:
        click.echo("no active studies" if active else "no studies")
        return
    body = [[r["name"], r["status"] or "-", r["counts"]["queued"] + r["counts"]["taken"],
             r["counts"]["running"], r["counts"]["waiting"], r["counts"]["ok"], r["counts"]["fail"],
             f"{r['finished']}/{r['max_evals']}" if r["max_evals"] is not None else r["finished"],
             "-" if r["best_loss"] is None else f"{r['best_loss']:.6g}", f"{duration(r['age'])} ago"]
            for r in rows]
    click.echo("\n".join(table(["STUDY", "STATUS", "QUEUED", "RUNNING", "WAITING", "OK", "FAIL", "DONE",
                                "BEST LOSS", "LAST ACTIVE"], body, right=range(2, 9))))


# -- delete --------------------------------------------------------------------------------
@click.command("delete", short_help="Delete a study and everything it stored.")
@redis_option
@study_option(required=True)
@click.option("--force", is_flag=True, help="Delete it even though a live coordinator runs it.")
def delete_command(redis_url: str | None, study: str, force: bool) -> None:
    """Delete a study: its record, trials, inbox, heartbeats and lease, and its jobs still
    waiting on the queue (other studies are not touched). Refuses a study a live
    coordinator runs, unless --force."""
    with opened(redis_url) as storage:
        done = delete_study(storage, study, force=force)
    click.echo(f"deleted study {study!r}: {done['trials']} trials, {done['jobs_withdrawn']} queued jobs withdrawn"
               + (f" (its coordinator {done['coordinator']} will fail)" if done["coordinator"] else ""))


# -- trials --------------------------------------------------------------------------------
@click.command("trials", short_help="Export a study's trials as CSV or JSON.")
@redis_option
@study_option(required=True)
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("--state", "states", multiple=True, type=click.Choice([s.value for s in TrialState]),
              help="Only trials in this state (repeat for several).")
@click.option("--out", "out", type=click.Path(dir_okay=False, writable=True), default="-",
              help="File to write (default: standard output).")
@click.option("--indices", is_flag=True, help="Write each choice as its option index (as hyperopt's Trials.vals "
                                              "keeps it) instead of the option chosen.")
def trials_command(redis_url: str | None, study: str, fmt: str, states: tuple[str, ...], out: str,
                   indices: bool) -> None:
    """One row per trial: tid, state, loss, attempt, worker, times, error, the last
    intermediate step and value reported (JSON: every one, as intermediate_values), then
    each parameter's value: a choice as the option chosen (its index with --indices, or
    when its options are sub-spaces), other parameters as sampled."""
    snap = _snapshot(redis_url, study)
    choices = None if indices or snap.space is None else choice_options(snap.space)
    rows = trials_rows(snap.records, list(snap.labels), states or None, choices=choices, curves=snap.curves,
                       intermediate=fmt == "json")
    with reported(), _output(out) as fh:
        write_rows(rows, fh, fmt, snap.labels)
    if out != "-":
        click.echo(f"wrote {len(rows)} trials of study {study!r} to {out}", err=True)


@contextlib.contextmanager
def _output(path: str) -> Iterator[Any]:
    if path == "-":
        yield sys.stdout
        return
    try:
        fh = open(path, "w", newline="", encoding="utf-8")
    except OSError as exc:
        raise DistoptError(f"cannot write {path}: {exc.strerror}; choose another --out") from exc
    with fh:
        yield fh


# -- best ----------------------------------------------------------------------------------
@click.command("best", short_help="Best parameters and loss of a study, as JSON.")
@redis_option
@study_option(required=True)
def best_command(redis_url: str | None, study: str) -> None:
    """The best trial's parameters (as the objective received them), loss and trial id, as JSON."""
    snap = _snapshot(redis_url, study)
    best = snap.best
    if best is None:
        states = {s.value: sum(1 for r in snap.records if r.state == s) for s in TrialState}
        counts = ", ".join(f"{n} {s}" for s, n in states.items() if n) or "no trials"
        raise click.ClickException(f"study {study!r} has no trial that finished ok yet ({counts})")
    doc = {"study": study, "tid": best.tid, "loss": best.loss, "params": snap.params(best), "vals": dict(best.vals)}
    click.echo(json.dumps(doc, indent=2, allow_nan=False))


# -- plot ----------------------------------------------------------------------------------
@click.command("plot", short_help="Draw a study's history, parameters or histograms.")
@redis_option
@study_option(required=True)
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, writable=True),
              help="PNG file to write.")
@click.option("--kind", type=click.Choice(["history", "params", "hist", "curves"]), default="history",
              show_default=True,
              help="history: loss per trial and best so far; params: each parameter by trial, colored by "
                   "loss; hist: histograms of the sampled values; curves: intermediate values by step, "
                   "pruned trials marked.")
def plot_command(redis_url: str | None, study: str, out: str, kind: str) -> None:
    """Draw a study to a PNG file (needs ``pip install distopt[plot]``)."""
    snap = _snapshot(redis_url, study)
    with reported():
        from ..monitor.plots import PLOTS

        try:
            PLOTS[kind](snap, out)
        except OSError as exc:
            raise DistoptError(f"cannot write {out}: {exc.strerror or exc}; choose another --out") from exc
    click.echo(f"wrote {out}", err=True)


def register(group: click.Group) -> None:
    """Add the monitoring commands to the ``distopt`` command group."""
    for command in (status_command, studies_command, delete_command, trials_command, best_command, plot_command):
        group.add_command(command)
