"""Sign-in behind a proxy: the per-address limit beside the per-username one, the
client address taken from X-Forwarded-For only through the trusted proxies
(BPM_TRUSTED_PROXIES), parallel guesses that cannot outrun the limit, and the
audit trail of sign-ins, sign-outs and failures."""
from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterator

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select
from werkzeug.serving import make_server

from bpm_server.audit.models import AuditEvent
from bpm_server.config import Config
from bpm_server.database import db
from bpm_server.identity.models import LoginFailure, User
from bpm_server.identity.service import add_user

PASSWORD = "a-good-password"
NAMES = ["ann", "bob", "cai", "dan", "eve", "fay"]


@pytest.fixture
def backend() -> str:
    return "postgresql"


@pytest.fixture
def address_limit() -> int:
    return 4


@pytest.fixture
def config(config: Config, address_limit: int) -> Config:
    return config.but(sign_in_address_attempts=address_limit)


@pytest.fixture(scope="module")
def password_hash() -> str:
    from argon2 import PasswordHasher

    return PasswordHasher().hash(PASSWORD)  # once: argon2 is slow on purpose


@pytest.fixture
def site(app: Flask, password_hash: str) -> Flask:
    with app.app_context():
        for name in NAMES:
            user = add_user(db.session, name, department="sales", now=app.extensions["bpm"].clock.now())
            user.password_hash = password_hash
        db.session.commit()
    return app


def _token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def _login(client, username: str, password: str = PASSWORD, **headers: str):
    token = _token(client.get("/login", headers=headers).get_data(as_text=True))
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                       headers=headers)


def _from(app: Flask, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _audit(app: Flask, action: str) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def test_one_address_guessing_many_names_is_stopped_without_locking_those_names_out(site: Flask) -> None:
    guesser = "203.0.113.9"
    answers = [_login(_from(site, guesser), name, "guess").status_code for name in NAMES[:5]]
    assert answers == [401, 401, 401, 401, 429]  # the address limit is 4 here; each name failed only once
    refused = _login(_from(site, guesser), "fay")  # even the right password, from that address
    assert refused.status_code == 429 and "该地址" in refused.get_data(as_text=True)
    # The people themselves, from their own machines, sign in as usual.
    assert _login(_from(site, "198.51.100.20"), "ann").status_code == 302


def test_without_trusted_proxies_a_forged_forwarded_for_changes_nothing(site: Flask) -> None:
    answers = [_login(_from(site, "203.0.113.9"), name, "guess", **{"X-Forwarded-For": f"10.0.0.{i}"}).status_code
               for i, name in enumerate(NAMES[:5])]
    assert answers[-1] == 429  # rotating the header does not give a fresh address
    with site.app_context():
        assert set(db.session.scalars(select(LoginFailure.remote_addr))) == {"203.0.113.9"}


def test_behind_one_trusted_proxy_the_forwarded_address_is_the_clients(config: Config, clock,
                                                                       password_hash: str) -> None:
    from bpm_server.app import create_app
    from tests.conftest import empty_tables

    app = create_app(config.but(trusted_proxies=1), clock=clock)
    empty_tables(app)
    with app.app_context():
        add_user(db.session, "ann", department="sales", now=clock.now()).password_hash = password_hash
        db.session.commit()
    proxy = "10.1.1.1"  # every request arrives from the proxy
    for client_address in ("198.51.100.7", "198.51.100.8"):
        assert _login(_from(app, proxy), "ann", "guess", **{"X-Forwarded-For": client_address}).status_code == 401
    assert _login(_from(app, proxy), "ann", **{"X-Forwarded-For": "198.51.100.9"}).status_code == 302
    with app.app_context():
        failed = [e.details["remote_addr"] for e in db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "session.sign_in_failed").order_by(AuditEvent.id))]
        signed_in = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "session.sign_in"))
        assert failed == ["198.51.100.7", "198.51.100.8"]
        assert signed_in is not None and signed_in.details["remote_addr"] == "198.51.100.9"
        db.session.remove()
        db.engine.dispose()


def test_sign_in_sign_out_and_failures_are_audited(site: Flask) -> None:
    client = _from(site, "198.51.100.30")
    assert _login(client, "ann", "guess").status_code == 401
    assert _login(client, "ann").status_code == 302
    page = client.get("/inbox").get_data(as_text=True)
    assert client.post("/logout", data={"csrf_token": _token(page)}).status_code == 302
    (failure,) = _audit(site, "session.sign_in_failed")
    assert (failure.actor, failure.details["reason"], failure.details["remote_addr"]) == \
        ("ann", "wrong_password", "198.51.100.30")
    (sign_in,) = _audit(site, "session.sign_in")
    assert (sign_in.actor, sign_in.details["method"]) == ("ann", "password")
    assert [e.actor for e in _audit(site, "session.sign_out")] == ["ann"]


@pytest.fixture
def live(site: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, site, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.mark.parametrize("address_limit", [20])  # all 30 come from 127.0.0.1: the username limit (5) counts
def test_thirty_parallel_wrong_passwords_get_no_more_than_five_checked(site: Flask, live: str) -> None:
    # Each guesser holds the login form (and its CSRF token) first, then all post at once.
    sessions = []
    for _ in range(30):
        browser = requests.Session()
        sessions.append((browser, _token(browser.get(f"{live}/login", timeout=10).text)))
    start = threading.Barrier(30)
    answers: list[int] = []

    def guess(browser: requests.Session, token: str) -> None:
        start.wait()
        response = browser.post(f"{live}/login", data={"username": "ann", "password": "guess", "csrf_token": token},
                                allow_redirects=False, timeout=60)
        answers.append(response.status_code)

    threads = [threading.Thread(target=guess, args=pair) for pair in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert Counter(answers) == {401: 5, 429: 25}
    with site.app_context():
        assert db.session.scalar(select(func.count()).select_from(LoginFailure)) == 5
    assert Counter(e.details["reason"] for e in _audit(site, "session.sign_in_failed")) == \
        {"wrong_password": 5, "throttled": 25}


def test_auditors_export_the_sign_in_failures_as_csv(site: Flask) -> None:
    import csv
    import io

    from bpm_server.identity.service import issue_token

    with site.app_context():
        now = site.extensions["bpm"].clock.now()
        token = issue_token(db.session, add_user(db.session, "aud", department="audit", roles=["auditor"], now=now),
                            now=now)
        staff_token = issue_token(db.session, db.session.scalars(select(User).where(User.username == "ann")).one(),
                                  now=now)
        db.session.commit()
    _login(_from(site, "198.51.100.40"), "=cmd|' /C calc'!A0", "guess")
    _login(_from(site, "198.51.100.41"), "bob", "guess")
    response = site.test_client().get("/api/v1/audit?action=session.sign_in_failed&format=csv",
                                      headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["actor"] for r in rows] == ["bob", "'=cmd|' /C calc'!A0"]  # newest first; no formula runs
    assert all(r["action"] == "session.sign_in_failed" for r in rows) and "198.51.100.41" in rows[0]["details"]
    assert site.test_client().get("/api/v1/audit?format=csv", headers={
        "Authorization": f"Bearer {staff_token}"}).status_code == 403
    assert site.test_client().get("/api/v1/audit?format=xml", headers={
        "Authorization": f"Bearer {token}"}).status_code == 422
