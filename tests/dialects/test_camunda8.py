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


SUBSCRIBED = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="http://example.com/z">
  <bpmn:message id="paid" name="order-paid">
    <bpmn:extensionElements><zeebe:subscription correlationKey="=orderId"/></bpmn:extensionElements>
  </bpmn:message>
  <bpmn:process id="orders" isExecutable="true">
    <bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:intermediateCatchEvent id="wait_paid"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:messageEventDefinition id="md" messageRef="paid"/></bpmn:intermediateCatchEvent>
    <bpmn:userTask id="ship"><bpmn:extensionElements><zeebe:assignmentDefinition candidateGroups="sales"/>
      </bpmn:extensionElements><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="e"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="wait_paid"/>
    <bpmn:sequenceFlow id="f2" sourceRef="wait_paid" targetRef="ship"/>
    <bpmn:sequenceFlow id="f3" sourceRef="ship" targetRef="e"/>
  </bpmn:process>
</bpmn:definitions>"""


def test_a_zeebe_subscription_correlates_the_message_to_the_instance_with_that_key(synced_app, people, backend):
    new_model(synced_app, "orders")
    response = upload(people["owner"], "orders", SUBSCRIBED)
    assert response.status_code == 201, response.get_json()
    first, second = (people["sales"].post("/api/v1/process-instances", json={
        "process_model_id": "orders", "account_id": "ACME", "data": {"orderId": key}}).get_json()["id"]
        for key in ("A-1", "B-2"))
    delivered = people["erp"].post("/api/v1/messages", json={
        "name": "order-paid", "correlation": {"orderId": "B-2"}, "payload": {"paid": 100}, "message_id": "m-1"})
    assert delivered.status_code in (200, 202), delivered.get_json()
    moved = people["sales"].get(f"/api/v1/process-instances/{second}").get_json()
    waiting = people["sales"].get(f"/api/v1/process-instances/{first}").get_json()
    assert [t["name"] for t in moved["tasks"] if t["state"] == "ready"] == ["ship"]
    assert not [t for t in waiting["tasks"] if t["state"] == "ready"]  # A-1 still waits for its payment
    nobody = people["erp"].post("/api/v1/messages", json={
        "name": "order-paid", "correlation": {"orderId": "Z-9"}, "payload": {}, "message_id": "m-2"})
    assert nobody.status_code == 404


def test_a_zeebe_subscription_key_that_is_not_one_variable_is_refused(synced_app, people):
    new_model(synced_app, "orders")
    xml = SUBSCRIBED.replace(b'correlationKey="=orderId"', b'correlationKey="=order.id + 1"')
    response = upload(people["owner"], "orders", xml)
    assert response.status_code == 422
    problems = response.get_json()["error"]["details"]["problems"]
    assert problems[0]["element_id"] == "paid" and "must name one variable" in problems[0]["message"]
