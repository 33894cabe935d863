"""Sign-in, the session cookie, CSRF and page roles, through Flask's test client
(fast; the browser tests click the same things in Chromium)."""
from __future__ import annotations

import re

import pytest
from flask import Flask

from bpm_server.database import db
from bpm_server.identity.models import User

PASSWORD = "a-good-password"


@pytest.fixture(scope="module")
def password_hash() -> str:
    from argon2 import PasswordHasher

    return PasswordHasher().hash(PASSWORD)


@pytest.fixture
def site(people, synced_app: Flask, password_hash: str) -> Flask:
    with synced_app.app_context():
        for user in db.session.query(User):
            user.password_hash = password_hash
        db.session.commit()
    return synced_app


def _token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, "the page has no CSRF token field"
    return found.group(1)


def _login(client, username: str, password: str = PASSWORD, next_url: str | None = None):
    token = _token(client.get("/login").get_data(as_text=True))
    url = "/login" + (f"?next={next_url}" if next_url else "")
    return client.post(url, data={"username": username, "password": password, "csrf_token": token})


def test_login_sets_an_httponly_samesite_cookie_and_lands_on_the_roles_page(site):
    client = site.test_client()
    response = _login(client, "sales")
    assert response.status_code == 302 and response.headers["Location"] == "/inbox"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/inbox").status_code == 200
    assert _login(site.test_client(), "owner").headers["Location"] == "/models"
    assert _login(site.test_client(), "auditor").headers["Location"] == "/breaches"


def test_failed_login_says_so_without_telling_whether_the_user_exists(site):
    wrong = _login(site.test_client(), "sales", "not-the-password")
    unknown = _login(site.test_client(), "no-such-person", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    for response in (wrong, unknown):
        assert "用户名或密码错误。" in response.get_data(as_text=True)
        assert "user_id" not in (response.headers.get("Set-Cookie") or "")


def test_login_without_csrf_token_is_refused(site):
    client = site.test_client()
    client.get("/login")
    response = client.post("/login", data={"username": "sales", "password": PASSWORD})
    assert response.status_code == 400 and "表单已失效" in response.get_data(as_text=True)
    assert client.get("/inbox").status_code == 302  # still signed out


def test_next_goes_back_to_the_page_but_never_to_another_site(site):
    assert _login(site.test_client(), "sales", next_url="/accounts/ACME").headers["Location"] == "/accounts/ACME"
    assert _login(site.test_client(), "sales", next_url="//evil.example/x").headers["Location"] == "/inbox"
    assert _login(site.test_client(), "sales", next_url="https://evil.example/").headers["Location"] == "/inbox"


def test_anonymous_visitors_go_to_login_and_wrong_roles_get_the_403_page(site):
    client = site.test_client()
    response = client.get("/inbox?tab=department")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=/inbox")
    _login(client, "owner")
    response = client.get("/inbox")
    assert response.status_code == 403 and response.mimetype == "text/html"
    assert "无权访问" in response.get_data(as_text=True)
    assert client.get("/leads").status_code == 403  # not a department lead


def test_logout_needs_the_token_and_ends_the_session(site):
    client = site.test_client()
    _login(client, "sales")
    assert client.post("/logout").status_code == 400
    token = _token(client.get("/inbox").get_data(as_text=True))
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/inbox").status_code == 302


def test_a_cookie_saved_before_logout_no_longer_works_after_it(site):
    client = site.test_client()
    _login(client, "sales")
    saved = client.get_cookie("session").value
    elsewhere = site.test_client()  # the same person signed in on another device
    _login(elsewhere, "sales")
    token = _token(client.get("/inbox").get_data(as_text=True))
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302

    replay = site.test_client()
    replay.set_cookie("session", saved)
    response = replay.get("/inbox")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert replay.get("/api/v1/tasks").status_code == 401
    # Only that session ended: the other device is still signed in.
    assert elsewhere.get("/inbox").status_code == 200
    assert elsewhere.get("/api/v1/tasks").status_code == 200


def test_cookie_authenticated_api_calls_that_change_state_need_the_csrf_header(site, people):
    from tests.api.flows import start_project

    instance = start_project(people["sales"], "ACME")
    task_id = instance["tasks"][0]["id"]
    client = site.test_client()
    _login(client, "sales")
    assert client.get(f"/api/v1/tasks/{task_id}").status_code == 200  # reading needs no token
    refused = client.post(f"/api/v1/tasks/{task_id}/claim")
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "csrf_failed"
    token = _token(client.get("/inbox").get_data(as_text=True))
    assert client.post(f"/api/v1/tasks/{task_id}/claim", headers={"X-CSRF-Token": token}).status_code == 200
    # Bearer-token clients are not affected.
    other = people["sales2"].post(f"/api/v1/tasks/{task_id}/claim")
    assert other.status_code == 409


def test_language_switch_is_remembered_in_the_session(site):
    client = site.test_client()
    _login(client, "sales")
    assert "Sign out" in client.get("/inbox?lang=en").get_data(as_text=True)
    assert "Sign out" in client.get("/inbox").get_data(as_text=True)
    assert "退出" in client.get("/inbox?lang=zh_CN").get_data(as_text=True)
    assert "退出" in client.get("/inbox?lang=klingon").get_data(as_text=True)


def test_behind_https_the_session_cookie_is_marked_secure(site):
    from bpm_server.config import Config

    assert Config.from_env({"BPM_SECURE_COOKIES": "1"}, env_file=None).secure_cookies is True
    assert Config.from_env({}, env_file=None).secure_cookies is False
    from bpm_server.app import create_app

    assert create_app(Config(database_url="sqlite://", secure_cookies=True)).config["SESSION_COOKIE_SECURE"] is True
    site.config["SESSION_COOKIE_SECURE"] = True  # as create_app set it above, on the test site
    cookie = _login(site.test_client(), "sales").headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie


def test_password_guessing_is_throttled_per_username_for_fifteen_minutes(site, clock):
    from datetime import timedelta

    for _ in range(5):
        assert _login(site.test_client(), "sales", "guess").status_code == 401
    # The sixth try is refused even with the right password, and says for how long.
    refused = _login(site.test_client(), "sales")
    assert refused.status_code == 429
    assert "登录失败次数过多" in refused.get_data(as_text=True) and "15" in refused.get_data(as_text=True)
    assert 0 < int(refused.headers["Retry-After"]) <= 15 * 60
    assert "user_id" not in (refused.headers.get("Set-Cookie") or "")
    # Other people are not affected.
    assert _login(site.test_client(), "finance").status_code == 302
    # Once the failures have left the window, the right password works again.
    clock.set(clock.now() + timedelta(minutes=15, seconds=1))
    assert _login(site.test_client(), "sales").status_code == 302


def test_unknown_names_are_throttled_like_known_ones(site):
    answers = [_login(site.test_client(), name, "guess").status_code
               for name in ["sales"] * 6 + ["nobody-here"] * 6]
    assert answers == [401] * 5 + [429] + [401] * 5 + [429]


def test_a_successful_sign_in_clears_the_failures_before_it(site):
    for _ in range(4):
        _login(site.test_client(), "sales", "guess")
    assert _login(site.test_client(), "sales").status_code == 302
    for _ in range(4):
        assert _login(site.test_client(), "sales", "guess").status_code == 401
    assert _login(site.test_client(), "sales").status_code == 302
