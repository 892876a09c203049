"""``distopt run`` without a Redis URL: inline, or a private Redis and local workers that
are all gone afterwards, also after Ctrl-C or SIGTERM."""

import os
import json
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from distopt.errors import DistoptError
from distopt.trial.record import TrialState
from distopt.storage import RedisStorage

ROOT = Path(__file__).resolve().parents[2]
POLYNOMIAL = ROOT / "scripts" / "polynomial_study.py"


def own_processes() -> dict[int, str]:
    """pid -> command line of redis-servers and distopt processes on this machine."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "redis-server" in cmd or "distopt" in cmd:
            found[int(entry)] = cmd
    found.pop(os.getpid(), None)
    return found


def listening_ports() -> set[int]:
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def children_of(pid: int) -> list[int]:
    kids = []
    for other in own_processes():
        try:
            stat = Path(f"/proc/{other}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            kids.append(other)
    return kids


def env_without_secret() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("DISTOPT_SECRET", "DISTOPT_REDIS_URL")}


def descendants(pid: int) -> set[int]:
    found, frontier = set(), [pid]
    while frontier:
        kids = children_of(frontier.pop())
        frontier.extend(k for k in kids if k not in found)
        found.update(kids)
    return found


class RunTree:
    """The processes a run started and the ports they listened on, collected while it
    runs, so the check after it ignores whatever else the machine is doing."""

    def __init__(self) -> None:
        self.pids: set[int] = set()
        self.ports: set[int] = set()

    def collect(self, pid: int) -> None:
        for child in descendants(pid):
            self.pids.add(child)
            cmd = own_processes().get(child, "")
            self.ports.update(int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", cmd))

    def follow(self, proc: subprocess.Popen, timeout: float) -> tuple[str, str]:
        deadline = time.monotonic() + timeout
        while proc.poll() is None:
            self.collect(proc.pid)
            assert time.monotonic() < deadline, "the run did not finish in time"
            time.sleep(0.05)
        return proc.communicate()


def assert_nothing_left(tree: RunTree) -> None:
    assert tree.pids, "no child process of the run was seen"
    deadline = time.monotonic() + 10
    while True:
        alive = {p for p in tree.pids if Path(f"/proc/{p}").exists()
                 and "zombie" not in Path(f"/proc/{p}/status").read_text(errors="replace").lower()}
        ports = tree.ports & listening_ports()
        if not alive and not ports:
            return
        assert time.monotonic() < deadline, f"left behind: processes {alive}, listening ports {ports}"
        time.sleep(0.1)


def test_embedded_run_leaves_no_process_or_port():
    tree = RunTree()
    proc = subprocess.Popen([sys.executable, "-m", "distopt", "run", str(POLYNOMIAL), "--workers", "2",
                             "--max-evals", "30"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env_without_secret(), cwd=str(ROOT))
    stdout, stderr = tree.follow(proc, timeout=90)
    assert proc.returncode == 0, stderr
    assert "(embedded)" in stdout and "trials: 30 (30 ok, 0 failed)" in stdout
    assert "best loss: " in stdout and re.search(r"^best parameters: x=-?[0-9.]+$", stdout, re.M), stdout
    assert "insecure" not in stderr.lower()  # a per-run secret, no warning
    assert tree.ports, "the embedded redis-server's port was not seen"
    assert_nothing_left(tree)


def test_inline_run_without_workers():
    out = subprocess.run([sys.executable, "-m", "distopt", "run", str(POLYNOMIAL), "--max-evals", "25",
                          "--seed", "3"], capture_output=True, text=True, timeout=60,
                         env=env_without_secret(), cwd=str(ROOT))
    assert out.returncode == 0, out.stderr
    assert "trials: 25 (25 ok, 0 failed)" in out.stdout and "study:" not in out.stdout


def slow_study(tmp_path: Path, seconds: float) -> Path:
    """A study file whose objective sleeps ``seconds``: trials are still running when a
    test interrupts the run or kills a worker."""
    study = tmp_path / "slow_study.py"
    study.write_text(textwrap.dedent(f"""
        import time
        from distopt import hp
        space = hp.uniform("x", 0, 1)
        def objective(x):
            time.sleep({seconds!r})
            return x
    """))
    return study


def wait_for_recorded_trial(tree: RunTree, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Wait until the run's private Redis (on a port seen in its processes' command lines)
    holds a study with a finished trial: the condition itself, not a guess at how long
    a loaded machine needs for it."""
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, proc.communicate()
        tree.collect(proc.pid)
        for port in sorted(tree.ports):
            storage = RedisStorage(f"redis://127.0.0.1:{port}/0")
            try:
                if any(sum(storage.count_states(s)[st] for st in (TrialState.OK, TrialState.FAIL)) > 0
                       for s in storage.list_studies()):
                    return
            except DistoptError:  # not up yet, or already gone
                pass
            finally:
                storage.close()
        assert time.monotonic() < deadline, "no trial of the embedded run finished in time"
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_embedded_run_cleans_up(tmp_path, sig):
    study = slow_study(tmp_path, 0.2)
    tree = RunTree()
    saved = tmp_path / "trials.json"
    proc = subprocess.Popen([sys.executable, "-m", "distopt", "run", str(study), "--workers", "2",
                             "--max-evals", "1000", "--save", str(saved)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env_without_secret(), cwd=str(ROOT))
    try:
        deadline = time.monotonic() + 30
        while len(descendants(proc.pid)) < 3:  # redis-server and two workers
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the embedded run never started its processes"
            time.sleep(0.05)
        tree.collect(proc.pid)
        wait_for_recorded_trial(tree, proc)  # a trial finished and recorded: something to save and count
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == (130 if sig == signal.SIGINT else 143), err
    assert "Traceback" not in err
    # true about where the results went: the private Redis, gone; no resume command
    what = "interrupted" if sig == signal.SIGINT else "terminated (SIGTERM)"
    said = re.search(what.replace("(", r"\(").replace(")", r"\)") + r": study '[^']+' \((\d+) finished trials, (\d+) "
                     r"queued or running\) was in this run's private Redis, which is gone with it; its trials "
                     r"are saved to " + re.escape(str(saved)), err)
    assert said, err
    assert "resume it" not in err and "kept in Redis" not in err
    # the saved file holds what the message counted, written before the private Redis stopped
    rows = json.loads(saved.read_text())
    finished = [r for r in rows if r["state"] in ("ok", "fail")]
    assert len(finished) == int(said.group(1)) > 0 and len(rows) - len(finished) == int(said.group(2))
    assert_nothing_left(tree)
