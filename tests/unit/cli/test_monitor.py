"""`distopt status | trials | best | plot`: output, flags and one-line errors."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from distopt import hp
from distopt.cli import main
from distopt.trial.record import TrialRecord, TrialState
from distopt.storage.redis.server import free_port
from distopt.space.serialize import space_to_json
from distopt.storage import RedisStorage

SPACE = {"lr": hp.loguniform("lr", -7, 0), "opt": hp.choice("opt", ["adam", "sgd"])}
COMMANDS = [
    ["status"],
    ["status", "--study", "s", "--json"],
    ["trials", "--study", "s"],
    ["best", "--study", "s"],
    ["plot", "--study", "s", "--out", "x.png"],
]


def run(*args, env=None):
    return CliRunner().invoke(main, list(args), env=env or {"DISTOPT_REDIS_URL": None}, catch_exceptions=False)


@pytest.fixture
def url(redis_url):
    storage = RedisStorage(redis_url)
    storage.create_study("demo", {"space": space_to_json(SPACE), "labels": ["lr", "opt"], "status": "running",
                                  "max_evals": 10})
    for tid, (state, loss, opt) in enumerate([("ok", 0.5, 0), ("ok", 0.25, 1), ("fail", None, 0), ("running", None, 1)]):
        storage.put_trial("demo", TrialRecord(tid, {"lr": 0.01 * (tid + 1), "opt": opt}, TrialState(state), loss=loss,
                                              book_time=1000.0, start_time=1001.0, end_time=1002.0 + tid,
                                              worker="h:1", error="boom" if state == "fail" else None))
    storage.create_study("empty", {"space": None, "labels": [], "status": "created"})
    storage.acquire_lease("demo", "h:9:coordinator", 600)
    storage.close()
    return redis_url


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_unreachable_redis_is_one_line_naming_host_and_port(tmp_path, args):
    port = free_port()
    result = run(*args, "--redis", f"redis://127.0.0.1:{port}/0")
    assert result.exit_code == 1
    assert f"127.0.0.1:{port}" in result.output and "Traceback" not in result.output
    assert result.output.startswith("Error: cannot reach Redis")


@pytest.mark.parametrize("args", COMMANDS[1:], ids=lambda a: " ".join(a))
def test_unknown_study_lists_the_existing_ones(url, args):
    result = run(*[a.replace("s", "nope") if a == "s" else a for a in args], "--redis", url)
    assert result.exit_code == 1
    assert "'nope' not found" in result.output and "known studies: demo, empty" in result.output


def test_no_url_is_a_usage_error():
    result = run("status")
    assert result.exit_code == 2 and "DISTOPT_REDIS_URL" in result.output


@pytest.mark.parametrize("command", ["status", "best", "trials"])
def test_a_redis_option_that_is_not_a_url_is_a_usage_error(command):
    args = [command, "--redis", "nonsense"] + (["--study", "s"] if command != "status" else [])
    result = run(*args)
    assert result.exit_code == 2
    assert "'nonsense' is not a Redis URL" in result.output and "redis://host:6379/0" in result.output


def test_url_from_the_environment(url):
    result = run("status", "--json", env={"DISTOPT_REDIS_URL": url})
    assert result.exit_code == 0 and set(json.loads(result.output)["studies"]) == {"demo", "empty"}


@pytest.mark.parametrize("args", [
    ["status", "--watch", "0"], ["trials", "--study", "demo", "--format", "xml"],
    ["trials", "--study", "demo", "--state", "done"], ["plot", "--study", "demo"],
    ["plot", "--study", "demo", "--out", "a.png", "--kind", "pie"], ["best"],
])
def test_bad_flags_exit_2(url, args):
    result = run(*args, "--redis", url)
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_invalid_study_name(url):
    result = run("best", "--study", "a:b", "--redis", url)
    assert result.exit_code == 1 and "invalid study name 'a:b'" in result.output


def test_status_table(url):
    result = run("status", "--redis", url)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("distopt status · Redis 127.0.0.1:")
    demo = next(line for line in lines if line.startswith("demo "))
    # queued, taken, running, waiting, ok, fail, pruned, lost, cancelled, done
    assert demo.split()[:12] == ["demo", "running", "0", "0", "1", "0", "2", "1", "0", "0", "0", "3/10"]
    assert "best trial 1, loss 0.25" in result.output and '"opt": "sgd"' in result.output


def test_status_json_of_one_study(url):
    doc = json.loads(run("status", "--redis", url, "--study", "demo", "--json").output)
    assert list(doc["studies"]) == ["demo"]
    assert doc["studies"]["demo"]["counts"]["ok"] == 2 and doc["studies"]["demo"]["best"]["params"]["opt"] == "sgd"


def test_watch_redraws_until_ctrl_c(url, monkeypatch):
    calls = []

    def sleep(seconds):
        calls.append(seconds)
        if len(calls) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr("distopt.cli.monitor.time.sleep", sleep)
    result = run("status", "--redis", url, "--watch", "0.5")
    assert result.exit_code == 0 and calls == [0.5] * 3
    assert result.output.count("distopt status · Redis") == 3
    calls.clear()
    lines = run("status", "--redis", url, "--watch", "2", "--json").output.splitlines()
    assert len(lines) == 3 and all(json.loads(line)["version"] == 2 for line in lines)


def test_watch_clears_the_screen_on_a_terminal_only(url, monkeypatch):
    monkeypatch.setattr("distopt.cli.monitor.time.sleep", lambda s: (_ for _ in ()).throw(KeyboardInterrupt))
    monkeypatch.setattr("distopt.cli.monitor._terminal", lambda: True)
    result = CliRunner().invoke(main, ["status", "--redis", url, "--watch", "1"], color=True)
    assert result.output.startswith("\x1b[H\x1b[2J") and result.output.count("\x1b[2J") == 1
    monkeypatch.setattr("distopt.cli.monitor._terminal", lambda: False)
    result = CliRunner().invoke(main, ["status", "--redis", url, "--watch", "1"], color=True)
    assert "\x1b" not in result.output and result.output.startswith("distopt status")


def test_watch_waits_for_a_study_to_appear(url, monkeypatch):
    storage = RedisStorage(url)
    calls = []

    def sleep(seconds):
        calls.append(seconds)
        if len(calls) == 2:
            storage.create_study("later", {"space": None, "labels": [], "status": "created"})
        if len(calls) == 4:
            raise KeyboardInterrupt

    monkeypatch.setattr("distopt.cli.monitor.time.sleep", sleep)
    result = run("status", "--redis", url, "--study", "later", "--watch", "1")
    assert result.exit_code == 0, result.output
    blocks = result.output.split("distopt status · Redis")
    assert result.output.count("waiting for study 'later' to appear") == 2 and len(blocks) == 3
    assert "later" in blocks[-1] and "demo" not in blocks[-1]


def test_studies_lists_active_first_and_filters(url):
    storage = RedisStorage(url)
    storage.create_study("old", {"space": None, "labels": [], "status": "done", "created": 5.0})
    storage.create_study("orphan", {"space": None, "labels": [], "status": "running", "created": 6.0})
    rows = json.loads(run("studies", "--redis", url, "--json").output)
    by_name = {r["name"]: r for r in rows}
    assert [r["name"] for r in rows][-1] == "old"  # ended studies after the active ones
    assert by_name["orphan"]["status"] == "interrupted" and by_name["demo"]["status"] == "running"
    assert by_name["demo"]["counts"]["ok"] == 2 and by_name["demo"]["best_loss"] == 0.25
    assert by_name["demo"]["coordinator_alive"] and not by_name["orphan"]["coordinator_alive"]
    active = json.loads(run("studies", "--redis", url, "--json", "--active").output)
    assert {r["name"] for r in active} == {"demo", "empty", "orphan"}
    text = run("studies", "--redis", url).output.splitlines()
    assert text[0].split()[:3] == ["STUDY", "STATUS", "QUEUED"] and text[-1].startswith("old ")


def test_status_folds_old_studies(url):
    storage = RedisStorage(url)
    for i in range(8):
        storage.create_study(f"old{i}", {"space": None, "labels": [], "status": "done", "created": float(i)})
    text = run("status", "--redis", url).output
    assert "demo " in text and "... and 3 older ended studies" in text
    assert "old7 " in text and "old0 " not in text  # the most recent ones are shown
    assert "old0 " in run("status", "--redis", url, "--all").output


def test_delete_refuses_a_running_study_unless_forced(url):
    storage = RedisStorage(url)
    storage.push_result("demo", {"tid": 3, "attempt": 0, "status": "ok", "loss": 1.0})
    storage.heartbeat("demo", 3, 0, 1e12, "h:1")
    result = run("delete", "--redis", url, "--study", "demo")
    assert result.exit_code == 1 and "being run by coordinator h:9:coordinator" in result.output
    assert "--force" in result.output and "demo" in storage.list_studies()
    result = run("delete", "--redis", url, "--study", "demo", "--force")
    assert result.exit_code == 0 and "deleted study 'demo': 4 trials" in result.output
    assert storage.list_studies() == ["empty"]
    assert storage.client.keys("distopt:study:demo:*") == []
    assert storage.client.keys("distopt:study:empty:*")  # the other study is untouched
    result = run("delete", "--redis", url, "--study", "demo")
    assert result.exit_code == 1 and "'demo' not found" in result.output


def test_trials_csv_and_json(url, tmp_path):
    out = run("trials", "--redis", url, "--study", "demo").output
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["tid"] for r in rows] == ["0", "1", "2", "3"] and list(rows[0])[-2:] == ["lr", "opt"]
    assert rows[2]["error"] == "boom" and rows[0]["duration"] == "1.0"
    path = tmp_path / "t.json"
    result = run("trials", "--redis", url, "--study", "demo", "--format", "json", "--state", "ok",
                 "--state", "fail", "--out", str(path))
    assert result.exit_code == 0 and "wrote 3 trials" in result.output
    assert [r["state"] for r in json.loads(path.read_text())] == ["ok", "ok", "fail"]


def test_trials_exports_choice_values_unless_indices_are_asked(url):
    rows = list(csv.DictReader(io.StringIO(run("trials", "--redis", url, "--study", "demo").output)))
    assert [r["opt"] for r in rows] == ["adam", "sgd", "adam", "sgd"]
    indexed = run("trials", "--redis", url, "--study", "demo", "--indices", "--format", "json").output
    assert [r["opt"] for r in json.loads(indexed)] == [0, 1, 0, 1]
    assert [r["lr"] for r in json.loads(indexed)] == [0.01, 0.02, 0.03, 0.04]  # other parameters as sampled


def test_trials_to_an_unwritable_file(url, tmp_path):
    result = run("trials", "--redis", url, "--study", "demo", "--out", str(tmp_path / "no" / "t.csv"))
    assert result.exit_code == 1 and "cannot write" in result.output


def test_best(url):
    result = run("best", "--redis", url, "--study", "demo")
    assert json.loads(result.output) == {"study": "demo", "tid": 1, "loss": 0.25,
                                         "params": {"lr": 0.02, "opt": "sgd"}, "vals": {"lr": 0.02, "opt": 1}}
    result = run("best", "--redis", url, "--study", "empty")
    assert result.exit_code == 1 and "has no trial that finished ok yet (no trials)" in result.output


@pytest.mark.parametrize("kind", ["history", "params", "hist"])
def test_plot(url, tmp_path, kind):
    out = tmp_path / f"{kind}.png"
    result = run("plot", "--redis", url, "--study", "demo", "--out", str(out), "--kind", kind)
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_of_an_empty_study(url, tmp_path):
    result = run("plot", "--redis", url, "--study", "empty", "--out", str(tmp_path / "e.png"))
    assert result.exit_code == 1 and "nothing to plot" in result.output


def test_render_workers_queues_and_stale_trials():
    from distopt.monitor.table import duration, render

    doc = {
        "version": 1, "time": 0.0, "redis": "h:1",
        "queues": {"distopt": {"depth": 3, "started": 1, "failed": 0, "workers": ["w1"]}},
        "workers": {"w1": {"hostname": "gpu", "pid": 7, "id": "gpu:7", "state": "busy", "queues": ["distopt"],
                           "job": "distopt-s-4-1", "trial": {"study": "s", "tid": 4, "attempt": 1},
                           "last_heartbeat": 0.0, "heartbeat_age": 75.0}},
        "studies": {"s": {"status": "running", "coordinator": None, "queue": "distopt", "created": 0.0,
                          "counts": {"queued": 3, "running": 1, "ok": 0, "fail": 0, "lost": 0, "cancelled": 0},
                          "total": 4, "finished": 0, "max_evals": None, "best": None, "rate_per_minute": 0.0,
                          "rate_window": 300.0, "eta_seconds": None,
                          "stale": [{"tid": 4, "attempt": 1, "state": "running", "worker": "gpu:7",
                                     "deadline": -40.0, "overdue": 40.0, "source": "heartbeat"}]}},
    }
    text = render(doc)
    assert "s #4 (attempt 1)" in text and "1m15s ago" in text
    assert "s: STALE trial 4 (attempt 1, running) on gpu:7: liveness deadline passed 40s ago" in text
    assert [duration(x) for x in (None, 5, 65, 3700, 90000)] == ["-", "5s", "1m05s", "1h01m", "1d01h"]


def test_watch_survives_a_lost_connection(url, monkeypatch):
    from distopt.cli import monitor as cli_monitor
    from distopt.errors import ConnectionFailed

    real, calls = cli_monitor.get_status, []

    def flaky(storage, study):
        calls.append(1)
        if len(calls) == 2:
            raise ConnectionFailed("cannot reach Redis at 127.0.0.1:1")
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(storage, study)

    monkeypatch.setattr(cli_monitor, "get_status", flaky)
    monkeypatch.setattr("distopt.cli.monitor.time.sleep", lambda s: None)
    result = run("status", "--redis", url, "--watch", "1", "--json")
    assert result.exit_code == 0
    assert "cannot reach Redis at 127.0.0.1:1; retrying every 1 s" in result.output
    assert sum(1 for line in result.output.splitlines() if line.startswith("{")) == 2
