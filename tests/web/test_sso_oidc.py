"""OpenID Connect sign-in against a real OpenID provider on 127.0.0.1
(tests/fixtures/oidc_provider.py): the browser's redirects followed by hand, the
server talking to the provider over its socket (discovery, JWKS, token endpoint)."""
from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select

from bpm_server.app import create_app
from bpm_server.config import Config, OidcSettings, SsoMapping
from bpm_server.database import db
from bpm_server.identity.models import ExternalLogin, User
from tests.fixtures.oidc_provider import CLIENT_ID, CLIENT_SECRET, OidcProvider, running

LI_LEI = {"sub": "0f3c-li-lei", "preferred_username": "li.lei", "name": "李雷", "email": "li.lei@example.cn",
          "groups": ["finance-team", "bpm-approvers"]}
MAPPING = SsoMapping(group_roles={"bpm-approvers": ("staff", "process_owner")},
                     group_departments={"finance-team": "finance"})


@pytest.fixture
def backend() -> str:
    return "postgresql"


@pytest.fixture
def provider(clock) -> Iterator[OidcProvider]:
    with running(OidcProvider(clock=clock.now, person=dict(LI_LEI))) as started:
        yield started


@pytest.fixture
def config(config: Config, provider: OidcProvider) -> Config:
    return config.but(oidc=OidcSettings(issuer=provider.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                        scopes="openid profile email groups"), sso_mapping=MAPPING)


def _to_provider(client) -> str:
    """Click 使用单点登录: the provider's authorization URL we are sent to."""
    response = client.get("/login/sso/oidc")
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"]


def _back_from_provider(location: str) -> str:
    """The provider, signed in already, sends the browser back: our callback URL with code and state."""
    response = requests.get(location, allow_redirects=False, timeout=5)
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def _with(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return f"{parts.path}?{urlencode(query)}"


def _error(response) -> str:
    found = re.search(r'data-testid="sso-error">([^<]*)<', response.get_data(as_text=True))
    assert found is not None, response.get_data(as_text=True)
    return found.group(1)


def _users(app: Flask) -> list[User]:
    with app.app_context():
        return list(db.session.scalars(select(User)))


def _audit(app: Flask, action: str) -> list:
    from bpm_server.audit.models import AuditEvent

    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_the_login_page_offers_single_sign_on_only_when_configured(app: Flask, config: Config, clock) -> None:
    page = app.test_client().get("/login").get_data(as_text=True)
    assert "使用单点登录" in page and 'href="/login/sso/oidc"' in page
    plain = create_app(config.but(oidc=None), clock=clock)
    assert "使用单点登录" not in plain.test_client().get("/login").get_data(as_text=True)
    assert plain.test_client().get("/login/sso/oidc").status_code == 404


def test_first_sign_in_creates_the_user_with_the_roles_and_department_of_their_groups(
        app: Flask, provider: OidcProvider) -> None:
    client = app.test_client()
    location = _to_provider(client)
    assert location.startswith(f"{provider.issuer}/authorize?")
    sent = parse_qs(urlsplit(location).query)
    assert sent["client_id"] == [CLIENT_ID] and sent["state"] and sent["nonce"]
    response = client.get(_back_from_provider(location))
    assert response.status_code == 302, response.get_data(as_text=True)
    assert client.get(response.headers["Location"]).status_code == 200  # signed in: the home page opens
    (user,) = _users(app)
    assert (user.username, user.display_name, user.department_id) == ("li.lei", "李雷", "finance")
    assert user.roles == ["staff", "process_owner"] and user.password_hash is None
    assert [e.details["method"] for e in _audit(app, "session.sign_in")] == ["oidc"]
    assert [e.actor for e in _audit(app, "user.create")] == ["sso:oidc"]

    # The next sign-in, from another browser, is the same person: nobody new is made.
    other = app.test_client()
    assert other.get(_back_from_provider(_to_provider(other))).status_code == 302
    assert len(_users(app)) == 1
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ExternalLogin)) == 1


def test_a_wrong_state_is_refused_with_401_and_nothing_is_made(app: Flask, provider: OidcProvider) -> None:
    client = app.test_client()
    callback = _back_from_provider(_to_provider(client))
    response = client.get(_with(callback, state="forged-state"))
    assert response.status_code == 401
    assert "state 不符" in response.get_data(as_text=True)
    assert _users(app) == [] and provider.token_requests == 0  # the code was never even redeemed
    assert [e.details["reason"] for e in _audit(app, "session.sign_in_failed")] == ["state_mismatch"]
    # A callback nobody started here is refused the same way.
    assert app.test_client().get(_with(callback)).status_code == 401


def test_an_id_token_with_another_nonce_is_refused(app: Flask, provider: OidcProvider) -> None:
    provider.nonce_override = "a-nonce-from-another-sign-in"
    client = app.test_client()
    response = client.get(_back_from_provider(_to_provider(client)))
    assert response.status_code == 401
    assert "nonce" in _error(response)
    assert _users(app) == []
    assert client.get("/inbox").status_code == 302  # still signed out


def test_a_replayed_code_is_refused(app: Flask, provider: OidcProvider) -> None:
    client = app.test_client()
    first = _back_from_provider(_to_provider(client))
    assert client.get(first).status_code == 302
    # Someone who saw the first callback URL starts a sign-in of their own and brings the old code.
    thief = app.test_client()
    fresh = _back_from_provider(_to_provider(thief))
    old_code = parse_qs(urlsplit(first).query)["code"][0]
    response = thief.get(_with(fresh, code=old_code))
    assert response.status_code == 401
    assert "invalid_grant" in _error(response)
    assert thief.get("/inbox").status_code == 302
    assert len(_users(app)) == 1


def test_an_expired_id_token_is_refused(app: Flask, provider: OidcProvider, clock) -> None:
    # The provider's clock is an hour behind ours: its five-minute id token expired long ago.
    provider.clock = lambda: clock.now() - timedelta(hours=1)
    client = app.test_client()
    response = client.get(_back_from_provider(_to_provider(client)))
    assert response.status_code == 401
    assert "expired" in _error(response)
    assert _users(app) == []


def test_groups_that_map_to_no_department_sign_in_without_one_and_say_so(app: Flask, provider: OidcProvider) -> None:
    provider.person = {**LI_LEI, "groups": ["marketing"]}
    client = app.test_client()
    response = client.get(_back_from_provider(_to_provider(client)))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "没有部门" in page and "marketing" in page
    (user,) = _users(app)
    assert user.department_id is None and user.roles == ["staff"]  # the default roles
    assert client.get("/inbox").status_code == 200  # and the inbox opens, empty of department work
    assert app.test_client().get("/api/v1/me").status_code == 401


def test_a_deactivated_user_cannot_sign_in_through_the_provider(app: Flask, provider: OidcProvider) -> None:
    client = app.test_client()
    assert client.get(_back_from_provider(_to_provider(client))).status_code == 302
    with app.app_context():
        db.session.scalar(select(User)).active = False  # type: ignore[union-attr]
        db.session.commit()
    again = app.test_client()
    response = again.get(_back_from_provider(_to_provider(again)))
    assert response.status_code == 401 and again.get("/inbox").status_code == 302


def test_a_sign_in_the_person_cancelled_at_the_provider_is_refused(app: Flask) -> None:
    client = app.test_client()
    state = parse_qs(urlsplit(_to_provider(client)).query)["state"][0]
    response = client.get("/login/sso/oidc/callback?" + urlencode(
        {"state": state, "error": "access_denied", "error_description": "the user cancelled"}))
    assert response.status_code == 401
    assert "身份提供方拒绝了登录" in _error(response) and "the user cancelled" in _error(response)
    assert _users(app) == []


def test_an_unreachable_provider_is_a_clear_502_not_a_crash(app: Flask, config: Config, clock) -> None:
    assert config.oidc is not None
    nowhere = create_app(config.but(oidc=OidcSettings(issuer="http://127.0.0.1:9", client_id=CLIENT_ID,
                                                      client_secret=CLIENT_SECRET)), clock=clock)
    response = nowhere.test_client().get("/login/sso/oidc")
    assert response.status_code == 502
    assert "无法连接身份提供方" in _error(response)
    with nowhere.app_context():
        db.session.remove()
        db.engine.dispose()


def test_a_local_account_with_the_same_name_is_not_taken_over(app: Flask, clock) -> None:
    from bpm_server.identity.service import add_user

    with app.app_context():
        add_user(db.session, "li.lei", department="sales", now=clock.now())
        db.session.commit()
    client = app.test_client()
    response = client.get(_back_from_provider(_to_provider(client)))
    assert response.status_code == 409
    assert "li.lei" in _error(response) and client.get("/inbox").status_code == 302
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ExternalLogin)) == 0
