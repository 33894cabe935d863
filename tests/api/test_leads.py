"""Department leads through the API: reassign (one or many, with a reason, all
or nothing), the breach forecast grouped by account, and out-of-office
substitutes that catch an absent person's new tasks - also from escalations."""
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


def test_substitute_takes_new_tasks_for_the_period_and_escalations_respect_it(leads):
    people = leads
    # The lead herself is away; 'sales' stands in for her.
    body = {"user": "sales2", "substitute": "sales", "from": "2026-03-04", "until": "2026-03-06", "reason": "leave"}
    response = people["sales2"].post("/api/v1/substitutes", json=body)
    assert response.status_code == 201, response.get_json()
    assert people["sales2"].post("/api/v1/substitutes", json=body).status_code == 409  # overlapping
    assert people["sales"].post("/api/v1/substitutes", json={**body, "from": "2026-04-01", "until": "2026-04-02"}
                                ).status_code == 403  # only the lead
    response = people["sales2"].post("/api/v1/substitutes", json={**body, "from": "2026-04-02", "until": "2026-04-01"})
    assert response.status_code == 422
    assert [s["substitute"] for s in people["sales"].get("/api/v1/substitutes").get_json()["items"]] == ["sales"]

    [task_id] = _kickoffs(people, "GAMMA")  # standard: due Tuesday 18:00
    people["sales2"].post(f"/api/v1/tasks/{task_id}/claim")  # the lead claims it herself: hers
    assert people["sales"].get(f"/api/v1/tasks/{task_id}").get_json()["assignee"] == "sales2"
    people["sales2"].post("/api/v1/tasks/reassign", json={"task_ids": [task_id], "to": None, "reason": "queue"})
    people["sales"].post(f"/api/v1/tasks/{task_id}/claim")
    # Breached Tuesday 18:00; a working day later the ladder reassigns to the lead - who is away by then.
    move_clock(people["admin"], "2026-03-05T09:30:00+08:00")
    detail = people["sales"].get(f"/api/v1/tasks/{task_id}").get_json()
    assert detail["assignee"] == "sales" and detail["state"] == "claimed"
    [event] = _audit(people, "task.substitute")
    assert event["details"] == {"absent": "sales2", "substitute": "sales"} and event["object_id"] == task_id
    # The breach log names who really received the task, not the absent lead the rule named.
    [breach] = people["auditor"].get("/api/v1/sla/breaches").get_json()["items"]
    actions = [a for e in breach["escalations"] for a in e["actions"] if a.startswith("reassigned")]
    assert actions == ["reassigned to sales (standing in for sales2, who is away)"]


def test_before_and_after_the_period_nobody_stands_in(leads):
    people = leads
    people["sales2"].post("/api/v1/substitutes", json={"user": "sales", "substitute": "sales2",
                                                       "from": "2026-03-03", "until": "2026-03-03"})
    [a, b] = _kickoffs(people, "ACME", "BETA")
    moved = people["sales2"].post("/api/v1/tasks/reassign", json={"task_ids": [a], "to": "sales", "reason": "r"})
    assert moved.get_json()["items"][0]["assignee"] == "sales"  # Monday: not away yet
    move_clock(people["admin"], "2026-03-03T10:00:00+08:00")
    moved = people["sales2"].post("/api/v1/tasks/reassign", json={"task_ids": [b], "to": "sales", "reason": "r"})
    assert moved.get_json()["items"][0]["assignee"] == "sales2"  # Tuesday: away
    [sub] = people["sales2"].get("/api/v1/substitutes").get_json()["items"]
    lead = people["sales2"]
    response = lead.client.delete(f"/api/v1/substitutes/{sub['id']}", headers={"Authorization": f"Bearer {lead.token}"})
    assert response.status_code == 204
    moved = people["sales2"].post("/api/v1/tasks/reassign", json={"task_ids": [b], "to": "sales", "reason": "back"})
    assert moved.get_json()["items"][0]["assignee"] == "sales"
