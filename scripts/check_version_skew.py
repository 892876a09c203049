"""Version skew between a coordinator and its workers, with real interpreters.

Builds two venvs on top of this Python (``--system-site-packages``), one with a
cloudpickle of another patch release and one of another minor release, starts a worker
from each against a private Redis, and runs a small study from this Python:

- patch difference: the trials run, and the worker and the coordinator warn once;
- minor difference: the coordinator refuses before the first trial, naming the worker.

    python scripts/check_version_skew.py [--patch 3.1.2] [--minor 3.0.0] [--dir /tmp/skew]

Needs pip access to the package index. Exits 0 when both behave as described.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distopt import fmin, hp, rand  # noqa: E402
from distopt.errors import DistoptError  # noqa: E402
from distopt.redis_trials import RedisTrials  # noqa: E402
from distopt.storage.redis.server import RedisServer  # noqa: E402

SECRET = "skew-check-secret"


def venv_with(base: Path, cloudpickle: str) -> Path:
    """A venv over this interpreter's packages, with another cloudpickle."""
    where = base / f"venv-cloudpickle-{cloudpickle}"
    python = where / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(where)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"cloudpickle=={cloudpickle}"], check=True)
    got = subprocess.run([str(python), "-c", "import cloudpickle; print(cloudpickle.__version__)"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert got == cloudpickle, f"{where} has cloudpickle {got}, not {cloudpickle}"
    return python


def square(x):
    return x * x


def run(python: Path, label: str) -> tuple[str, str]:
    """A worker from ``python`` and a 4-trial study from this one: (outcome, worker log)."""
    with RedisServer() as server:
        env = dict(os.environ, DISTOPT_SECRET=SECRET, PYTHONPATH=str(ROOT))
        worker = subprocess.Popen([str(python), "-m", "distopt", "worker", "--redis", server.url], env=env,
                                  stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while not server.client().keys("rq:worker:*"):
                assert time.monotonic() < deadline and worker.poll() is None, "the worker never registered"
                time.sleep(0.1)
            trials = RedisTrials(server.url, exp_key=f"skew-{label}", secret=SECRET)
            try:
                fmin(square, hp.uniform("x", -1, 1), algo=rand.suggest, max_evals=4, trials=trials, timeout=60,
                     show_progressbar=False)
                outcome = f"ran {len(trials.trials)} trials"
            except DistoptError as exc:
                outcome = f"refused: {exc}"
        finally:
            worker.terminate()
            _, log = worker.communicate(timeout=60)
    return outcome, log


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patch", default="3.1.2", help="a cloudpickle of this one's major.minor, another patch")
    parser.add_argument("--minor", default="3.0.0", help="a cloudpickle of another minor release")
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "distopt-skew"))
    args = parser.parse_args()
    base = Path(args.dir)
    base.mkdir(parents=True, exist_ok=True)
    ok = True
    outcome, log = run(venv_with(base, args.patch), "patch")
    print(f"patch ({args.patch}): {outcome}")
    warned = [line for line in log.splitlines() if "patch version only" in line]
    print(f"  worker warned {len(warned)} time(s): {warned[0] if warned else '-'}")
    ok &= outcome == "ran 4 trials" and len(warned) == 1
    outcome, log = run(venv_with(base, args.minor), "minor")
    print(f"minor ({args.minor}): {outcome}")
    ok &= outcome.startswith("refused:") and "no trial was started" in outcome and f"vs {args.minor}" in outcome
    print("OK" if ok else "UNEXPECTED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
