"""External tasks as Camunda 7 workers use them, over HTTP: fetch and lock by topic,
complete (the instance moves on), fail with retries (an incident at 0), extend a lock;
an expired lock makes the task fetchable again (test clock)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.fixtures.diagrams import sequence, user_task

EXT = "/api/v1/external-tasks"
CAMUNDA = 'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" '
ZEEBE = 'xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" '


def diagram(service_task: str) -> str:
    xml = sequence("check_then_review", service_task, user_task("review", "sales")).decode()
    return xml.replace("<bpmn:definitions ", "<bpmn:definitions " + CAMUNDA + ZEEBE, 1)


CAMUNDA7 = '<bpmn:serviceTask id="credit" name="Credit check" camunda:type="external" camunda:topic="credit-check"/>'
CAMUNDA8 = ('<bpmn:serviceTask id="credit" name="Credit check"><bpmn:extensionElements>'
            '<zeebe:taskDefinition type="credit-check" retries="3"/></bpmn:extensionElements></bpmn:serviceTask>')
OURS = ('<bpmn:serviceTask id="credit" name="Credit check"><bpmn:extensionElements>'
        '<spiffworkflow:serviceTaskOperator id="external/credit-check"><spiffworkflow:parameters/>'
        '</spiffworkflow:serviceTaskOperator></bpmn:extensionElements></bpmn:serviceTask>')


def create(people, service_task: str = CAMUNDA7, model_id: str = "credit"):
    return people["owner"].post("/api/v1/process-models", json={
        "id": model_id, "name": "Credit", "files": {"credit.bpmn": diagram(service_task)}})


def start(people, model_id: str = "credit", **data) -> str:
    response = people["sales"].post("/api/v1/process-instances", json={
        "process_model_id": model_id, "account_id": "ACME", "data": {"amount": 1200, **data}})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def fetch(caller, worker="w1", lock_ms=60_000, topic="credit-check", max_tasks=5):
    response = caller.post(f"{EXT}/fetch-and-lock", json={"worker_id": worker, "max_tasks": max_tasks,
                                                          "topics": [{"name": topic, "lock_ms": lock_ms}]})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def instance(people, iid) -> dict:
    return people["admin"].get(f"/api/v1/process-instances/{iid}").get_json()


@pytest.mark.parametrize("service_task", [CAMUNDA7, CAMUNDA8, OURS], ids=["camunda7", "zeebe", "ours"])
def test_a_worker_fetches_locks_and_completes_and_the_instance_moves_on(people, service_task) -> None:
    assert create(people, service_task).status_code == 201
    iid = start(people)
    worker = people["erp"]  # an integration token
    assert instance(people, iid)["tasks"] == []

    locked = fetch(worker)
    assert len(locked) == 1
    task = locked[0]
    assert task["topic"] == "credit-check" and task["element_id"] == "credit" and task["worker_id"] == "w1"
    assert task["process_instance_id"] == iid and task["variables"]["amount"] == 1200
    assert fetch(worker, worker="w2") == []  # locked

    done = worker.post(f"{EXT}/{task['id']}/complete", json={
        "worker_id": "w1", "variables": {"score": 700, "rating": {"value": "A", "type": "String"}}})
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["state"] == "completed"
    state = instance(people, iid)
    assert [t["name"] for t in state["tasks"]] == ["review"]
    review = people["sales"].get(f"/api/v1/tasks/{state['tasks'][0]['id']}").get_json()
    assert review["data"]["score"] == 700 and review["data"]["rating"] == "A"
    again = worker.post(f"{EXT}/{task['id']}/complete", json={"worker_id": "w1"})
    assert again.status_code == 409


def test_camunda_style_names_and_bad_input(people) -> None:
    assert create(people).status_code == 201
    start(people)
    worker = people["erp"]
    negative = worker.post(f"{EXT}/fetch-and-lock", json={"worker_id": "w", "topics": [
        {"name": "credit-check", "lock_ms": -5}]})
    assert negative.status_code == 422 and "topics" in negative.get_json()["error"]["details"]
    assert worker.post(f"{EXT}/fetch-and-lock", json={"worker_id": "w", "topics": []}).status_code == 422
    assert worker.post(f"{EXT}/fetch-and-lock", json={"topics": [{"name": "x", "lock_ms": 1}]}).status_code == 422
    assert people["sales"].post(f"{EXT}/fetch-and-lock", json={"worker_id": "w", "topics": [
        {"name": "credit-check", "lock_ms": 1000}]}).status_code == 403

    camunda = worker.post(f"{EXT}/fetch-and-lock", json={"workerId": "cw", "maxTasks": 1, "topics": [
        {"topicName": "credit-check", "lockDuration": 10_000}]})
    assert camunda.status_code == 200 and camunda.get_json()[0]["worker_id"] == "cw"
    task_id = camunda.get_json()[0]["id"]
    stranger = worker.post(f"{EXT}/{task_id}/complete", json={"workerId": "someone-else"})
    assert stranger.status_code == 409 and stranger.get_json()["error"]["code"] == "not_lock_owner"
    assert worker.post(f"{EXT}/nope/complete", json={"worker_id": "cw"}).status_code == 404


def test_an_expired_lock_makes_the_task_fetchable_and_its_old_worker_cannot_complete(people, clock) -> None:
    assert create(people).status_code == 201
    iid = start(people)
    worker = people["erp"]
    task = fetch(worker, worker="slow", lock_ms=30_000)[0]
    clock.set(clock.now() + timedelta(seconds=31))
    late = worker.post(f"{EXT}/{task['id']}/complete", json={"worker_id": "slow"})
    assert late.status_code == 409 and late.get_json()["error"]["code"] == "lock_expired"
    assert instance(people, iid)["tasks"] == []  # nothing moved

    taken = fetch(worker, worker="fast")
    assert [t["id"] for t in taken] == [task["id"]] and taken[0]["worker_id"] == "fast"
    assert worker.post(f"{EXT}/{task['id']}/complete", json={"worker_id": "slow"}).status_code == 409
    # extend-lock keeps it past the first lock's end
    extended = worker.post(f"{EXT}/{task['id']}/extend-lock", json={"worker_id": "fast", "lock_ms": 120_000})
    assert extended.status_code == 200
    clock.set(clock.now() + timedelta(seconds=90))
    assert fetch(worker, worker="third") == []
    assert worker.post(f"{EXT}/{task['id']}/extend-lock", json={"worker_id": "third", "lock_ms": 1}).status_code == 409
    assert worker.post(f"{EXT}/{task['id']}/complete", json={"worker_id": "fast"}).status_code == 200
    assert [t["name"] for t in instance(people, iid)["tasks"]] == ["review"]


def test_failures_retry_after_the_timeout_and_the_last_one_is_an_incident(people, clock) -> None:
    assert create(people).status_code == 201
    start(people)
    worker, admin = people["erp"], people["admin"]
    task = fetch(worker)[0]
    failed = worker.post(f"{EXT}/{task['id']}/failure", json={
        "workerId": "w1", "errorMessage": "credit bureau down", "retries": 1, "retryTimeout": 30_000})
    assert failed.status_code == 200, failed.get_json()
    assert failed.get_json()["retries"] == 1 and failed.get_json()["state"] == "open"
    assert fetch(worker) == []  # not before the retry timeout
    clock.set(clock.now() + timedelta(seconds=30))
    task = fetch(worker)[0]
    last = worker.post(f"{EXT}/{task['id']}/failure", json={"worker_id": "w1", "error_message": "still down",
                                                            "retries": 0})
    assert last.get_json()["state"] == "incident"
    assert fetch(worker) == []
    incidents = admin.get(f"{EXT}?state=incident").get_json()
    assert [t["id"] for t in incidents["items"]] == [task["id"]] and incidents["items"][0]["error_message"] == \
        "still down"
    notes = admin.get("/api/v1/notifications").get_json()
    assert any("credit-check" in n["title"] for n in notes["items"])
    assert admin.post(f"{EXT}/{task['id']}/retries", json={"retries": 2}).status_code == 200
    assert [t["id"] for t in fetch(worker)] == [task["id"]]


def test_a_cancelled_instance_hands_out_no_external_task(people) -> None:
    assert create(people).status_code == 201
    iid = start(people)
    cancelled = people["admin"].post(f"/api/v1/process-instances/{iid}/cancel", json={"reason": "test"})
    assert cancelled.status_code == 200, cancelled.get_json()
    assert fetch(people["erp"]) == []


def test_an_external_task_without_a_topic_is_refused_at_upload(people) -> None:
    response = create(people, CAMUNDA7.replace(' camunda:topic="credit-check"', ""))
    assert response.status_code == 422
    problems = response.get_json()["error"]["details"]["problems"]
    assert problems[0]["element_id"] == "credit" and "camunda:topic" in problems[0]["message"]
    zeebe = create(people, CAMUNDA8.replace('type="credit-check" ', ""), model_id="credit8")
    assert zeebe.status_code == 422 and "zeebe:taskDefinition" in str(zeebe.get_json())
