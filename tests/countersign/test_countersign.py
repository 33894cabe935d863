"""会签 / 或签 from the model: a multi-instance user task gives each named person a task of
their own; with all (会签) the stage ends when everyone has signed, with any (或签, a
completion condition) when the first one has, and the others' tasks are withdrawn."""
from __future__ import annotations

import pytest

from tests.fixtures.diagrams import sequence, user_task
from tests.support import new_model


def _signers(condition: str | None) -> str:
    """A parallel multi-instance approval over the start data's ``approvers``, each assigned by name."""
    completion = f"<bpmn:completionCondition>{condition}</bpmn:completionCondition>" if condition else ""
    task = user_task("approve", "sales", extra='<spiffworkflow:property name="assignee" value="${approver}"/>')
    return task.replace("</bpmn:userTask>", (
        '<bpmn:multiInstanceLoopCharacteristics isSequential="false">'
        "<bpmn:loopDataInputRef>approvers</bpmn:loopDataInputRef>"
        "<bpmn:loopDataOutputRef>decisions</bpmn:loopDataOutputRef>"
        '<bpmn:inputDataItem id="approver" name="approver"/>'
        '<bpmn:outputDataItem id="decision" name="decision"/>'
        f"{completion}</bpmn:multiInstanceLoopCharacteristics></bpmn:userTask>"))


def _start(people, model_id: str) -> str:
    started = people["sales"].post("/api/v1/process-instances", json={
        "process_model_id": model_id, "account_id": "ACME", "data": {"approvers": ["sales", "sales2"]}})
    assert started.status_code == 201, started.get_json()
    return started.get_json()["id"]


def _open(people, iid: str) -> list[dict]:
    instance = people["admin"].get(f"/api/v1/process-instances/{iid}").get_json()
    return [t for t in instance["tasks"] if t["state"] in ("ready", "claimed")]


def _sign(caller, task_id: str) -> None:
    done = caller.post(f"/api/v1/tasks/{task_id}/complete", json={"data": {"decision": "ok"}})
    assert done.status_code == 200, done.get_json()


def _upload(people, synced_app, model_id: str, condition: str | None) -> None:
    new_model(synced_app, model_id)
    xml = sequence(model_id.replace("-", "_"), _signers(condition), user_task("archive", "sales"))
    response = people["owner"].post(f"/api/v1/process-models/{model_id}/versions", data=xml,
                                    headers={"Content-Type": "application/xml"})
    assert response.status_code == 201, response.get_json()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_countersign_needs_everyone(people, synced_app) -> None:
    _upload(people, synced_app, "all-sign", None)
    iid = _start(people, "all-sign")
    tasks = _open(people, iid)
    assert sorted(t["assignee"] for t in tasks) == ["sales", "sales2"]
    mine = next(t for t in tasks if t["assignee"] == "sales")
    theirs = next(t for t in tasks if t["assignee"] == "sales2")
    assert people["sales"].post(f"/api/v1/tasks/{theirs['id']}/complete", json={"data": {}}).status_code in (403, 409)
    _sign(people["sales"], mine["id"])
    assert [t["name"] for t in _open(people, iid)] == ["approve"]  # still waits for sales2
    _sign(people["sales2"], theirs["id"])
    assert [t["name"] for t in _open(people, iid)] == ["archive"]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_or_sign_ends_with_the_first_and_withdraws_the_others(people, synced_app) -> None:
    _upload(people, synced_app, "any-sign", "decision == 'ok'")
    iid = _start(people, "any-sign")
    tasks = _open(people, iid)
    assert sorted(t["assignee"] for t in tasks) == ["sales", "sales2"]
    _sign(people["sales2"], next(t for t in tasks if t["assignee"] == "sales2")["id"])
    assert [t["name"] for t in _open(people, iid)] == ["archive"]
    other = next(t for t in tasks if t["assignee"] == "sales")
    late = people["sales"].post(f"/api/v1/tasks/{other['id']}/complete", json={"data": {"decision": "ok"}})
    assert late.status_code == 409  # withdrawn: nothing left to sign
