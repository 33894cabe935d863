"""The task verbs over the API: 退回, 转交, 加签, 抄送, 催办, 撤回, release; and their bad input."""
from __future__ import annotations

from tests.api.flows import STAGE_DATA, do_stage, open_task, start_project
from tests.conftest import Caller
from tests.fixtures.diagrams import HEADER, script_task, user_task
from tests.support import new_model


def _claimed(caller: Caller, instance_id: str, name: str) -> dict:
    task = open_task(caller, instance_id, name)
    if task["state"] == "ready":
        assert caller.post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    return task


def test_send_back_reopens_the_earlier_stage_for_its_completer_with_the_reason(people, backend):
    instance = start_project(people["sales"])
    do_stage(people, instance["id"], "kickoff")
    research = _claimed(people["consulting"], instance["id"], "needs_research")
    never = people["consulting"].post(f"/api/v1/tasks/{research['id']}/send-back",
                                      json={"to_stage": "invoicing", "reason": "x"})
    assert never.status_code == 422 and "to_stage" in never.get_json()["error"]["details"]
    sent = people["consulting"].post(f"/api/v1/tasks/{research['id']}/send-back",
                                     json={"to_stage": "kickoff", "reason": "会议纪要缺少客户签字"})
    assert sent.status_code == 200, sent.get_json()
    reopened = sent.get_json()
    assert reopened["name"] == "kickoff" and reopened["assignee"] == "sales" and reopened["state"] == "claimed"
    assert people["consulting"].get(f"/api/v1/tasks/{research['id']}").get_json()["state"] == "cancelled"
    actions = people["sales"].get(f"/api/v1/process-instances/{instance['id']}/actions").get_json()["items"]
    assert [(a["verb"], a["to_stage"], a["reason"]) for a in actions] == [
        ("send_back", "kickoff", "会议纪要缺少客户签字")]
    notes = people["sales"].get("/api/v1/notifications").get_json()["items"]
    assert any(n["kind"] == "task_sent_back" and "会议纪要缺少客户签字" in n["body"] for n in notes)
    # resubmission goes forward again
    done = people["sales"].post(f"/api/v1/tasks/{reopened['id']}/complete", json={"data": STAGE_DATA["kickoff"]})
    assert done.status_code == 200, done.get_json()
    assert open_task(people["consulting"], instance["id"], "needs_research")["state"] == "ready"


def test_send_back_to_the_initiator(people):
    instance = start_project(people["sales"])
    do_stage(people, instance["id"], "kickoff")
    do_stage(people, instance["id"], "needs_research")
    signoff = _claimed(people["sales"], instance["id"], "solution_signoff")
    sent = people["sales"].post(f"/api/v1/tasks/{signoff['id']}/send-back",
                                json={"to_stage": "initiator", "reason": "合同金额有误"})
    assert sent.status_code == 200 and sent.get_json()["name"] == "kickoff"


def test_transfer_release_and_bad_targets(people, synced_app):
    instance = start_project(people["sales"])
    kickoff = _claimed(people["sales"], instance["id"], "kickoff")
    url = f"/api/v1/tasks/{kickoff['id']}"
    assert people["sales"].post(url + "/transfer", json={"to": "nobody", "reason": "r"}).status_code == 422
    people["admin"].post("/api/v1/users/finance/deactivate")
    gone = people["sales"].post(url + "/transfer", json={"to": "finance", "reason": "r"})
    assert gone.status_code == 422, gone.get_json()
    moved = people["sales"].post(url + "/transfer", json={"to": "sales2", "reason": "我出差"})
    assert moved.status_code == 200 and moved.get_json()["assignee"] == "sales2"
    notes = people["sales2"].get("/api/v1/notifications").get_json()["items"]
    assert notes[0]["kind"] == "task_transferred" and "我出差" in notes[0]["body"]
    assert people["sales"].post(url + "/release").status_code == 409  # no longer mine
    released = people["sales2"].post(url + "/release")
    assert released.status_code == 200 and released.get_json()["state"] == "ready"
    assert released.get_json()["assignee"] is None


def test_add_signer_before_returns_the_task_and_self_is_refused(people):
    instance = start_project(people["sales"])
    kickoff = _claimed(people["sales"], instance["id"], "kickoff")
    url = f"/api/v1/tasks/{kickoff['id']}"
    assert people["sales"].post(url + "/add-signer", json={"user": "sales", "position": "before"}).status_code == 422
    step = people["sales"].post(url + "/add-signer", json={"user": "sales2", "position": "before"})
    assert step.status_code == 200, step.get_json()
    blocked = people["sales"].post(url + "/complete", json={"data": STAGE_DATA["kickoff"]})
    assert blocked.status_code == 409
    signed = people["sales2"].post(f"/api/v1/tasks/{step.get_json()['id']}/complete", json={"data": {}})
    assert signed.status_code == 200, signed.get_json()
    done = people["sales"].post(url + "/complete", json={"data": STAGE_DATA["kickoff"]})
    assert done.status_code == 200
    assert open_task(people["consulting"], instance["id"], "needs_research")


def test_add_signer_after_holds_the_process_until_signed(people):
    instance = start_project(people["sales"])
    kickoff = _claimed(people["sales"], instance["id"], "kickoff")
    url = f"/api/v1/tasks/{kickoff['id']}"
    assert people["sales"].post(url + "/add-signer", json={"user": "sales2", "position": "after"}).status_code == 200
    assert people["sales"].post(url + "/complete", json={"data": STAGE_DATA["kickoff"]}).status_code == 200
    items = people["consulting"].get("/api/v1/tasks").get_json()["items"]
    assert not [t for t in items if t["process_instance_id"] == instance["id"]]  # not yet
    step = next(t for t in people["sales2"].get("/api/v1/tasks").get_json()["items"]
                if t["process_instance_id"] == instance["id"])
    assert people["sales2"].post(f"/api/v1/tasks/{step['id']}/complete", json={"data": {}}).status_code == 200
    assert open_task(people["consulting"], instance["id"], "needs_research")
    history = people["sales"].get(f"/api/v1/process-instances/{instance['id']}").get_json()["history"]
    assert sorted(h["completed_by"] for h in history) == ["sales", "sales2"]  # the stage and its signature


def test_withdraw_while_unclaimed_and_409_after_claim(people):
    instance = start_project(people["sales"])
    kickoff = do_stage(people, instance["id"], "kickoff")
    back = people["sales"].post(f"/api/v1/tasks/{kickoff['id']}/withdraw", json={})
    assert back.status_code == 200, back.get_json()
    assert back.get_json()["name"] == "kickoff" and back.get_json()["assignee"] == "sales"
    again = people["sales"].post(f"/api/v1/tasks/{back.get_json()['id']}/complete",
                                 json={"data": STAGE_DATA["kickoff"]})
    assert again.status_code == 200
    _claimed(people["consulting"], instance["id"], "needs_research")
    late = people["sales"].post(f"/api/v1/tasks/{back.get_json()['id']}/withdraw", json={})
    assert late.status_code == 409 and late.get_json()["error"]["code"] == "next_stage_claimed"


def test_urge_is_rate_limited_and_cc_gives_read_receipts(people):
    instance = start_project(people["sales"])
    kickoff = _claimed(people["sales"], instance["id"], "kickoff")
    url = f"/api/v1/tasks/{kickoff['id']}"
    assert people["sales2"].post(url + "/urge", json={"reason": "客户在催"}).status_code == 200
    over = people["sales2"].post(url + "/urge", json={})
    assert over.status_code == 429, over.get_json()
    assert any(n["kind"] == "task_urged" for n in people["sales"].get("/api/v1/notifications").get_json()["items"])
    # the finance person cannot see a sales task until it is copied to them
    assert people["finance"].get(url).status_code == 403
    assert people["finance"].post(url + "/comments", json={"body": "hi"}).status_code == 404
    cc = people["sales"].post(url + "/cc", json={"users": ["finance"]})
    assert cc.status_code == 200 and cc.get_json()["items"][0]["read_at"] is None
    assert people["sales"].post(url + "/cc", json={"users": ["ghost"]}).status_code == 422
    assert people["finance"].get(url).status_code == 200
    assert people["sales"].get(url + "/cc").get_json()["items"][0]["read_at"] is not None
    assert people["finance"].post(url + "/complete", json={"data": STAGE_DATA["kickoff"]}).status_code in (403, 409)


def test_claim_and_completion_are_on_the_audit_trail_with_who_which_stage_and_which_instance(people):
    instance = start_project(people["sales"], account_id="GAMMA")
    task = open_task(people["sales2"], instance["id"], "kickoff")
    assert task["state"] == "ready"
    assert people["sales2"].post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    done = people["sales2"].post(f"/api/v1/tasks/{task['id']}/complete", json={"data": STAGE_DATA["kickoff"]})
    assert done.status_code == 200, done.get_json()
    trail = people["auditor"].get("/api/v1/audit", query_string={"object_id": task["id"]}).get_json()["items"]
    acts = sorted((e["id"], e["action"], e["actor"], e["object_type"])
                  for e in trail if e["action"].startswith("task."))
    assert [a[1:] for a in acts] == [("task.claim", "sales2", "task"), ("task.complete", "sales2", "task")]
    [completion] = [e for e in trail if e["action"] == "task.complete"]
    assert completion["details"]["process_instance_id"] == instance["id"]
    assert completion["details"]["stage"] == "kickoff"


def test_a_stage_cannot_be_withdrawn_once_a_later_stage_was_completed(people):
    instance = start_project(people["sales"])
    kickoff = do_stage(people, instance["id"], "kickoff")
    do_stage(people, instance["id"], "needs_research")
    late = people["sales"].post(f"/api/v1/tasks/{kickoff['id']}/withdraw", json={})
    assert late.status_code == 409 and late.get_json()["error"]["code"] == "next_stage_done", late.get_json()
    assert people["sales"].get(f"/api/v1/tasks/{kickoff['id']}").get_json()["state"] == "completed"


def test_a_completion_the_form_refuses_names_each_field_and_changes_nothing(people):
    instance = start_project(people["sales"])
    task = _claimed(people["sales"], instance["id"], "kickoff")
    bad = {**STAGE_DATA["kickoff"], "kickoff_date": "next week"}
    del bad["kickoff_minutes"]
    refused = people["sales"].post(f"/api/v1/tasks/{task['id']}/complete", json={"data": bad})
    assert refused.status_code == 422, refused.get_json()
    error = refused.get_json()["error"]
    assert error["code"] == "invalid_form_data" and set(error["details"]) == {"kickoff_date", "kickoff_minutes"}, error
    assert error["message"] == "the form has errors in: kickoff_date, kickoff_minutes", error
    still = people["sales"].get(f"/api/v1/tasks/{task['id']}").get_json()
    assert still["state"] == "claimed" and still["assignee"] == "sales"
    assert open_task(people["sales"], instance["id"], "kickoff")["id"] == task["id"]


def _two_branches(process_id: str) -> bytes:
    """Two stages side by side; the script after the first fails (no ``amount``), the second stays open."""
    nodes = (user_task("fill") + script_task("compute", "total = amount * 2") + user_task("check")
             + '<bpmn:parallelGateway id="fork"/><bpmn:parallelGateway id="join"/>')
    flows = [("start", "fork"), ("fork", "fill"), ("fill", "compute"), ("compute", "join"), ("fork", "check"),
             ("check", "join"), ("join", "end")]
    body = ('<bpmn:startEvent id="start"/>' + nodes + '<bpmn:endEvent id="end"/>'
            + "".join(f'<bpmn:sequenceFlow id="f{i}" sourceRef="{a}" targetRef="{b}"/>'
                      for i, (a, b) in enumerate(flows)))
    return (HEADER + f'<bpmn:process id="{process_id}" isExecutable="true">{body}</bpmn:process>'
            '</bpmn:definitions>').encode()


def test_a_stage_of_an_instance_in_error_cannot_be_completed_and_the_refusal_says_why(people, synced_app):
    new_model(synced_app, "two-branches")
    assert people["owner"].post("/api/v1/process-models/two-branches/versions", data=_two_branches("two_branches"),
                                headers={"Content-Type": "application/xml"}).status_code == 201
    instance = people["sales"].post("/api/v1/process-instances", json={
        "process_model_id": "two-branches", "account_id": "ACME", "data": {}}).get_json()
    fill = _claimed(people["sales"], instance["id"], "fill")
    check = _claimed(people["sales"], instance["id"], "check")
    assert people["sales"].post(f"/api/v1/tasks/{fill['id']}/complete", json={"data": {}}).status_code == 200
    assert people["sales"].get(f"/api/v1/process-instances/{instance['id']}").get_json()["state"] == "error"

    refused = people["sales"].post(f"/api/v1/tasks/{check['id']}/complete", json={"data": {}})
    assert refused.status_code == 409, refused.get_json()
    assert refused.get_json()["error"] == {
        "code": "instance_not_running", "message": "the process instance is error; its tasks cannot be completed"}
    assert people["sales"].get(f"/api/v1/tasks/{check['id']}").get_json()["state"] == "claimed"


def test_a_stage_of_a_suspended_instance_cannot_be_completed_until_it_is_resumed(people):
    instance = start_project(people["sales"])
    task = _claimed(people["sales"], instance["id"], "kickoff")
    assert people["owner"].post(f"/api/v1/process-instances/{instance['id']}/suspend",
                                json={"reason": "customer audit"}).status_code == 200
    blocked = people["sales"].post(f"/api/v1/tasks/{task['id']}/complete", json={"data": STAGE_DATA["kickoff"]})
    assert blocked.status_code == 409, blocked.get_json()
    assert blocked.get_json()["error"] == {
        "code": "instance_suspended",
        "message": "the process instance is suspended; nothing in it moves until it is resumed"}
    assert people["owner"].post(f"/api/v1/process-instances/{instance['id']}/resume").status_code == 200
    done = people["sales"].post(f"/api/v1/tasks/{task['id']}/complete", json={"data": STAGE_DATA["kickoff"]})
    assert done.status_code == 200, done.get_json()
