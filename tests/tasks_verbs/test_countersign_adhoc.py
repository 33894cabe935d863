"""Ad hoc 会签 / 或签 from 加签 over the API: several signers at once (`users`), all of
them signing (`mode: all`) or the first one deciding (`mode: any`, the others' steps
cancelled and they are told); before or after the holder. The one-signer form stays."""
from __future__ import annotations

from tests.api.flows import STAGE_DATA, open_task, start_project
from tests.conftest import Caller


def _claimed_kickoff(people: dict[str, Caller]) -> tuple[str, str]:
    instance = start_project(people["sales"])
    kickoff = open_task(people["sales"], instance["id"], "kickoff")
    assert people["sales"].post(f"/api/v1/tasks/{kickoff['id']}/claim").status_code == 200
    return instance["id"], kickoff["id"]


def _sign(caller: Caller, step_id: str):
    return caller.post(f"/api/v1/tasks/{step_id}/complete", json={"data": {}})


def _kinds(caller: Caller) -> list[str]:
    return [n["kind"] for n in caller.get("/api/v1/notifications").get_json()["items"]]


def _research_open(people: dict[str, Caller], instance_id: str) -> bool:
    items = people["consulting"].get("/api/v1/tasks?per_page=200").get_json()["items"]
    return any(t["process_instance_id"] == instance_id and t["name"] == "needs_research" for t in items)


def test_countersign_before_me_waits_for_every_signer(people):
    instance_id, kickoff = _claimed_kickoff(people)
    added = people["sales"].post(f"/api/v1/tasks/{kickoff}/add-signer",
                                 json={"users": ["sales2", "consulting"], "mode": "all", "position": "before"})
    assert added.status_code == 200, added.get_json()
    steps = {s["assignee"]: s["id"] for s in added.get_json()["signer_steps"]}
    assert set(steps) == {"sales2", "consulting"} and added.get_json()["id"] == kickoff
    assert "task_signer_added" in _kinds(people["consulting"])
    complete = {"data": STAGE_DATA["kickoff"]}
    assert _sign(people["sales2"], steps["sales2"]).status_code == 200
    assert people["sales"].post(f"/api/v1/tasks/{kickoff}/complete", json=complete).status_code == 409  # one left
    assert "task_signed" not in _kinds(people["sales"])
    assert _sign(people["consulting"], steps["consulting"]).status_code == 200
    assert "task_signed" in _kinds(people["sales"])
    done = people["sales"].post(f"/api/v1/tasks/{kickoff}/complete", json=complete)
    assert done.status_code == 200, done.get_json()
    assert _research_open(people, instance_id)


def test_or_sign_before_me_the_first_signature_decides_and_the_others_are_told(people):
    _instance_id, kickoff = _claimed_kickoff(people)
    added = people["sales"].post(f"/api/v1/tasks/{kickoff}/add-signer",
                                 json={"users": ["sales2", "consulting"], "mode": "any", "position": "before"})
    assert added.status_code == 200, added.get_json()
    steps = {s["assignee"]: s["id"] for s in added.get_json()["signer_steps"]}
    assert _sign(people["consulting"], steps["consulting"]).status_code == 200
    other = people["sales2"].get(f"/api/v1/tasks/{steps['sales2']}").get_json()
    assert other["state"] == "cancelled"
    notes = people["sales2"].get("/api/v1/notifications").get_json()["items"]
    decided = [n for n in notes if n["kind"] == "task_sign_decided"]
    assert len(decided) == 1 and "consulting" in decided[0]["body"]
    assert _sign(people["sales2"], steps["sales2"]).status_code == 409  # too late: cancelled
    done = people["sales"].post(f"/api/v1/tasks/{kickoff}/complete", json={"data": STAGE_DATA["kickoff"]})
    assert done.status_code == 200, done.get_json()


def test_signers_after_me_all_or_any(people):
    # all: the process moves on once both signed.
    instance_id, kickoff = _claimed_kickoff(people)
    assert people["sales"].post(f"/api/v1/tasks/{kickoff}/add-signer", json={
        "users": ["sales2", "consulting"], "mode": "all", "position": "after"}).status_code == 200
    assert people["sales"].post(f"/api/v1/tasks/{kickoff}/complete",
                                json={"data": STAGE_DATA["kickoff"]}).status_code == 200
    first = open_task(people["sales2"], instance_id, "kickoff")
    second = open_task(people["consulting"], instance_id, "kickoff")
    assert _sign(people["sales2"], first["id"]).status_code == 200
    assert not _research_open(people, instance_id)
    assert _sign(people["consulting"], second["id"]).status_code == 200
    assert _research_open(people, instance_id)

    # any: the first signature moves the process on; the other signer's step is cancelled.
    instance_id, kickoff = _claimed_kickoff(people)
    assert people["sales"].post(f"/api/v1/tasks/{kickoff}/add-signer", json={
        "users": ["sales2", "it"], "mode": "any", "position": "after"}).status_code == 200
    assert people["sales"].post(f"/api/v1/tasks/{kickoff}/complete",
                                json={"data": STAGE_DATA["kickoff"]}).status_code == 200
    mine = open_task(people["it"], instance_id, "kickoff")
    theirs = open_task(people["sales2"], instance_id, "kickoff")
    assert _sign(people["it"], mine["id"]).status_code == 200
    assert _research_open(people, instance_id)
    assert people["sales2"].get(f"/api/v1/tasks/{theirs['id']}").get_json()["state"] == "cancelled"
    assert "task_sign_decided" in _kinds(people["sales2"])


def test_bad_signer_groups_are_refused_naming_the_field_and_nothing_changes(people):
    _instance_id, kickoff = _claimed_kickoff(people)
    url = f"/api/v1/tasks/{kickoff}/add-signer"

    def refused(body: dict) -> tuple[int, list[str]]:
        response = people["sales"].post(url, json={"position": "before", **body})
        return response.status_code, sorted((response.get_json()["error"].get("details") or {}).keys())

    assert refused({"users": ["sales2", "sales"]}) == (422, ["users"])  # oneself
    assert refused({"users": ["sales2", "nobody"]}) == (422, ["users"])
    assert refused({"users": ["sales2", "sales2"]}) == (422, ["users"])
    assert refused({"users": []}) == (422, ["users"])
    assert refused({"user": "sales2", "users": ["consulting"]})[0] == 422
    assert refused({})[0] == 422
    assert refused({"users": ["sales2"], "mode": "most"})[0] == 422
    assert people["sales2"].get("/api/v1/tasks").get_json()["total"] == 0  # no step was made
    # The one-signer form still answers the signer's step.
    one = people["sales"].post(url, json={"user": "sales2", "position": "before"})
    assert one.status_code == 200 and one.get_json()["assignee"] == "sales2"
