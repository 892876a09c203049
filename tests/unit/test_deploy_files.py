"""The compose file, the Dockerfile and the entry point agree with the code.

They are not run here (no Docker engine on CI machines), so this checks what would break
them: commands and flags that the CLI does not have, environment variables nobody reads,
files the Dockerfile copies that do not exist, secrets written into the compose file.
"""

import pathlib
import re
import shlex
import shutil
import subprocess

import click
import pytest
import yaml

from distopt.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
ENTRYPOINT = (ROOT / "workers" / "entrypoint.sh").read_text()
DOCKERFILE = (ROOT / "workers" / "Dockerfile").read_text()


def cli_flags(command: str) -> set[str]:
    cmd = main.commands[command]
    return {opt for p in cmd.params if isinstance(p, click.Option) for opt in p.opts + p.secondary_opts}


def env_read_by_code() -> set[str]:
    names = set()
    for path in (ROOT / "distopt").rglob("*.py"):
        names.update(re.findall(r"\bDISTOPT_[A-Z_]+\b", path.read_text()))
    return names


def entrypoint_invocations() -> dict[str, list[str]]:
    """subcommand -> flags the entry point passes to ``distopt <subcommand>``."""
    body = ENTRYPOINT.replace("\\\n", " ")
    calls = {}
    for line in body.splitlines():
        match = re.search(r"exec distopt (\w+)(.*)", line)
        if match:
            calls[match.group(1)] = re.findall(r"(--[a-z][a-z-]*)", match.group(2))
    return calls


def test_entrypoint_calls_existing_commands_with_existing_flags():
    calls = entrypoint_invocations()
    assert set(calls) == {"worker", "run"}
    for sub, flags in calls.items():
        assert sub in main.commands
        missing = set(flags) - cli_flags(sub)
        assert not missing, f"entrypoint passes {missing} to distopt {sub}"


def test_compose_commands_exist_in_the_cli():
    for name in ("worker", "coordinator"):
        service = COMPOSE["services"][name]
        command = service["command"]
        sub = command[0]
        assert sub in main.commands, f"{name} runs unknown subcommand {sub}"
        flags = [a for a in command[1:] if a.startswith("--")]
        assert set(flags) <= cli_flags(sub), f"{name}: {set(flags) - cli_flags(sub)} not flags of distopt {sub}"
        if sub == "run":
            study_file = ROOT / command[1]
            assert study_file.exists(), f"{name} runs {command[1]}, which does not exist"


def test_environment_variables_are_read_by_the_code_or_the_entrypoint():
    read = env_read_by_code() | set(re.findall(r"\bDISTOPT_[A-Z_]+\b", ENTRYPOINT))
    for name, service in COMPOSE["services"].items():
        for var in service.get("environment", {}):
            if var.startswith("DISTOPT_"):
                assert var in read, f"service {name} sets {var}, which nothing reads"
    assert {"DISTOPT_REDIS_URL", "DISTOPT_SECRET"} <= env_read_by_code()


def test_no_secret_is_committed_and_redis_persists():
    redis = COMPOSE["services"]["redis"]
    command = " ".join(redis["command"])
    assert "appendonly yes" in command
    # the password reaches Redis through a config file, never its command line (`ps`)
    assert "requirepass" in command and "--requirepass" not in command and "${REDIS_PASSWORD" not in command
    assert "$$REDIS_PASSWORD" in command and "exec redis-server /tmp/redis.conf" in command
    assert redis["environment"]["REDIS_PASSWORD"].startswith("${REDIS_PASSWORD:?")
    env = COMPOSE["x-distopt-env"]
    assert env["DISTOPT_SECRET"].startswith("${DISTOPT_SECRET:?")
    assert "${REDIS_PASSWORD:?" in env["DISTOPT_REDIS_URL"]
    assert not (ROOT / ".env").exists() or ".env" in (ROOT / ".gitignore").read_text().split()
    for service in COMPOSE["services"].values():
        assert "healthcheck" in service or service.get("restart") == "no"


def test_dockerfile_copies_existing_files_and_uses_the_entrypoint():
    for line in DOCKERFILE.splitlines():
        if line.startswith("COPY "):
            sources = shlex.split(line)[1:-1]
            for src in sources:
                if "${" in src:
                    default = re.search(r"ARG REQUIREMENTS=(\S+)", DOCKERFILE).group(1)
                    src = default
                assert (ROOT / src).exists(), f"Dockerfile copies missing {src}"
    assert 'ENTRYPOINT ["distopt-entrypoint"]' in DOCKERFILE
    worker_build = COMPOSE["services"]["worker"]["build"]
    assert (ROOT / worker_build["dockerfile"]).exists()
    assert (ROOT / worker_build["args"]["REQUIREMENTS"]).exists()


def test_entrypoint_is_valid_shell():
    sh = shutil.which("sh")
    assert sh, "a POSIX shell is needed to check the entry point"
    subprocess.run([sh, "-n", str(ROOT / "workers" / "entrypoint.sh")], check=True)


def test_docker_compose_config_accepts_the_file(tmp_path):
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("no docker compose client on this machine; the YAML checks above still ran")
    env = tmp_path / ".env"
    env.write_text("REDIS_PASSWORD=x\nDISTOPT_SECRET=y\n")
    subprocess.run([docker, "compose", "--env-file", str(env), "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
                   check=True, cwd=ROOT)


def test_entrypoint_builds_the_worker_command_from_the_environment(tmp_path):
    """Run the real entry point with a stand-in ``distopt`` that prints its arguments."""
    fake = tmp_path / "distopt"
    fake.write_text('#!/bin/sh\necho "$@"\n')
    fake.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "DISTOPT_REDIS_URL": "redis://r:6379/0", "DISTOPT_PROCESSES": "3"}
    out = subprocess.run(["sh", str(ROOT / "workers" / "entrypoint.sh")], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["worker", "--queue", "distopt", "--processes", "3"]  # the URL stays in the env
    out = subprocess.run(["sh", str(ROOT / "workers" / "entrypoint.sh"), "run", "s.py", "--max-evals", "5"],
                         env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["run", "s.py", "--max-evals", "5", "--queue", "distopt"]
    missing = subprocess.run(["sh", str(ROOT / "workers" / "entrypoint.sh")], env={"PATH": env["PATH"]},
                             capture_output=True, text=True)
    assert missing.returncode != 0 and "set DISTOPT_REDIS_URL" in missing.stderr
