"""SLAs end to end through the API, with the test clock standing in for time.

The clock starts on Monday 2026-03-02 09:00 in Shanghai (tests.conftest.START);
working hours are 09:00-12:00 and 13:00-18:00, so one working day is 8 hours.
"""
from __future__ import annotations

from tests.api.flows import STAGE_DATA, do_stage, open_task, start_project
from tests.support import at, move_clock

SIGNED = "2026-03-02T09:00:00+08:00"


def breaches(caller, **filters) -> list[dict]:
    response = caller.get("/api/v1/sla/breaches", query_string=filters)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def notifications(caller) -> list[dict]:
    return caller.get("/api/v1/notifications").get_json()["items"]


def test_kickoff_is_due_two_working_days_after_signing_and_strategic_gets_one(leads):
    people = leads
    standard = start_project(people["sales"], account_id="GAMMA", signed_at=SIGNED)
    strategic = start_project(people["sales"], account_id="ACME", signed_at=SIGNED)
    std_task, strat_task = standard["tasks"][0], strategic["tasks"][0]
    # Mon 09:00 + 16 working hours ends at Tuesday's close, not Wednesday morning.
    assert at(std_task["due_at"]) == at("2026-03-03T18:00:00+08:00")
    assert at(std_task["warn_at"]) == at("2026-03-03T14:48:00+08:00")  # 80% of 16 h = 12 h 48 min
    assert at(strat_task["due_at"]) == at("2026-03-02T18:00:00+08:00")
    # The inbox lists the most urgent first.
    assert [t["account_id"] for t in people["sales"].get("/api/v1/tasks").get_json()["items"]] == ["ACME", "GAMMA"]
    clock = people["sales"].get(f"/api/v1/tasks/{std_task['id']}/sla").get_json()
    assert clock["length"] == "2 working days" and clock["anchor"] == "data:signed_at" and clock["policy"] == "standard"


def test_breach_is_logged_once_and_the_ladder_escalates_while_the_task_stays_open(leads):
    people = leads
    iid = start_project(people["sales"], account_id="GAMMA", signed_at=SIGNED)["id"]
    task = open_task(people["sales"], iid, "kickoff")
    people["sales"].post(f"/api/v1/tasks/{task['id']}/claim")

    move_clock(people["admin"], "2026-03-03T16:00:00+08:00")  # past the warning, before the due time
    assert [n["kind"] for n in notifications(people["sales"])] == ["sla_warning"]
    assert breaches(people["auditor"]) == []

    move_clock(people["admin"], "2026-03-04T10:00:00+08:00")  # an hour past due
    [breach] = breaches(people["auditor"])
    assert breach["task_name"] == "kickoff" and breach["assignee"] == "sales" and breach["department"] == "sales"
    assert at(breach["due_at"]) == at(breach["breached_at"]) == at("2026-03-03T18:00:00+08:00")
    assert breach["account_id"] == "GAMMA" and breach["completed_at"] is None
    assert [e["level"] for e in breach["escalations"]] == [2]
    assert "sla_breach" in [n["kind"] for n in notifications(people["sales2"])]  # the department lead

    # Level 3 fires one working day after the breach: reassigned to the lead, priority raised.
    move_clock(people["admin"], "2026-03-05T09:30:00+08:00")
    [breach] = breaches(people["auditor"])
    assert [e["level"] for e in breach["escalations"]] == [2, 3]
    assert any("reassigned to sales2" in a for a in breach["escalations"][1]["actions"])
    detail = people["sales2"].get(f"/api/v1/tasks/{task['id']}").get_json()
    assert detail["assignee"] == "sales2" and detail["state"] == "claimed"

    # Finally done: a follow-up entry records the late completion; the breach entry is not rewritten.
    people["sales2"].post(f"/api/v1/tasks/{task['id']}/complete", json={"data": STAGE_DATA["kickoff"]})
    [breach] = breaches(people["auditor"])
    assert breach["completed_by"] == "sales2" and breach["completed_at"].startswith("2026-03-05T01:30")
    assert breach["late_working_hours"] == 8.5
    assert people["auditor"].get("/api/v1/sla/breaches/verify").get_json() == {
        "intact": True, "entries": 4, "first_broken_seq": None, "first_broken_id": None, "reason": None}


def test_each_later_rung_of_a_ladder_fires_once_at_its_own_time(leads):
    """Two "after" rungs: the first one's timer must not run the second one's actions early."""
    people = leads
    ladder = [{"on": "warning", "actions": [{"notify": "assignee"}]},
              {"on": "breach", "actions": [{"notify": "assignee"}]},
              {"on": "breach", "after": "1 working hour", "actions": [{"notify": "user:consulting"}]},
              {"on": "breach", "after": "4 working hours", "actions": [{"notify": "user:finance"}]}]
    response = people["owner"].put("/api/v1/sla/policies/standard", json={"rules": ladder})
    assert response.status_code == 200, response.get_json()
    iid = start_project(people["sales"], account_id="GAMMA", signed_at=SIGNED)["id"]
    task = open_task(people["sales"], iid, "kickoff")
    assert people["sales"].post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200

    def breach_kinds(who: str) -> list[str]:
        return [n["kind"] for n in notifications(people[who]) if n["kind"] == "sla_breach"]

    # Breached Tuesday 18:00; rung 3 is due Wednesday 10:00, rung 4 Wednesday 14:00.
    move_clock(people["admin"], "2026-03-04T10:30:00+08:00")
    [breach] = breaches(people["auditor"])
    assert [e["level"] for e in breach["escalations"]] == [2, 3]
    assert breach_kinds("consulting") == ["sla_breach"] and breach_kinds("finance") == []

    move_clock(people["admin"], "2026-03-04T15:00:00+08:00")
    [breach] = breaches(people["auditor"])
    assert [e["level"] for e in breach["escalations"]] == [2, 3, 4]
    assert breach["escalations"][2]["actions"] == ["notify user:finance: finance"]
    assert breach_kinds("consulting") == ["sla_breach"] and breach_kinds("finance") == ["sla_breach"]
    # The auditor reads which rung acted and when it was due, in the log and on the audit trail.
    assert [e["event"] for e in breach["escalations"]] == [
        "breach", "breach + 1 working hour", "breach + 4 working hours"]
    trail = people["auditor"].get("/api/v1/audit", query_string={"object_id": task["id"]}).get_json()["items"]
    rungs = sorted((e["details"]["level"], e["action"], e["actor"], e["object_type"], e["details"]["actions"])
                   for e in trail if e["action"].startswith("sla."))
    assert [r[:4] for r in rungs] == [(level, f"sla.{event}", "system", "task") for level, event in (
        (1, "warning"), (2, "breach"), (3, "breach"), (4, "breach"))]
    assert rungs[3][4] == ["notify user:finance: finance"]


def test_a_rung_naming_a_department_notifies_its_members_when_it_fires(leads):
    """Saved ladders are re-read when a timer fires; a department target must still resolve then."""
    people = leads
    ladder = [{"on": "breach", "actions": [{"notify": "department:it"}]},
              {"on": "breach", "after": "1 working hour", "actions": [{"notify": "department:finance"}]}]
    assert people["owner"].put("/api/v1/sla/policies/standard", json={"rules": ladder}).status_code == 200
    iid = start_project(people["sales"], account_id="GAMMA", signed_at=SIGNED)["id"]
    task = open_task(people["sales"], iid, "kickoff")

    move_clock(people["admin"], "2026-03-04T10:30:00+08:00")  # breached Tue 18:00, the second rung Wed 10:00
    [breach] = breaches(people["auditor"])
    assert [e["level"] for e in breach["escalations"]] == [1, 2]
    [it_notice] = breach["escalations"][0]["actions"]
    assert it_notice.startswith("notify department:it: ")
    assert set(it_notice.split(": ")[1].split(", ")) == {"it", "admin"}
    assert breach["escalations"][1]["actions"] == ["notify department:finance: finance"]
    for who in ("it", "admin", "finance"):
        assert [n["kind"] for n in notifications(people[who]) if n["task_id"] == task["id"]] == ["sla_breach"], who


def test_the_test_clock_fires_timers_in_due_order_each_at_its_own_moment(leads):
    """Timers created later but due earlier fire first, as real time would fire them."""
    people = leads
    gamma = start_project(people["sales"], account_id="GAMMA", signed_at=SIGNED)["tasks"][0]  # due Tue 18:00
    move_clock(people["admin"], "2026-03-02T10:00:00+08:00")
    acme = start_project(people["sales"], account_id="ACME", signed_at=SIGNED)["tasks"][0]  # later, due Mon 18:00
    move_clock(people["admin"], "2026-03-06T10:00:00+08:00")

    logged = sorted(breaches(people["auditor"]), key=lambda b: b["seq"])
    assert [(b["account_id"], at(b["breached_at"])) for b in logged] == [
        ("ACME", at("2026-03-02T18:00:00+08:00")), ("GAMMA", at("2026-03-03T18:00:00+08:00"))]
    for breach in logged:  # logged at the moment it happened, not when a later timer had moved the clock
        assert at(breach["recorded_at"]) == at(breach["breached_at"]), breach
        assert all(at(e["at"]) > at(breach["breached_at"]) for e in breach["escalations"][1:]), breach
    warned = {n["task_id"]: at(n["created_at"]) for n in notifications(people["sales"]) if n["kind"] == "sla_warning"}
    assert warned == {acme["id"]: at(acme["warn_at"]), gamma["id"]: at(gamma["warn_at"])}


def test_level_two_does_not_fire_when_the_task_was_done_in_time(leads):
    people = leads
    iid = start_project(people["sales"], account_id="GAMMA", signed_at=SIGNED)["id"]
    kickoff = open_task(people["sales"], iid, "kickoff")
    move_clock(people["admin"], "2026-03-03T10:00:00+08:00")
    do_stage(people, iid, "kickoff")
    move_clock(people["admin"], "2026-03-20T10:00:00+08:00")
    assert [b["task_name"] for b in breaches(people["auditor"])] == ["needs_research"]  # the next stage, not kickoff
    about_kickoff = [n["kind"] for n in notifications(people["sales"]) if n["task_id"] == kickoff["id"]]
    assert about_kickoff == []  # done before its warning time: never warned, breached or escalated


def test_strategic_breach_reaches_the_executive_sponsor(leads):
    people = leads
    start_project(people["sales"], account_id="ACME", signed_at=SIGNED)
    move_clock(people["admin"], "2026-03-03T09:01:00+08:00")
    assert "sla_breach" in [n["kind"] for n in notifications(people["admin"])]
    [breach] = breaches(people["auditor"], account_id="ACME")
    assert any(a.startswith("notify executive_sponsor: admin") for a in breach["escalations"][0]["actions"])


def test_pausing_while_waiting_on_the_customer_moves_the_due_time(leads):
    people = leads
    iid = start_project(people["sales"], account_id="GAMMA", signed_at=SIGNED)["id"]
    do_stage(people, iid, "kickoff")
    do_stage(people, iid, "needs_research")
    task = open_task(people["sales"], iid, "solution_signoff")
    assert at(task["due_at"]) == at("2026-03-04T18:00:00+08:00")  # 3 working days from Monday 09:00
    people["sales"].post(f"/api/v1/tasks/{task['id']}/claim")

    move_clock(people["admin"], "2026-03-03T09:00:00+08:00")  # one working day used
    paused = people["sales"].post(f"/api/v1/tasks/{task['id']}/sla/pause",
                                  json={"reason": "Waiting for the customer's signature"})
    assert paused.status_code == 200 and paused.get_json()["state"] == "paused"
    move_clock(people["admin"], "2026-03-10T09:00:00+08:00")  # a week of waiting does not count
    assert breaches(people["auditor"]) == []
    resumed = people["sales"].post(f"/api/v1/tasks/{task['id']}/sla/resume", json={"reason": "Signed copy received"})
    assert resumed.status_code == 200
    detail = people["sales"].get(f"/api/v1/tasks/{task['id']}").get_json()
    assert at(detail["due_at"]) == at("2026-03-11T18:00:00+08:00")  # the two working days left
    events = resumed.get_json()["events"]
    assert [(e["kind"], e["actor"]) for e in events] == [("pause", "sales"), ("resume", "sales")]
    assert events[0]["reason"] == "Waiting for the customer's signature"


def test_pause_is_refused_where_the_model_does_not_allow_it_or_the_caller_may_not(leads):
    people = leads
    iid = start_project(people["sales"], account_id="GAMMA", signed_at=SIGNED)["id"]
    kickoff = open_task(people["sales"], iid, "kickoff")
    people["sales"].post(f"/api/v1/tasks/{kickoff['id']}/claim")
    response = people["sales"].post(f"/api/v1/tasks/{kickoff['id']}/sla/pause", json={"reason": "waiting"})
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "not_pausable"
    do_stage(people, iid, "kickoff")
    do_stage(people, iid, "needs_research")
    signoff = open_task(people["sales"], iid, "solution_signoff")
    people["sales"].post(f"/api/v1/tasks/{signoff['id']}/claim")
    response = people["consulting"].post(f"/api/v1/tasks/{signoff['id']}/sla/pause", json={"reason": "waiting"})
    assert response.status_code == 403
    response = people["sales"].post(f"/api/v1/tasks/{signoff['id']}/sla/pause", json={})
    assert response.status_code == 422 and "reason" in response.get_json()["error"]["details"]
    assert people["sales"].get(f"/api/v1/tasks/{signoff['id']}/sla").get_json()["state"] == "running"


def test_test_clock_refuses_to_go_backwards_and_needs_an_offset(leads):
    people = leads
    move_clock(people["admin"], "2026-03-03T09:00:00+08:00")
    response = people["admin"].post("/api/v1/test/clock", json={"now": "2026-03-02T09:00:00+08:00"})
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "clock_backwards"
    response = people["admin"].post("/api/v1/test/clock", json={"now": "2026-03-04T09:00:00"})
    assert response.status_code == 422
    response = people["admin"].post("/api/v1/test/clock", json={"now": "tomorrow"})
    assert response.status_code == 422
    assert people["admin"].get("/api/v1/test/clock").get_json()["now"].startswith("2026-03-03T01:00")


def test_rejection_loop_gives_the_reopened_stage_a_fresh_sla(leads):
    people = leads
    iid = start_project(people["sales"], account_id="GAMMA", signed_at=SIGNED)["id"]
    do_stage(people, iid, "kickoff")
    do_stage(people, iid, "needs_research")
    move_clock(people["admin"], "2026-03-04T09:00:00+08:00")  # sign-off still within its SLA
    do_stage(people, iid, "solution_signoff", {"customer_decision": "rejected", "rejection_reason": "Too costly"})
    task = open_task(people["consulting"], iid, "needs_research")
    # 5 working days from the reopening (Wed 09:00), not from kickoff's completion (which gives Fri 3/6 18:00).
    assert at(task["due_at"]) == at("2026-03-10T18:00:00+08:00")
    clock = people["consulting"].get(f"/api/v1/tasks/{task['id']}/sla").get_json()
    assert "reopen" in clock["note"]


def test_an_escalation_that_starts_a_process_starts_it_once_through_the_runtime(people, synced_app) -> None:
    """A breach rung's start_process becomes a timer row the runtime fires: the new
    instance exists once, is marked as started by the escalation and names its origin."""
    from tests.fixtures.diagrams import sequence, user_task
    from tests.support import new_model

    owner, admin = people["owner"], people["admin"]
    new_model(synced_app, "rescue")
    assert owner.post("/api/v1/process-models/rescue/versions", data=sequence("rescue", user_task("call_customer")),
                      headers={"Content-Type": "application/xml"}).status_code == 201
    ladder = [{"on": "breach", "actions": [{"start_process": "rescue"}]}]
    assert owner.put("/api/v1/sla/policies/standard", json={"rules": ladder}).status_code == 200

    first = start_project(people["sales"], account_id="GAMMA")
    for moment in ("2026-03-05T09:00:00+08:00", "2026-03-06T09:00:00+08:00"):
        assert admin.post("/api/v1/test/clock", json={"now": moment}).status_code == 200
    listed = admin.get("/api/v1/process-instances", query_string={"account_id": "GAMMA"}).get_json()["items"]
    started = [i for i in listed if i["id"] != first["id"]]
    assert len(started) == 1 and started[0]["started_by"] == "escalation"
    escalated = admin.get(f"/api/v1/process-instances/{started[0]['id']}").get_json()
    assert escalated["data"]["escalated_from_instance"] == first["id"]
    breach = people["auditor"].get("/api/v1/sla/breaches").get_json()["items"]
    assert any("start_process rescue requested" in str(b) for b in breach)
    assert [t["name"] for t in escalated["tasks"]] == ["call_customer"]
