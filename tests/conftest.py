"""Shared fixtures. Tests run against real PostgreSQL and Redis (see .ci/run);
engine-level behaviour runs on both SQLite and PostgreSQL via the ``backend``
parameter. Each test gets an empty schema and a flushed Redis database."""
from __future__ import annotations

import atexit
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from bpm_server.app import create_app
from bpm_server.clock import SettableClock
from bpm_server.config import PROJECT_ROOT, Config
from bpm_server.database import db

PG_ADMIN_URL = os.environ.get("BPM_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@localhost:5432/postgres")
# One database per pytest run, so parallel runs on one machine never share state.
PG_TEST_DB = os.environ.get("BPM_TEST_PG_DB", f"bpm_test_{os.getpid()}")
PG_URL = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + PG_TEST_DB
REDIS_SERVER_URL = os.environ.get("BPM_TEST_REDIS_SERVER", "redis://localhost:6379")


def _claim_redis_database() -> str:
    """A Redis database of this run's own (15 down to 8): tests flush it around each
    test, so two runs on one machine must not share one. The claim is a key in
    database 0 that expires on its own if this run dies without releasing it."""
    from redis import Redis

    control = Redis.from_url(f"{REDIS_SERVER_URL}/0")
    mine = str(os.getpid()).encode()
    for number in range(15, 7, -1):
        key = f"bpm-test:redis-db:{number}"
        if control.set(key, os.getpid(), nx=True, ex=4 * 3600):
            def release(key: str = key) -> None:
                if control.get(key) == mine:
                    control.delete(key)

            atexit.register(release)
            return f"{REDIS_SERVER_URL}/{number}"
    raise RuntimeError("Redis databases 8-15 are all claimed by other test runs (keys bpm-test:redis-db:* in db 0)")


REDIS_TEST_URL = os.environ.get("BPM_TEST_REDIS_URL") or _claim_redis_database()
START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # Monday 09:00 in Shanghai


def _admin(sql: str) -> None:
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(sql))
    engine.dispose()


def _migrate(url: str) -> None:
    from flask_migrate import upgrade

    app = create_app(Config(database_url=url, testing=True))
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL database for this run, migrated once with the real Alembic migrations."""
    _admin(f'DROP DATABASE IF EXISTS "{PG_TEST_DB}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{PG_TEST_DB}"')
    _migrate(PG_URL)
    yield PG_URL
    _admin(f'DROP DATABASE IF EXISTS "{PG_TEST_DB}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file; each test gets a copy (cheaper than migrating every time)."""
    path = tmp_path_factory.mktemp("template") / "bpm.sqlite3"
    _migrate(f"sqlite:///{path}")
    return path


def empty_tables(app: Flask) -> None:
    """Remove every row, keeping the breach log's head row (made by the migration) reset to genesis."""
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            # The breach log's head row is created by the migration: keep it, reset it.
            tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables if t.name != "sla_breach_log_head")
            with db.engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
                # Delete and insert rather than update: a test may have removed the row.
                conn.execute(text("DELETE FROM sla_breach_log_head"))
                conn.execute(text("INSERT INTO sla_breach_log_head (id, seq, hash) VALUES (1, 0, :h)"),
                             {"h": "0" * 64})


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        target = tmp_path / "bpm.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        return f"sqlite:///{target}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(START)


@pytest.fixture
def config(database_url: str) -> Config:
    return Config(database_url=database_url, testing=True, secret_key="test-secret",
                  erp_webhook_secret="test-webhook-secret", models_dir=PROJECT_ROOT / "process_models",
                  forms_dir=PROJECT_ROOT / "forms", queue_name="bpm-test")


@pytest.fixture
def app(config: Config, clock: SettableClock) -> Iterator[Flask]:
    app = create_app(config, clock=clock)
    empty_tables(app)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def synced_app(app: Flask) -> Flask:
    """The app with process_models/ and forms/ synced, as after ``bpm-server models sync``."""
    from bpm_server.modeling.service import sync_from_disk
    from bpm_server.sla.policies import sync_file

    with app.app_context():
        rt = app.extensions["bpm"]
        sync_from_disk(db.session, rt.config.models_dir, rt.config.forms_dir, now=rt.clock.now())
        sync_file(db.session, rt.config.models_dir / "escalation-policies.json", now=rt.clock.now())
        db.session.commit()
    return app


@dataclass
class Caller:
    """A test client acting as one user, with their bearer token."""

    client: FlaskClient
    username: str
    token: str

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **(extra or {})}

    def get(self, url: str, **kw: Any):
        return self.client.get(url, headers=self._headers(kw.pop("headers", None)), **kw)

    def post(self, url: str, **kw: Any):
        return self.client.post(url, headers=self._headers(kw.pop("headers", None)), **kw)

    def put(self, url: str, **kw: Any):
        return self.client.put(url, headers=self._headers(kw.pop("headers", None)), **kw)


@pytest.fixture
def people(synced_app: Flask) -> dict[str, Caller]:
    """One caller per demo role: a staff member per department, owner, auditor, admin, ERP."""
    from bpm_server.accounts.service import upsert_account
    from bpm_server.identity.service import add_user, issue_token

    spec = {"sales": ("sales", ["staff"]), "sales2": ("sales", ["staff"]), "consulting": ("consulting", ["staff"]),
            "it": ("it", ["staff"]), "delivery": ("delivery", ["staff"]), "finance": ("finance", ["staff"]),
            "owner": ("pmo", ["process_owner"]), "auditor": ("audit", ["auditor"]), "admin": ("it", ["admin"]),
            "erp": ("erp", ["integration"])}
    callers = {}
    with synced_app.app_context():
        now = synced_app.extensions["bpm"].clock.now()
        for name, (department, roles) in spec.items():
            # No passwords: argon2 costs ~100 ms each and API tests use tokens.
            user = add_user(db.session, name, department=department, roles=roles, now=now)
            callers[name] = Caller(synced_app.test_client(), name, issue_token(db.session, user, now=now))
        for account_id, tier in (("ACME", "strategic"), ("BETA", "key"), ("GAMMA", "standard")):
            upsert_account(db.session, account_id, name=f"{account_id} Ltd", tier=tier, owner="sales", now=now)
        db.session.commit()
    return callers


@pytest.fixture
def leads(people: dict[str, Caller], synced_app: Flask) -> dict[str, Caller]:
    """The same callers, with 'sales2' leading sales and 'admin' as ACME's executive sponsor."""
    from bpm_server.accounts.models import Account
    from bpm_server.identity.models import Department, User

    with synced_app.app_context():
        lead = db.session.query(User).filter_by(username="sales2").one()
        db.session.get_one(Department, "sales").lead_user_id = lead.id
        db.session.get_one(Account, "ACME").executive_sponsor = "admin"
        db.session.commit()
    return people
