"""The six-stage account project, driven through the REST API as each department."""
from __future__ import annotations

from tests.api.flows import STAGE_DATA, do_stage, open_task, start_project


def test_project_runs_from_kickoff_to_invoicing_with_rejection_and_rework(people, backend):
    instance = start_project(people["sales"])
    iid = instance["id"]
    assert instance["state"] == "running"
    assert instance["process_model_id"] == "account-project" and instance["version"] == 1
    assert [t["name"] for t in instance["tasks"]] == ["kickoff"]
    assert instance["tasks"][0]["department"] == "sales"

    do_stage(people, iid, "kickoff")
    do_stage(people, iid, "needs_research")
    # The customer rejects the solution: back to needs research, reason kept.
    do_stage(people, iid, "solution_signoff",
             {"customer_decision": "rejected", "rejection_reason": "Too expensive for phase one"})
    state = people["sales"].get(f"/api/v1/process-instances/{iid}").get_json()
    assert [t["name"] for t in state["tasks"]] == ["needs_research"]
    assert state["data"]["rejections"] == [{"reason": "Too expensive for phase one"}]

    do_stage(people, iid, "needs_research")
    do_stage(people, iid, "solution_signoff")
    do_stage(people, iid, "resource_preparation")
    # Acceptance fails once: rework loop back to delivery.
    do_stage(people, iid, "delivery", {"acceptance_result": "failed", "failure_notes": "Report export is broken"})
    open_task(people["delivery"], iid, "delivery")
    do_stage(people, iid, "delivery")
    do_stage(people, iid, "invoicing")

    final = people["auditor"].get(f"/api/v1/process-instances/{iid}").get_json()
    assert final["state"] == "completed" and final["completed_at"]
    assert final["tasks"] == []
    assert [h["name"] for h in final["history"]] == [
        "kickoff", "needs_research", "solution_signoff", "needs_research", "solution_signoff",
        "resource_preparation", "delivery", "delivery", "invoicing"]
    assert [h["completed_by"] for h in final["history"]][:3] == ["sales", "consulting", "sales"]
    assert final["history"][-1]["data"] == STAGE_DATA["invoicing"]
    assert final["data"]["rework_rounds"] == 1


def test_next_department_sees_the_task_at_once_and_others_do_not(people):
    iid = start_project(people["sales"])["id"]
    assert people["consulting"].get("/api/v1/tasks").get_json()["total"] == 0
    do_stage(people, iid, "kickoff")
    inbox = people["consulting"].get("/api/v1/tasks").get_json()
    assert [t["name"] for t in inbox["items"]] == ["needs_research"]
    assert inbox["items"][0]["account_id"] == "ACME"
    assert people["it"].get("/api/v1/tasks").get_json()["total"] == 0
    assert people["sales"].get("/api/v1/tasks").get_json()["total"] == 0


def test_claimed_task_leaves_colleagues_inbox_and_history_shows_who(people):
    iid = start_project(people["sales"])["id"]
    task = open_task(people["sales"], iid, "kickoff")
    assert people["sales2"].get("/api/v1/tasks").get_json()["total"] == 1
    claimed = people["sales"].post(f"/api/v1/tasks/{task['id']}/claim").get_json()
    assert claimed["state"] == "claimed" and claimed["assignee"] == "sales"
    assert people["sales2"].get("/api/v1/tasks").get_json()["total"] == 0
    mine = people["sales"].get("/api/v1/tasks").get_json()["items"]
    assert [t["state"] for t in mine] == ["claimed"]


def test_single_task_view_has_form_data_and_account(people):
    iid = start_project(people["sales"], contract_no="HT-77")["id"]
    task = open_task(people["sales"], iid, "kickoff")
    detail = people["sales"].get(f"/api/v1/tasks/{task['id']}").get_json()
    assert detail["form"]["properties"]["kickoff_minutes"]["type"] == "string"
    assert detail["data"]["contract_no"] == "HT-77"
    assert detail["account_id"] == "ACME" and detail["process_model_id"] == "account-project"
    assert detail["instructions"]


def test_publishing_a_version_is_in_the_audit_trail(people):
    owner = people["owner"]
    xml = owner.get("/api/v1/process-models/account-project/versions/1/bpmn").get_data(as_text=True)
    changed = xml.replace('name="Invoicing"', 'name="Invoicing and receipt"', 1)
    assert changed != xml
    response = owner.post("/api/v1/process-models/account-project/versions", data=changed.encode(),
                          content_type="application/xml")
    assert response.status_code == 201, response.get_json()
    events = people["auditor"].get("/api/v1/audit", query_string={"action": "process_model.publish"}).get_json()
    published = [e for e in events["items"] if e["details"].get("version") == 2]
    assert len(published) == 1 and published[0]["actor"] == "owner"
    assert published[0]["object_id"] == "account-project"
