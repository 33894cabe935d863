"""The ``bpm-server`` console entry point, run as a real process the way an
operator runs it: configuration by environment only, output on stdout/stderr,
success or failure by exit status."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from bpm_server.app import create_app
from bpm_server.config import PROJECT_ROOT, Config
from bpm_server.database import db
from bpm_server.demo import DEMO_ACCOUNTS, DEMO_SIGNALS, DEMO_USERS
from tests.conftest import PG_ADMIN_URL

MODELS_DIR = PROJECT_ROOT / "process_models"
FORMS_DIR = PROJECT_ROOT / "forms"
BPMN_FILE = "account-project/account-project.bpmn"
KICKOFF_FORM = "account-project/kickoff.json"


class Cli:
    """Runs ``python -m bpm_server.cli`` against one database, from a scratch directory."""

    def __init__(self, database_url: str, cwd: Path, models_dir: Path = MODELS_DIR, forms_dir: Path = FORMS_DIR):
        self.database_url = database_url
        self.cwd = cwd
        self.models_dir = models_dir
        self.forms_dir = forms_dir

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BPM_")}
        env.update(BPM_DATABASE_URL=self.database_url, BPM_MODELS_DIR=str(self.models_dir),
                   BPM_FORMS_DIR=str(self.forms_dir),
                   PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")])))
        env.update(extra)
        return env

    def __call__(self, *args: str, input: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bpm_server.cli", *args], cwd=self.cwd, env=self.env(**env),
                              input=input, capture_output=True, text=True, timeout=120)

    def ok(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        result = self(*args, input=input)
        assert result.returncode == 0, f"{args} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result

    def query(self, sql: str, **params: Any) -> list[tuple]:
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                return [tuple(row) for row in conn.execute(text(sql), params)]
        finally:
            engine.dispose()


def failed(result: subprocess.CompletedProcess[str]) -> str:
    """The error output of a command that must fail cleanly: non-zero, a message, no traceback."""
    assert result.returncode != 0, f"expected failure, got exit 0\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr


@pytest.fixture
def copied_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """Editable copies of process_models/ and forms/."""
    models, forms = tmp_path / "process_models", tmp_path / "forms"
    shutil.copytree(MODELS_DIR, models)
    shutil.copytree(FORMS_DIR, forms)
    return models, forms


SHIPPED = sorted(p.parent.name for p in MODELS_DIR.glob("*/model.json"))


def unchanged(**numbers: int) -> list[str]:
    """What a sync that changes nothing prints: every shipped model at its version (1 unless given)."""
    return [f"unchanged: {model} v{numbers.get(model.replace('-', '_'), 1)}" for model in SHIPPED]


def versions(cli: Cli) -> list[int]:
    return [v for (v,) in cli.query("SELECT version FROM process_model_version "
                                    "WHERE process_model_id = 'account-project' ORDER BY version")]


def current_version(cli: Cli) -> int:
    (number,), = cli.query("SELECT v.version FROM process_model m JOIN process_model_version v "
                           "ON v.id = m.current_version_id WHERE m.id = 'account-project'")
    return number


def get_me(database_url: str, token: str) -> tuple[int, Any]:
    """``GET /api/v1/me`` on the app built in-process against the same database."""
    app = create_app(Config(database_url=database_url))
    try:
        response = app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        return response.status_code, response.get_json()
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


# --------------------------------------------------------------------------- db upgrade


def test_db_upgrade_creates_the_schema_and_is_idempotent(tmp_path: Path) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'fresh' / 'bpm.sqlite3'}", tmp_path)
    for _ in range(2):
        result = cli.ok("db", "upgrade")
        assert "database schema is up to date" in result.stdout

    engine = create_engine(cli.database_url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"process_model", "process_model_version", "process_instance", "human_task", "user_account",
            "api_token", "alembic_version"} <= tables
    assert len(cli.query("SELECT version_num FROM alembic_version")) == 1


@pytest.fixture
def pg_cli_url() -> Iterator[str]:
    """A dedicated PostgreSQL database for the CLI (one per run, so parallel runs do not collide)."""
    name = f"bpm_cli_test_{os.getpid()}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def test_db_upgrade_and_models_sync_on_postgresql(pg_cli_url: str, tmp_path: Path) -> None:
    cli = Cli(pg_cli_url, tmp_path)
    cli.ok("db", "upgrade")
    cli.ok("db", "upgrade")

    result = cli.ok("models", "sync")
    assert "new version: account-project v1" in result.stdout.splitlines()
    assert f"form updated: {KICKOFF_FORM}" in result.stdout.splitlines()
    assert "department named: sales" in result.stdout.splitlines()  # process_models/departments.json
    assert dict(cli.query("SELECT id, name FROM department WHERE id IN ('sales', 'finance')")) == {
        "sales": "销售部", "finance": "财务部"}
    assert cli.ok("models", "sync").stdout.splitlines() == unchanged()
    assert versions(cli) == [1] and current_version(cli) == 1


# --------------------------------------------------------------------------- models sync


def test_models_sync_creates_a_version_only_when_content_changes(cli: Cli, copied_dirs: tuple[Path, Path]) -> None:
    cli.models_dir, cli.forms_dir = copied_dirs
    first = cli.ok("models", "sync").stdout.splitlines()
    assert "new version: account-project v1" in first
    assert sorted(line for line in first if line.startswith("form updated: ")) == sorted(
        f"form updated: {p.relative_to(FORMS_DIR).as_posix()}" for p in FORMS_DIR.rglob("*.json"))

    assert cli.ok("models", "sync").stdout.splitlines() == unchanged()
    assert versions(cli) == [1]

    # Edit a form the model uses: the form and a new model version are recorded.
    form_path = cli.forms_dir / KICKOFF_FORM
    original = form_path.read_text()
    form_path.write_text(original.replace('"title": "Project kickoff"', '"title": "Project kickoff meeting"'))
    third = cli.ok("models", "sync").stdout.splitlines()
    assert [line for line in third if not line.startswith("unchanged: ")] == [
        f"form updated: {KICKOFF_FORM}", "new version: account-project v2"]
    assert versions(cli) == [1, 2] and current_version(cli) == 2

    # Version 1 is immutable: it keeps the form as it was when published.
    titles = dict(cli.query("SELECT version, forms FROM process_model_version "
                            "WHERE process_model_id = 'account-project'"))
    assert '"Project kickoff"' in titles[1] and '"Project kickoff meeting"' in titles[2]

    assert cli.ok("models", "sync").stdout.splitlines() == unchanged(account_project=2)


def test_models_sync_rejects_a_broken_diagram_and_changes_nothing(cli: Cli, copied_dirs: tuple[Path, Path]) -> None:
    cli.models_dir, cli.forms_dir = copied_dirs
    cli.ok("models", "sync")
    forms_before = cli.query("SELECT name, content_hash FROM form_definition ORDER BY name")

    # A form change that would be recorded, and a diagram whose script task is not allowed.
    form_path = cli.forms_dir / KICKOFF_FORM
    form_path.write_text(form_path.read_text().replace('"title": "Project kickoff"', '"title": "Changed"'))
    bpmn_path = cli.models_dir / BPMN_FILE
    source = bpmn_path.read_text()
    assert "rework_rounds = 0</bpmn:script>" in source
    bpmn_path.write_text(source.replace("rework_rounds = 0</bpmn:script>",
                                        "rework_rounds = 0\nimport os</bpmn:script>", 1))

    stderr = failed(cli("models", "sync"))
    assert str(bpmn_path) in stderr, "the message must name the file at fault"
    assert "init" in stderr and "import" in stderr, "the message must name the element and the problem"
    assert "- init: script error: import is not allowed" in stderr

    assert versions(cli) == [1] and current_version(cli) == 1
    assert cli.query("SELECT name, content_hash FROM form_definition ORDER BY name") == forms_before


# --------------------------------------------------------------------------- users and tokens


def test_users_add_creates_a_user_once(cli: Cli) -> None:
    result = cli.ok("users", "add", "alice", "--department", "sales")
    assert "alice" in result.stderr and "sales" in result.stderr
    assert cli.query("SELECT u.username, u.department_id, u.roles, d.id FROM user_account u "
                     "JOIN department d ON d.id = u.department_id") == [("alice", "sales", '["staff"]', "sales")]

    stderr = failed(cli("users", "add", "alice", "--department", "finance"))
    assert "user 'alice' already exists" in stderr
    assert cli.query("SELECT username, department_id FROM user_account") == [("alice", "sales")]


def test_users_add_with_unknown_role_fails(cli: Cli) -> None:
    stderr = failed(cli("users", "add", "carol", "--department", "sales", "--role", "wizard"))
    assert "unknown role(s) wizard" in stderr and "auditor" in stderr
    assert cli.query("SELECT username FROM user_account") == []
    assert cli.query("SELECT id FROM department") == [], "a failed add must not leave its department behind"


def test_users_add_reads_the_password_from_stdin(cli: Cli) -> None:
    cli.ok("users", "add", "bob", "--department", "finance", "--role", "auditor", "--password-stdin",
           input="correct horse battery\n")
    assert cli.query("SELECT department_id, roles FROM user_account WHERE username = 'bob'") == [
        ("finance", '["auditor"]')]

    from bpm_server.identity.service import check_password

    app = create_app(Config(database_url=cli.database_url))
    try:
        with app.app_context():
            assert check_password(db.session, "bob", "correct horse battery") is not None
            assert check_password(db.session, "bob", "correct horse battery\n") is None
            assert check_password(db.session, "bob", "wrong") is None
            db.session.remove()
    finally:
        with app.app_context():
            db.engine.dispose()

    stderr = failed(cli("users", "add", "dave", "--department", "it", "--password-stdin", input=""))
    assert "no password was read" in stderr
    assert cli.query("SELECT username FROM user_account WHERE username = 'dave'") == []


def test_tokens_issue_prints_a_working_token_and_stores_only_its_hash(cli: Cli) -> None:
    cli.ok("users", "add", "alice", "--department", "sales")
    result = cli.ok("tokens", "issue", "alice")
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and result.stdout == lines[0] + "\n", repr(result.stdout)
    token = lines[0]
    assert token and token.strip() == token

    status, me = get_me(cli.database_url, token)
    assert status == 200
    assert me["username"] == "alice" and me["department"] == "sales" and me["roles"] == ["staff"]
    assert get_me(cli.database_url, token + "x")[0] == 401

    rows = cli.query("SELECT * FROM api_token")
    assert len(rows) == 1
    stored = [str(value) for value in rows[0]]
    assert not any(token in value for value in stored), "the token itself must not be stored"
    assert hashlib.sha256(token.encode()).hexdigest() in stored


def test_tokens_issue_for_unknown_user_fails(cli: Cli) -> None:
    result = cli("tokens", "issue", "nobody")
    assert "no user named 'nobody'" in failed(result)
    assert result.stdout == ""
    assert cli.query("SELECT id FROM api_token") == []


# --------------------------------------------------------------------------- demo and worker


def test_demo_seed_writes_tokens_and_is_safe_to_run_twice(cli: Cli) -> None:
    cli.ok("models", "sync")
    tokens_file = cli.cwd / "out" / "demo-tokens.txt"
    usernames = [u[0] for u in DEMO_USERS]

    for round_ in range(2):
        result = cli.ok("demo", "seed", "--tokens-file", str(tokens_file))
        assert str(tokens_file) in result.stdout
        lines = tokens_file.read_text().splitlines()
        assert [line.split("\t")[0] for line in lines] == usernames, f"round {round_ + 1}"
        assert tokens_file.stat().st_mode & 0o777 == 0o600, "the tokens file must be private"
        for line in (lines[0], lines[-1]):
            username, _roles, department, token = line.split("\t")
            status, me = get_me(cli.database_url, token)
            assert status == 200 and me["username"] == username and me["department"] == department

        # Running it again adds nothing but fresh tokens.
        assert sorted(u for (u,) in cli.query("SELECT username FROM user_account")) == sorted(usernames)
        assert len(cli.query("SELECT id FROM account")) == len(DEMO_ACCOUNTS)
        assert cli.query("SELECT account_id, state FROM process_instance WHERE process_model_id = 'account-project'"
                         ) == [("ACME-001", "running")]
        assert len(cli.query("SELECT human_task.id FROM human_task JOIN process_instance ON process_instance.id = "
                             "human_task.process_instance_id WHERE human_task.state = 'ready' AND "
                             "process_instance.process_model_id = 'account-project'")) == 1
        # Signals kept once however often the seed runs; at most one intervention fired from them.
        signals = len(cli.query("SELECT id FROM account_signal"))
        assert signals == sum(len(r) for series in DEMO_SIGNALS.values() for _kind, r in series)
        assert len(cli.query("SELECT id FROM account_rule_firing")) <= 1


def test_the_daily_account_evaluation_runs_once_a_day(cli: Cli) -> None:
    cli.ok("models", "sync")
    cli.ok("demo", "seed", "--tokens-file", str(cli.cwd / "tokens.txt"))
    first = cli.ok("accounts", "daily")
    assert "health kept" in first.stdout
    assert "already evaluated" in cli.ok("accounts", "daily").stdout
    assert "health kept" in cli.ok("accounts", "daily", "--force").stdout


def test_worker_without_redis_fails_with_a_clear_message(cli: Cli) -> None:
    stderr = failed(cli("worker", "--burst"))
    assert "BPM_REDIS_URL is not set" in stderr


# --------------------------------------------------------------------------- doctor

def test_doctor_passes_on_a_healthy_database_and_names_each_disagreement(cli: Cli) -> None:
    cli.ok("models", "sync")
    cli.ok("demo", "seed", "--tokens-file", str(cli.cwd / "tokens.txt"))
    healthy = cli.ok("doctor")
    assert "all instances agree" in healthy.stdout

    (instance_id, task_id), = cli.query(
        "SELECT human_task.process_instance_id, human_task.id FROM human_task JOIN process_instance ON "
        "process_instance.id = human_task.process_instance_id WHERE human_task.state = 'ready' AND "
        "process_instance.process_model_id = 'account-project'")
    engine = create_engine(cli.database_url)
    with engine.begin() as conn:  # the damage a half-applied restore would leave
        conn.execute(text("UPDATE human_task SET engine_task_id = 'lost' WHERE id = :id"), {"id": task_id})
        conn.execute(text("UPDATE timer SET cancelled_at = CURRENT_TIMESTAMP WHERE task_id = :id "
                          "AND kind = 'sla_breach'"), {"id": task_id})
    engine.dispose()
    error = failed(cli("doctor"))
    result = cli("doctor")
    assert f"instance {instance_id}: task {task_id} (kickoff) is ready but the engine has no such ready task" \
        in result.stdout
    assert "the engine has a ready task" in result.stdout and "no task row" in result.stdout
    assert "has a running SLA clock but no breach timer" in result.stdout
    assert "3 disagreement(s)" in error
