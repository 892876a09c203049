"""``distopt run | worker | cancel`` in-process: one error style, one Redis URL variable."""

from __future__ import annotations

from click.testing import CliRunner

from distopt.cli import main
from distopt.cli_common import ENV_REDIS_URL
from distopt.cli_run import resume_command


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
    argv = ["run", "study.py", "--redis", url, "--max-evals", "50"]
    assert resume_command("exp-1", url, argv) == (
        "distopt run study.py --redis 'redis://:***@db:6379/0' --max-evals 50 --study exp-1")
    assert resume_command("exp-1", "", ["run", "s.py", "--study", "exp-1"]) == "distopt run s.py --study exp-1"
