"""Bad SLA definitions and bad escalation ladders are refused where a process
owner enters them, naming what is wrong; nothing half-valid is stored. Rule
changes, claims and completions land in the audit trail for auditors."""
from __future__ import annotations

import io
import json
import re
from datetime import datetime
from xml.sax.saxutils import quoteattr

import pytest

from bpm_server.config import PROJECT_ROOT
from tests.api.flows import STAGE_DATA, open_task, start_project

BPMN = PROJECT_ROOT / "process_models" / "account-project" / "account-project.bpmn"
UPLOAD = "/api/v1/process-models/account-project/versions"
SIGNED = "2026-03-02T09:00:00+08:00"


def with_property(element: str, name: str, value: str) -> bytes:
    """The account-project diagram with one extension property of one user task set (added or replaced)."""
    xml = BPMN.read_text("utf-8")
    start = xml.index(f'<bpmn:userTask id="{element}"')
    end = xml.index("</bpmn:userTask>", start)
    block = xml[start:end]
    prop = f"<spiffworkflow:property name={quoteattr(name)} value={quoteattr(value)} />"
    existing = re.compile(rf'<spiffworkflow:property name="{re.escape(name)}" value="[^"]*"\s*/>')
    if existing.search(block):
        block = existing.sub(lambda _: prop, block, count=1)
    else:
        block = block.replace("</spiffworkflow:properties>", prop + "</spiffworkflow:properties>", 1)
    changed = xml[:start] + block + xml[end:]
    assert changed != xml
    return changed.encode()


def versions(caller) -> list[dict]:
    response = caller.get("/api/v1/process-models/account-project")
    assert response.status_code == 200, response.get_json()
    return response.get_json()["versions"]


def upload(caller, xml: bytes):
    return caller.post(UPLOAD, data=xml, content_type="application/xml")


# --------------------------------------------------------------------------- SLA properties in the BPMN


BAD_SLAS = [
    # element, property, value, words the message must contain
    ("kickoff", "sla", "two days", ["sla", "two days"]),
    ("kickoff", "sla", "2 weeks", ["sla", "2 weeks"]),
    ("needs_research", "sla", "-1 working days", ["sla", "-1 working days"]),
    ("kickoff", "sla", "", ["sla"]),
    ("kickoff", "sla.strategic", "tomorrow", ["sla.strategic", "tomorrow"]),
    ("kickoff", "sla.platinum", "1 working day", ["sla.platinum", "platinum"]),
    ("invoicing", "slaAnchor", "stage:nope", ["slaAnchor", "nope"]),
    ("kickoff", "slaAnchor", "data:nowhere", ["slaAnchor", "nowhere"]),
    ("kickoff", "slaAnchor", "yesterday", ["slaAnchor", "yesterday"]),
    ("kickoff", "slaWarnAt", "180%", ["slaWarnAt", "180%"]),
    ("resource_preparation", "slaWarnAt", "abc", ["slaWarnAt", "abc"]),
    ("kickoff", "slaWarnAt", "0%", ["slaWarnAt"]),
    ("solution_signoff", "slaPausable", "maybe", ["slaPausable", "maybe"]),
]


@pytest.mark.parametrize("element, name, value, words", BAD_SLAS, ids=[f"{e}-{n}={v!r}" for e, n, v, _ in BAD_SLAS])
def test_bad_sla_values_are_rejected_naming_the_element_and_nothing_is_stored(
        people, element: str, name: str, value: str, words: list[str]) -> None:
    owner = people["owner"]
    before = versions(owner)

    response = upload(owner, with_property(element, name, value))

    assert response.status_code == 422, response.get_json()
    problems = response.get_json()["error"]["details"]["problems"]
    assert problems, response.get_json()
    mine = [p for p in problems if p["element_id"] == element]
    assert mine, f"no problem names {element!r}: {problems}"
    assert any(all(word in p["message"] for word in words) for p in mine), mine
    assert all(p["element_id"] == element for p in problems), f"unrelated problems reported: {problems}"
    assert versions(owner) == before
    # Multipart uploads take the same checks.
    response = owner.post(UPLOAD, data={"file": (io.BytesIO(with_property(element, name, value)),
                                                 "account-project.bpmn")}, content_type="multipart/form-data")
    assert response.status_code == 422
    assert versions(owner) == before


def test_several_bad_values_are_all_listed_per_element(people) -> None:
    xml = with_property("kickoff", "sla", "two days").decode()
    xml = xml.replace('name="slaPausable" value="true"', 'name="slaPausable" value="maybe"')
    response = upload(people["owner"], xml.encode())
    assert response.status_code == 422
    named = {p["element_id"] for p in response.get_json()["error"]["details"]["problems"]}
    assert named == {"kickoff", "solution_signoff"}


def test_a_valid_change_is_published_and_used_by_new_projects(people) -> None:
    owner = people["owner"]
    before = versions(owner)
    response = upload(owner, with_property("kickoff", "slaWarnAt", "90%"))
    assert response.status_code == 201, response.get_json()
    after = versions(owner)
    assert len(after) == len(before) + 1 and after[0]["version"] == before[0]["version"] + 1
    assert after[0]["created_by"] == "owner"

    task = start_project(people["sales"], account_id="GAMMA", signed_at=SIGNED)["tasks"][0]
    # 90% of 16 working hours = 14 h 24 min after Monday 09:00 -> Tuesday 16:24 (was 14:48 at 80%).
    assert datetime.fromisoformat(task["warn_at"]) == datetime.fromisoformat("2026-03-03T16:24:00+08:00")
    assert datetime.fromisoformat(task["due_at"]) == datetime.fromisoformat("2026-03-03T18:00:00+08:00")


def test_only_process_owners_upload(people) -> None:
    before = versions(people["owner"])
    response = upload(people["sales"], with_property("kickoff", "slaWarnAt", "90%"))
    assert response.status_code == 403
    assert versions(people["owner"]) == before


# --------------------------------------------------------------------------- escalation policies

GOOD_RULE = {"on": "breach", "actions": [{"notify": "assignee"}]}
BAD_POLICIES = [
    # name, rules, words the error must contain
    ("bad-action", [GOOD_RULE, {"on": "breach", "actions": [{"teleport": "assignee"}]}], ["rule 2", "teleport"]),
    ("bad-department", [GOOD_RULE, {"on": "breach", "actions": [{"notify": "department:nowhere"}]}],
     ["rule 2", "nowhere"]),
    ("bad-reassign", [{"on": "breach", "after": "1 working day", "actions": [{"reassign": "department:nowhere"}]}],
     ["rule 1", "nowhere"]),
    ("bad-user", [{"on": "warning", "actions": [{"notify": "user:ghost"}]}], ["rule 1", "ghost"]),
    ("warning-after", [GOOD_RULE, {"on": "warning", "after": "2 working hours", "actions": [{"notify": "assignee"}]}],
     ["rule 2", "after"]),
    ("bad-after", [GOOD_RULE, {"on": "breach", "after": "tomorrow", "actions": [{"notify": "department_lead"}]}],
     ["rule 2", "tomorrow"]),
    ("bad-event", [{"on": "someday", "actions": [{"notify": "assignee"}]}], ["rule 1", "someday"]),
    ("no-actions", [{"on": "breach", "actions": []}], ["rule 1", "actions"]),
    ("bad-priority", [{"on": "breach", "actions": [{"raise_priority": "lots"}]}], ["rule 1", "raise_priority"]),
    ("bad-process", [{"on": "breach", "actions": [{"start_process": "no-such-model"}]}], ["rule 1", "no-such-model"]),
    ("empty", [], []),
]


def policy_names(caller) -> set[str]:
    response = caller.get("/api/v1/sla/policies")
    assert response.status_code == 200, response.get_json()
    return {p["name"] for p in response.get_json()["policies"]}


@pytest.mark.parametrize("name, rules, words", BAD_POLICIES, ids=[p[0] for p in BAD_POLICIES])
def test_bad_escalation_policies_are_rejected_naming_policy_and_rule(people, name: str, rules: list,
                                                                     words: list[str]) -> None:
    response = people["owner"].put(f"/api/v1/sla/policies/{name}", json={"rules": rules})
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    text = error["message"] + " " + json.dumps(error.get("details"))
    for word in [name, *words]:
        assert word in text, (word, error)
    assert name not in policy_names(people["owner"])


@pytest.mark.parametrize("body", [{}, {"rules": "notify everyone"}, {"rules": [GOOD_RULE, "and also"]}])
def test_malformed_policy_bodies_are_invalid_input(people, body: dict) -> None:
    response = people["owner"].put("/api/v1/sla/policies/malformed", json=body)
    assert response.status_code == 422, response.get_json()
    assert "malformed" not in policy_names(people["owner"])


LADDER = [
    {"on": "warning", "actions": [{"notify": "assignee"}]},
    {"on": "breach", "actions": [{"notify": "department_lead"}, {"notify": "department:consulting"}]},
    {"on": "breach", "after": "2 working hours", "actions": [{"reassign": "user:sales2"}, {"raise_priority": 2}]},
    {"on": "breach", "after": "1 working day", "actions": [{"start_process": "account-project"}]},
]


def test_a_valid_policy_is_saved_listed_and_audited(people) -> None:
    owner, auditor = people["owner"], people["auditor"]
    response = owner.put("/api/v1/sla/policies/fast-lane", json={"rules": LADDER})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["name"] == "fast-lane" and body["rules"] == LADDER and body["updated_by"] == "owner"

    listed = {p["name"]: p for p in people["sales"].get("/api/v1/sla/policies").get_json()["policies"]}
    assert listed["fast-lane"]["rules"] == LADDER
    assert {"standard", "strategic"} <= set(listed)

    events = auditor.get("/api/v1/audit", query_string={"action": "policy.update"}).get_json()["items"]
    mine = [e for e in events if e["object_id"] == "fast-lane"]
    assert len(mine) == 1 and mine[0]["actor"] == "owner" and mine[0]["action"] == "policy.update"
    assert mine[0]["details"]["after"] == LADDER


def test_changing_a_policy_records_before_and_after(people) -> None:
    owner, auditor = people["owner"], people["auditor"]
    old = {p["name"]: p for p in owner.get("/api/v1/sla/policies").get_json()["policies"]}["standard"]["rules"]
    response = owner.put("/api/v1/sla/policies/standard", json={"rules": [GOOD_RULE]})
    assert response.status_code == 200
    events = auditor.get("/api/v1/audit", query_string={"action": "policy.update", "actor": "owner"}).get_json()
    [event] = events["items"]
    assert event["object_id"] == "standard"
    assert event["details"]["before"] == old and event["details"]["after"] == [GOOD_RULE]


def test_staff_may_not_change_policies(people) -> None:
    response = people["sales"].put("/api/v1/sla/policies/sneaky", json={"rules": [GOOD_RULE]})
    assert response.status_code == 403
    response = people["sales"].put("/api/v1/sla/policies/standard", json={"rules": [GOOD_RULE]})
    assert response.status_code == 403
    response = people["erp"].put("/api/v1/sla/policies/sneaky", json={"rules": [GOOD_RULE]})
    assert response.status_code == 403
    listed = {p["name"]: p for p in people["owner"].get("/api/v1/sla/policies").get_json()["policies"]}
    assert "sneaky" not in listed and listed["standard"]["rules"] != [GOOD_RULE]
    events = people["auditor"].get("/api/v1/audit", query_string={"action": "policy.update"}).get_json()["items"]
    assert {e["actor"] for e in events} == {"models sync"}


# --------------------------------------------------------------------------- the audit trail


def test_claim_and_complete_appear_in_the_audit_trail_with_the_actor(people) -> None:
    sales, auditor = people["sales"], people["auditor"]
    iid = start_project(sales, account_id="GAMMA", signed_at=SIGNED)["id"]
    task = open_task(sales, iid, "kickoff")
    assert sales.post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    response = sales.post(f"/api/v1/tasks/{task['id']}/complete", json={"data": STAGE_DATA["kickoff"]})
    assert response.status_code == 200, response.get_json()

    for action in ("task.claim", "task.complete"):
        items = auditor.get("/api/v1/audit", query_string={"action": action}).get_json()["items"]
        assert [(e["actor"], e["object_type"], e["object_id"]) for e in items] == [("sales", "task", task["id"])], \
            (action, items)
    by_task = auditor.get("/api/v1/audit", query_string={"object_id": task["id"]}).get_json()["items"]
    assert [e["action"] for e in by_task][:2] == ["task.complete", "task.claim"]  # newest first


def test_only_auditors_read_the_audit_trail(people) -> None:
    for who in ("sales", "owner", "erp"):
        assert people[who].get("/api/v1/audit").status_code == 403, who
    assert people["auditor"].get("/api/v1/audit").status_code == 200
    assert people["admin"].get("/api/v1/audit").status_code == 200


def test_sla_lengths_and_ladder_delays_may_be_written_in_chinese(people) -> None:
    owner = people["owner"]
    # The strategic tier's kickoff in Chinese: "4 个工作小时" (was "1 working day"): Monday 09:00 + 4 h.
    response = upload(owner, with_property("kickoff", "sla.strategic", "4 个工作小时"))
    assert response.status_code == 201, response.get_json()
    task = start_project(people["sales"], account_id="ACME", signed_at=SIGNED)["tasks"][0]
    assert datetime.fromisoformat(task["due_at"]) == datetime.fromisoformat("2026-03-02T14:00:00+08:00")
    ladder = [{"on": "breach", "actions": [{"notify": "assignee"}]},
              {"on": "breach", "after": "2 个工作日", "actions": [{"raise_priority": 1}]}]
    saved = owner.put("/api/v1/sla/policies/chinese", json={"rules": ladder})
    assert saved.status_code == 200, saved.get_json()
    refused = owner.put("/api/v1/sla/policies/chinese", json={"rules": [
        {"on": "breach", "after": "两个工作日", "actions": [{"raise_priority": 1}]}]})
    assert refused.status_code == 422 and "个工作日" in refused.get_json()["error"]["message"]
