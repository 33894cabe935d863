"""Each person hears of a breach once, however many of the ladder's targets they are."""
from __future__ import annotations

from collections import Counter

from tests.api.flows import start_project
from tests.support import move_clock

SIGNED = "2026-03-02T09:00:00+08:00"


def _breach_notices(caller) -> Counter:
    items = caller.get("/api/v1/notifications", query_string={"per_page": 100}).get_json()["items"]
    return Counter(n["task_id"] for n in items if n["kind"] == "sla_breach")


def test_the_department_lead_gets_one_breach_notice_for_an_unclaimed_stage(leads):
    # Nobody claimed kickoff, so "assignee" is all of sales, the lead (sales2) among
    # them, and the standard ladder names the department lead again on breach.
    people = leads
    task = start_project(people["sales"], account_id="GAMMA", signed_at=SIGNED)["tasks"][0]
    move_clock(people["admin"], "2026-03-04T10:00:00+08:00")  # past Tuesday 18:00, before level 3
    assert _breach_notices(people["sales2"]) == Counter({task["id"]: 1})
    assert _breach_notices(people["sales"]) == Counter({task["id"]: 1})


def test_a_lead_who_holds_the_stage_is_told_once(leads):
    people = leads
    task = start_project(people["sales"], account_id="ACME", signed_at=SIGNED)["tasks"][0]
    assert people["sales2"].post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    move_clock(people["admin"], "2026-03-02T19:00:00+08:00")  # strategic: due Monday 18:00
    assert _breach_notices(people["sales2"]) == Counter({task["id"]: 1})
