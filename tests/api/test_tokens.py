"""API tokens through the API: listed without secrets, revoked by their owner or
an admin, expiring, and their last use kept to the minute."""
from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask

from bpm_server.clock import SettableClock
from bpm_server.database import db
from bpm_server.identity.service import find_user, issue_token
from tests.conftest import START, Caller


def _delete(caller: Caller, url: str):
    return caller.client.delete(url, headers={"Authorization": f"Bearer {caller.token}"})


def _tokens(caller: Caller, **query) -> list[dict]:
    response = caller.get("/api/v1/tokens", query_string=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def _issue(app: Flask, username: str, **options) -> str:
    with app.app_context():
        user = find_user(db.session, username)
        assert user is not None
        token = issue_token(db.session, user, now=app.extensions["bpm"].clock.now(), **options)
        db.session.commit()
    return token


def _audit(people, action: str) -> list[dict]:
    return people["auditor"].get("/api/v1/audit", query_string={"action": action}).get_json()["items"]


def test_a_user_lists_their_own_tokens_without_any_secret(people, synced_app) -> None:
    second = _issue(synced_app, "sales", name="ERP bridge")
    response = people["sales"].get("/api/v1/tokens")
    body = response.get_json()
    assert body["total"] == 2
    text = response.get_data(as_text=True)
    assert people["sales"].token not in text and second not in text and "hash" not in text
    by_name = {t["name"]: t for t in body["items"]}
    assert set(by_name) == {None, "ERP bridge"}
    listed = by_name["ERP bridge"]
    assert listed["user"] == "sales" and listed["state"] == "active" and listed["revoked"] is False
    assert listed["expires_at"] is None and listed["last_used_at"] is None
    assert {"id", "created_at", "revoked_at"} <= set(listed)
    # The token that made the request was used just now.
    assert by_name[None]["last_used_at"] is not None
    assert [t["user"] for t in _tokens(people["finance"])] == ["finance"]


def test_last_use_is_written_at_most_once_a_minute(people, clock: SettableClock) -> None:
    def last_used() -> str:
        return _tokens(people["admin"], user="sales")[0]["last_used_at"]

    people["sales"].get("/api/v1/me")
    first = last_used()
    assert first.startswith(START.strftime("%Y-%m-%dT%H:%M"))
    clock.set(START + timedelta(seconds=40))
    people["sales"].get("/api/v1/me")
    assert last_used() == first
    clock.set(START + timedelta(minutes=3))
    people["sales"].get("/api/v1/me")
    assert last_used() != first and last_used().startswith((START + timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M"))


def test_a_revoked_token_answers_401_from_the_next_request(people, synced_app) -> None:
    spare = Caller(people["sales"].client, "sales", _issue(synced_app, "sales"))
    victim = _current_id(people["sales"])
    assert _delete(spare, f"/api/v1/tokens/{victim}").status_code == 204
    response = people["sales"].get("/api/v1/me")
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "invalid_token"
    assert spare.get("/api/v1/me").status_code == 200  # the other one still works
    listed = {t["id"]: t for t in _tokens(spare)}
    assert len(listed) == 2
    assert listed[victim]["revoked"] is True and listed[victim]["state"] == "revoked"
    assert listed[victim]["revoked_by"] == "sales"
    again = _delete(spare, f"/api/v1/tokens/{victim}")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "token_revoked"
    event, = _audit(people, "token.revoke")
    assert event["object_id"] == victim and event["actor"] == "sales"


def _current_id(caller: Caller) -> str:
    """The id of the token the caller is using: the one whose last use is now (the only used one)."""
    used = [t for t in _tokens(caller) if t["last_used_at"]]
    assert len(used) == 1, used
    return used[0]["id"]


def test_staff_cannot_revoke_or_list_another_users_token_but_an_admin_can(people) -> None:
    finance_token = _current_id(people["finance"])
    response = _delete(people["sales"], f"/api/v1/tokens/{finance_token}")
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "not_token_owner"
    assert people["sales"].get("/api/v1/tokens", query_string={"user": "finance"}).status_code == 403
    assert people["finance"].get("/api/v1/me").status_code == 200  # nothing changed
    assert _delete(people["sales"], "/api/v1/tokens/no-such-token").status_code == 404
    assert _delete(people["admin"], f"/api/v1/tokens/{finance_token}").status_code == 204
    assert people["finance"].get("/api/v1/me").status_code == 401
    event, = _audit(people, "token.revoke")
    assert event["actor"] == "admin" and event["details"]["user"] == "finance"
    assert people["admin"].get("/api/v1/tokens", query_string={"user": "nobody"}).status_code == 404


def test_an_expired_token_answers_401(people, synced_app, clock: SettableClock) -> None:
    caller = Caller(people["sales"].client, "sales", _issue(synced_app, "sales", expires_in_days=1))
    assert caller.get("/api/v1/me").status_code == 200
    listed = next(t for t in _tokens(caller) if t["expires_at"])
    assert listed["expires_at"].startswith((START + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"))
    clock.set(START + timedelta(days=1, seconds=1))
    response = caller.get("/api/v1/me")
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "invalid_token"
    assert next(t for t in _tokens(people["admin"], user="sales") if t["expires_at"])["state"] == "expired"
    assert people["sales"].get("/api/v1/me").status_code == 200  # the one without expiry lives on


def test_the_deployments_default_lifetime_applies_when_none_is_asked_for(people, synced_app) -> None:
    default = _issue(synced_app, "sales", default_expiry_days=30)
    chosen = _issue(synced_app, "sales", expires_in_days=2, default_expiry_days=30)
    caller = Caller(people["sales"].client, "sales", default)
    expiries = sorted(t["expires_at"][:16] for t in _tokens(caller) if t["expires_at"])
    assert expiries == [(START + timedelta(days=d)).strftime("%Y-%m-%dT%H:%M") for d in (2, 30)]
    assert chosen


@pytest.mark.parametrize("days", [0, -3])
def test_a_lifetime_under_a_day_is_refused(synced_app, people, days: int) -> None:
    from bpm_server.errors import Invalid

    with synced_app.app_context(), pytest.raises(Invalid) as caught:
        sales = find_user(db.session, "sales")
        assert sales is not None
        issue_token(db.session, sales, now=START, expires_in_days=days)
    assert caught.value.details == {"expires_in_days": ["must be 1 or more"]}
