"""A Camunda 7 approval diagram, as drawn in Camunda Modeler, uploaded and run over the API.

Lanes and candidate groups route to existing departments, assignees (including
``${initiator}``) claim the task for that person, ``camunda:formData`` becomes
the task's form, the ``PT4H`` reminder fires on the test clock, and the
``${amount > 1000 && ...}`` gateway picks the finance approval.
"""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tests.support import move_clock, new_model

DIAGRAM = (Path(__file__).parent.parent / "fixtures" / "dialects" / "camunda7_approval.bpmn").read_bytes()


def upload(caller, model_id: str, xml: bytes):
    return caller.post(f"/api/v1/process-models/{model_id}/versions", data=xml,
                       headers={"Content-Type": "application/xml"})


def problems_of(response) -> list[dict]:
    assert response.status_code == 422, response.get_json()
    return response.get_json()["error"]["details"]["problems"]


def open_task(caller, name: str) -> dict:
    items = [t for t in caller.get("/api/v1/tasks").get_json()["items"] if t["name"] == name]
    assert len(items) == 1, items
    return caller.get(f"/api/v1/tasks/{items[0]['id']}").get_json()


def test_camunda7_approval_runs_end_to_end(synced_app, people, backend):
    new_model(synced_app, "discount")
    assert upload(people["owner"], "discount", DIAGRAM).status_code == 201

    # The start form comes from the start event's formData: required fields are enforced.
    bad = people["sales"].post("/api/v1/process-instances", json={
        "process_model_id": "discount", "account_id": "ACME", "data": {"customer": "ACME"}})
    assert bad.status_code == 422 and "amount" in str(bad.get_json())
    instance = people["sales"].post("/api/v1/process-instances", json={
        "process_model_id": "discount", "account_id": "ACME", "data": {"customer": "ACME", "amount": 5000}})
    assert instance.status_code == 201, instance.get_json()
    iid = instance.get_json()["id"]

    # Lane "Sales" / candidateGroups "sales": in the sales department's inbox, with the formData form.
    review = open_task(people["sales"], "review")
    assert review["department"] == "sales"
    form = review["form"]
    assert form["required"] == ["decision"]
    assert form["properties"]["decision"]["enum"] == ["approve", "reject"]
    assert form["properties"]["decision"]["title"] == "Decision"

    # The non-interrupting PT4H reminder fires after four hours and the review stays open.
    now = synced_app.extensions["bpm"].clock.now()
    move_clock(people["admin"], now + timedelta(hours=4, minutes=1))
    data = people["sales"].get(f"/api/v1/process-instances/{iid}").get_json()
    assert data["state"] == "running", data
    assert data["data"].get("reminded") is True

    bad = people["sales"].post(f"/api/v1/tasks/{review['id']}/complete", json={"data": {"decision": "maybe"}})
    assert bad.status_code == 422
    done = people["sales"].post(f"/api/v1/tasks/{review['id']}/complete", json={"data": {"decision": "approve"}})
    assert done.status_code == 200, done.get_json()
    assert people["sales"].get(f"/api/v1/process-instances/{iid}").get_json()["data"]["review_round"] == "1"

    # ${amount > 1000 && decision == 'approve'}: finance approves; camunda:assignee="finance" claims it for them.
    approval = open_task(people["finance"], "finance_approval")
    assert approval["state"] == "claimed" and approval["assignee"] == "finance"
    assert approval["department"] == "finance"
    assert people["finance"].post(f"/api/v1/tasks/{approval['id']}/complete", json={"data": {}}).status_code == 200

    # ${initiator}: the person who started the instance tells the customer.
    notify = open_task(people["sales"], "notify_requester")
    assert notify["assignee"] == "sales"
    assert people["sales"].post(f"/api/v1/tasks/{notify['id']}/complete", json={"data": {}}).status_code == 200
    assert people["sales"].get(f"/api/v1/process-instances/{iid}").get_json()["state"] == "completed"


def test_small_amount_skips_finance(synced_app, people, backend):
    new_model(synced_app, "discount")
    assert upload(people["owner"], "discount", DIAGRAM).status_code == 201
    iid = people["sales2"].post("/api/v1/process-instances", json={
        "process_model_id": "discount", "account_id": "ACME",
        "data": {"customer": "ACME", "amount": 300}}).get_json()["id"]
    review = open_task(people["sales"], "review")
    people["sales"].post(f"/api/v1/tasks/{review['id']}/complete", json={"data": {"decision": "approve"}})
    notify = open_task(people["sales2"], "notify_requester")
    assert notify["assignee"] == "sales2"
    people["sales2"].post(f"/api/v1/tasks/{notify['id']}/complete", json={"data": {}})
    assert people["sales"].get(f"/api/v1/process-instances/{iid}").get_json()["state"] == "completed"
