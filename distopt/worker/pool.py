"""``distopt worker`` behind the CLI: one rq worker in this process, or a supervised
pool of worker processes.

A pool starts ``python -m distopt worker ... --processes 1`` children, passes the secret
through the environment (never the command line, where ``ps`` shows it), restarts a
child that dies while the pool runs, and stops them all on SIGTERM/SIGINT or when the
pool is closed. Children stop by themselves if the supervising process vanishes.

Stopping is graceful: SIGTERM lets each child finish its current trial (rq's warm
shutdown); a second signal, or the end of ``grace`` when the pool is closed, asks for a
cold shutdown (the child hands its trial back to the coordinator, which runs it
elsewhere at once); only then are children killed.
"""

from __future__ import annotations

import collections
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from types import TracebackType
from typing import IO, Any, Sequence

from ..errors import DistoptError
from ..defaults import ENV_SECRET
from ..dispatch.secret import resolve_secret
from ..storage import RedisStorage
from ..storage.redis.retry import wait_for_redis as wait_for
from .shutdown import on_shutdown_signals

log = logging.getLogger(__name__)

from ..defaults import ENV_PARENT_PID, ENV_REDIS_URL  # noqa: E402
from ..defaults import DEFAULT_QUEUE
#: Python's flag that keeps the working directory off ``sys.path`` (3.11+); older Pythons
#: get the same from a launcher that drops it before importing anything else.
_SAFE_PATH = ("-P",) if sys.version_info >= (3, 11) else (
    "-c", "import sys, runpy; sys.path[:] = [p for p in sys.path if p not in ('', '.')]; "
          "sys.argv[0] = 'distopt'; runpy.run_module('distopt', run_name='__main__', alter_sys=True)")
#: A child that exits sooner than this after its start counts as a failed start
#: (generous: a loaded machine takes seconds to import rq and numpy).
_QUICK_EXIT = 10.0
#: This many failed starts in a row (no child lived longer in between) is a crash loop.
_MAX_QUICK_EXITS = 5
#: Lines of a child's stderr kept for the crash-loop error.
_TAIL_LINES = 20


def exit_reason(code: int | None) -> str:
    """A child's exit status in words ("killed by SIGKILL", "exit code 1")."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _tee(stream: IO[bytes], tail: "collections.deque[str]") -> None:
    """Copy a child's stderr to ours line by line, keeping the last lines."""
    try:
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace")
            tail.append(line.rstrip("\n"))
            try:
                sys.stderr.write(line)
                sys.stderr.flush()
            except (OSError, ValueError):  # our stderr is closed: keep reading, so the child never blocks
                pass
    finally:
        stream.close()


class WorkerPool:
    """``processes`` local worker processes on ``redis_url``; a context manager."""

    def __init__(
        self,
        redis_url: str,
        processes: int,
        *,
        queues: Sequence[str] = (DEFAULT_QUEUE,),
        secret: bytes | None = None,
        insecure: bool = False,
        burst: bool = False,
        fork: bool = False,
        verbose: int = 0,
        grace: float = 5.0,
        quiet: bool = False,
    ) -> None:
        if processes < 1:
            raise DistoptError(f"a worker pool needs at least 1 process, got {processes!r}")
        self.redis_url = redis_url
        self.processes = processes
        self.queues = tuple(queues)
        self.secret = secret
        self.insecure = insecure
        self.burst = burst
        self.fork = fork
        self.verbose = verbose
        self.grace = grace
        self.quiet = quiet
        self.procs: list[subprocess.Popen[bytes]] = []
        self._started: list[float] = []
        self._seen: set[int] = set()
        self._quick_exits = 0
        self._tails: dict[int, collections.deque[str]] = {}
        self._tees: dict[int, threading.Thread] = {}
        self.last_exit: tuple[int, int, float] | None = None  # pid, code, seconds it lived

    def command(self) -> list[str]:
        """The child's command line: no Redis URL (it may hold a password) and no secret,
        both go in the environment; the working directory is not put on ``sys.path``, so
        a file there named like a module (``string.py``) is never imported by a worker."""
        cmd = [sys.executable, *_SAFE_PATH, "-m", "distopt"] + ["-v"] * self.verbose
        cmd += ["worker", "--processes", "1"]
        for queue in self.queues:
            cmd += ["--queue", queue]
        cmd += ["--burst"] * self.burst + ["--fork"] * self.fork + ["--quiet"] * (self.quiet and not self.verbose)
        cmd += ["--insecure"] * (self.insecure and self.secret is None)
        return cmd

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env[ENV_PARENT_PID] = str(os.getpid())
        env[ENV_REDIS_URL] = self.redis_url
        if self.secret is not None:
            env[ENV_SECRET] = os.fsdecode(self.secret)
        else:
            env.pop(ENV_SECRET, None)
        return env

    def _spawn(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(self.command(), env=self._env(), stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
        tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        assert proc.stderr is not None
        tee = threading.Thread(target=_tee, args=(proc.stderr, tail), name=f"distopt-worker-{proc.pid}-stderr",
                               daemon=True)
        tee.start()
        self._tails[proc.pid] = tail
        self._tees[proc.pid] = tee
        return proc

    def stderr_tail(self, pid: int) -> list[str]:
        """The last lines child ``pid`` wrote to stderr (all of them once it exited)."""
        tee = self._tees.get(pid)
        if tee is not None:
            tee.join(1.0)  # an exited child's last lines may still be in the pipe
        return list(self._tails.get(pid, ()))

    def start(self) -> "WorkerPool":
        from .rq_worker import check_rq

        check_rq()  # here, not as a crash loop of every process started
        for _ in range(self.processes):
            self.procs.append(self._spawn())
            self._started.append(time.monotonic())
        return self

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def alive(self) -> int:
        return sum(1 for p in self.procs if p.poll() is None)

    def check(self, restart: bool = False) -> None:
        """Raise when every child has exited, or children keep dying soon after their
        start (a crash loop: a bad environment, not bad luck); with ``restart``, start a
        new child in place of one that died (killed, out of memory, ...)."""
        now = time.monotonic()
        for i, proc in enumerate(self.procs):
            code = proc.poll()
            if code is None or proc.pid in self._seen:
                continue
            self._seen.add(proc.pid)
            if code != 0:
                self._report_death(proc.pid, code)
            lived = now - self._started[i]
            self.last_exit = (proc.pid, code, lived)
            self._quick_exits = self._quick_exits + 1 if lived < _QUICK_EXIT else 0
            if restart and not self.burst and self._quick_exits < _MAX_QUICK_EXITS:
                log.warning("worker process %s stopped (%s) after %.1f s; starting another in its place "
                            "(a trial it was running FAILs with that cause when the objective did it, else runs again)", proc.pid, exit_reason(code), lived)
                self.procs[i] = self._spawn()
                self._started[i] = time.monotonic()
        if self.burst or not self.procs:
            return
        if self._quick_exits >= _MAX_QUICK_EXITS:
            raise DistoptError(f"the local worker processes keep exiting soon after they start ({self._quick_exits} "
                               f"in a row within {_QUICK_EXIT:g} s of their start); {self._last_words()}")
        if self.alive() == 0:
            raise DistoptError(f"every local worker process has exited; {self._last_words()}")

    def _report_death(self, pid: int, code: int) -> None:
        """Record how a child that died mid-trial ended on its trial (the objective's crash
        FAILs it at once with the cause; a kill from outside hands it back)."""
        from .rq_worker import report_dead_worker

        storage = RedisStorage(self.redis_url)
        try:
            if report_dead_worker(storage.client, pid, code, self.secret):
                log.warning("worker process %s died mid-trial (%s); recorded on its trial", pid, exit_reason(code))
        except Exception:
            log.warning("could not record how worker process %s ended on its trial", pid, exc_info=True)
        finally:
            storage.close()

    def _last_words(self) -> str:
        """The last exited child's exit reason and stderr, for an error message."""
        if self.last_exit is None:
            return "no exit was seen"
        pid, code, lived = self.last_exit
        tail = [line for line in self.stderr_tail(pid) if line.strip()]
        said = ("its error output ends:\n  " + "\n  ".join(tail)) if tail else "it printed nothing to stderr"
        return f"the last one (pid {pid}) ended with {exit_reason(code)} after {lived:.1f} s; {said}"

    def wait(self, timeout: float | None = None) -> list[int]:
        """Wait for every child to exit; their exit codes."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for proc in self.procs:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            proc.wait(left)
        return [int(p.returncode) for p in self.procs]

    def signal_all(self, sig: int = signal.SIGTERM) -> None:
        """Send ``sig`` to every child still running."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(sig)

    def _wait_all(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for every child to exit; True when all did."""
        deadline = time.monotonic() + seconds
        for proc in self.procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                return False
        return True

    def stop(self) -> None:
        """SIGTERM (rq finishes the current trial) and ``grace`` seconds to exit; then a
        second SIGTERM (rq's cold shutdown: the trial is handed back) and a moment more;
        then SIGKILL."""
        self.signal_all(signal.SIGTERM)
        if self._wait_all(self.grace):
            return
        self.signal_all(signal.SIGTERM)
        if self._wait_all(min(2.0, max(0.5, self.grace))):
            return
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def __enter__(self) -> "WorkerPool":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def run_workers(
    redis_url: str,
    *,
    queues: Sequence[str] = (DEFAULT_QUEUE,),
    processes: int = 1,
    burst: bool = False,
    fork: bool = False,
    secret: str | bytes | None = None,
    secret_file: str | None = None,
    insecure: bool = False,
    verbose: int = 0,
    quiet: bool = False,
    wait_for_redis: float | None = None,
) -> int:
    """Work on ``queues`` until stopped (or, with ``burst``, until they are empty).

    Refuses to start without a secret unless ``insecure``; with ``processes > 1``
    supervises that many worker processes. Logs a line per trial (start, end with its
    duration and loss or error) unless ``quiet``; rq's own lines only with ``verbose``.
    Redis not up yet (a machine booting) is waited for, with backoff and a log line, for
    ``wait_for_redis`` seconds (None: as long as it takes). Returns an exit code.
    """
    key = resolve_secret(secret, secret_file, insecure, role="worker")
    if processes < 1:
        raise DistoptError(f"--processes must be at least 1, got {processes!r}")
    from .rq_worker import check_rq

    check_rq()  # before any process starts (each worker checks again as it starts)
    storage = RedisStorage(redis_url)  # a bad URL or a refused password fails here, naming host:port
    try:
        wait_for(storage.ping, wait_for_redis, storage.where, role=f"worker {socket.gethostname()}:{os.getpid()}")
    finally:
        storage.close()
    if processes == 1:
        from .rq_worker import work

        level = "DEBUG" if verbose > 1 else "INFO" if verbose else "WARNING"
        logging.getLogger("distopt").setLevel(logging.DEBUG if verbose > 1 else logging.WARNING if quiet
                                              else logging.INFO)
        work(redis_url, queues, secret=key, insecure=insecure, burst=burst, fork=fork, logging_level=level)
        return 0
    return _supervise(WorkerPool(redis_url, processes, queues=queues, secret=key, insecure=insecure,
                                 burst=burst, fork=fork, verbose=verbose, quiet=quiet))


def _supervise(pool: WorkerPool) -> int:
    """Run the pool until SIGTERM/SIGINT; then forward it and wait while the children
    finish their trials. A second signal is forwarded too (a cold shutdown)."""
    stopping: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        stopping.append(signum)
        if len(stopping) > 1:
            pool.signal_all(signal.SIGTERM)

    with on_shutdown_signals(on_signal):
        try:
            pool.start()
            while not stopping:
                if pool.burst and pool.alive() == 0:
                    break
                pool.check(restart=True)
                time.sleep(0.2)
            if stopping:
                pool.signal_all(signal.SIGTERM)
                while pool.alive() and len(stopping) < 2:
                    time.sleep(0.1)
        finally:
            pool.stop()
    codes = [p.returncode for p in pool.procs]
    return 0 if stopping else max((abs(c) for c in codes if c is not None), default=0)


def check_health(redis_url: str, host: str | None = None) -> tuple[bool, str]:
    """(healthy, why) for the workers of ``host`` (default: this machine or container):
    the container health check behind ``distopt worker --check``."""
    from ..dispatch.inspect import host_health
    from ..defaults import WORKER_TTL

    storage = RedisStorage(redis_url)
    now = time.time()

    def problem(study: str, tid: int, attempt: int) -> str | None:
        if study not in storage.list_studies():
            return None
        beat = storage.heartbeats(study).get(tid)
        if beat is not None and int(beat["attempt"]) == attempt and float(beat["deadline"]) < now:
            return f"its heartbeat expired {now - float(beat['deadline']):.0f} s ago"
        rec = storage.get_trial(study, tid)
        if rec is not None and rec.attempt > attempt:
            return f"the coordinator gave attempt {attempt} up as lost (its heartbeat expired)"
        return None

    try:
        return host_health(storage.client, host or socket.gethostname(), now, problem, WORKER_TTL + 30)
    finally:
        storage.close()
