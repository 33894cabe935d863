"""The test clock of a deployment is one clock: kept in the database, so every web and
worker process reads the same time, and a long advance fires in committed batches,
handing what one request cannot finish to a job (issue 13)."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask

from bpm_server.app import create_app
from bpm_server.config import PROJECT_ROOT, Config
from bpm_server.database import db
from tests.conftest import Caller, empty_tables
from tests.fixtures.diagrams import sequence, user_task
from tests.rq_support import flush_redis, rq_config, run_worker
from tests.support import at, new_model


def _admin(app: Flask, username: str = "admin", roles: tuple[str, ...] = ("admin",)) -> Caller:
    from bpm_server.identity.service import add_user, issue_token

    with app.app_context():
        user = add_user(db.session, username, department="it", roles=list(roles),
                        now=app.extensions["bpm"].clock.now())
        token = issue_token(db.session, user, now=app.extensions["bpm"].clock.now())
        db.session.commit()
    return Caller(app.test_client(), username, token)


def _close(app: Flask) -> None:
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def two_web_processes(pg_url: str) -> Iterator[tuple[Flask, Flask]]:
    """Two apps on one database with BPM_TEST_CLOCK=1 and nothing injected, as two gunicorn workers."""
    config = Config(database_url=pg_url, testing=True, test_clock=True, secret_key="test-secret",
                    models_dir=PROJECT_ROOT / "process_models", forms_dir=PROJECT_ROOT / "forms",
                    queue_name="bpm-test")
    first, second = create_app(config), create_app(config)
    empty_tables(first)
    yield first, second
    _close(first)
    _close(second)


def test_two_web_processes_read_one_clock_and_see_each_others_moves(two_web_processes):
    first, second = two_web_processes
    admin_first = _admin(first)
    admin_second = Caller(second.test_client(), admin_first.username, admin_first.token)
    before = admin_first.get("/api/v1/test/clock").get_json()["now"]
    assert admin_second.get("/api/v1/test/clock").get_json()["now"] == before  # stood still, and agrees

    moved = admin_first.post("/api/v1/test/clock", json={"now": "2026-12-24T09:00:00+08:00"})
    assert moved.status_code == 200, moved.get_json()
    assert at(admin_second.get("/api/v1/test/clock").get_json()["now"]) == at("2026-12-24T09:00:00+08:00")
    # ...and the other one moves it further, from where the first left it.
    assert admin_second.post("/api/v1/test/clock", json={"now": "2026-12-25T09:00:00+08:00"}).status_code == 200
    assert at(admin_first.get("/api/v1/test/clock").get_json()["now"]) == at("2026-12-25T09:00:00+08:00")
    refused = admin_first.post("/api/v1/test/clock", json={"now": "2026-12-24T10:00:00+08:00"})
    assert refused.status_code == 422 and refused.get_json()["error"]["code"] == "clock_backwards"


TIMERS = 400


@pytest.fixture
def web_with_rq(pg_url: str) -> Iterator[Flask]:
    """A web app whose test clock is the database's and whose jobs go to rq, and which hands
    an advance to a job after its first batch (as a request that ran out of time does)."""
    from flask_migrate import upgrade

    flush_redis()
    app = create_app(rq_config(pg_url).but(test_clock=True, test_clock_request_seconds=0.0))
    with app.app_context():
        upgrade()
    empty_tables(app)
    yield app
    app.extensions["bpm"].jobs.connection.close()
    _close(app)
    flush_redis()


def _due_starts(app: Flask, count: int) -> None:
    """``count`` escalations each asking for a "rescue" instance, due a minute apart."""
    from bpm_server.accounts.service import upsert_account
    from bpm_server.sla.policies import START_PROCESS_TIMER
    from bpm_server.sla.timers import add_timer

    with app.app_context():
        now = app.extensions["bpm"].clock.now()
        upsert_account(db.session, "GAMMA", name="GAMMA Ltd", tier="standard", owner="admin", now=now)
        for number in range(count):
            add_timer(db.session, START_PROCESS_TIMER, None, None, now + timedelta(minutes=number + 1),
                      {"process_model_id": "rescue", "account_id": "GAMMA", "data": {"number": number}}, now)
        db.session.commit()


def _rescues(caller: Caller) -> list[dict]:
    found: list[dict] = []
    page = 1
    while True:
        body = caller.get("/api/v1/process-instances", query_string={
            "account_id": "GAMMA", "per_page": 100, "page": page}).get_json()
        found += body["items"]
        if len(body["items"]) < 100:
            return found
        page += 1


def test_an_advance_over_400_due_timers_fires_each_once_in_committed_batches(web_with_rq, tmp_path: Path):
    app = web_with_rq
    admin = _admin(app)
    owner = _admin(app, "owner", ("process_owner",))
    new_model(app, "rescue")
    diagram = sequence("rescue", user_task("call_customer", department="it"))
    assert owner.post("/api/v1/process-models/rescue/versions", data=diagram,
                      headers={"Content-Type": "application/xml"}).status_code == 201
    base = at(admin.get("/api/v1/test/clock").get_json()["now"])  # the clock stands still until moved
    _due_starts(app, TIMERS)
    target = base + timedelta(days=1)

    response = admin.post("/api/v1/test/clock", json={"now": target.isoformat()})
    # The request fired one committed batch and handed the rest to a job.
    assert response.status_code == 202, response.get_json()
    state = response.get_json()
    assert state["done"] is False and at(state["target"]) == target and 0 < state["fired"] < TIMERS
    kept = _rescues(admin)
    assert len(kept) == state["fired"]  # what the request fired is committed and visible
    now = at(admin.get("/api/v1/test/clock").get_json()["now"])
    assert now == base + timedelta(minutes=state["fired"])  # the clock stands at the last one fired

    # A worker process of its own (its test clock is the same database row) fires the rest.
    run_worker(app, tmp_path, test_clock=True)
    started = _rescues(admin)
    numbers = sorted(admin.get(f"/api/v1/process-instances/{i['id']}").get_json()["data"]["number"]
                     for i in started)
    assert numbers == list(range(TIMERS))  # every timer fired, each exactly once
    assert all(i["started_by"] == "escalation" for i in started)
    assert at(admin.get("/api/v1/test/clock").get_json()["now"]) == target
