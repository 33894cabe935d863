"""What cannot be carried over from another engine is refused at upload, naming the element
and what is wrong; timers written as ISO 8601 literals or cron run on the test clock."""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.dialects.test_camunda7 import open_task, problems_of, upload
from tests.support import move_clock, new_model

HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"'
        ' xmlns:camunda="http://camunda.org/schema/1.0/bpmn" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0"'
        ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="d" targetNamespace="http://example.com/t">'
        '<bpmn:process id="p" isExecutable="true">')


def diagram(task: str, *, before: str = "", after: str = "") -> bytes:
    """start -> [before] -> the task (id "t") -> [after] -> end; ``task`` is the element's XML."""
    return (HEAD + '<bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
            + task.replace("INCOMING", "<bpmn:incoming>f1</bpmn:incoming>")
                  .replace("OUTGOING", "<bpmn:outgoing>f2</bpmn:outgoing>")
            + after + '<bpmn:endEvent id="e"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>'
            '<bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="t"/>'
            '<bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="e"/>' + before
            + '</bpmn:process></bpmn:definitions>').encode()


def user_task(attrs: str = "", extensions: str = "") -> str:
    ext = f"<bpmn:extensionElements>{extensions}</bpmn:extensionElements>" if extensions else ""
    return f'<bpmn:userTask id="t" name="Check" {attrs}>{ext}INCOMING OUTGOING</bpmn:userTask>'


REFUSED = {
    "java class": (diagram('<bpmn:serviceTask id="t" camunda:class="com.acme.Check">INCOMING OUTGOING'
                           '</bpmn:serviceTask>'), "t", "camunda:class"),
    "delegate expression": (diagram('<bpmn:serviceTask id="t" camunda:delegateExpression="${checker}">'
                                    'INCOMING OUTGOING</bpmn:serviceTask>'), "t", "delegateExpression"),
    "expression": (diagram('<bpmn:serviceTask id="t" camunda:expression="${bean.run()}">INCOMING OUTGOING'
                           '</bpmn:serviceTask>'), "t", "camunda:expression"),
    "task listener": (diagram(user_task('camunda:candidateGroups="sales"',
                                        '<camunda:taskListener class="com.acme.L" event="create"/>')),
                      "t", "taskListener"),
    "execution listener": (diagram(user_task('camunda:candidateGroups="sales"',
                                             '<camunda:executionListener expression="${x.y()}" event="start"/>')),
                           "t", "executionListener"),
    "zeebe listener": (diagram(user_task("", '<zeebe:executionListeners><zeebe:executionListener '
                                             'eventType="start" type="x"/></zeebe:executionListeners>')),
                       "t", "executionListeners"),
    "unknown attribute": (diagram(user_task('camunda:candidateGroups="sales" camunda:frobnicate="yes"')),
                          "t", "camunda:frobnicate"),
    "groovy script": (diagram('<bpmn:scriptTask id="t" scriptFormat="groovy">INCOMING OUTGOING'
                              '<bpmn:script>x = 1</bpmn:script></bpmn:scriptTask>'), "t", "groovy"),
    "bad cron field": (diagram(user_task('camunda:candidateGroups="sales"'), before=(
        '<bpmn:boundaryEvent id="tick" attachedToRef="t" cancelActivity="false"><bpmn:timerEventDefinition>'
        '<bpmn:timeCycle>0 0 25 * * ?</bpmn:timeCycle></bpmn:timerEventDefinition></bpmn:boundaryEvent>')),
        "tick", "hours field: 25 is outside 0-23"),
    "bad duration": (diagram(user_task('camunda:candidateGroups="sales"'), before=(
        '<bpmn:boundaryEvent id="late" attachedToRef="t"><bpmn:timerEventDefinition>'
        '<bpmn:timeDuration>PT4X</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>')),
        "late", "not valid ISO 8601"),
    "bean in a condition": (HEAD.encode() + b'<bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing>'
                            b'</bpmn:startEvent><bpmn:exclusiveGateway id="g" default="f3"><bpmn:incoming>f1'
                            b'</bpmn:incoming></bpmn:exclusiveGateway><bpmn:endEvent id="e"/><bpmn:endEvent id="e2"/>'
                            b'<bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="g"/>'
                            b'<bpmn:sequenceFlow id="f2" sourceRef="g" targetRef="e"><bpmn:conditionExpression>'
                            b'${rules.approve(amount)}</bpmn:conditionExpression></bpmn:sequenceFlow>'
                            b'<bpmn:sequenceFlow id="f3" sourceRef="g" targetRef="e2"/></bpmn:process>'
                            b'</bpmn:definitions>', "f2", "${rules.approve(amount)}"),
    "python condition that cannot run": (
        HEAD.encode() + b'<bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
        b'<bpmn:exclusiveGateway id="g" default="f3"><bpmn:incoming>f1</bpmn:incoming></bpmn:exclusiveGateway>'
        b'<bpmn:endEvent id="e"/><bpmn:endEvent id="e2"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="g"/>'
        b'<bpmn:sequenceFlow id="f2" sourceRef="g" targetRef="e"><bpmn:conditionExpression>amount &gt;'
        b'</bpmn:conditionExpression></bpmn:sequenceFlow><bpmn:sequenceFlow id="f3" sourceRef="g" targetRef="e2"/>'
        b'</bpmn:process></bpmn:definitions>', "g", "script error"),
    "dynamic zeebe group": (diagram(user_task("", '<zeebe:assignmentDefinition candidateGroups="=team"/>')),
                            "t", "computed at run time"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_at_upload_naming_the_element(synced_app, people, case):
    xml, element, words = REFUSED[case]
    new_model(synced_app, "imported")
    problems = problems_of(upload(people["owner"], "imported", xml))
    assert any(p["element_id"] == element and words in p["message"] for p in problems), problems
    assert people["owner"].get("/api/v1/process-models").get_json()  # nothing half-written: still answers
    versions = {m["id"]: m["versions"] for m in people["owner"].get("/api/v1/process-models").get_json()}
    assert versions["imported"] == []


def test_an_assignee_nobody_here_has_is_a_warning_and_the_task_waits_in_its_department(synced_app, people):
    """Camunda's examples assign to demo users (kermit, demo); SpiffWorkflow runs them, so do we."""
    new_model(synced_app, "imported")
    xml = diagram(user_task('camunda:assignee="kermit" camunda:candidateGroups="sales"'))
    checked = people["owner"].post("/api/v1/process-models/imported/versions/validate?lang=en", data=xml,
                                   headers={"Content-Type": "application/xml"}).get_json()
    assert checked["valid"] is True and checked["problems"] == []
    assert [w["element_id"] for w in checked["warnings"]] == ["t"]
    assert "'kermit' is not a known user" in checked["warnings"][0]["message"]
    assert upload(people["owner"], "imported", xml).status_code == 201
    started = people["sales"].post("/api/v1/process-instances", json={
        "process_model_id": "imported", "account_id": "ACME", "data": {}})
    assert started.status_code == 201, started.get_json()
    task = open_task(people["sales"], "t")  # in the sales inbox, unassigned, claimable
    assert task["assignee"] is None
    assert people["sales"].post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200


def test_a_lane_naming_no_department_is_refused_listing_the_known_ones(synced_app, people):
    new_model(synced_app, "imported")
    lane = ('<bpmn:laneSet id="ls"><bpmn:lane id="l" name="Marketing"><bpmn:flowNodeRef>t</bpmn:flowNodeRef>'
            '</bpmn:lane></bpmn:laneSet>')
    xml = diagram(user_task(), before=lane)
    chinese = problems_of(upload(people["owner"], "imported", xml))
    assert [p["element_id"] for p in chinese] == ["t"]
    assert "部门 'Marketing' 不存在" in chinese[0]["message"] and "sales" in chinese[0]["message"]
    english = problems_of(people["owner"].post("/api/v1/process-models/imported/versions?lang=en", data=xml,
                                               headers={"Content-Type": "application/xml"}))
    assert "department 'Marketing' does not exist" in english[0]["message"]
    assert "finance" in english[0]["message"]


def _reminders(iso_or_cron: str) -> bytes:
    return diagram(user_task('camunda:candidateGroups="Sales"'), before=(
        '<bpmn:boundaryEvent id="tick" attachedToRef="t" cancelActivity="false"><bpmn:outgoing>r1</bpmn:outgoing>'
        f'<bpmn:timerEventDefinition><bpmn:timeCycle>{iso_or_cron}</bpmn:timeCycle></bpmn:timerEventDefinition>'
        '</bpmn:boundaryEvent><bpmn:userTask id="follow_up" camunda:candidateGroups="sales"><bpmn:incoming>r1'
        '</bpmn:incoming><bpmn:outgoing>r2</bpmn:outgoing></bpmn:userTask>'
        '<bpmn:endEvent id="re"><bpmn:incoming>r2</bpmn:incoming></bpmn:endEvent>'
        '<bpmn:sequenceFlow id="r1" sourceRef="tick" targetRef="follow_up"/>'
        '<bpmn:sequenceFlow id="r2" sourceRef="follow_up" targetRef="re"/>'))


@pytest.mark.parametrize(("cycle", "fired"), [("R2/PT10M", [1, 2, 2]), ("0 0/10 * * * ?", [1, 2, 3])])
def test_timer_cycles_written_in_iso_or_cron_fire_on_the_test_clock(synced_app, people, backend, cycle, fired):
    new_model(synced_app, "cycles")
    assert upload(people["owner"], "cycles", _reminders(cycle)).status_code == 201
    start = synced_app.extensions["bpm"].clock.now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    move_clock(people["admin"], start)
    iid = people["sales"].post("/api/v1/process-instances", json={
        "process_model_id": "cycles", "account_id": "ACME", "data": {}}).get_json()["id"]
    seen = []
    for step in (1, 2, 3):
        move_clock(people["admin"], start + timedelta(minutes=10 * step, seconds=30))
        inbox = people["sales"].get("/api/v1/tasks").get_json()["items"]
        seen.append(len([t for t in inbox if t["name"] == "follow_up"]))
    assert seen == fired  # one follow-up per firing: R2 stops after two, cron goes on
    task = open_task(people["sales"], "t")
    assert people["sales"].post(f"/api/v1/tasks/{task['id']}/complete", json={"data": {}}).status_code == 200
    for follow_up in [t for t in people["sales"].get("/api/v1/tasks").get_json()["items"] if t["name"] == "follow_up"]:
        assert people["sales"].post(f"/api/v1/tasks/{follow_up['id']}/complete", json={"data": {}}).status_code == 200
    assert people["sales"].get(f"/api/v1/process-instances/{iid}").get_json()["state"] == "completed"


def test_a_task_without_department_goes_to_the_starters_department(synced_app, people, backend):
    new_model(synced_app, "plain")
    assert upload(people["owner"], "plain", diagram(user_task())).status_code == 201
    iid = people["finance"].post("/api/v1/process-instances", json={
        "process_model_id": "plain", "account_id": "ACME", "data": {}}).get_json()["id"]
    task = open_task(people["finance"], "t")
    assert task["department"] == "finance" and task["state"] == "ready"
    assert people["sales"].get("/api/v1/tasks").get_json()["items"] == []
    assert people["finance"].post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    assert people["finance"].post(f"/api/v1/tasks/{task['id']}/complete", json={"data": {}}).status_code == 200
    assert people["finance"].get(f"/api/v1/process-instances/{iid}").get_json()["state"] == "completed"


def test_form_key_uses_a_form_we_hold_and_refuses_one_we_do_not(synced_app, people):
    new_model(synced_app, "keyed")
    held = diagram(user_task('camunda:candidateGroups="sales" '
                             'camunda:formKey="embedded:app:forms/account-project/kickoff.json"'))
    assert upload(people["owner"], "keyed", held).status_code == 201
    missing = diagram(user_task('camunda:candidateGroups="sales" camunda:formKey="approval/missing.json"'))
    problems = problems_of(upload(people["owner"], "keyed", missing))
    assert [(p["element_id"], "approval/missing.json" in p["message"]) for p in problems] == [("t", True)]
    # Other tools' forms (HTML, Camunda Forms) are not ours: the task gets the generic form, as in SpiffWorkflow.
    other = diagram(user_task('camunda:candidateGroups="sales" camunda:formKey="embedded:app:forms/a.html"'))
    assert upload(people["owner"], "keyed", other).status_code == 201
