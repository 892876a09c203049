"""``distopt run`` without a Redis URL: inline, or a private Redis and local workers that
are all gone afterwards, also after Ctrl-C or SIGTERM."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

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


def assert_nothing_left(before_procs, before_ports):
    deadline = time.monotonic() + 10
    while True:
        extra = {p: c for p, c in own_processes().items() if p not in before_procs}
        ports = listening_ports() - before_ports
        if not extra and not ports:
            return
        assert time.monotonic() < deadline, f"left behind: processes {extra}, listening ports {ports}"
        time.sleep(0.1)


def test_embedded_run_leaves_no_process_or_port():
    before_procs, before_ports = own_processes(), listening_ports()
    out = subprocess.run([sys.executable, "-m", "distopt", "run", str(POLYNOMIAL), "--workers", "2",
                          "--max-evals", "30"], capture_output=True, text=True, timeout=90,
                         env=env_without_secret(), cwd=str(ROOT))
    assert out.returncode == 0, out.stderr
    assert "(embedded)" in out.stdout and "trials: 30 (30 ok, 0 failed)" in out.stdout
    assert "best loss: " in out.stdout and "best parameters: " in out.stdout
    assert "insecure" not in out.stderr.lower()  # a per-run secret, no warning
    assert_nothing_left(before_procs, before_ports)


def test_inline_run_without_workers():
    out = subprocess.run([sys.executable, "-m", "distopt", "run", str(POLYNOMIAL), "--max-evals", "25",
                          "--seed", "3"], capture_output=True, text=True, timeout=60,
                         env=env_without_secret(), cwd=str(ROOT))
    assert out.returncode == 0, out.stderr
    assert "trials: 25 (25 ok, 0 failed)" in out.stdout and "study:" not in out.stdout


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_embedded_run_cleans_up(tmp_path, sig):
    study = tmp_path / "slow_study.py"
    study.write_text(textwrap.dedent("""
        import time
        from distopt import hp
        space = hp.uniform("x", 0, 1)
        def objective(x):
            time.sleep(0.2)
            return x
    """))
    before_procs, before_ports = own_processes(), listening_ports()
    proc = subprocess.Popen([sys.executable, "-m", "distopt", "run", str(study), "--workers", "2",
                             "--max-evals", "1000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env_without_secret(), cwd=str(ROOT))
    try:
        deadline = time.monotonic() + 30
        while len(children_of(proc.pid)) < 3:  # redis-server and two workers
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the embedded run never started its processes"
            time.sleep(0.05)
        time.sleep(1.0)  # trials are running
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert "Traceback" not in err
    assert_nothing_left(before_procs, before_ports)
