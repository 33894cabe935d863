"""Static checks of the production deployment files (no Docker engine needed).

docker-compose.yml and Dockerfile are checked for the behaviour that matters
in production: start-up ordering, shared configuration, scalability, and that
every ``bpm-server`` command they run really exists in the CLI.
"""

import fnmatch
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

APP_SERVICES = ("migrate", "web", "worker")
WSGI_TARGET = "bpm_server.wsgi:app"


def load_compose():
    return yaml.safe_load(COMPOSE_FILE.read_text())


def service(name):
    return load_compose()["services"][name]


def environment(svc):
    env = svc.get("environment", {})
    if isinstance(env, list):  # ["KEY=value", ...] form
        env = dict(item.split("=", 1) for item in env)
    return env


def conditions(svc):
    """depends_on as {service: condition}."""
    deps = svc.get("depends_on", {})
    if isinstance(deps, list):  # short form means "service_started"
        return dict.fromkeys(deps, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def healthcheck_command(svc):
    test = svc["healthcheck"]["test"]
    if isinstance(test, str):
        return test
    assert test[0] in ("CMD", "CMD-SHELL"), test
    return " ".join(test[1:])


# --- extracting the commands the deployment runs ----------------------------


def shell_script(command):
    """A compose/Dockerfile command (string or exec list) as one shell script."""
    if isinstance(command, str):
        return command
    if len(command) >= 3 and command[0] in ("sh", "/bin/sh", "bash", "/bin/bash") and command[1] == "-c":
        return command[2]
    return shlex.join(command)


def simple_commands(script):
    """Split a shell script into argv lists at ``&&``, ``||``, ``|``, ``;``, newlines and redirections."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars="();<>|&\n")
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    argvs, current = [], []
    for token in lexer:
        if token.strip("();<>|&\n"):
            current.append(token)
        elif current:
            argvs.append(current)
            current = []
    return argvs + ([current] if current else [])


def compose_commands():
    argvs = []
    for svc in load_compose()["services"].values():
        for key in ("entrypoint", "command"):
            if key in svc:
                argvs += simple_commands(shell_script(svc[key]))
    return argvs


def dockerfile_instructions():
    """(INSTRUCTION, argument) pairs, with line continuations joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            yield keyword.upper(), rest.strip()


def dockerfile_commands():
    argvs = []
    for keyword, rest in dockerfile_instructions():
        if keyword in ("RUN", "CMD", "ENTRYPOINT"):
            command = json.loads(rest) if rest.startswith("[") else rest
            argvs += simple_commands(shell_script(command))
    return argvs


def bpm_server_invocations():
    """Every distinct ``bpm-server ...`` argument list used by the deployment."""
    seen = []
    for argv in compose_commands() + dockerfile_commands():
        if argv and argv[0] == "bpm-server" and argv[1:] not in seen:
            seen.append(argv[1:])
    return seen


# --- docker-compose.yml -------------------------------------------------------


def test_compose_file_parses_and_defines_the_services():
    compose = load_compose()
    assert isinstance(compose, dict)
    assert {"postgres", "redis", "migrate", "web", "worker"} <= set(compose["services"])


def test_postgres_keeps_its_data_in_a_named_volume_and_has_a_healthcheck():
    compose = load_compose()
    pg = compose["services"]["postgres"]
    assert pg["image"] == "postgres:16"
    assert "pgdata:/var/lib/postgresql/data" in pg["volumes"]
    assert "pgdata" in compose["volumes"]  # named, declared at top level
    assert healthcheck_command(pg) == "pg_isready -U bpm -d bpm"
    env = environment(pg)
    assert (env["POSTGRES_DB"], env["POSTGRES_USER"], env["POSTGRES_PASSWORD"]) == ("bpm", "bpm", "bpm")


def test_redis_has_a_healthcheck():
    redis = service("redis")
    assert redis["image"] == "redis:7"
    assert healthcheck_command(redis) == "redis-cli ping"


def test_migrate_runs_once_upgrading_the_schema_before_syncing_models():
    migrate = service("migrate")
    assert migrate["restart"] == "no"  # quoted in YAML, not the boolean
    assert conditions(migrate) == {"postgres": "service_healthy"}
    assert list(simple_commands(shell_script(migrate["command"]))) == [
        ["bpm-server", "db", "upgrade"],
        ["bpm-server", "models", "sync"],
    ]


@pytest.mark.parametrize("name", ["web", "worker"])
def test_web_and_worker_start_after_migration_with_healthy_backends(name):
    assert conditions(service(name)) == {
        "postgres": "service_healthy",
        "redis": "service_healthy",
        "migrate": "service_completed_successfully",
    }


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_share_one_image_and_point_at_the_compose_backends(name):
    compose = load_compose()
    svc = compose["services"][name]
    assert svc["build"] == compose["services"]["web"]["build"]
    assert svc["image"] == compose["services"]["web"]["image"]

    env = environment(svc)
    db = urlsplit(env["BPM_DATABASE_URL"])
    assert db.scheme == "postgresql+psycopg"
    assert (db.hostname, db.port, db.path) == ("postgres", 5432, "/bpm")
    pg_env = environment(compose["services"]["postgres"])
    assert (db.username, db.password) == (pg_env["POSTGRES_USER"], pg_env["POSTGRES_PASSWORD"])

    redis = urlsplit(env["BPM_REDIS_URL"])
    assert (redis.scheme, redis.hostname, redis.port) == ("redis", "redis", 6379)

    # Compose's required-variable syntax: refuses to start without the secret.
    assert re.fullmatch(r"\$\{BPM_ERP_WEBHOOK_SECRET:\?.+\}", env["BPM_ERP_WEBHOOK_SECRET"])
    assert "BPM_TEST_CLOCK" not in env  # the test clock is never on in production


def test_worker_is_scalable():
    worker = service("worker")
    assert "container_name" not in worker
    assert "ports" not in worker
    assert worker["command"] == ["bpm-server", "worker"]


def test_web_serves_the_wsgi_app_on_port_8000_and_is_health_checked():
    web = service("web")
    assert "container_name" not in web
    assert web["command"][0] == "gunicorn"
    assert web["command"][-1] == WSGI_TARGET
    assert "0.0.0.0:8000" in web["command"]
    assert web["ports"] == ["${BPM_PORT:-8000}:8000"]
    check = healthcheck_command(web)
    assert "urllib" in check and "http://127.0.0.1:8000/api/v1/health" in check


# --- Dockerfile ------------------------------------------------------------------


def test_dockerfile_runs_gunicorn_as_a_non_root_user():
    instructions = list(dockerfile_instructions())
    stages = [arg for keyword, arg in instructions if keyword == "FROM"]
    assert stages[-1] == "python:3.11-slim", "the image that runs is the Python one (earlier stages only build)"
    cmd = json.loads(dict(instructions)["CMD"])
    assert cmd[0] == "gunicorn" and cmd[-1] == WSGI_TARGET
    users = [arg for keyword, arg in instructions if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")


def test_dockerfile_copy_sources_exist_and_are_not_dockerignored():
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = []
    for keyword, arg in dockerfile_instructions():
        if keyword == "COPY" and not arg.startswith("--from="):  # --from copies out of a build stage
            sources += [s for s in arg.split()[:-1] if not s.startswith("--")]
    assert {"pyproject.toml", "README.md", "bpm_server", "integrations", "process_models", "forms",
            "bpm_server/web/frontend/package-lock.json"} <= set(sources)
    for src in sources:
        assert (ROOT / src).exists(), f"COPY source {src} missing from the repository"
        assert not any(fnmatch.fnmatch(src, pattern) for pattern in ignored), f"{src} is in .dockerignore"


# --- the commands really exist ------------------------------------------------------


def test_gunicorn_is_a_declared_dependency():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    names = [re.split(r"[<>=!~\[; ]", dep, maxsplit=1)[0].lower() for dep in pyproject["project"]["dependencies"]]
    assert "gunicorn" in names
    assert pyproject["project"]["scripts"]["bpm-server"] == "bpm_server.cli:main"


def test_deployment_uses_the_expected_cli_commands():
    assert bpm_server_invocations() == [["db", "upgrade"], ["models", "sync"], ["worker"]]


@pytest.mark.parametrize("args", bpm_server_invocations(), ids=" ".join)
def test_bpm_server_command_exists(args, tmp_path):
    # Run from an empty directory against a throwaway SQLite database, so
    # whatever the CLI does at start-up touches neither the repo nor real services.
    env = {k: v for k, v in os.environ.items() if not k.startswith("BPM_")}
    env["BPM_DATABASE_URL"] = f"sqlite:///{tmp_path / 'cli.db'}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "bpm_server.cli", *args, "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout


def test_the_account_rules_daily_evaluation_is_the_workers_timer_not_a_service_of_its_own():
    """The workers' timer pump arms the daily evaluation (BPM_ACCOUNTS_DAILY_AT, 06:00 by
    default): no loop calling `bpm-server accounts daily` beside it, and nothing switches it off."""
    services = load_compose()["services"]
    commands = [svc.get("command") or [] for svc in services.values()]
    assert not any("accounts daily" in (c if isinstance(c, str) else " ".join(c)) for c in commands)
    assert environment(services["worker"]).get("BPM_ACCOUNTS_DAILY_AT", "06:00") != "off"
