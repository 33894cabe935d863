"""Operating running instances (issue "Contain and operate"): cancel, suspend /
resume, retry, data edit and migration, over the API as an operator would, on
SQLite and PostgreSQL (the ``people`` fixture runs each test on both)."""
from __future__ import annotations

from datetime import datetime

from flask import Flask

from bpm_server.database import db
from bpm_server.runtime import advance_test_clock
from bpm_server.sla.models import Timer
from tests.api.flows import STAGE_DATA, do_stage, open_task, start_project
from tests.fixtures.diagrams import script_task, sequence, user_task
from tests.support import new_model


def _upload(caller, model_id: str, xml: bytes):
    response = caller.post(f"/api/v1/process-models/{model_id}/versions", data=xml,
                           headers={"Content-Type": "application/xml"})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _instance(caller, iid: str) -> dict:
    return caller.get(f"/api/v1/process-instances/{iid}").get_json()


def _pending_timers(app: Flask, iid: str) -> list[Timer]:
    with app.app_context():
        return list(db.session.query(Timer).filter(Timer.process_instance_id == iid, Timer.fired_at.is_(None),
                                                   Timer.cancelled_at.is_(None)))


def _audit(people, action: str) -> list[dict]:
    return people["auditor"].get("/api/v1/audit", query_string={"action": action}).get_json()["items"]


def _move_clock(app: Flask, iso: str) -> None:
    with app.app_context():
        advance_test_clock(db.session, app.extensions["bpm"], datetime.fromisoformat(iso))
        db.session.commit()


# --------------------------------------------------------------------------- cancel

def test_cancel_stops_tasks_timers_and_clocks_and_is_audited(synced_app, people) -> None:
    iid = start_project(people["sales"], account_id="GAMMA")["id"]
    assert _pending_timers(synced_app, iid)  # the kickoff's warning and breach
    response = people["admin"].post(f"/api/v1/process-instances/{iid}/cancel", json={"reason": "contract voided"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["state"] == "cancelled" and body["cancel_reason"] == "contract voided"
    assert body["cancelled_by"] == "admin" and body["tasks"] == []
    assert _pending_timers(synced_app, iid) == []
    assert people["sales"].get("/api/v1/tasks").get_json()["items"] == []
    # Past the kickoff's deadline: nothing breaches for a cancelled instance.
    _move_clock(synced_app, "2026-03-10T09:00:00+08:00")
    assert people["auditor"].get("/api/v1/sla/breaches").get_json()["items"] == []
    entry = [e for e in _audit(people, "instance.cancel") if e["object_id"] == iid]
    assert entry and entry[0]["actor"] == "admin" and entry[0]["details"]["reason"] == "contract voided"


def test_cancel_needs_a_reason_an_operator_and_a_live_instance(synced_app, people) -> None:
    iid = start_project(people["sales"])["id"]
    assert people["admin"].post(f"/api/v1/process-instances/{iid}/cancel", json={}).status_code == 422
    assert people["admin"].post(f"/api/v1/process-instances/{iid}/cancel", json={"reason": ""}).status_code == 422
    assert people["sales"].post(f"/api/v1/process-instances/{iid}/cancel", json={"reason": "x"}).status_code == 403
    assert _instance(people["sales"], iid)["state"] == "running"
    assert people["owner"].post(f"/api/v1/process-instances/{iid}/cancel", json={"reason": "x"}).status_code == 200
    again = people["owner"].post(f"/api/v1/process-instances/{iid}/cancel", json={"reason": "x"})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "instance_ended"
    assert people["admin"].post("/api/v1/process-instances/nope/cancel", json={"reason": "x"}).status_code == 404


# --------------------------------------------------------------------------- suspend / resume

def test_a_suspended_instance_neither_completes_nor_fires_and_catches_up_on_resume(synced_app, people) -> None:
    iid = start_project(people["sales"], account_id="GAMMA")["id"]  # standard tier: 2 working days
    task = open_task(people["sales"], iid, "kickoff")
    assert people["sales"].post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200

    response = people["owner"].post(f"/api/v1/process-instances/{iid}/suspend", json={"reason": "customer audit"})
    assert response.status_code == 200 and response.get_json()["suspended"] is True
    assert _pending_timers(synced_app, iid) == []
    blocked = people["sales"].post(f"/api/v1/tasks/{task['id']}/complete",
                                   json={"data": STAGE_DATA["kickoff"]})
    assert blocked.status_code == 409 and blocked.get_json()["error"]["code"] == "instance_suspended"

    # The kickoff's deadline passes while the instance is held: no breach.
    _move_clock(synced_app, "2026-03-06T09:00:00+08:00")
    assert people["auditor"].get("/api/v1/sla/breaches").get_json()["items"] == []
    second = people["owner"].post(f"/api/v1/process-instances/{iid}/suspend", json={})
    assert second.status_code == 409 and second.get_json()["error"]["code"] == "already_suspended"

    resumed = people["owner"].post(f"/api/v1/process-instances/{iid}/resume", json={"reason": "audit done"})
    assert resumed.status_code == 200 and resumed.get_json()["suspended"] is False
    # What fell due meanwhile fires now, in order (warning before breach).
    _move_clock(synced_app, "2026-03-06T09:00:01+08:00")
    breaches = people["auditor"].get("/api/v1/sla/breaches").get_json()["items"]
    # The log lists breaches only (their follow-ups folded in); "kind" is the clock's kind.
    assert [(b["task_name"], b["process_instance_id"], b["kind"]) for b in breaches] == [("kickoff", iid, "resolution")]
    do_stage(people, iid, "kickoff")
    assert open_task(people["consulting"], iid, "needs_research")
    again = people["owner"].post(f"/api/v1/process-instances/{iid}/resume", json={})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "not_suspended"
    actions = [e["action"] for e in _audit(people, "instance.suspend") + _audit(people, "instance.resume")]
    assert sorted(actions) == ["instance.resume", "instance.suspend"]


# --------------------------------------------------------------------------- retry and data edit

def test_an_instance_in_error_is_fixed_by_a_data_edit_and_a_retry(synced_app, people) -> None:
    new_model(synced_app, "brittle")
    _upload(people["owner"], "brittle",
            sequence("brittle", user_task("fill"), script_task("compute", "total = amount * 2"), user_task("check")))
    iid = people["sales"].post("/api/v1/process-instances", json={
        "process_model_id": "brittle", "account_id": "ACME", "data": {}}).get_json()["id"]
    task = people["sales"].get("/api/v1/tasks").get_json()["items"][0]
    assert people["sales"].post(f"/api/v1/tasks/{task['id']}/complete", json={"data": {}}).status_code == 200
    assert _instance(people["sales"], iid)["state"] == "error"

    not_yet = people["admin"].post(f"/api/v1/process-instances/{iid}/retry")
    assert not_yet.status_code == 200 and not_yet.get_json()["state"] == "error"  # still no amount
    assert "amount" in not_yet.get_json()["error"]["message"]

    client = synced_app.test_client()
    edit = client.patch(f"/api/v1/process-instances/{iid}/data", json={"data": {"amount": 21}},
                        headers={"Authorization": f"Bearer {people['admin'].token}"})
    assert edit.status_code == 200, edit.get_json()
    staff_edit = client.patch(f"/api/v1/process-instances/{iid}/data", json={"data": {"amount": 1}},
                              headers={"Authorization": f"Bearer {people['sales'].token}"})
    assert staff_edit.status_code == 403
    retried = people["admin"].post(f"/api/v1/process-instances/{iid}/retry")
    assert retried.status_code == 200, retried.get_json()
    body = retried.get_json()
    assert body["state"] == "running" and body["error"] is None
    assert [t["name"] for t in body["tasks"]] == ["check"] and body["data"]["total"] == 42
    edits = [e for e in _audit(people, "instance.data_edit") if e["object_id"] == iid]
    assert edits[0]["details"] == {"before": {"amount": None}, "after": {"amount": 21}}

    again = people["admin"].post(f"/api/v1/process-instances/{iid}/retry")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "instance_not_in_error"


def test_a_data_edit_that_fails_the_start_form_changes_nothing(synced_app, people) -> None:
    iid = start_project(people["sales"])["id"]
    client = synced_app.test_client()
    response = client.patch(f"/api/v1/process-instances/{iid}/data", json={"data": {"contract_no": 42}},
                            headers={"Authorization": f"Bearer {people['admin'].token}"})
    assert response.status_code == 422, response.get_json()
    assert "contract_no" in response.get_json()["error"]["details"]
    assert _instance(people["sales"], iid)["data"]["contract_no"] == "HT-1"


def test_a_start_that_failed_is_retried_from_its_start_data(synced_app, people) -> None:
    new_model(synced_app, "early")
    _upload(people["owner"], "early", sequence("early", script_task("boot", "x = seed + 1"), user_task("t")))
    failed = people["sales"].post("/api/v1/process-instances", json={
        "process_model_id": "early", "account_id": "ACME", "data": {}}).get_json()
    assert failed["state"] == "error" and failed["error"]["element_id"] == "boot"
    client = synced_app.test_client()
    assert client.patch(f"/api/v1/process-instances/{failed['id']}/data", json={"data": {"seed": 1}},
                        headers={"Authorization": f"Bearer {people['admin'].token}"}).status_code == 200
    retried = people["admin"].post(f"/api/v1/process-instances/{failed['id']}/retry").get_json()
    assert retried["state"] == "running" and [t["name"] for t in retried["tasks"]] == ["t"]
    assert retried["data"]["x"] == 2


# --------------------------------------------------------------------------- migration

def test_migration_moves_a_running_instance_and_keeps_its_claimed_stage(synced_app, people) -> None:
    new_model(synced_app, "twostep")
    _upload(people["owner"], "twostep", sequence("twostep", user_task("first"), user_task("second")))
    iid = people["sales"].post("/api/v1/process-instances", json={
        "process_model_id": "twostep", "account_id": "ACME", "data": {}}).get_json()["id"]
    first = open_task(people["sales"], iid, "first")
    assert people["sales"].post(f"/api/v1/tasks/{first['id']}/claim").status_code == 200
    _upload(people["owner"], "twostep",
            sequence("twostep", user_task("first"), user_task("review"), user_task("second")))

    dry = people["owner"].post(f"/api/v1/process-instances/{iid}/migrate", json={"version": 2, "dry_run": True})
    assert dry.status_code == 200, dry.get_json()
    assert dry.get_json()["possible"] is True and dry.get_json()["migrated"] is False
    assert _instance(people["sales"], iid)["version"] == 1

    moved = people["owner"].post(f"/api/v1/process-instances/{iid}/migrate", json={"version": 2})
    assert moved.status_code == 200 and moved.get_json()["migrated"] is True
    instance = _instance(people["sales"], iid)
    assert instance["version"] == 2
    [task] = instance["tasks"]
    assert (task["id"], task["state"], task["assignee"]) == (first["id"], "claimed", "sales")
    done = people["sales"].post(f"/api/v1/tasks/{first['id']}/complete", json={"data": {}})
    assert done.status_code == 200, done.get_json()
    assert [t["name"] for t in _instance(people["sales"], iid)["tasks"]] == ["review"]  # the new stage runs
    assert [e for e in _audit(people, "instance.migrate") if e["object_id"] == iid]


def test_migration_is_refused_when_the_open_stage_was_removed(synced_app, people) -> None:
    new_model(synced_app, "shrink")
    _upload(people["owner"], "shrink", sequence("shrink", user_task("first"), user_task("second")))
    iid = people["sales"].post("/api/v1/process-instances", json={
        "process_model_id": "shrink", "account_id": "ACME", "data": {}}).get_json()["id"]
    _upload(people["owner"], "shrink", sequence("shrink", user_task("second")))
    response = people["owner"].post(f"/api/v1/process-instances/{iid}/migrate", json={"version": 2})
    body = response.get_json()
    assert response.status_code == 200 and body["possible"] is False and body["migrated"] is False
    assert [p["element_id"] for p in body["problems"]] == ["first"]
    assert _instance(people["sales"], iid)["version"] == 1


def test_migration_to_another_models_version_is_invalid_input(synced_app, people) -> None:
    iid = start_project(people["sales"])["id"]
    new_model(synced_app, "other")
    other = _upload(people["owner"], "other", sequence("other", user_task("t")))
    response = people["owner"].post(f"/api/v1/process-instances/{iid}/migrate",
                                    json={"version": other["version"]["id"]})
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "other_model"
    assert people["sales"].post(f"/api/v1/process-instances/{iid}/migrate", json={"version": 1}).status_code == 403
    missing = people["owner"].post(f"/api/v1/process-instances/{iid}/migrate", json={"version": 99})
    assert missing.status_code == 404


def test_bulk_migration_reports_each_instance_and_moves_those_that_can(synced_app, people) -> None:
    new_model(synced_app, "bulk")
    _upload(people["owner"], "bulk", sequence("bulk", user_task("first"), user_task("second")))
    start = {"process_model_id": "bulk", "account_id": "ACME", "data": {}}
    stays = people["sales"].post("/api/v1/process-instances", json=start).get_json()["id"]
    moves = people["sales"].post("/api/v1/process-instances", json=start).get_json()["id"]
    do_first = open_task(people["sales"], moves, "first")
    assert people["sales"].post(f"/api/v1/tasks/{do_first['id']}/complete", json={"data": {}}).status_code == 200
    _upload(people["owner"], "bulk", sequence("bulk", user_task("second"), user_task("third")))

    dry = people["owner"].post("/api/v1/process-models/bulk/migrate", json={"to_version": 2}).get_json()
    assert {(r["process_instance_id"], r["possible"], r["migrated"]) for r in dry["items"]} == \
        {(stays, False, False), (moves, True, False)}
    done = people["owner"].post("/api/v1/process-models/bulk/migrate",
                                json={"to_version": 2, "dry_run": False}).get_json()
    assert done["migrated"] == 1
    assert (_instance(people["sales"], stays)["version"], _instance(people["sales"], moves)["version"]) == (1, 2)
    assert people["sales"].post("/api/v1/process-models/bulk/migrate", json={"to_version": 2}).status_code == 403
    assert people["owner"].post("/api/v1/process-models/bulk/migrate", json={"to_version": 9}).status_code == 404
