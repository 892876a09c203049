"""A bounded chaos soak: one study run to the end while workers, coordinators and Redis are
killed, frozen and restarted at random, then the invariants checked on what Redis holds.

    nice -n 19 python scripts/chaos_soak.py --trials 300 --workers 6 --seed 1

Events, one every ``--every`` seconds on average: kill -9 of a worker process (its
supervisor starts another); SIGSTOP of a worker past the heartbeat ttl, then SIGCONT;
kill -9 of the coordinator (a new one is started, and adopts the study); SIGSTOP of the
coordinator past its lease ttl while a second one takes the study over, then SIGCONT (the
frozen one must write nothing and exit); a hard restart of Redis (SIGKILL) with its AOF
(appendfsync always). After the main study, an episode on a Redis without persistence:
wiped mid-trial, the study must be reported lost, and a rerun under its name (once the
user clears the record) must record only losses of its own parameters.

Invariants checked at the end: exactly ``--trials`` trials finished (OK + FAIL), no trial
id twice, every OK loss equal to the objective at the trial's own parameters, nothing
QUEUED/RUNNING/LOST left, an empty inbox, status "done", and every frozen coordinator
exited with the lost-lease error. It is a script, not a test in the default run; it
prints its numbers and exits 1 when an invariant breaks.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distopt.trial.record import TrialState  # noqa: E402
from distopt.storage.redis.server import RedisServer  # noqa: E402
from distopt.storage import RedisStorage  # noqa: E402

SECRET = "chaos-soak-secret"
STUDY_FILE = """
import random, time
from distopt import hp
space = {"x": hp.uniform("x", -5, 5), "y": hp.uniform("y", -2, 2)}
max_evals = 300
def objective(p):
    time.sleep(random.uniform(0.05, 0.4))
    return (p["x"] - 1.0) ** 2 + p["y"] ** 2
"""


def loss_of(vals: dict) -> float:
    return (vals["x"] - 1.0) ** 2 + vals["y"] ** 2


def env() -> dict[str, str]:
    return dict(os.environ, DISTOPT_SECRET=SECRET, PYTHONPATH=str(ROOT))


class Soak:
    def __init__(self, args: argparse.Namespace, folder: Path) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.folder = folder
        self.study_file = folder / "soak_study.py"
        self.study_file.write_text(STUDY_FILE)
        self.events: collections.Counter[str] = collections.Counter()
        self.coordinators: list[subprocess.Popen[str]] = []
        self.frozen_out: list[tuple[int, str]] = []  # (exit code, stderr) of coordinators frozen past a takeover
        self.logs: list[Path] = []

    # -- processes ----------------------------------------------------------------------
    def coordinator_cmd(self, url: str, study: str, max_evals: int) -> list[str]:
        return [sys.executable, "-m", "distopt", "run", str(self.study_file), "--redis", url, "--study", study,
                "--max-evals", str(max_evals), "--parallelism", str(self.args.workers), "--heartbeat-ttl",
                str(self.args.heartbeat_ttl), "--lease-ttl", str(self.args.lease_ttl), "--no-progress",
                "--seed", str(self.args.seed)]

    def start_coordinator(self, url: str, study: str, max_evals: int) -> subprocess.Popen[str]:
        log = self.folder / f"coordinator-{len(self.logs)}.err"
        self.logs.append(log)
        proc = subprocess.Popen(self.coordinator_cmd(url, study, max_evals), env=env(), cwd=str(ROOT), text=True,
                                stdout=subprocess.PIPE, stderr=open(log, "w"))
        proc.log = log  # type: ignore[attr-defined]
        self.coordinators.append(proc)
        return proc

    def live_coordinators(self) -> list[subprocess.Popen[str]]:
        return [p for p in self.coordinators if p.poll() is None]

    def holder(self, storage: RedisStorage, study: str) -> subprocess.Popen[str] | None:
        """The live coordinator process that holds the study's lease ("host:pid:id")."""
        try:
            owner = storage.lease_owner(study)
        except Exception:  # not created yet, or Redis restarting
            return None
        parts = (owner or "").split(":")
        pid = int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else None
        return next((p for p in self.live_coordinators() if p.pid == pid), None)

    def worker_children(self, pool: subprocess.Popen[bytes]) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(pool.pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    # -- events -------------------------------------------------------------------------
    def kill_worker(self, pool: subprocess.Popen[bytes]) -> None:
        children = self.worker_children(pool)
        if children:
            os.kill(self.rng.choice(children), signal.SIGKILL)
            self.events["kill -9 worker"] += 1

    def freeze_worker(self, pool: subprocess.Popen[bytes]) -> None:
        children = self.worker_children(pool)
        if children:
            pid = self.rng.choice(children)
            os.kill(pid, signal.SIGSTOP)
            time.sleep(self.args.heartbeat_ttl * 2.5)
            os.kill(pid, signal.SIGCONT)
            self.events["SIGSTOP worker past its ttl"] += 1

    def kill_coordinator(self, storage: RedisStorage, study: str) -> None:
        target = self.holder(storage, study)
        if target is not None:
            target.kill()
            target.wait()
            self.events["kill -9 coordinator"] += 1

    def freeze_coordinator(self, url: str, study: str, storage: RedisStorage) -> None:
        frozen = self.holder(storage, study)
        if frozen is None:
            return
        os.kill(frozen.pid, signal.SIGSTOP)
        deadline = time.monotonic() + self.args.lease_ttl * 10
        while storage.lease_owner(study) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        before = storage.client.get(storage.keys.generation(study))
        second = self.start_coordinator(url, study, self.args.trials)
        deadline = time.monotonic() + 60
        while storage.client.get(storage.keys.generation(study)) == before and second.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        took_over = storage.client.get(storage.keys.generation(study)) != before
        time.sleep(self.args.lease_ttl)  # the new one works a little
        os.kill(frozen.pid, signal.SIGCONT)
        if not took_over:  # nobody took the study while it was frozen: it may go on
            self.events["SIGSTOP coordinator, no takeover in time"] += 1
            return
        try:
            frozen.wait(60)
        except subprocess.TimeoutExpired:
            frozen.kill()
            frozen.wait()
        self.frozen_out.append((frozen.returncode, Path(frozen.log).read_text()))  # type: ignore[attr-defined]
        self.events["SIGSTOP coordinator past its lease, takeover, SIGCONT"] += 1

    def restart_redis(self, server: RedisServer) -> None:
        server.restart(hard=True)
        self.events["kill -9 Redis, restart with AOF"] += 1

    # -- the main study -----------------------------------------------------------------
    def run_main(self) -> dict:
        redis_dir = self.folder / "redis-aof"
        redis_dir.mkdir()
        study = "soak"
        with RedisServer(dir=redis_dir, appendonly=True, appendfsync="always") as server:
            url = server.url
            storage = RedisStorage(url)
            pool = subprocess.Popen([sys.executable, "-m", "distopt", "worker", "--redis", url, "--processes",
                                     str(self.args.workers)], env=env(), cwd=str(ROOT), stderr=subprocess.DEVNULL)
            started = time.monotonic()
            try:
                self.start_coordinator(url, study, self.args.trials)
                deadline = started + self.args.time_limit
                next_event = time.monotonic() + self.rng.expovariate(1 / self.args.every)
                while time.monotonic() < deadline:
                    done = [p for p in self.coordinators if p.poll() == 0]
                    if done:
                        break
                    if not self.live_coordinators():
                        time.sleep(0.5)
                        self.start_coordinator(url, study, self.args.trials)  # a refused start retries
                    if time.monotonic() >= next_event:
                        event = self.rng.choice(["worker", "worker", "freeze_worker", "coordinator", "freeze_coordinator",
                                                 "redis"])
                        try:
                            if event == "worker":
                                self.kill_worker(pool)
                            elif event == "freeze_worker":
                                self.freeze_worker(pool)
                            elif event == "coordinator":
                                self.kill_coordinator(storage, study)
                            elif event == "freeze_coordinator":
                                self.freeze_coordinator(url, study, storage)
                            else:
                                self.restart_redis(server)
                        except Exception as exc:  # Redis restarting under a read: the next event goes on
                            self.events[f"event error ({type(exc).__name__})"] += 1
                        next_event = time.monotonic() + self.rng.expovariate(1 / self.args.every)
                    time.sleep(0.2)
                elapsed = time.monotonic() - started
                for proc in self.live_coordinators():
                    proc.wait(120)
                records = storage.get_trials(study)
                meta = storage.get_study(study)
                inbox = storage.client.llen(storage.keys.inbox(study)) + storage.client.llen(storage.keys.claimed(study))
            finally:
                for proc in self.live_coordinators():
                    proc.kill()
                pool.send_signal(signal.SIGTERM)
                try:
                    pool.wait(30)
                except subprocess.TimeoutExpired:
                    pool.kill()
                    pool.wait()
        return {"records": records, "meta": meta, "inbox": inbox, "elapsed": elapsed}

    # -- the wipe episode ---------------------------------------------------------------
    def run_wipe(self) -> dict:
        redis_dir = self.folder / "redis-plain"
        redis_dir.mkdir()
        study = "soak-wiped"
        with RedisServer(dir=redis_dir) as server:
            url = server.url
            storage = RedisStorage(url)
            pool = subprocess.Popen([sys.executable, "-m", "distopt", "worker", "--redis", url, "--processes", "2"],
                                    env=env(), cwd=str(ROOT), stderr=subprocess.DEVNULL)
            try:
                first = self.start_coordinator(url, study, 30)
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    if study in storage.list_studies() and len(storage.get_trials(study)) >= 4:
                        break
                    time.sleep(0.1)
                server.restart(hard=True)  # no persistence: comes back empty
                first.wait(120)
                lost_said = "existed and its data is gone" in Path(first.log).read_text()  # type: ignore[attr-defined]
                for _ in range(5):  # a worker finishing a lost trial late marks the study lost again
                    storage.forget_vanished(study)
                    rerun = self.start_coordinator(url, study, 30)
                    rerun.wait(300)
                    if rerun.returncode == 0 or "existed and its data is gone" not in Path(rerun.log).read_text():
                        break
                    self.events["rerun refused: the study was lost (a late worker said so)"] += 1
                records = storage.get_trials(study)
                rerun_err = Path(rerun.log).read_text()  # type: ignore[attr-defined]
            finally:
                pool.send_signal(signal.SIGTERM)
                try:
                    pool.wait(30)
                except subprocess.TimeoutExpired:
                    pool.kill()
                    pool.wait()
        return {"first_code": first.returncode, "lost_said": lost_said, "rerun_code": rerun.returncode,
                "records": records, "dropped": rerun_err.count("another incarnation")}


def check(args: argparse.Namespace, soak: Soak, main: dict, wipe: dict) -> list[str]:
    broken = []
    records = main["records"]
    counts = collections.Counter(r.state for r in records)
    finished = counts[TrialState.OK] + counts[TrialState.FAIL]
    if finished != args.trials:
        broken.append(f"{finished} trials finished, not exactly {args.trials}")
    tids = [r.tid for r in records]
    if len(tids) != len(set(tids)):
        broken.append("a trial id is recorded twice")
    wrong = [r.tid for r in records if r.state == TrialState.OK and abs(r.loss - loss_of(r.vals)) > 1e-12]
    if wrong:
        broken.append(f"trials {wrong[:10]} hold a loss that is not the objective at their own parameters")
    stuck = [r.tid for r in records if r.state in (TrialState.QUEUED, TrialState.RUNNING, TrialState.LOST)]
    if stuck:
        broken.append(f"trials {stuck[:10]} are stuck ({len(stuck)} in all)")
    if main["inbox"]:
        broken.append(f"{main['inbox']} messages left in the inbox")
    if main["meta"].get("status") != "done":
        broken.append(f"status is {main['meta'].get('status')!r}, not 'done'")
    for code, err in soak.frozen_out:
        if code != 1 or ("lost the lease" not in err and "no longer holds study" not in err):
            broken.append(f"a frozen coordinator exited {code} without the lost-lease error: {err[-300:]!r}")
    if not wipe["lost_said"] or wipe["first_code"] != 1:
        broken.append("the coordinator of the wiped study did not report it lost")
    wiped_wrong = [r.tid for r in wipe["records"] if r.state == TrialState.OK and abs(r.loss - loss_of(r.vals)) > 1e-12]
    if wipe["rerun_code"] != 0 or wiped_wrong:
        broken.append(f"the rerun after the wipe exited {wipe['rerun_code']}, wrong losses on {wiped_wrong[:10]}")
    return broken


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--every", type=float, default=4.0, help="mean seconds between chaos events")
    parser.add_argument("--heartbeat-ttl", type=float, default=2.0)
    parser.add_argument("--lease-ttl", type=float, default=3.0)
    parser.add_argument("--time-limit", type=float, default=900.0, help="seconds before the soak gives up")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="distopt-soak-") as tmp:
        soak = Soak(args, Path(tmp))
        main_run = soak.run_main()
        wipe = soak.run_wipe()
        broken = check(args, soak, main_run, wipe)
        records = main_run["records"]
        counts = collections.Counter(r.state.value for r in records)
        report = {
            "trials": args.trials, "workers": args.workers, "seed": args.seed,
            "elapsed_s": round(main_run["elapsed"], 1), "events": dict(soak.events),
            "states": dict(counts), "retried_trials": sum(1 for r in records if r.attempt > 0),
            "fail_reasons": collections.Counter((r.error or "")[:60] for r in records
                                                if r.state == TrialState.FAIL).most_common(5),
            "frozen_coordinators_exit_codes": [c for c, _ in soak.frozen_out],
            "coordinator_starts": len(soak.coordinators),
            "wipe": {"reported_lost": wipe["lost_said"], "rerun_exit": wipe["rerun_code"],
                     "rerun_ok": sum(1 for r in wipe["records"] if r.state == TrialState.OK),
                     "stale_messages_dropped": wipe["dropped"]},
            "invariants": "all hold" if not broken else broken,
        }
        print(json.dumps(report, indent=2, default=str))
        return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
