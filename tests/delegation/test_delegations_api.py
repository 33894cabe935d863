"""委托 over the API: a person (or their lead) delegates their work for a period and a
scope; while it runs, tasks meant for them land on the delegate, "on behalf of" them,
and the delegate is told. Bad input: 422 naming the field; overlaps and cycles: 409."""
from __future__ import annotations

import pytest

from bpm_server.config import Config
from tests.api.flows import STAGE_DATA, start_project
from tests.support import move_clock

SIGNED = "2026-03-02T09:00:00+08:00"
WEEK = {"starts_at": "2026-03-03T09:00:00+08:00", "ends_at": "2026-03-04T09:00:00+08:00"}


@pytest.fixture
def config(config: Config) -> Config:  # the test clock on, to enter and leave the period
    return config.but(test_clock=True)


def _kickoff(people, account: str = "GAMMA") -> str:
    return start_project(people["sales"], account, signed_at=SIGNED)["tasks"][0]["id"]


def _to_sales(people, task_id: str) -> dict:
    """The lead hands the task to Li (sales); where it lands is what the test looks at."""
    moved = people["sales2"].post("/api/v1/tasks/reassign", json={"task_ids": [task_id], "to": "sales",
                                                                    "reason": "Li knows them"})
    assert moved.status_code == 200, moved.get_json()
    return moved.get_json()["items"][0]


def _error(response) -> tuple[int, str, list[str]]:
    body = response.get_json()["error"]
    return response.status_code, body["code"], sorted((body.get("details") or {}).keys())


def test_bad_delegations_are_refused_naming_the_field_and_nothing_is_recorded(leads):
    people = leads
    sales = people["sales"]
    url = "/api/v1/delegations"
    assert _error(sales.post(url, json={"delegate": "nobody", **WEEK})) == (422, "unknown_user", ["delegate"])
    assert _error(sales.post(url, json={"delegator": "ghost", "delegate": "consulting", **WEEK})) == (
        422, "unknown_user", ["delegator"])
    assert _error(sales.post(url, json={"delegate": "sales", **WEEK})) == (422, "delegate_is_self", ["delegate"])
    backwards = {"starts_at": WEEK["ends_at"], "ends_at": WEEK["starts_at"]}
    assert _error(sales.post(url, json={"delegate": "consulting", **backwards})) == (
        422, "invalid_period", ["ends_at"])
    assert _error(sales.post(url, json={"delegate": "consulting", "process_model_ids": ["no-such-model"], **WEEK})
                  ) == (422, "unknown_process_model", ["process_model_ids"])
    naive = sales.post(url, json={"delegate": "consulting", "starts_at": "2026-03-03T09:00:00",
                                  "ends_at": WEEK["ends_at"]})
    assert naive.status_code == 422 and "starts_at" in str(naive.get_json()["error"])
    # Someone else's work: only their lead (sales2 leads sales) or an admin.
    assert _error(people["consulting"].post(url, json={"delegator": "sales", "delegate": "it", **WEEK}))[0] == 403
    assert sales.get(url).get_json() == {"items": [], "total": 0}

    made = sales.post(url, json={"delegate": "consulting", "reason": "年假", **WEEK})
    assert made.status_code == 201, made.get_json()
    assert {k: made.get_json()[k] for k in ("delegator", "delegate", "process_model_ids", "active")} == {
        "delegator": "sales", "delegate": "consulting", "process_model_ids": [], "active": False}
    # The same work in an overlapping period: 409; another process only, elsewhere in time: fine.
    overlap = {"starts_at": "2026-03-03T18:00:00+08:00", "ends_at": "2026-03-05T09:00:00+08:00"}
    assert _error(sales.post(url, json={"delegate": "it", **overlap}))[:2] == (409, "delegation_overlaps")
    assert _error(sales.post(url, json={"delegate": "it", "process_model_ids": ["tier-review"], **overlap})
                  )[:2] == (409, "delegation_overlaps")  # "all" meets every model
    # A cycle: consulting -> sales while sales -> consulting.
    assert _error(people["consulting"].post(url, json={"delegate": "sales", **overlap})) == (
        409, "delegation_cycle", ["delegate"])
    # ... also through a third person: it -> sales while sales -> consulting -> it.
    assert people["consulting"].post(url, json={"delegate": "it", **WEEK}).status_code == 201
    assert _error(people["it"].post(url, json={"delegate": "sales", **WEEK}))[:2] == (409, "delegation_cycle")
    assert people["it"].post(url, json={"delegate": "sales", "starts_at": "2026-03-10T09:00:00+08:00",
                                        "ends_at": "2026-03-11T09:00:00+08:00"}).status_code == 201
    # The lead sees her department's; consulting sees the ones it gives and takes.
    assert {(d["delegator"], d["delegate"]) for d in people["sales2"].get(url).get_json()["items"]} == {
        ("sales", "consulting")}
    assert {(d["delegator"], d["delegate"]) for d in people["consulting"].get(url).get_json()["items"]} == {
        ("sales", "consulting"), ("consulting", "it")}
    # Ending: not someone else's; an unknown id is 404.
    mine = made.get_json()["id"]
    assert people["it"].delete(f"{url}/{mine}").status_code == 403
    assert people["sales2"].delete(f"{url}/{mine}").status_code == 204  # the lead may
    assert sales.delete(f"{url}/{mine}").status_code == 404  # already ended


def test_while_active_tasks_land_on_the_delegate_on_behalf_of_the_delegator(leads):
    people = leads
    made = people["sales"].post("/api/v1/delegations", json={"delegate": "consulting", **WEEK})
    assert made.status_code == 201, made.get_json()
    before = _to_sales(people, _kickoff(people, "ACME"))  # Monday: the period has not begun
    assert (before["assignee"], before["on_behalf_of"]) == ("sales", None)

    move_clock(people["admin"], "2026-03-03T10:00:00+08:00")  # inside the period
    assert people["sales"].get("/api/v1/delegations").get_json()["items"][0]["active"] is True
    task_id = _kickoff(people, "GAMMA")
    during = _to_sales(people, task_id)
    assert (during["assignee"], during["on_behalf_of"]) == ("consulting", "sales")
    notes = people["consulting"].get("/api/v1/notifications").get_json()["items"]
    assert [(n["kind"], n["task_id"]) for n in notes if n["kind"] == "task_delegated"] == [("task_delegated", task_id)]
    assert "sales" in notes[0]["title"] and "代" in notes[0]["title"]
    [event] = people["auditor"].get("/api/v1/audit?action=task.delegate").get_json()["items"]
    assert event["object_id"] == task_id and event["details"]["delegator"] == "sales"
    assert event["details"]["delegate"] == "consulting"
    # The delegate completes it: the history says who did it and for whom.
    done = people["consulting"].post(f"/api/v1/tasks/{task_id}/complete", json={"data": STAGE_DATA["kickoff"]})
    assert done.status_code == 200, done.get_json()
    instance = people["sales"].get(f"/api/v1/process-instances/{during['process_instance_id']}").get_json()
    [kickoff] = [h for h in instance["history"] if h["name"] == "kickoff"]
    assert (kickoff["completed_by"], kickoff["on_behalf_of"]) == ("consulting", "sales")

    move_clock(people["admin"], "2026-03-04T09:00:00+08:00")  # the end is exclusive: over
    after = _to_sales(people, _kickoff(people, "BETA"))
    assert (after["assignee"], after["on_behalf_of"]) == ("sales", None)


def test_a_delegation_for_one_process_leaves_the_others_alone(leads):
    people = leads
    made = people["sales"].post("/api/v1/delegations", json={"delegate": "consulting",
                                                             "process_model_ids": ["tier-review"], **WEEK})
    assert made.status_code == 201, made.get_json()
    move_clock(people["admin"], "2026-03-03T10:00:00+08:00")
    moved = _to_sales(people, _kickoff(people))
    assert (moved["assignee"], moved["on_behalf_of"]) == ("sales", None)  # account-project is not delegated
    assert people["consulting"].get("/api/v1/notifications").get_json()["items"] == []


def test_the_lead_delegates_an_absent_persons_work_and_escalations_respect_it(leads):
    people = leads
    # The lead herself is away Wednesday to Friday; 'sales' takes her work.
    body = {"delegator": "sales2", "delegate": "sales", "starts_at": "2026-03-04T00:00:00+08:00",
            "ends_at": "2026-03-07T00:00:00+08:00", "reason": "leave"}
    assert people["sales2"].post("/api/v1/delegations", json=body).status_code == 201
    task_id = _kickoff(people)  # standard: due Tuesday 18:00
    people["sales"].post(f"/api/v1/tasks/{task_id}/claim")
    # Breached Tuesday 18:00; a working day later the ladder reassigns to the lead - who is away by then.
    move_clock(people["admin"], "2026-03-05T09:30:00+08:00")
    detail = people["sales"].get(f"/api/v1/tasks/{task_id}").get_json()
    assert (detail["assignee"], detail["state"], detail["on_behalf_of"]) == ("sales", "claimed", "sales2")
    [breach] = people["auditor"].get("/api/v1/sla/breaches").get_json()["items"]
    actions = [a for e in breach["escalations"] for a in e["actions"] if a.startswith("reassigned")]
    assert actions == ["reassigned to sales (standing in for sales2, who is away)"]
