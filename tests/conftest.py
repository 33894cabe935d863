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
from redis import Redis
from sqlalchemy import create_engine, text

from bpm_server.app import create_app
from bpm_server.clock import SettableClock
from bpm_server.config import PROJECT_ROOT, Config
from bpm_server.database import db
from tests.db_state import replay_or_build

PG_ADMIN_URL = os.environ.get("BPM_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@localhost:5432/postgres")
REDIS_SERVER_URL = os.environ.get("BPM_TEST_REDIS_SERVER", "redis://localhost:6379")
# Set by pytest-xdist in each worker ("gw0", "gw1", ...); unset in a serial run.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")


def pg_test_db() -> str:
    """This process's own PostgreSQL database: one per pytest run, and one per xdist
    worker (each worker is a process of its own), so parallel runs never share state.
    Read at use, not at import, so a forked child (mutmut) gets its own as well."""
    named = os.environ.get("BPM_TEST_PG_DB")
    if named:
        return f"{named}_{XDIST_WORKER}" if XDIST_WORKER else named
    return f"bpm_test_{os.getpid()}"


def pg_test_url() -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + pg_test_db()


_redis_claims: dict[int, str] = {}


def redis_test_url() -> str:
    """A Redis database of this process's own (15 down to 1), claimed on first use so
    that tests which never touch Redis (the sandbox, the diagram checks) run without it.
    Tests flush it around each test, so two runs, or two xdist workers, must not share
    one. The claim is a key in database 0 that expires on its own if this process dies
    without releasing it."""
    pid = os.getpid()
    if pid in _redis_claims:
        return _redis_claims[pid]
    named = os.environ.get("BPM_TEST_REDIS_URL")
    if named:
        if XDIST_WORKER:
            raise RuntimeError("BPM_TEST_REDIS_URL names one Redis database, but xdist workers need one each: "
                               "run with -n 0, or unset it to let each worker claim its own")
        _redis_claims[pid] = named
        return named
    control = Redis.from_url(f"{REDIS_SERVER_URL}/0")
    for number in range(15, 0, -1):
        key = f"bpm-test:redis-db:{number}"
        if control.set(key, pid, nx=True, ex=4 * 3600):
            def release(key: str = key, mine: bytes = str(pid).encode()) -> None:
                if control.get(key) == mine:
                    control.delete(key)

            atexit.register(release)
            _redis_claims[pid] = f"{REDIS_SERVER_URL}/{number}"
            return _redis_claims[pid]
    raise RuntimeError("Redis databases 1-15 are all claimed by other test runs (keys bpm-test:redis-db:* in db 0)")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis database of this run (or xdist worker); claimed when a test first asks."""
    return redis_test_url()


def __getattr__(name: str) -> str:
    # ``from tests.conftest import REDIS_TEST_URL`` (tests/rq_support.py and others) still
    # works, and claims the database only when such a module is imported, not here.
    if name == "REDIS_TEST_URL":
        return redis_test_url()
    raise AttributeError(name)


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
    name, url = pg_test_db(), pg_test_url()
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{name}"')
    _migrate(url)
    yield url
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
            tables = [t.name for t in reversed(db.metadata.sorted_tables) if t.name != "sla_breach_log_head"]
            with db.engine.begin() as conn:
                # DELETE rather than TRUNCATE: TRUNCATE gives each table new files that PostgreSQL
                # syncs to disk at commit, some 30 syncs per test, which made emptying the tables
                # the slowest step of a test on a busy disk. The replica role skips the append-only
                # triggers (and foreign key checks) in this transaction only; it needs the
                # superuser the tests connect as. Then every sequence starts again, as RESTART
                # IDENTITY did.
                conn.execute(text("SET LOCAL session_replication_role = replica"))
                for table in tables:
                    conn.execute(text(f'DELETE FROM "{table}"'))
                conn.execute(text("SELECT setval(seqrelid, seqstart, false) FROM pg_sequence"))
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
                  forms_dir=PROJECT_ROOT / "forms", queue_name="bpm-test",
                  # The accounts' daily evaluation is a timer every test-clock advance past 06:00 would fire;
                  # tests of accounts switch it on (tests/accounts/conftest.py), the rest are spared it.
                  accounts_daily_at=None)


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
    from bpm_server.identity.departments import CATALOG_FILE, sync_catalog
    from bpm_server.modeling.service import sync_from_disk
    from bpm_server.sla.policies import sync_file

    rt = app.extensions["bpm"]

    def sync() -> None:
        with app.app_context():
            sync_catalog(db.session, rt.config.models_dir / CATALOG_FILE, now=rt.clock.now())
            sync_from_disk(db.session, rt.config.models_dir, rt.config.forms_dir, now=rt.clock.now())
            sync_file(db.session, rt.config.models_dir / "escalation-policies.json", now=rt.clock.now())
            db.session.commit()

    # The rows the sync writes depend only on these files and the time (tests/db_state.py).
    replay_or_build(app, ("synced", rt.config.models_dir, rt.config.forms_dir, _tree_stamp(rt.config.models_dir),
                          _tree_stamp(rt.config.forms_dir), rt.clock.now()), sync)
    return app


def _tree_stamp(folder: Path) -> tuple:
    """Each file's path, size and modification time: a test that edits a model gets a new sync."""
    return tuple((str(p), s.st_size, s.st_mtime_ns) for p in sorted(folder.rglob("*")) if (s := p.stat()))


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

    def patch(self, url: str, **kw: Any):
        return self.client.patch(url, headers=self._headers(kw.pop("headers", None)), **kw)

    def delete(self, url: str, **kw: Any):
        return self.client.delete(url, headers=self._headers(kw.pop("headers", None)), **kw)


@pytest.fixture
def people(synced_app: Flask) -> dict[str, Caller]:
    """One caller per demo role: a staff member per department, owner, auditor, admin, ERP."""
    from bpm_server.accounts.service import upsert_account
    from bpm_server.identity.service import add_user, issue_token

    spec = {"sales": ("sales", ["staff"]), "sales2": ("sales", ["staff"]), "consulting": ("consulting", ["staff"]),
            "it": ("it", ["staff"]), "delivery": ("delivery", ["staff"]), "finance": ("finance", ["staff"]),
            "owner": ("pmo", ["process_owner"]), "auditor": ("audit", ["auditor"]), "admin": ("it", ["admin"]),
            "erp": ("erp", ["integration"])}
    now = synced_app.extensions["bpm"].clock.now()

    def create() -> dict[str, str]:
        tokens = {}
        with synced_app.app_context():
            for name, (department, roles) in spec.items():
                # No passwords: argon2 costs ~100 ms each and API tests use tokens.
                user = add_user(db.session, name, department=department, roles=roles, now=now)
                tokens[name] = issue_token(db.session, user, now=now)
            for account_id, tier in (("ACME", "strategic"), ("BETA", "key"), ("GAMMA", "standard")):
                upsert_account(db.session, account_id, name=f"{account_id} Ltd", tier=tier, owner="sales", now=now)
            db.session.commit()
        return tokens

    tokens = replay_or_build(synced_app, ("people", now), create)
    return {name: Caller(synced_app.test_client(), name, token) for name, token in tokens.items()}


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
