"""Escalation targets that resolve to nobody: flagged when the ladder is saved and
in the health check, and the rung goes to the deployment's fallback instead of
logging "nobody" and doing nothing. In the ``people`` fixture no department has
a lead and no account a sponsor; ``leads`` gives sales a lead."""
from __future__ import annotations

import pytest

from bpm_server.config import Config
from tests.api.flows import open_task, start_project
from tests.support import move_clock

SIGNED = "2026-03-02T09:00:00+08:00"
LADDER = [{"on": "breach", "actions": [{"notify": "department_lead"}]},
          {"on": "breach", "after": "1 working hour", "actions": [{"reassign": "department_lead"}]}]


@pytest.fixture
def config(config: Config) -> Config:  # tests/sla's, with a fallback configured
    return config.but(escalation_fallback="role:admin")


def _kinds(caller, task_id: str) -> list[str]:
    return [n["kind"] for n in caller.get("/api/v1/notifications").get_json()["items"] if n["task_id"] == task_id]


def test_saving_a_ladder_names_the_targets_that_resolve_to_nobody(people) -> None:
    response = people["owner"].put("/api/v1/sla/policies/standard", json={"rules": [
        *LADDER, {"on": "warning", "actions": [{"notify": "executive_sponsor"}, {"notify": "user:sales"}]}]})
    assert response.status_code == 200, response.get_json()
    warnings = response.get_json()["warnings"]
    by_target = {w["target"]: w for w in warnings}
    assert set(by_target) == {"department_lead", "executive_sponsor"}  # user:sales is active: no warning
    assert [w["rule"] for w in warnings if w["target"] == "department_lead"] == [1, 2]
    assert "without an active lead:" in by_target["department_lead"]["problem"]
    assert "sales" in by_target["department_lead"]["problem"]
    assert by_target["executive_sponsor"]["problem"] == "3 account(s) without an active executive sponsor"

    health = people["sales"].get("/api/v1/health").get_json()["checks"]["escalation"]
    assert {(g["policy"], g["target"]) for g in health["gaps"]} >= {("standard", "department_lead")}
    assert "resolve to nobody" in health["warning"] and health["fallback_people"] == ["admin"]


def test_a_rung_whose_target_is_nobody_goes_to_the_fallback(people) -> None:
    assert people["owner"].put("/api/v1/sla/policies/standard", json={"rules": LADDER}).status_code == 200
    iid = start_project(people["sales"], account_id="GAMMA", signed_at=SIGNED)["id"]
    task = open_task(people["sales"], iid, "kickoff")

    move_clock(people["admin"], "2026-03-04T10:00:00+08:00")  # kickoff was due Tue 18:00; sales has no lead
    assert "sla_breach" in _kinds(people["admin"], task["id"])
    [breach] = people["auditor"].get("/api/v1/sla/breaches").get_json()["items"]
    [notify] = breach["escalations"][0]["actions"]
    assert notify == "notify department_lead: nobody (not set), fell back to role:admin: admin"

    move_clock(people["admin"], "2026-03-04T11:30:00+08:00")  # the reassign rung, one working hour later
    moved = people["admin"].get(f"/api/v1/tasks/{task['id']}").get_json()
    assert moved["assignee"] == "admin" and moved["state"] == "claimed"


def test_a_named_fallback_person_and_a_real_lead_win_over_the_default(leads, synced_app) -> None:
    people = leads
    assert people["owner"].put("/api/v1/sla/policies/standard", json={"rules": LADDER}).status_code == 200
    iid = start_project(people["sales"], account_id="GAMMA", signed_at=SIGNED)["id"]
    task = open_task(people["sales"], iid, "kickoff")
    move_clock(people["admin"], "2026-03-04T10:00:00+08:00")
    assert "sla_breach" in _kinds(people["sales2"], task["id"])  # sales has a lead: no fallback
    assert "sla_breach" not in _kinds(people["admin"], task["id"])
    [breach] = people["auditor"].get("/api/v1/sla/breaches").get_json()["items"]
    assert breach["escalations"][0]["actions"] == ["notify department_lead: sales2"]
