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
    assert set(calls) == {"worker", "run"} and not any(calls.values())  # the user's flags only
    for sub, flags in calls.items():
        assert sub in main.commands
        missing = set(flags) - cli_flags(sub)
        assert not missing, f"entrypoint passes {missing} to distopt {sub}"


def resolve(value: str) -> str:
    """A compose value with ``${VAR:-default}`` replaced by its default."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def test_compose_commands_exist_in_the_cli():
    for name in ("worker", "coordinator"):
        service = COMPOSE["services"][name]
        command = service["command"]
        sub = command[0]
        assert sub in main.commands, f"{name} runs unknown subcommand {sub}"
        flags = [a for a in command[1:] if a.startswith("--")]
        assert set(flags) <= cli_flags(sub), f"{name}: {set(flags) - cli_flags(sub)} not flags of distopt {sub}"
        if sub == "run":  # the study file, in the study directory mounted at /study
            volume = service["volumes"][0]
            assert volume["target"] == "/study" and volume["read_only"]
            study_file = ROOT / resolve(volume["source"]) / resolve(command[1]).removeprefix("/study/")
            assert study_file.exists(), f"{name} runs {command[1]}, which does not exist"
    check = COMPOSE["services"]["worker"]["healthcheck"]["test"]
    assert check[:3] == ["CMD", "distopt", "worker"] and set(check[3:]) <= cli_flags("worker")


def test_compose_is_a_template_the_user_fills():
    services = COMPOSE["services"]
    for name in ("worker", "coordinator"):  # one image, built for whichever service starts first
        assert services[name]["build"]["dockerfile"] == "workers/Dockerfile"
    command = services["coordinator"]["command"]
    study = command[command.index("--study") + 1]
    assert study.startswith("${DISTOPT_STUDY:?"), "the user names the study; a fixed name finds it done next time"
    assert "--wait-for-redis" in command
    example = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    text = (ROOT / "docker-compose.yml").read_text()
    for var in example:
        assert "${" + var in text, f".env.example sets {var}, which docker-compose.yml does not use"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".env"} <= set(ignored)
    published = services["redis"]["ports"][0]
    assert published.startswith("${REDIS_PUBLISH_ADDRESS:-127.0.0.1}:"), "plain Redis is published on loopback only"
    tls = yaml.safe_load((ROOT / "docker-compose.tls.yml").read_text())["services"]["redis"]
    assert "--tls-port 6380" in tls["command"][2] and any("6380" in p for p in tls["ports"])


def redis_start(tmp_path, password):
    """The redis service's start script, run by sh with a stand-in for the image's entry point."""
    stub = tmp_path / "docker-entrypoint.sh"
    stub.write_text('#!/bin/sh\necho "$@"; cat /tmp/redis.conf\n')
    stub.chmod(0o755)
    chown = tmp_path / "chown"
    chown.write_text("#!/bin/sh\nexit 0\n")
    chown.chmod(0o755)
    script = COMPOSE["services"]["redis"]["command"][2].replace("$$", "$")
    return subprocess.run(["sh", "-c", script], env={"PATH": f"{tmp_path}:/usr/bin:/bin", "REDIS_PASSWORD": password},
                          capture_output=True, text=True)


def test_the_redis_service_refuses_the_placeholder_and_keeps_the_password_off_its_command_line(tmp_path):
    refused = redis_start(tmp_path, "change-me-to-a-long-random-string")
    assert refused.returncode == 1 and "placeholder from .env.example" in refused.stderr
    started = redis_start(tmp_path, "s3cret-value")
    assert started.returncode == 0, started.stderr
    args, conf = started.stdout.splitlines()[0], started.stdout.splitlines()[1:]
    assert args == "redis-server /tmp/redis.conf --appendonly yes" and conf == ['requirepass "s3cret-value"']


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
    assert "$$REDIS_PASSWORD" in command and "redis-server /tmp/redis.conf" in command
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
    assert (ROOT / resolve(worker_build["args"]["REQUIREMENTS"])).exists()


def test_the_image_pins_python_and_the_versions_that_must_agree():
    assert re.search(r"ARG PYTHON_VERSION=3\.\d+\.\d+", DOCKERFILE) and "FROM python:${PYTHON_VERSION}-slim" in DOCKERFILE
    pins = dict(line.split("==") for line in (ROOT / "workers" / "constraints.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    assert {"cloudpickle", "numpy", "redis", "rq"} <= set(pins)
    assert all(re.fullmatch(r"\d+(\.\d+)+", v) for v in pins.values())
    assert DOCKERFILE.count("-c /tmp/constraints.txt") == 2  # distopt and the objective's requirements


def test_entrypoint_is_valid_shell():
    sh = shutil.which("sh")
    assert sh, "a POSIX shell is needed to check the entry point"
    subprocess.run([sh, "-n", str(ROOT / "workers" / "entrypoint.sh")], check=True)


def test_docker_compose_config_accepts_the_file(tmp_path):
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("no docker compose client on this machine; the YAML checks above still ran")
    env = tmp_path / ".env"
    env.write_text("REDIS_PASSWORD=x\nDISTOPT_SECRET=y\nDISTOPT_STUDY=s\n")
    subprocess.run([docker, "compose", "--env-file", str(env), "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
                   check=True, cwd=ROOT)


def test_entrypoint_passes_the_users_arguments_as_given(tmp_path):
    """Run the real entry point with a stand-in ``distopt`` that prints its arguments:
    settings come from the environment, so nothing is appended after the user's flags."""
    fake = tmp_path / "distopt"
    fake.write_text('#!/bin/sh\necho "$@"\n')
    fake.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "DISTOPT_REDIS_URL": "redis://r:6379/0", "DISTOPT_PROCESSES": "3"}
    out = subprocess.run(["sh", str(ROOT / "workers" / "entrypoint.sh")], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["worker"]  # the URL, queue and processes stay in the env
    out = subprocess.run(["sh", str(ROOT / "workers" / "entrypoint.sh"), "run", "s.py", "--max-evals", "5"],
                         env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["run", "s.py", "--max-evals", "5"]
    missing = subprocess.run(["sh", str(ROOT / "workers" / "entrypoint.sh")], env={"PATH": env["PATH"]},
                             capture_output=True, text=True)
    assert missing.returncode != 0 and "set DISTOPT_REDIS_URL" in missing.stderr


def test_the_environment_the_entrypoint_relies_on_is_read_by_the_cli():
    for sub, flag, var in (("worker", "--queue", "DISTOPT_QUEUE"), ("worker", "--processes", "DISTOPT_PROCESSES"),
                           ("worker", "--redis", "DISTOPT_REDIS_URL"), ("run", "--queue", "DISTOPT_QUEUE"),
                           ("run", "--redis", "DISTOPT_REDIS_URL")):
        (option,) = [p for p in main.commands[sub].params if flag in getattr(p, "opts", [])]
        assert option.envvar == var, f"distopt {sub} {flag} does not read {var}"
