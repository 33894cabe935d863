"""Claiming and completing a stage when one may not: the status, the code for programs and the
message a person reads (who holds the stage, which department it belongs to)."""
from __future__ import annotations

from tests.api.flows import STAGE_DATA, open_task, start_project
from tests.conftest import Caller


def refusal(response, status: int) -> dict:
    assert response.status_code == status, response.get_json()
    return response.get_json()["error"]


def claim(caller: Caller, task_id: str):
    return caller.post(f"/api/v1/tasks/{task_id}/claim")


def complete(caller: Caller, task_id: str, data=None):
    return caller.post(f"/api/v1/tasks/{task_id}/complete",
                       json={"data": STAGE_DATA["kickoff"] if data is None else data})


def test_a_claimed_stage_names_its_holder_to_everyone_else(people):
    task = open_task(people["sales"], start_project(people["sales"])["id"], "kickoff")["id"]
    assert claim(people["sales"], task).status_code == 200
    for attempt in (claim(people["sales2"], task), complete(people["sales2"], task)):
        assert refusal(attempt, 409) == {"code": "claimed_by_other", "message": f"task {task} is claimed by sales"}
    assert refusal(claim(people["sales"], task), 409) == {
        "code": "already_claimed", "message": f"you have already claimed task {task}"}
    assert people["sales"].get(f"/api/v1/tasks/{task}").get_json()["assignee"] == "sales"


def test_another_department_and_non_staff_are_told_why_they_may_not_act(people):
    task = open_task(people["sales"], start_project(people["sales"])["id"], "kickoff")["id"]
    assert refusal(claim(people["consulting"], task), 403) == {
        "code": "not_your_department",
        "message": f"task {task} belongs to department 'sales', not yours ('consulting')"}
    # Completing first asks whether the caller may even see the stage (the same 403 as reading it).
    assert refusal(complete(people["consulting"], task), 403) == {
        "code": "not_your_department", "message": f"task {task} belongs to department 'sales'"}
    for attempt in (claim(people["owner"], task), complete(people["owner"], task)):
        assert refusal(attempt, 403) == {"code": "role_required", "message": "this needs one of the roles: staff"}
    assert people["sales"].get(f"/api/v1/tasks/{task}").get_json()["state"] == "ready"


def test_a_completed_or_cancelled_stage_says_so(people):
    instance = start_project(people["sales"])["id"]
    task = open_task(people["sales"], instance, "kickoff")["id"]
    assert complete(people["sales"], task).status_code == 200  # a ready stage: claimed on completion
    for attempt in (claim(people["sales"], task), complete(people["sales"], task)):
        assert refusal(attempt, 409) == {"code": "already_completed", "message": f"task {task} is already completed"}

    other = open_task(people["sales"], start_project(people["sales"], account_id="GAMMA")["id"], "kickoff")["id"]
    cancelled = people["owner"].post(f"/api/v1/process-instances/{_instance_of(people, other)}/cancel",
                                     json={"reason": "contract withdrawn"})
    assert cancelled.status_code == 200, cancelled.get_json()
    for attempt in (claim(people["sales"], other), complete(people["sales"], other)):
        assert refusal(attempt, 409) == {"code": "task_cancelled", "message": f"task {other} was cancelled"}


def test_an_unknown_stage_is_named_in_the_404(people):
    for attempt in (claim(people["sales"], "no-such-task"), complete(people["sales"], "no-such-task")):
        assert refusal(attempt, 404) == {"code": "unknown_task", "message": "task 'no-such-task' does not exist"}


def _instance_of(people, task_id: str) -> str:
    return people["sales"].get(f"/api/v1/tasks/{task_id}").get_json()["process_instance_id"]
