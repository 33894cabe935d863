"""Who may do what: authentication on every endpoint, department isolation,
and the role matrix (staff, process owner, auditor, integration, admin).
A refused request changes nothing."""
from __future__ import annotations

import re
from datetime import UTC
from typing import Any

import pytest

from bpm_server.config import PROJECT_ROOT
from tests.api.flows import STAGE_DATA, open_task, start_project
from tests.conftest import Caller

GOOD_XML = (PROJECT_ROOT / "process_models" / "account-project" / "account-project.bpmn").read_text("utf-8")
PUBLIC = {"/api/v1/health", "/api/v1/openapi.json"}


# --------------------------------------------------------------------------- helpers


def assert_error(response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:1000])
    error = (response.get_json(silent=True) or {}).get("error")
    assert isinstance(error, dict) and error.get("code") and error.get("message"), response.get_data(as_text=True)
    if code is not None:
        assert error["code"] == code, error
    return error


@pytest.fixture
def project(people) -> dict[str, str]:
    """A running project whose kickoff task is ready in the sales inbox."""
    iid = start_project(people["sales"])["id"]
    return {"instance": iid, "task": open_task(people["sales"], iid, "kickoff")["id"]}


def state_of(people: dict[str, Caller], project: dict[str, str]) -> dict[str, Any]:
    """What a refused request must not change: the task, the instances, the versions."""
    admin = people["admin"]
    task = admin.get(f"/api/v1/tasks/{project['task']}").get_json()
    instance = admin.get(f"/api/v1/process-instances/{project['instance']}").get_json()
    models = admin.get("/api/v1/process-models").get_json()
    return {"task": (task["state"], task["assignee"], task["submitted"]),
            "instance": (instance["state"], [t["id"] for t in instance["tasks"]], instance["history"]),
            "instances": admin.get("/api/v1/process-instances").get_json()["total"],
            "versions": [v["version"] for m in models for v in m["versions"]]}


def new_diagram(label: str) -> bytes:
    return GOOD_XML.replace('name="Invoicing"', f'name="Invoicing ({label})"', 1).encode()


# Every endpoint that needs a caller, with a request that would succeed for the right one.
# Each entry: (label, method, url template, request kwargs).
ENDPOINTS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("me", "get", "/api/v1/me", {}),
    ("get account", "get", "/api/v1/accounts/ACME", {}),
    ("put account", "put", "/api/v1/accounts/ACME", {"json": {"name": "ACME Ltd", "tier": "strategic"}}),
    ("list models", "get", "/api/v1/process-models", {}),
    ("get model", "get", "/api/v1/process-models/account-project", {}),
    ("get bpmn", "get", "/api/v1/process-models/account-project/versions/1/bpmn", {}),
    ("upload", "post", "/api/v1/process-models/account-project/versions",
     {"data": new_diagram("upload"), "content_type": "application/xml"}),
    ("list instances", "get", "/api/v1/process-instances", {}),
    ("start", "post", "/api/v1/process-instances",
     {"json": {"process_model_id": "account-project", "account_id": "BETA",
               "data": {"contract_no": "HT-2", "signed_at": "2026-03-02T09:00:00+08:00"}}}),
    ("get instance", "get", "/api/v1/process-instances/{instance}", {}),
    ("inbox", "get", "/api/v1/tasks", {}),
    ("get task", "get", "/api/v1/tasks/{task}", {}),
    ("claim", "post", "/api/v1/tasks/{task}/claim", {}),
    ("complete", "post", "/api/v1/tasks/{task}/complete", {"json": {"data": STAGE_DATA["kickoff"]}}),
]
ENDPOINT = {label: (method, url, kwargs) for label, method, url, kwargs in ENDPOINTS}


def call(client_or_caller: Any, label: str, project: dict[str, str], **overrides: Any):
    method, url, kwargs = ENDPOINT[label]
    return getattr(client_or_caller, method)(url.format(**project), **{**kwargs, **overrides})


# --------------------------------------------------------------------------- authentication

BAD_HEADERS = {
    "no_header": {},
    "unknown_token": {"Authorization": "Bearer this-is-not-a-token"},
    "basic_scheme": {"Authorization": "Basic xyz"},
    "bearer_without_token": {"Authorization": "Bearer"},
    "bearer_blank_token": {"Authorization": "Bearer    "},
    "token_without_scheme": {"Authorization": "just-a-token"},
}


@pytest.mark.parametrize("headers", list(BAD_HEADERS.values()), ids=list(BAD_HEADERS))
def test_every_protected_endpoint_refuses_a_missing_or_bad_token(synced_app, people, project, headers):
    before = state_of(people, project)
    client = synced_app.test_client()  # no token, no session cookie: only what the case sends
    wrong = {}
    for label, *_ in ENDPOINTS:
        response = call(client, label, project, headers=headers)
        body = response.get_json(silent=True) or {}
        if response.status_code != 401 or not body.get("error", {}).get("code"):
            wrong[label] = (response.status_code, body)
    assert wrong == {}
    assert state_of(people, project) == before


def test_a_real_token_with_another_scheme_is_still_refused(people, project):
    token = people["sales"].token
    for header in (f"Basic {token}", f"Token {token}", token):
        response = call(people["sales"].client, "inbox", project, headers={"Authorization": header})
        assert_error(response, 401)
    assert call(people["sales"].client, "inbox", project,
                headers={"Authorization": f"bearer {token}"}).status_code == 200


@pytest.mark.parametrize("revoke", ["token_revoked", "user_deactivated"])
def test_revoked_token_or_deactivated_user_is_refused(synced_app, people, project, revoke):
    from datetime import datetime

    from sqlalchemy import select

    from bpm_server.database import db
    from bpm_server.identity.models import ApiToken, User

    assert call(people["sales"], "inbox", project).status_code == 200
    with synced_app.app_context():
        user = db.session.scalars(select(User).where(User.username == "sales")).one()
        if revoke == "user_deactivated":
            user.active = False
        else:
            for token in db.session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)):
                token.revoked_at = datetime.now(UTC)
        db.session.commit()
    for label in ("inbox", "get task", "claim", "me"):
        assert_error(call(people["sales"], label, project), 401)
    assert people["sales2"].get(f"/api/v1/tasks/{project['task']}").get_json()["state"] == "ready"


@pytest.mark.parametrize("label, body", [("start", {"json": {"process_model_id": 7}}),
                                         ("complete", {"json": {"data": "not an object"}}),
                                         ("put account", {"json": {"tier": "gold"}}),
                                         ("inbox", {"query_string": {"state": "bogus"}})],
                         ids=["start", "complete", "put_account", "inbox_filter"])
def test_unauthenticated_request_with_a_bad_body_is_401_not_validated(people, project, label, body):
    """Authentication comes first: an anonymous caller learns nothing about the expected input."""
    error = assert_error(call(people["sales"].client, label, project, **body), 401)
    assert "details" not in error


def test_every_api_route_in_the_app_needs_authentication(synced_app):
    """Also covers routes added later: only health and the OpenAPI document are public."""
    client = synced_app.test_client()
    wrong = {}
    for rule, method in api_routes(synced_app):
        if rule.rule in PUBLIC:
            continue
        url = re.sub(r"<(?:int:)?(\w+)>", lambda m: "1" if m.group(0).startswith("<int:") else "x", rule.rule)
        response = client.open(url, method=method, json={} if method != "GET" else None)
        if response.status_code != 401:
            wrong[f"{method} {rule.rule}"] = response.status_code
    assert wrong == {}


@pytest.mark.parametrize("path", sorted(PUBLIC))
def test_health_and_openapi_need_no_authentication(synced_app, path):
    response = synced_app.test_client().get(path)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.is_json


def api_routes(app) -> list[tuple[Any, str]]:
    """(rule, method) for every route the app serves under /api/v1, without the OpenAPI UI helpers."""
    return [(rule, method) for rule in app.url_map.iter_rules()
            if rule.rule.startswith("/api/v1/") and not rule.endpoint.startswith("api-docs.")
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]


def test_openapi_document_lists_every_route_of_the_app(synced_app):
    spec = synced_app.test_client().get("/api/v1/openapi.json").get_json()
    documented = {(path, method.upper()) for path, ops in spec["paths"].items()
                  for method in ops if method in {"get", "post", "put", "patch", "delete"}}
    served = {(re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method) for rule, method in api_routes(synced_app)}
    served.discard(("/api/v1/openapi.json", "GET"))
    assert served - documented == set(), "served but not documented"
    assert documented - served == set(), "documented but not served"
    # Bearer auth is documented, and health is documented as public.
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert spec["paths"]["/api/v1/health"]["get"].get("security") == []


# --------------------------------------------------------------------------- /me


@pytest.mark.parametrize("name, department, roles", [
    ("sales", "sales", ["staff"]), ("consulting", "consulting", ["staff"]), ("owner", "pmo", ["process_owner"]),
    ("auditor", "audit", ["auditor"]), ("admin", "it", ["admin"]), ("erp", "erp", ["integration"])])
def test_me_tells_the_caller_who_they_are(people, name, department, roles):
    response = people[name].get("/api/v1/me")
    assert response.status_code == 200
    me = response.get_json()
    assert (me["username"], me["department"], me["roles"]) == (name, department, roles)


# --------------------------------------------------------------------------- departments


def test_staff_cannot_see_or_touch_another_departments_task(people, project):
    consulting, task_url = people["consulting"], f"/api/v1/tasks/{project['task']}"
    before = state_of(people, project)
    assert_error(consulting.get(task_url), 403, "not_your_department")
    assert_error(consulting.post(f"{task_url}/claim"), 403, "not_your_department")
    assert_error(consulting.post(f"{task_url}/complete", json={"data": STAGE_DATA["kickoff"]}), 403,
                 "not_your_department")
    assert consulting.get("/api/v1/tasks").get_json()["total"] == 0
    assert state_of(people, project) == before
    # The owning department can.
    assert people["sales2"].get(task_url).status_code == 200


def test_inbox_shows_only_own_and_department_tasks_in_every_state(people, project):
    task_id = project["task"]
    assert people["sales"].post(f"/api/v1/tasks/{task_id}/claim").status_code == 200
    for other in ("consulting", "it", "finance", "sales2"):
        assert people[other].get("/api/v1/tasks?state=claimed").get_json()["total"] == 0, other
    assert people["sales"].post(f"/api/v1/tasks/{task_id}/complete",
                                json={"data": STAGE_DATA["kickoff"]}).status_code == 200

    def completed(name: str) -> list[str]:
        return [t["id"] for t in people[name].get("/api/v1/tasks?state=completed").get_json()["items"]]

    assert completed("sales") == [task_id]
    assert completed("consulting") == completed("it") == []
    # The next stage is consulting's: sales no longer sees anything open.
    assert people["sales"].get("/api/v1/tasks").get_json()["total"] == 0
    assert [t["name"] for t in people["consulting"].get("/api/v1/tasks").get_json()["items"]] == ["needs_research"]


# --------------------------------------------------------------------------- roles

FORBIDDEN = {
    "auditor": ["claim", "complete", "upload", "start", "put account"],
    "erp": ["inbox", "get task", "claim", "complete", "list instances", "get instance", "start",
            "list models", "get model", "get bpmn", "upload", "get account", "put account"],
    "sales": ["upload"],
    "owner": ["claim", "complete", "inbox"],
}
ALLOWED = {
    "auditor": ["me", "get account", "list models", "get model", "get bpmn", "list instances", "get instance",
                "get task"],
    "owner": ["me", "list models", "get model", "get bpmn", "upload", "list instances", "get instance", "get task",
              "start"],
    "sales": ["me", "inbox", "get task", "claim", "complete", "list instances", "get instance", "start",
              "list models", "put account"],
    "admin": [label for label, *_ in ENDPOINTS],
}


@pytest.mark.parametrize("role", sorted(FORBIDDEN))
def test_roles_are_refused_what_they_may_not_do_and_nothing_changes(people, project, role):
    before = state_of(people, project)
    wrong = {}
    for label in FORBIDDEN[role]:
        response = call(people[role], label, project)
        error = (response.get_json(silent=True) or {}).get("error") or {}
        if response.status_code != 403 or not error.get("code"):
            wrong[label] = (response.status_code, response.get_data(as_text=True)[:300])
    assert wrong == {}
    assert state_of(people, project) == before


@pytest.mark.parametrize("role", sorted(ALLOWED))
def test_roles_can_do_what_they_are_for(people, project, role):
    wrong = {}
    for label in ALLOWED[role]:  # in ENDPOINTS order: claim comes before complete
        response = call(people[role], label, project)
        if response.status_code not in (200, 201):
            wrong[label] = (response.status_code, response.get_data(as_text=True)[:300])
    assert wrong == {}


@pytest.mark.parametrize("role, label, body", [
    ("auditor", "start", {"json": {"account_id": ""}}),
    ("auditor", "complete", {"json": {"data": "not an object"}}),
    ("erp", "inbox", {"query_string": {"per_page": "0"}}),
    ("sales", "upload", {"data": b"<html/>", "content_type": "application/xml"}),
], ids=["auditor_start", "auditor_complete", "erp_inbox", "staff_upload"])
def test_forbidden_caller_gets_403_even_with_bad_input(people, project, role, label, body):
    error = assert_error(call(people[role], label, project, **body), 403)
    assert "details" not in error or "problems" not in str(error["details"])


def test_process_owner_publishes_and_admin_publishes_too(people):
    for name, version in (("owner", 2), ("admin", 3)):
        response = people[name].post("/api/v1/process-models/account-project/versions",
                                     data=new_diagram(name), content_type="application/xml")
        assert response.status_code == 201, response.get_json()
        assert response.get_json()["version"]["version"] == version
        assert response.get_json()["version"]["created_by"] == name


def test_admin_walks_a_task_of_any_department(people, project):
    admin, task_url = people["admin"], f"/api/v1/tasks/{project['task']}"
    assert admin.post(f"{task_url}/claim").get_json()["assignee"] == "admin"
    done = admin.post(f"{task_url}/complete", json={"data": STAGE_DATA["kickoff"]})
    assert done.status_code == 200 and done.get_json()["completed_by"] == "admin"
    instance = people["auditor"].get(f"/api/v1/process-instances/{project['instance']}").get_json()
    assert [h["completed_by"] for h in instance["history"]] == ["admin"]
    assert [t["name"] for t in instance["tasks"]] == ["needs_research"]
