"""Smoke tests of the benchmark scripts: tiny settings, check the tables and JSON lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("optuna")
pytest.importorskip("hyperopt")

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def run(script: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / script), *args],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_quality_script_prints_tables_and_writes_json_lines(tmp_path: Path) -> None:
    out = tmp_path / "quality.jsonl"
    optimizers = "distopt,distopt-none,optuna,hyperopt,random"
    stdout = run(
        "bench_tpe_quality.py", "--problems", "branin", "--seeds", "2", "--budget", "10",
        "--q", "1,32", "--optimizers", optimizers, "--json-out", str(out),
    )
    for heading in ("median best regret, q=1", "median best regret, q=32", "mean rank",
                    "paired win rate", "degradation", "== targets =="):
        assert heading in stdout
    assert "branin" in stdout
    assert "PASS" in stdout or "MISS" in stdout

    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 1 * 2 * 2 * 5  # problems x seeds x q x optimizers
    for r in records:
        assert set(r) >= {"problem", "optimizer", "q", "seed", "budget", "best_regret", "wall_seconds"}
        assert r["problem"] == "branin" and r["budget"] == 10
        assert r["best_regret"] >= -1e-9
    # random search ignores history and pending trials: same schedule, same seed -> same result
    rnd = {(r["q"], r["seed"]): r["best_regret"] for r in records if r["optimizer"] == "random"}
    assert rnd[(1, 0)] == rnd[(32, 0)] and rnd[(1, 1)] == rnd[(32, 1)]

    again = run("bench_tpe_quality.py", "--from-json", str(out))
    assert "median best regret, q=32" in again


def test_latency_script_prints_ratios_and_writes_json_lines(tmp_path: Path) -> None:
    out = tmp_path / "latency.jsonl"
    stdout = run("bench_tpe_latency.py", "--n", "100", "--repeats", "2", "--json-out", str(out))
    assert "optuna/distopt" in stdout and "hyperopt/distopt" in stdout
    assert "cont10" in stdout and "mixed" in stdout
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {(r["space"], r["optimizer"]) for r in rows} == {
        (s, o) for s in ("cont10", "mixed") for o in ("distopt", "optuna", "hyperopt")
    }
    for r in rows:
        assert r["n"] == 100 and 0 < r["min_s"] <= r["median_s"] and r["peak_bytes"] > 0


def test_latency_script_asks_with_running_trials(tmp_path: Path) -> None:
    out = tmp_path / "latency.jsonl"
    stdout = run("bench_tpe_latency.py", "--n", "20", "--pending", "3", "--spaces", "mixed", "--repeats", "2",
                 "--json-out", str(out))
    assert "after n finished trials with 3 running" in stdout
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["optimizer"] for r in rows} == {"distopt", "optuna", "hyperopt"}
    assert all(r["pending"] == 3 and r["n"] == 20 for r in rows)


def test_problems_know_their_optimum() -> None:
    sys.path.insert(0, str(SCRIPTS))
    try:
        import numpy as np
        from benchlib.problems import ALL_PROBLEMS

        from distopt.algo.prior import sample_prior_point
        from distopt.space import compile_space, space_eval
    finally:
        sys.path.remove(str(SCRIPTS))
    rng = np.random.default_rng(0)
    for p in ALL_PROBLEMS.values():
        assert abs(p.regret(p.argmin)) < 1e-9, p.name
        compiled = compile_space(p.space)
        regrets = [p.regret(space_eval(p.space, sample_prior_point(compiled, rng))) for _ in range(200)]
        assert min(regrets) > -1e-9, p.name


def test_pruning_script_compares_regret_at_equal_steps(tmp_path: Path) -> None:
    out = tmp_path / "pruning.json"
    stdout = run("bench_pruning.py", "--problems", "synthetic", "--seeds", "2", "--budget", "270", "--q", "1,8",
                 "--optimizers", "distopt-tpe,distopt-tpe+asha,optuna-tpe+hyperband,random+asha",
                 "--json-out", str(out), "--plot", str(tmp_path / "p.png"))
    assert "== synthetic, q=8, budget 270 steps" in stdout and "== targets ==" in stdout
    assert "PASS" in stdout or "MISS" in stdout
    doc = json.loads(out.read_text())
    assert len(doc["records"]) == 2 * 2 * 4
    for r in doc["records"]:
        consumed = [c for c, _ in r["trace"]]
        assert consumed == sorted(consumed) and all(c <= 270 for c in consumed)
        assert r["n_complete"] + r["n_pruned"] <= r["n_trials"]
        if r["optimizer"] == "distopt-tpe":
            assert r["n_pruned"] == 0 and r["n_complete"] == 10 // r["q"] * r["q"]
        assert all(regret >= -1e-12 for _, regret in r["trace"])
    assert (tmp_path / "p.png").stat().st_size > 5000
    assert "steps to match" in run("bench_pruning.py", "--from-json", str(out))


def _benchlib():
    sys.path.insert(0, str(SCRIPTS))
    try:
        from benchlib import generated, sklearn_tasks, wide
    finally:
        sys.path.remove(str(SCRIPTS))
    return generated, sklearn_tasks, wide


def test_generated_problems_know_their_optimum_and_differ() -> None:
    import numpy as np

    from distopt.algo.prior import sample_prior_point
    from distopt.space import compile_space, space_eval

    generated, _, wide = _benchlib()
    names = wide.sets()
    assert len(names["tuning"]) >= 15 and len(names["validation"]) >= 15
    assert not set(names["tuning"]) & set(names["validation"])
    rng = np.random.default_rng(0)
    shapes = set()
    for i in range(generated.N_INSTANCES):
        inst = generated.instance(i)
        p = wide.problem(inst.name)
        assert abs(p.regret(p.argmin)) < 1e-9, p.name
        compiled = compile_space(p.space)
        assert 2 <= len(inst.branches) <= 4
        assert len({len(b.params) for b in inst.branches}) == len(inst.branches)  # different dimensions
        regrets = [p.regret(space_eval(p.space, sample_prior_point(compiled, rng))) for _ in range(100)]
        assert min(regrets) > -1e-9, p.name
        shapes.add(tuple(len(b.params) for b in inst.branches))
    assert len(shapes) > 10
    # the same index always gives the same problem
    assert generated.instance(3).describe() == generated.instance(3).describe()
    assert generated.instance(3).truth(generated.instance(3).argmin) < 1e-12


def test_noisy_problem_is_scored_on_its_noise_free_value() -> None:
    generated, _, wide = _benchlib()
    noisy = next(generated.instance(i) for i in range(generated.N_INSTANCES) if generated.instance(i).noise > 0)
    point = noisy.argmin
    assert noisy.fn(point) != noisy.truth(point)
    assert noisy.fn(point) == noisy.fn(point)  # deterministic per point
    assert abs(wide.problem(noisy.name).regret(point)) < 1e-12


def test_sklearn_tasks_interpolate_their_table() -> None:
    _, sk, wide = _benchlib()
    for task in sk.TASKS:
        p = wide.problem(task)
        assert abs(p.regret(p.argmin)) < 1e-12, task
    # halfway between two grid points of one axis (log scale): the mean of the two errors
    table = sk.tables()["wine"]["svc"]
    point = {"svc_C": 10 ** -1.5, "svc_gamma": 1e-3}
    assert abs(sk.interpolate(table, "svc", point) - 0.5 * (table[0, 2] + table[1, 2])) < 1e-12


def test_wide_script_reports_tuning_and_validation(tmp_path: Path) -> None:
    out = tmp_path / "wide.jsonl"
    stdout = run("bench_tpe_wide.py", "--problems", "gen00,gen01,mlp_wine", "--seeds", "2", "--budget", "12",
                 "--q", "1,4", "--json-out", str(out))
    assert "== tuning instances (2) ==" in stdout and "== validation instances (1) ==" in stdout
    assert "target on validation" in stdout
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 3 * 2 * 2 * 2
    assert all(r["best_regret"] >= -1e-9 for r in records)
    again = run("bench_tpe_wide.py", "--from-json", str(out), str(out))
    assert "ratio q=4" in again
    detail = run("bench_tpe_wide.py", "--from-json", str(out), "--per-instance")
    assert "ended on the best branch (generated instances), validation, q=4" in detail
    row = next(line for line in detail.splitlines() if line.startswith("mlp_wine")).split()
    assert row[-2:] == ["-", "-"]  # not a generated instance: no branch count
    assert float(row[-3]) in (0.0, 0.25, 0.5, 0.75, 1.0)  # paired win, 2 seeds, ties half
    row = next(line for line in detail.splitlines() if line.startswith("gen01")).split()
    assert all(cell in ("0/2", "1/2", "2/2") for cell in row[-2:])
    assert "runs that ended on the best branch: distopt " in detail


def test_wide_script_reports_fresh_generated_instances_apart(tmp_path: Path) -> None:
    out = tmp_path / "fresh.jsonl"
    stdout = run("bench_tpe_wide.py", "--problems", "gen01,gen57", "--seeds", "1", "--budget", "12", "--q", "2",
                 "--optimizers", "distopt,random", "--reference", "random", "--json-out", str(out))
    assert "== validation instances (1) ==" in stdout and "== fresh instances (1) ==" in stdout


def test_wide_script_compares_a_setting_with_the_defaults(tmp_path: Path) -> None:
    out = tmp_path / "wide.jsonl"
    env = {**os.environ, "DISTOPT_TPE_SETTINGS": '{"local_share": 0.0}'}
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "bench_tpe_wide.py"), "--problems", "gen00,gen01", "--seeds", "2",
         "--budget", "14", "--q", "4", "--optimizers", "distopt,distopt-custom", "--reference", "distopt",
         "--json-out", str(out)],
        capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "paired win rate against distopt" in proc.stdout
    rows = [line for line in proc.stdout.splitlines() if line.startswith("distopt-custom") and "(" in line]
    assert len(rows) == 2 and all("(2)" in row for row in rows)  # per set: 1 instance x 2 seeds, paired
    missing = subprocess.run(
        [sys.executable, str(SCRIPTS / "bench_tpe_wide.py"), "--from-json", str(out), "--reference", "optuna"],
        capture_output=True, text=True, timeout=120)
    assert missing.returncode != 0 and "--reference optuna" in missing.stderr


def test_throughput_script_gives_raw_rq_workers_of_its_own(tmp_path: Path) -> None:
    # distopt's workers refuse plain rq jobs: the raw RQ arm must not wait for them forever
    out = tmp_path / "tp.json"
    run("bench_throughput.py", "--workers", "1", "--trials", "30", "--skip-optuna", "--sleep-workers", "0",
        "--json-out", str(out))
    (row,) = json.loads(out.read_text())["throughput"]
    assert row["raw_rq"]["overall"] > 0 and row["distopt_tpe"]["overall"] > 0 and row["distopt_rand"]["overall"] > 0


def test_report_cost_script_times_both_ways(tmp_path: Path) -> None:
    out = tmp_path / "rc.json"
    stdout = run("bench_report_cost.py", "--trials", "20,40", "--steps", "4", "--json-out", str(out))
    assert "changed only (ms)" in stdout and "every curve (ms)" in stdout
    rows = json.loads(out.read_text())
    assert [r["trials"] for r in rows] == [20, 40] and all(r["incremental_ms"] > 0 and r["full_ms"] > 0 for r in rows)
    assert "rebuilt all (ms)" in stdout and all(r["report_ms"] > 0 and r["report_rebuild_ms"] > 0 for r in rows)
