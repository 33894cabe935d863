"""PostgreSQL goes away: every API route and web page answers 503 with
Retry-After (never 500), and the same app serves again once it is back.

The database is a private cluster of this test (tests/pg_cluster.py) on a
spare port, so stopping it disturbs no other test run."""
from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask

from bpm_server.app import create_app
from bpm_server.config import PROJECT_ROOT, Config
from bpm_server.database import db
from tests.conftest import START, _migrate
from tests.pg_cluster import PrivateCluster

START_BODY = {"process_model_id": "account-project", "account_id": "ACME",
              "data": {"contract_no": "HT-1", "signed_at": "2026-03-02T09:00:00+08:00"}}


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    cluster = PrivateCluster().init().start()
    yield cluster
    cluster.destroy()


@pytest.fixture
def outage_app(cluster: PrivateCluster) -> Iterator[tuple[Flask, str]]:
    """An app on the private cluster with the models synced and one staff user: (app, token)."""
    from bpm_server.accounts.service import upsert_account
    from bpm_server.clock import SettableClock
    from bpm_server.identity.service import add_user, issue_token, start_web_session
    from bpm_server.modeling.service import sync_from_disk

    _migrate(cluster.url)
    config = Config(database_url=cluster.url, testing=True, secret_key="test-secret", retry_after_seconds=7,
                    erp_webhook_secret="test-webhook-secret",
                    models_dir=PROJECT_ROOT / "process_models", forms_dir=PROJECT_ROOT / "forms")
    clock = SettableClock(START)
    app = create_app(config, clock=clock)
    with app.app_context():
        sync_from_disk(db.session, config.models_dir, config.forms_dir, now=clock.now())
        user = add_user(db.session, "sales", department="sales", roles=["staff", "admin"], now=clock.now())
        token = issue_token(db.session, user, now=clock.now())
        upsert_account(db.session, "ACME", name="ACME Ltd", tier="key", owner="sales", now=clock.now())
        session_id = start_web_session(db.session, user, now=clock.now())
        db.session.commit()
        app.config["OUTAGE_SESSION"] = {"user_id": user.id, "sid": session_id, "csrf": "t"}
    yield app, token
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _url(rule) -> str:
    """A concrete URL for a route: every path parameter filled with a plausible value."""
    return re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: "1" if m.group(1) in ("int", "float") else "x", rule.rule)


def _routes(app: Flask, method: str) -> list[str]:
    return sorted({_url(rule) for rule in app.url_map.iter_rules()
                   if method in (rule.methods or ()) and not rule.rule.startswith("/static")})


def test_every_route_answers_503_with_retry_after_while_the_database_is_down_and_recovers(outage_app, cluster):
    app, token = outage_app
    api = app.test_client()
    bearer = {"Authorization": f"Bearer {token}"}
    pages = app.test_client()
    with pages.session_transaction() as session:  # signed in to the web UI
        session.update(app.config["OUTAGE_SESSION"])
    assert api.get("/api/v1/tasks", headers=bearer).status_code == 200
    assert pages.get("/inbox").status_code == 200

    cluster.stop()
    page = pages.get("/inbox")
    assert page.status_code == 503 and "暂时无法连接数据库" in page.get_data(as_text=True)
    answers: dict[tuple[str, str], int] = {}
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        for url in _routes(app, method):
            if url.startswith("/api/"):
                response = api.open(url, method=method, headers=bearer, json={} if method != "GET" else None)
            else:
                response = pages.open(url, method=method, headers={"X-CSRF-Token": "t"},
                                      data={"csrf_token": "t"} if method != "GET" else None)
            answers[(method, url)] = response.status_code
            assert response.status_code != 500, (method, url, response.get_data(as_text=True)[:500])
            if response.status_code == 503:
                assert response.headers.get("Retry-After") == "7", (method, url)
                if url.startswith("/api/") and url != "/api/v1/health":
                    assert response.get_json()["error"]["code"] == "database_unavailable", (method, url)
    down = {key for key, status in answers.items() if status == 503}
    # Everything that needs the database says so; the rest (the OpenAPI document, the login form) still works.
    for key in [("GET", "/api/v1/tasks"), ("GET", "/api/v1/tasks/x"), ("POST", "/api/v1/process-instances"),
                ("POST", "/api/v1/tasks/x/complete"), ("GET", "/api/v1/sla/breaches"), ("GET", "/inbox"),
                ("GET", "/accounts"), ("POST", "/login")]:
        assert key in down, (key, answers.get(key))
    assert len(down) > 0.8 * len(answers), sorted(set(answers) - down)

    cluster.start()
    assert api.get("/api/v1/tasks", headers=bearer).status_code == 200
    started = api.post("/api/v1/process-instances", headers=bearer, json=START_BODY)
    assert started.status_code == 201, started.get_json()
    assert api.get("/api/v1/health").status_code == 200
