"""``distopt run | worker | cancel`` in-process: one error style, one Redis URL variable."""

from __future__ import annotations

import re
import subprocess

import pytest
from click.testing import CliRunner

from distopt.cli import main
from distopt.cli.common import ENV_REDIS_URL
from distopt.cli.run import resume_command
from distopt.trial.record import TrialState


def test_errors_look_alike_in_every_command(tmp_path, redis_url):
    runner = CliRunner()
    run = runner.invoke(main, ["run", str(tmp_path / "missing.py")])
    assert run.exit_code == 1 and run.output.startswith("Error: study file ") and "does not exist" in run.output
    cancel = runner.invoke(main, ["cancel", "--redis", redis_url, "--study", "nope"])
    assert cancel.exit_code == 1 and cancel.output.startswith("Error: ") and "'nope'" in cancel.output
    status = runner.invoke(main, ["status", "--redis", redis_url, "--study", "nope"])
    assert status.exit_code == 1 and status.output.startswith("Error: ")


def test_every_command_reads_the_same_variable():
    for name in ("run", "worker", "cancel", "status", "trials", "best", "plot"):
        (redis_option,) = [p for p in main.commands[name].params if p.name == "redis_url"]
        assert redis_option.envvar == ENV_REDIS_URL, name


def test_cancel_with_the_url_from_the_environment(redis_url):
    out = CliRunner().invoke(main, ["cancel", "--study", "nope"], env={ENV_REDIS_URL: redis_url})
    assert out.exit_code == 1 and "'nope'" in out.output


def test_the_resume_command_names_the_study_and_hides_the_password():
    url = "redis://:hunter2@db:6379/0"
    command, needs_env = resume_command("exp-1", ["run", "study.py", "--redis", url, "--max-evals", "50"])
    assert command == 'distopt run study.py --redis "$DISTOPT_REDIS_URL" --max-evals 50 --study exp-1'
    assert needs_env and "hunter2" not in command
    assert resume_command("exp-1", ["run", "s.py", "--study", "exp-1"]) == ("distopt run s.py --study exp-1", False)


def test_the_resume_command_hides_a_password_given_with_an_equals_sign_or_a_query():
    command, needs_env = resume_command("e", ["run", "s.py", "--redis=redis://u:hunter2@db/0", "--study=e"])
    assert command == 'distopt run s.py --redis="$DISTOPT_REDIS_URL" --study=e' and needs_env
    command, needs_env = resume_command("e", ["run", "s.py", "--redis", "redis://db/0?password=hunter2"])
    assert "hunter2" not in command and needs_env


def test_the_resume_command_keeps_a_url_without_a_password():
    command, needs_env = resume_command("e", ["run", "my study.py", "--redis", "redis://db:6379/0"])
    assert command == "distopt run 'my study.py' --redis redis://db:6379/0 --study e" and not needs_env


def test_the_printed_resume_command_runs_as_printed_once_the_variable_is_set():
    """The shell expands the placeholder back into the URL with its password."""
    command, _ = resume_command("e", ["run", "s.py", "--redis", "redis://:hunter2@db/0"])
    words = subprocess.run(["sh", "-c", f"printf '%s\\n' {command}"], capture_output=True, text=True,
                           env={"DISTOPT_REDIS_URL": "redis://:hunter2@db/0"}, check=True).stdout.splitlines()
    assert words == ["distopt", "run", "s.py", "--redis", "redis://:hunter2@db/0", "--study", "e"]


def test_run_help_says_which_options_apply_to_which_mode_and_the_exit_codes():
    out = CliRunner().invoke(main, ["run", "--help"], terminal_width=200)
    assert out.exit_code == 0
    text = " ".join(out.output.split())
    assert "in-process" in text and "embedded" in text and "cluster" in text
    assert "[workers] Stop and fail a trial" in text and "[workers] Study name" in text
    assert "[workers] Trials in flight" in text and "3 the study was cancelled" in text


def test_cancel_says_how_many_results_it_recorded(redis_url, monkeypatch):
    from distopt import hp
    from distopt.dispatch.signing import sign_message
    from distopt.storage import RedisStorage
    from distopt.study.study import Study

    monkeypatch.setenv("DISTOPT_SECRET", "cli-secret")  # results count only when they verify with it
    storage = RedisStorage(redis_url)
    study = Study(hp.uniform("x", 0, 1), storage=storage, name="inbox")
    done, waiting = study.ask(2)
    storage.push_result("inbox", sign_message({"tid": done.tid, "attempt": 0, "status": "ok", "loss": 0.5,
                                               "result": {"status": "ok", "loss": 0.5}, "worker": "w:1"},
                                              b"cli-secret"))
    out = CliRunner().invoke(main, ["cancel", "--redis", redis_url, "--study", "inbox"])
    assert out.exit_code == 0, out.output
    assert ("study inbox: cancelled 1 queued or running trials, kept 1 finished ones (by this process), having "
            "first recorded 1 results that had already come back; status cancelled") in out.output
    storage.close()


@pytest.mark.parametrize("with_file", [True, False])
def test_cancel_checks_results_with_the_secret_file(redis_url, monkeypatch, tmp_path, with_file):
    """``--secret-file`` verifies the results already sent; without any secret the command
    refuses, and with ``--drop-unverified`` cancels without them, saying how many it dropped."""
    from distopt import hp
    from distopt.dispatch.signing import sign_message
    from distopt.storage import RedisStorage
    from distopt.study.study import Study

    monkeypatch.delenv("DISTOPT_SECRET", raising=False)
    secret_file = tmp_path / "secret"
    secret_file.write_text("file-secret-for-cancel\n")
    storage = RedisStorage(redis_url)
    name = f"inbox-file-{with_file}"
    study = Study(hp.uniform("x", 0, 1), storage=storage, name=name)
    done, waiting = study.ask(2)
    storage.push_result(name, sign_message({"tid": done.tid, "attempt": 0, "status": "ok", "loss": 0.5,
                                            "result": {"status": "ok", "loss": 0.5}, "worker": "w:1"},
                                           b"file-secret-for-cancel"))
    args = ["cancel", "--redis", redis_url, "--study", name] + (["--secret-file", str(secret_file)] if with_file else [])
    if not with_file:  # no secret to check the waiting result: refused, nothing changes
        refused = CliRunner().invoke(main, args)
        assert refused.exit_code == 1 and "--drop-unverified" in refused.output, refused.output
        assert storage.get_trial(name, done.tid).state == TrialState.QUEUED
        args.append("--drop-unverified")
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 0, out.output
    recorded = 1 if with_file else 0
    assert f"kept {recorded} finished ones (by this process), having first recorded {recorded} results" in out.output
    assert storage.get_trial(name, done.tid).state == (TrialState.OK if with_file else TrialState.CANCELLED)
    if with_file:
        assert "dropped unrecorded" not in out.output
    else:
        assert "1 results were dropped unrecorded (--drop-unverified)" in out.output
    storage.close()


def test_run_summary_labels_the_best_parameters(tmp_path):
    study = tmp_path / "labeled.py"
    study.write_text(
        "from distopt import hp\n"
        "space = {'x': hp.uniform('x', 0, 1), 'opt': hp.choice('opt', ['adam', 'sgd'])}\n"
        "max_evals = 5\n"
        "def objective(p):\n"
        "    return p['x'] + (0 if p['opt'] == 'sgd' else 1)\n"
    )
    result = CliRunner().invoke(main, ["run", str(study), "--no-progress"], env={"DISTOPT_REDIS_URL": None})
    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("best parameters: ")]
    assert re.fullmatch(r"best parameters: (opt='(adam|sgd)', x=[0-9.e-]+|x=[0-9.e-]+, opt='(adam|sgd)')", line), line
    assert "best point" not in result.output  # the point the objective received says nothing more here
