"""Department leads through the API: reassign (one or many, with a reason, all
or nothing) and the breach forecast grouped by account. An absent person's work:
delegations (tests/delegation)."""
from __future__ import annotations

import pytest

from bpm_server.config import Config
from tests.api.flows import do_stage, open_task, start_project
from tests.support import move_clock

SIGNED = "2026-03-02T09:00:00+08:00"


@pytest.fixture
def config(config: Config) -> Config:  # the test clock on, to reach escalations
    return config.but(test_clock=True)


def _kickoffs(people, *accounts: str) -> list[str]:
    return [start_project(people["sales"], account, signed_at=SIGNED)["tasks"][0]["id"] for account in accounts]


def _audit(people, action: str) -> list[dict]:
    return people["auditor"].get(f"/api/v1/audit?action={action}").get_json()["items"]


def test_lead_reassigns_many_tasks_with_a_reason_in_the_audit_trail(leads):
    people = leads
    ids = _kickoffs(people, "ACME", "BETA")
    response = people["sales2"].post("/api/v1/tasks/reassign",
                                     json={"task_ids": ids, "to": "sales", "reason": "Li knows them"})
    assert response.status_code == 200, response.get_json()
    assert [(t["assignee"], t["state"]) for t in response.get_json()["items"]] == [("sales", "claimed")] * 2
    events = _audit(people, "task.reassign")
    assert sorted(e["object_id"] for e in events) == sorted(ids)
    assert all(e["actor"] == "sales2" and e["details"]["reason"] == "Li knows them" for e in events)
    # Back to the department queue.
    response = people["sales2"].post("/api/v1/tasks/reassign", json={"task_ids": ids[:1], "to": None, "reason": "x"})
    assert response.get_json()["items"][0]["state"] == "ready"


def test_reassign_is_all_or_nothing_and_only_for_the_departments_lead(leads):
    people = leads
    instance = start_project(people["sales"], "ACME", signed_at=SIGNED)
    done = do_stage(people, instance["id"], "kickoff")
    [open_id] = _kickoffs(people, "BETA")
    body = {"task_ids": [open_id, done["id"]], "to": "sales", "reason": "balance the load"}
    response = people["sales2"].post("/api/v1/tasks/reassign", json=body)
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "task_closed"
    assert people["sales"].get(f"/api/v1/tasks/{open_id}").get_json()["state"] == "ready"  # nothing moved
    assert _audit(people, "task.reassign") == []

    assert people["sales"].post("/api/v1/tasks/reassign", json={**body, "task_ids": [open_id]}).status_code == 403
    consulting_task = open_task(people["consulting"], instance["id"], "needs_research")["id"]
    response = people["sales2"].post("/api/v1/tasks/reassign", json={**body, "task_ids": [consulting_task]})
    assert response.status_code == 403  # not the consulting lead
    response = people["sales2"].post("/api/v1/tasks/reassign", json={**body, "task_ids": [open_id], "reason": " "})
    assert response.status_code == 422 and "reason" in response.get_json()["error"]["details"]
    response = people["sales2"].post("/api/v1/tasks/reassign", json={**body, "task_ids": [open_id], "to": "auditor"})
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "not_staff"


def test_breach_forecast_groups_by_account_within_n_working_days(leads):
    people = leads
    _kickoffs(people, "ACME", "BETA", "GAMMA")  # due in 1, 2 and 2 working days
    one = people["sales2"].get("/api/v1/tasks/breach-forecast?days=1").get_json()
    assert one["department"] == "sales" and [a["account_id"] for a in one["accounts"]] == ["ACME"]
    two = people["sales2"].get("/api/v1/tasks/breach-forecast?days=2").get_json()
    accounts = [a["account_id"] for a in two["accounts"]]
    assert accounts[0] == "ACME" and sorted(accounts[1:]) == ["BETA", "GAMMA"]  # most urgent account first
    item = two["accounts"][0]["items"][0]
    assert item["sla_state"] == "on_time" and item["working_seconds_left"] == 8 * 3600

    move_clock(people["admin"], "2026-03-03T10:00:00+08:00")
    later = people["sales2"].get("/api/v1/tasks/breach-forecast?days=0").get_json()
    [acme] = later["accounts"]
    assert acme["breached"] == 1 and acme["items"][0]["working_seconds_overdue"] == 3600
    assert people["sales"].get("/api/v1/tasks/breach-forecast").status_code == 403  # not a lead


