"""Migration 0018: each out-of-office substitute (whole days in Shanghai) becomes a
delegation of all work from the first day's midnight to the midnight after the last,
on SQLite and PostgreSQL; a downgrade gives the substitutes back."""
from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from bpm_server.app import create_app
from bpm_server.config import Config
from bpm_server.database import db
from tests.conftest import PG_ADMIN_URL, _admin


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of its own: this test walks the migrations itself."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'walk.sqlite3'}"
        return
    name = f"bpm_migrate_{os.getpid()}"
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{name}"')
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _at(value: object) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def test_substitutes_become_delegations_and_come_back_on_downgrade(fresh_url: str) -> None:
    app = create_app(Config(database_url=fresh_url, testing=True))
    created = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    with app.app_context():
        upgrade(revision="0016")
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO department (id, name) VALUES ('sales', 'Sales')"))
            for uid, name in (("u1", "li"), ("u2", "wang")):
                conn.execute(text("INSERT INTO user_account (id, username, display_name, department_id, roles, "
                                  "active, created_at) VALUES (:id, :name, :name, 'sales', '[\"staff\"]', true, :at)"),
                             {"id": uid, "name": name, "at": created})
            conn.execute(text("INSERT INTO substitute (id, user_id, substitute_id, starts_on, ends_on, reason, "
                              "created_by, created_at) VALUES ('s1', 'u1', 'u2', '2026-03-03', '2026-03-04', "
                              "'年假', 'lead', :at)"), {"at": created})
        upgrade()
        with db.engine.connect() as conn:
            [row] = conn.execute(text("SELECT * FROM delegation")).mappings().all()
        assert (row["id"], row["delegator_id"], row["delegate_id"], row["reason"]) == ("s1", "u1", "u2", "年假")
        assert _at(row["starts_at"]) == datetime(2026, 3, 2, 16, 0, tzinfo=UTC)  # 3 March 00:00 in Shanghai
        assert _at(row["ends_at"]) == datetime(2026, 3, 4, 16, 0, tzinfo=UTC)  # after the whole of 4 March
        assert row["cancelled_at"] is None

        downgrade(revision="0016")
        with db.engine.connect() as conn:
            [back] = conn.execute(text("SELECT starts_on, ends_on, user_id FROM substitute")).mappings().all()
        assert (str(back["starts_on"]), str(back["ends_on"]), back["user_id"]) == ("2026-03-03", "2026-03-04", "u1")
        db.engine.dispose()
