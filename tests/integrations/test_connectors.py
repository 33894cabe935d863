"""Service tasks through the generic HTTP connector, against a real HTTP server on
loopback: systems declared in a connectors file with their authentication (secrets
from BPM_CONNECTOR_* variables), calls through the outbound path (idempotency key,
retries, incident), spiff-arena's http/GetRequest; undeclared systems refused at upload."""
from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bpm_server.config import Config
from tests.fixtures.diagrams import sequence, user_task
from tests.integrations.conftest import BACKOFF, pump
from tests.integrations.fakes import HttpFake

TOKEN = "crm-token-123"
PASSWORD = "ledger-password"


@pytest.fixture
def crm() -> Iterator[HttpFake]:
    fake = HttpFake(ok_body=lambda n: {"ticket_id": f"T-{n}"}).start()
    yield fake
    fake.stop()


@pytest.fixture
def config(config: Config, crm: HttpFake, tmp_path: Path) -> Config:
    path = tmp_path / "connectors.json"
    path.write_text(json.dumps({"systems": {
        "crm": {"base_url": crm.url + "/api", "timeout_seconds": 2, "headers": {"X-Tenant": "bpm"},
                "auth": {"type": "bearer", "token_env": "BPM_CONNECTOR_CRM_TOKEN"},
                "operations": {"create_ticket": {"method": "POST", "path": "/tickets"}}},
        "ledger": {"base_url": crm.url + "/ledger",
                   "auth": {"type": "basic", "username": "bpm", "password_env": "BPM_CONNECTOR_LEDGER_PW"}}}}))
    return config.but(connectors_file=path, connector_secrets={"BPM_CONNECTOR_CRM_TOKEN": TOKEN,
                                                               "BPM_CONNECTOR_LEDGER_PW": PASSWORD})


def service_task(operation: str, params: dict[str, str], result: str = "answer") -> str:
    inner = "".join(f'<spiffworkflow:parameter id="{k}" type="any" value="{v}"/>' for k, v in params.items())
    return (f'<bpmn:serviceTask id="call_out" name="Call out"><bpmn:extensionElements>'
            f'<spiffworkflow:serviceTaskOperator id="{operation}" resultVariable="{result}">'
            f'<spiffworkflow:parameters>{inner}</spiffworkflow:parameters></spiffworkflow:serviceTaskOperator>'
            f'</bpmn:extensionElements></bpmn:serviceTask>')


def create(people, task: str, model_id: str = "calls"):
    xml = sequence("calls", task, user_task("review", "sales")).decode()
    return people["owner"].post("/api/v1/process-models", json={"id": model_id, "name": "Calls",
                                                               "files": {"calls.bpmn": xml}})


def start(people) -> str:
    response = people["sales"].post("/api/v1/process-instances", json={
        "process_model_id": "calls", "account_id": "ACME", "data": {"subject": "kickoff"}})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def instance(people, iid) -> dict:
    return people["admin"].get(f"/api/v1/process-instances/{iid}").get_json()


def review_data(people, iid) -> dict:
    task = instance(people, iid)["tasks"][0]
    return people["sales"].get(f"/api/v1/tasks/{task['id']}").get_json()["data"]


def test_a_declared_operation_is_called_with_its_auth_and_retried_with_one_key(people, synced_app, crm,
                                                                               clock) -> None:
    assert create(people, service_task("crm.create_ticket", {"subject": "subject"})).status_code == 201
    iid = start(people)
    crm.fail(1)
    pump(synced_app)  # attempt 1: 500
    assert instance(people, iid)["tasks"] == []
    clock.set(clock.now() + BACKOFF)
    pump(synced_app)  # attempt 2: ok
    assert len(crm.requests) == 2
    for request in crm.requests:
        assert request.method == "POST" and request.path == "/api/tickets"
        assert request.headers["Authorization"] == f"Bearer {TOKEN}" and request.headers["X-Tenant"] == "bpm"
        assert request.json["subject"] == "kickoff" and request.json["process_instance_id"] == iid
    assert len({r.headers["Idempotency-Key"] for r in crm.requests}) == 1
    assert review_data(people, iid)["answer"] == {"http_status": 200, "body": {"ticket_id": "T-2"}}  # the 2nd request


def test_spiff_arena_http_get_request_goes_to_the_system_owning_the_url(people, synced_app, crm) -> None:
    url = f"'{crm.url}/ledger/accounts/' + account_id"
    task = service_task("http/GetRequest", {"url": url, "params": "{'view': 'short'}"})
    assert create(people, task).status_code == 201, create(people, task, "again").get_json()
    iid = start(people)
    pump(synced_app)
    request = crm.requests[-1]
    assert request.method == "GET" and request.path == "/ledger/accounts/ACME" and request.query == {"view": ["short"]}
    expected = base64.b64encode(f"bpm:{PASSWORD}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    assert review_data(people, iid)["answer"]["http_status"] == 200


def test_the_last_failed_attempt_opens_an_incident(people, synced_app, crm, clock) -> None:
    assert create(people, service_task("crm.create_ticket", {"subject": "subject"})).status_code == 201
    iid = start(people)
    crm.fail(3)
    for _ in range(3):
        pump(synced_app)
        clock.set(clock.now() + BACKOFF * 4)
    state = instance(people, iid)
    assert state["tasks"] == [] and len(crm.requests) == 3
    incidents = people["admin"].get("/api/v1/incidents").get_json()
    assert [(i["system"], i["operation"]) for i in incidents["items"]] == [("crm", "create_ticket")]


@pytest.mark.parametrize(("operation", "params", "expected"), [
    ("billing.charge", {}, "system 'billing'"),
    ("crm.delete_everything", {}, "no operation 'delete_everything'"),
    ("http/GetRequest", {"url": "'https://elsewhere.example/x'"}, "under no system"),
    ("http/FetchRequest", {"url": "'x'"}, "unknown HTTP operation"),
])
def test_undeclared_systems_and_operations_are_refused_at_upload(people, operation, params, expected) -> None:
    response = create(people, service_task(operation, params))
    assert response.status_code == 422, response.get_json()
    problems = response.get_json()["error"]["details"]["problems"]
    assert [p["element_id"] for p in problems] == ["call_out"] and expected in problems[0]["message"]
    assert all(m["id"] != "calls" for m in people["owner"].get("/api/v1/process-models").get_json())
