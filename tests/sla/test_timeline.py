"""A stage's and an instance's SLA timeline over the API: every clock event in order, with who
and why (ready, clock started with its length and due moment, claimed, paused, resumed with the
moved due moment, warning, breach, each escalation rung, completed)."""
from __future__ import annotations

from tests.api.flows import do_stage, open_task, start_project
from tests.support import move_clock


def _kinds(events: list[dict], stage: str) -> list[str]:
    return [e["kind"] for e in events if e["stage"] == stage]


def test_the_instance_timeline_tells_each_stage_clock_in_order(people) -> None:
    instance = start_project(people["sales"], "ACME")  # Mon 2 Mar 09:00; strategic account
    do_stage(people, instance["id"], "kickoff")
    move_clock(people["admin"], "2026-03-06T10:00:00+08:00")  # needs research (due Thu 09:00) breaches
    do_stage(people, instance["id"], "needs_research")
    signoff = open_task(people["sales"], instance["id"], "solution_signoff")
    assert people["sales"].post(f"/api/v1/tasks/{signoff['id']}/claim").status_code == 200
    paused = people["sales"].post(f"/api/v1/tasks/{signoff['id']}/sla/pause", json={"reason": "客户内部审批中"})
    assert paused.status_code == 200, paused.get_json()
    move_clock(people["admin"], "2026-03-09T10:00:00+08:00")  # Monday: one working day paused
    resumed = people["sales"].post(f"/api/v1/tasks/{signoff['id']}/sla/resume", json={})
    assert resumed.status_code == 200, resumed.get_json()

    response = people["auditor"].get(f"/api/v1/process-instances/{instance['id']}/timeline")
    assert response.status_code == 200, response.get_json()
    events = response.get_json()["events"]
    assert events[0]["kind"] == "started" and events[0]["actor"] == "sales"
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    assert _kinds(events, "Project kickoff") == ["ready", "clock_started", "claimed", "completed"]
    research = [e for e in events if e["stage"] == "Needs research"]
    assert [e["kind"] for e in research] == ["ready", "clock_started", "warning", "breach", "escalation",
                                             "escalation", "claimed", "completed"]
    started, breach = research[1], research[3]
    assert started["length"] == "3 working days" and started["due_at"] == "2026-03-04T10:00:00+00:00"
    assert breach["due_at"] == started["due_at"] and breach["at"] == started["due_at"]  # breached at its due moment
    rungs = [e for e in research if e["kind"] == "escalation"]
    assert [r["level"] for r in rungs] == sorted(r["level"] for r in rungs) and all(r["actions"] for r in rungs)
    assert research[-1]["actor"] == "consulting"

    signoff_events = [e for e in events if e["stage"] == "Solution sign-off"]
    assert [e["kind"] for e in signoff_events] == ["ready", "clock_started", "claimed", "pause", "resume"]
    pause, resume = signoff_events[3], signoff_events[4]
    assert pause["actor"] == "sales" and pause["reason"] == "客户内部审批中"
    # Due Tue 10 Mar 10:00 when it started; one working day paused moves it to Wed 11 Mar.
    assert signoff_events[1]["due_at"] == "2026-03-10T02:00:00+00:00"
    assert resume["due_at"] == "2026-03-11T02:00:00+00:00"

    # The stage's own timeline is the same events, and only them.
    own = people["sales"].get(f"/api/v1/tasks/{signoff['id']}/timeline")
    assert own.status_code == 200, own.get_json()
    assert own.get_json()["events"] == signoff_events


def test_a_timeline_is_shown_only_to_who_may_see_the_stage(people) -> None:
    instance = start_project(people["sales"], "ACME")
    kickoff = open_task(people["sales"], instance["id"], "kickoff")
    assert people["it"].get(f"/api/v1/tasks/{kickoff['id']}/timeline").status_code == 403
    assert people["sales"].get("/api/v1/tasks/no-such-task/timeline").status_code == 404
    assert people["sales"].get("/api/v1/process-instances/no-such/timeline").status_code == 404
