"""``run_study_file`` in-process: the study file's attributes are checked with a message
that names the fix, ignored options are named, and a run where nothing succeeded says why."""

from __future__ import annotations

import logging
import textwrap

import pytest
from click.testing import CliRunner

from distopt.algo import rand
from distopt.cli import main
from distopt.errors import DistoptError
from distopt.cli.run_study import run_study_file
from distopt.cli.study_file import load_study_file


def study_file(tmp_path, body: str, name: str = "study.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent("""
        from distopt import hp
        space = hp.uniform("x", 0, 1)
        def objective(x):
            return x
    """) + textwrap.dedent(body))
    return path


@pytest.mark.parametrize("name", ["rand", "tpe", "RAND"])
def test_an_algo_given_by_name_is_the_built_in_one(tmp_path, name):
    spec = load_study_file(study_file(tmp_path, f"algo = {name!r}\n"))
    assert callable(spec.algo)
    if name.lower() == "rand":
        assert spec.algo is rand.suggest


@pytest.mark.parametrize("value", ["'random'", "3", "['tpe']"])
def test_an_algo_that_is_no_sampler_names_the_fix(tmp_path, value):
    with pytest.raises(DistoptError, match=r"`algo = .*` in .* is not a sampler: write `algo = tpe.suggest`"):
        load_study_file(study_file(tmp_path, f"algo = {value}\n"))


@pytest.mark.parametrize("value", ["'abc'", "-1", "2.5", "True", "None"])
def test_a_bad_max_evals_names_the_value_and_the_fix(tmp_path, value):
    path = study_file(tmp_path, f"max_evals = {value}\n")
    if value == "None":  # the same as leaving it out
        assert load_study_file(path).max_evals is None
        return
    with pytest.raises(DistoptError, match=r"`max_evals = .*` in .* is not a number of trials: write a whole number"):
        load_study_file(path)


def test_max_evals_zero_in_the_file_runs_no_trial_as_the_flag_does(tmp_path):
    path = study_file(tmp_path, "max_evals = 0\n")
    assert run_study_file(path).n_trials == 0
    assert run_study_file(study_file(tmp_path, "max_evals = 4.0\n", "four.py")).n_trials == 4


def test_study_file_mistakes_print_without_a_traceback(tmp_path):
    for body in ("algo = 'random'\n", "max_evals = 'abc'\n"):
        out = CliRunner().invoke(main, ["run", str(study_file(tmp_path, body))])
        assert out.exit_code == 1 and out.output.startswith("Error: `"), out.output
        assert "Traceback" not in out.output and isinstance(out.exception, SystemExit)


def test_when_every_trial_fails_the_error_says_why_without_verbose(tmp_path):
    path = study_file(tmp_path, """
        max_evals = 3
        def objective(x):
            raise ValueError("boom")
    """)
    out = CliRunner().invoke(main, ["run", str(path)])
    assert out.exit_code == 1
    assert "trials: 3 (0 ok, 3 failed)" in out.output
    assert ("Error: no trial finished with status 'ok', so there is no best trial; all 3 failed trials failed with: "
            "ValueError: boom") in out.output


def test_the_most_common_failure_is_counted(tmp_path):
    path = study_file(tmp_path, """
        max_evals = 6
        calls = []
        def objective(x):
            calls.append(x)
            if len(calls) % 3 == 0:
                raise KeyError("rare")
            raise ValueError("often")
    """)
    result = run_study_file(path)
    assert result.n_fail == 6 and result.top_failure == ("ValueError: often", 4)


def test_an_in_process_run_names_the_options_it_ignores(tmp_path, caplog):
    path = study_file(tmp_path, "max_evals = 2\n")
    with caplog.at_level(logging.WARNING, logger="distopt"):
        run_study_file(path, study="s", parallelism=4, trial_timeout=3.0)
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warning.startswith("--study, --parallelism, --trial-timeout are ignored in-process")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="distopt"):
        run_study_file(path)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("name, fmt", [("trials.csv", "csv"), ("trials.json", "json")])
def test_save_writes_every_trial_of_an_in_process_run(tmp_path, name, fmt):
    import csv
    import json

    path = tmp_path / name
    result = run_study_file(str(study_file(tmp_path, "space = hp.uniform('x', 0, 1)")), max_evals=6, seed=1,
                            save=str(path))
    assert result.n_ok == 6
    text = path.read_text()
    rows = list(csv.DictReader(text.splitlines())) if fmt == "csv" else json.loads(text)
    assert [int(r["tid"]) for r in rows] == list(range(6)) and {r["state"] for r in rows} == {"ok"}
    assert min(float(r["loss"]) for r in rows) == pytest.approx(result.best_loss)


def test_save_to_an_unwritable_place_fails_before_the_run(tmp_path):
    out = CliRunner().invoke(main, ["run", str(study_file(tmp_path, "space = hp.uniform('x', 0, 1)")),
                                    "--save", str(tmp_path / "missing" / "t.json")])
    assert out.exit_code == 1 and "choose another --save FILE" in out.output and "trials:" not in out.output


def test_the_default_study_name_is_stable_per_file(tmp_path, monkeypatch):
    from distopt.trial.names import validate_study_name
    from distopt.cli.study_file import default_study_name

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = default_study_name(tmp_path / "a" / "my study.py")
    monkeypatch.chdir(tmp_path)
    assert default_study_name("a/my study.py") == first  # the same file from another directory
    assert first.startswith("my-study-") and validate_study_name(first)
    assert default_study_name(tmp_path / "b" / "my study.py") != first  # another file of that name


CURVES = """
from distopt import report
def objective(x):
    for step in range(10):
        report(step, x + 1.0 / (step + 1))
    return x
"""


def test_a_study_file_pruner_prunes_and_the_cli_can_override_it(tmp_path):
    path = study_file(tmp_path, CURVES + "pruner = 'median'\nmax_evals = 30\n")
    assert load_study_file(path).pruner.name == "median"
    result = run_study_file(path, seed=1)
    assert result.n_pruned > 0 and result.n_ok + result.n_pruned == 30
    assert run_study_file(path, seed=1, pruner="none").n_pruned == 0
    out = CliRunner().invoke(main, ["run", str(path), "--pruner", "asha", "--seed", "2", "--save",
                                    str(tmp_path / "t.json")])
    assert out.exit_code == 0, out.output
    assert " pruned" in out.output
    import json
    rows = json.loads((tmp_path / "t.json").read_text())
    pruned = [r for r in rows if r["state"] == "pruned"]
    assert pruned and all(r["last_step"] == r["intermediate_values"][-1][0] < 9 for r in pruned)


def test_a_study_file_pruner_that_is_unknown_names_the_choices(tmp_path):
    with pytest.raises(DistoptError, match=r"`pruner = 'fast'` in .*unknown pruner 'fast'; choose one of"):
        load_study_file(study_file(tmp_path, "pruner = 'fast'\n"))
