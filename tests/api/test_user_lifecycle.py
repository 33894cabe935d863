"""Users and departments over the API (admins): create, change roles and
department, set the lead, deactivate a leaver (tokens and sessions stop at once,
open tasks back to the department, the lead told) and reactivate. All audited."""
from __future__ import annotations

import re

import pytest
from flask import Flask

from bpm_server.config import PROJECT_ROOT, Config
from bpm_server.database import db
from bpm_server.identity.models import ROLES, User
from tests.api.flows import open_task, start_project
from tests.conftest import Caller
from tests.support import page_client

PASSWORD = "a-good-password"


def _patch(caller: Caller, url: str, body: dict):
    return caller.client.patch(url, json=body, headers={"Authorization": f"Bearer {caller.token}"})


def _audit(people, action: str) -> list[dict]:
    return people["auditor"].get("/api/v1/audit", query_string={"action": action}).get_json()["items"]


def _claimed_kickoff(people, account_id: str) -> dict:
    instance = start_project(people["sales"], account_id)
    task = open_task(people["sales"], instance["id"], "kickoff")
    response = people["sales"].post(f"/api/v1/tasks/{task['id']}/claim")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_deactivating_a_leaver_stops_their_token_and_returns_their_tasks_to_the_department(leads) -> None:
    people = leads  # sales2 leads sales
    tasks = [_claimed_kickoff(people, "ACME"), _claimed_kickoff(people, "BETA")]
    response = people["admin"].post("/api/v1/users/sales/deactivate")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["active"] is False and sorted(body["tasks_returned"]) == sorted(t["id"] for t in tasks)
    response = people["sales"].get("/api/v1/tasks")
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "invalid_token"
    for task in tasks:
        back = people["sales2"].get(f"/api/v1/tasks/{task['id']}").get_json()
        assert (back["state"], back["assignee"], back["department"]) == ("ready", None, "sales")
    # Anyone in the department can take them again.
    assert people["sales2"].post(f"/api/v1/tasks/{tasks[0]['id']}/claim").status_code == 200
    notes = people["sales2"].get("/api/v1/notifications").get_json()["items"]
    returned = [n for n in notes if n["kind"] == "tasks_returned"]
    # In Chinese, the lead's language by default.
    assert len(returned) == 1 and "2 项任务" in returned[0]["title"] and "ACME" in returned[0]["body"]
    assert "已回到 销售部 的队列" in returned[0]["title"]  # the department by its name, not "sales"
    event, = _audit(people, "user.deactivate")
    assert event["actor"] == "admin" and event["object_id"] == "sales"
    assert event["details"]["before"] == {"active": True} and event["details"]["after"] == {"active": False}
    assert sorted(e["object_id"] for e in _audit(people, "task.return")) == sorted(t["id"] for t in tasks)
    again = people["admin"].post("/api/v1/users/sales/deactivate")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "already_inactive"


def test_reactivating_lets_the_user_back_in(people) -> None:
    assert people["admin"].post("/api/v1/users/finance/deactivate").status_code == 200
    assert people["finance"].get("/api/v1/me").status_code == 401
    response = people["admin"].post("/api/v1/users/finance/reactivate")
    assert response.status_code == 200 and response.get_json()["active"] is True
    assert people["finance"].get("/api/v1/me").status_code == 200
    assert people["admin"].post("/api/v1/users/finance/reactivate").status_code == 409
    event, = _audit(people, "user.reactivate")
    assert event["details"]["after"] == {"active": True}


def test_only_admins_manage_users(people) -> None:
    for name in ("sales", "owner", "auditor", "erp"):
        response = people[name].post("/api/v1/users/finance/deactivate")
        assert response.status_code == 403, name
    assert people["owner"].post("/api/v1/users", json={"username": "x", "department": "it"}).status_code == 403
    assert _patch(people["sales"], "/api/v1/users/sales", {"roles": ["admin"]}).status_code == 403
    assert people["finance"].get("/api/v1/me").status_code == 200
    assert people["admin"].post("/api/v1/users/nobody/deactivate").status_code == 404


def test_the_last_active_admin_cannot_be_deactivated_or_lose_the_role(people) -> None:
    response = people["admin"].post("/api/v1/users/admin/deactivate")
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "last_admin"
    response = _patch(people["admin"], "/api/v1/users/admin", {"roles": ["staff"]})
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "last_admin"
    assert people["admin"].get("/api/v1/me").get_json()["roles"] == ["admin"]
    assert _patch(people["admin"], "/api/v1/users/it", {"roles": ["staff", "admin"]}).status_code == 200
    assert people["admin"].post("/api/v1/users/admin/deactivate").status_code == 200
    assert people["admin"].get("/api/v1/me").status_code == 401
    response = people["it"].post("/api/v1/users/it/deactivate")
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "last_admin"


def test_an_admin_creates_a_user_and_changes_roles_and_department_audited(people) -> None:
    response = people["admin"].post("/api/v1/users", json={
        "username": "zhao", "display_name": "赵六", "department": "finance", "roles": ["staff", "auditor"]})
    assert response.status_code == 201, response.get_json()
    assert response.get_json() | {"id": None, "created_at": None} == {
        "id": None, "created_at": None, "username": "zhao", "display_name": "赵六", "department": "finance",
        "roles": ["staff", "auditor"], "active": True}
    assert people["admin"].post("/api/v1/users", json={"username": "zhao", "department": "it"}).status_code == 409
    response = _patch(people["admin"], "/api/v1/users/zhao", {"roles": ["process_owner"], "department": "it"})
    assert response.status_code == 200, response.get_json()
    assert (response.get_json()["roles"], response.get_json()["department"]) == (["process_owner"], "it")
    created, = _audit(people, "user.create")
    assert created["actor"] == "admin" and created["details"]["after"]["roles"] == ["staff", "auditor"]
    changed, = _audit(people, "user.update")
    assert changed["details"]["before"]["roles"] == ["staff", "auditor"]
    assert changed["details"]["before"]["department"] == "finance"
    assert changed["details"]["after"]["roles"] == ["process_owner"]
    assert changed["details"]["after"]["department"] == "it"
    listed = people["admin"].get("/api/v1/users", query_string={"department": "it"}).get_json()
    assert [u["username"] for u in listed["items"]] == ["admin", "it", "zhao"]


@pytest.mark.parametrize("path, method", [("/api/v1/users", "post"), ("/api/v1/users/sales", "patch")])
def test_an_unknown_role_is_422_listing_the_known_ones_and_changes_nothing(people, path: str, method: str) -> None:
    body = {"username": "qian", "department": "it", "roles": ["staff", "superuser"]}
    if method == "post":
        response = people["admin"].post(path, json=body)
    else:
        response = _patch(people["admin"], path, {"roles": body["roles"]})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "unknown_role" and "superuser" in error["message"]
    assert all(role in error["message"] for role in ROLES)
    assert "roles" in error["details"]
    assert people["admin"].get("/api/v1/users/qian").status_code == 404
    assert people["admin"].get("/api/v1/users/sales").get_json()["roles"] == ["staff"]
    assert _audit(people, "user.create") == [] and _audit(people, "user.update") == []


def test_a_change_to_a_missing_department_is_422(people) -> None:
    response = _patch(people["admin"], "/api/v1/users/sales", {"department": "nowhere"})
    assert response.status_code == 422 and response.get_json()["error"]["details"] == {
        "department": ["no such department"]}


def test_an_admin_creates_departments_and_sets_and_clears_the_lead(people) -> None:
    response = people["admin"].post("/api/v1/departments", json={"id": "legal", "name": "法务部"})
    assert response.status_code == 201 and response.get_json() == {"id": "legal", "name": "法务部", "name_en": None,
                                                                   "lead": None}
    response = _patch(people["admin"], "/api/v1/departments/legal", {"name_en": "Legal"})
    assert response.status_code == 200 and response.get_json()["name_en"] == "Legal"
    assert people["admin"].post("/api/v1/departments", json={"id": "legal"}).status_code == 409
    assert people["sales2"].get("/api/v1/tasks/breach-forecast").status_code == 403  # not a lead yet
    response = _patch(people["admin"], "/api/v1/departments/sales", {"lead": "sales2"})
    assert response.status_code == 200 and response.get_json()["lead"] == "sales2"
    # The new lead now acts as one: they may reassign their department's work.
    assert people["sales2"].get("/api/v1/tasks/breach-forecast").status_code == 200
    assert people["sales"].get("/api/v1/tasks/breach-forecast").status_code == 403
    response = _patch(people["admin"], "/api/v1/departments/sales", {"lead": "ghost"})
    assert response.status_code == 422 and response.get_json()["error"]["details"] == {"lead": ["no such active user"]}
    response = _patch(people["admin"], "/api/v1/departments/sales", {"lead": None})
    assert response.status_code == 200 and response.get_json()["lead"] is None
    assert _patch(people["admin"], "/api/v1/departments/nowhere", {"name": "x"}).status_code == 404
    assert _patch(people["sales"], "/api/v1/departments/sales", {"lead": "sales"}).status_code == 403
    # (models sync created and named the catalogue's departments first: the admin's changes follow)
    changes = [e for e in _audit(people, "department.update") if e["actor"] == "admin"]
    assert [(e["object_id"], e["details"]["after"]["name_en"], e["details"]["after"]["lead"])
            for e in reversed(changes)] == [("legal", "Legal", None), ("sales", "Sales", "sales2"),
                                            ("sales", "Sales", None)]
    created = _audit(people, "department.create")
    assert [e["object_id"] for e in created if e["actor"] == "admin"] == ["legal"]
    assert {e["object_id"] for e in created if e["actor"] == "models sync"} >= {"sales", "finance", "it"}


# --------------------------------------------------------------------------- sessions stop at once


@pytest.fixture(scope="module")
def password_hash() -> str:
    from argon2 import PasswordHasher

    return PasswordHasher().hash(PASSWORD)


def _sign_in(app: Flask, username: str, password_hash: str):
    with app.app_context():
        db.session.query(User).filter_by(username=username).one().password_hash = password_hash
        db.session.commit()
    client = app.test_client()
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True))
    assert found is not None
    token = found.group(1)
    response = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    return client


def test_a_deactivated_users_browser_session_stops_at_once(people, synced_app, password_hash) -> None:
    browser = _sign_in(synced_app, "sales", password_hash)
    assert browser.get("/inbox").status_code == 200
    assert browser.get("/api/v1/me").status_code == 200  # the API through the session cookie
    assert people["admin"].post("/api/v1/users/sales/deactivate").status_code == 200
    page = browser.get("/inbox")
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")
    assert browser.get("/api/v1/me").status_code == 401


# --------------------------------------------------------------------------- the test clock


@pytest.fixture
def config(database_url: str) -> Config:  # the test clock on
    return Config(database_url=database_url, testing=True, secret_key="test-secret", test_clock=True,
                  models_dir=PROJECT_ROOT / "process_models", forms_dir=PROJECT_ROOT / "forms",
                  queue_name="bpm-test")


def test_only_admins_move_or_read_the_test_clock(people) -> None:
    for name in ("sales", "owner", "auditor", "erp"):
        response = people[name].post("/api/v1/test/clock", json={"now": "2026-03-05T09:00:00+08:00"})
        assert response.status_code == 403, name
        assert people[name].get("/api/v1/test/clock").status_code == 403
    assert people["admin"].get("/api/v1/test/clock").get_json()["now"].startswith("2026-03-02T01:00")
    response = people["admin"].post("/api/v1/test/clock", json={"now": "2026-03-05T09:00:00+08:00"})
    assert response.status_code == 200 and response.get_json()["now"].startswith("2026-03-05T01:00")


def test_a_lead_reading_english_is_told_the_departments_english_name(leads) -> None:
    assert leads["sales2"].put("/api/v1/notifications/language", json={"locale": "en"}).status_code == 200
    _claimed_kickoff(leads, "ACME")
    assert leads["admin"].post("/api/v1/users/sales/deactivate").status_code == 200
    [note] = [n for n in leads["sales2"].get("/api/v1/notifications").get_json()["items"]
              if n["kind"] == "tasks_returned"]
    assert "back in Sales's queue" in note["title"] and "销售部" not in note["title"]
    # The notification centre says it again in the page's language.
    page = page_client(leads["sales2"].client.application, "sales2")
    assert "已回到 销售部 的队列" in page.get("/notifications").get_data(as_text=True)
    assert "back in Sales&#39;s queue" in page.get("/notifications?lang=en").get_data(as_text=True)
