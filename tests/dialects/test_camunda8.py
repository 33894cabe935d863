"""A Camunda 8 (zeebe) diagram uploaded and run over the API: FEEL script and condition,
zeebe:assignmentDefinition candidate groups (resolved by department name) and assignee,
input/output mappings and properties."""
from __future__ import annotations

from pathlib import Path

from tests.dialects.test_camunda7 import open_task, upload
from tests.support import new_model

DIAGRAM = (Path(__file__).parent.parent / "fixtures" / "dialects" / "camunda8_approval.bpmn").read_bytes()


def _start(people, data: dict) -> str:
    response = people["sales"].post("/api/v1/process-instances", json={
        "process_model_id": "purchase", "account_id": "ACME", "data": data})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def test_camunda8_large_purchase_goes_to_finance_then_to_the_assignee(synced_app, people, backend):
    new_model(synced_app, "purchase")
    response = upload(people["owner"], "purchase", DIAGRAM)
    assert response.status_code == 201, response.get_json()
    iid = _start(people, {"quantity": 30, "unit_price": 50, "urgent": False})

    approve = open_task(people["finance"], "approve")  # candidateGroups="Finance" -> department finance
    assert approve["department"] == "finance" and approve["state"] == "ready"
    assert people["finance"].post(f"/api/v1/tasks/{approve['id']}/claim").status_code == 200
    assert people["finance"].post(f"/api/v1/tasks/{approve['id']}/complete", json={"data": {}}).status_code == 200

    order = open_task(people["sales"], "order")
    assert order["assignee"] == "sales" and order["department"] == "sales"
    assert people["sales"].post(f"/api/v1/tasks/{order['id']}/complete", json={"data": {}}).status_code == 200
    instance = people["sales"].get(f"/api/v1/process-instances/{iid}").get_json()
    assert instance["state"] == "completed"
    assert instance["data"]["amount"] == 1500
    assert instance["data"]["requested_amount"] == 1500 and instance["data"]["reviewed"] is True


def test_camunda8_small_or_urgent_purchase_skips_the_approval(synced_app, people, backend):
    new_model(synced_app, "purchase")
    assert upload(people["owner"], "purchase", DIAGRAM).status_code == 201
    iid = _start(people, {"quantity": 30, "unit_price": 50, "urgent": True})
    order = open_task(people["sales"], "order")
    assert people["sales"].post(f"/api/v1/tasks/{order['id']}/complete", json={"data": {}}).status_code == 200
    assert people["sales"].get(f"/api/v1/process-instances/{iid}").get_json()["state"] == "completed"
    assert people["finance"].get("/api/v1/tasks").get_json()["items"] == []
