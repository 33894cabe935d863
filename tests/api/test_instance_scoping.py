"""Who reads which instance: overseers (admin, auditor, process owner), the
starter and the account manager see all of it; other staff only instances
their department or they work on, without other departments' submissions or
the process data; staff not involved at all get 403 and do not see it listed."""
from __future__ import annotations

from tests.api.flows import STAGE_DATA, do_stage, start_project
from tests.api.test_bad_input import assert_error


def _listed(caller) -> list[str]:
    return [i["id"] for i in caller.get("/api/v1/process-instances?per_page=200").get_json()["items"]]


def test_instances_are_read_only_by_those_involved(people):
    iid = start_project(people["sales"])["id"]  # ACME, whose account manager is sales
    do_stage(people, iid, "kickoff")  # needs_research is now open for consulting

    for name in ("sales", "auditor", "owner", "admin"):
        full = people[name].get(f"/api/v1/process-instances/{iid}").get_json()
        assert full["history"][0]["data"] == STAGE_DATA["kickoff"], name
        assert full["data"]["contract_no"] == "HT-1", name
        assert iid in _listed(people[name]), name

    colleague = people["sales2"].get(f"/api/v1/process-instances/{iid}").get_json()  # sales, but not the manager
    assert colleague["history"][0]["data"] == STAGE_DATA["kickoff"] and colleague["data"] == {}
    assert _listed(people["sales2"]) == [iid]

    involved = people["consulting"].get(f"/api/v1/process-instances/{iid}")
    assert involved.status_code == 200, involved.get_json()
    body = involved.get_json()
    assert [t["name"] for t in body["tasks"]] == ["needs_research"]
    assert [(h["name"], h["data"]) for h in body["history"]] == [("kickoff", None)]  # sales' submission
    assert body["data"] == {} and "HT-1" not in involved.get_data(as_text=True)
    assert "Kickoff held" not in involved.get_data(as_text=True)
    assert _listed(people["consulting"]) == [iid]

    for name in ("it", "finance"):  # no stage of theirs yet
        assert_error(people[name].get(f"/api/v1/process-instances/{iid}"), 403, "not_involved")
        assert _listed(people[name]) == []
        assert people[name].get("/api/v1/process-instances").get_json()["total"] == 0

    do_stage(people, iid, "needs_research")
    own = people["consulting"].get(f"/api/v1/process-instances/{iid}").get_json()
    assert [(h["name"], h["data"]) for h in own["history"]] == [("kickoff", None),
                                                                ("needs_research", STAGE_DATA["needs_research"])]


def test_an_accounts_executive_sponsor_sees_all_of_its_work(people) -> None:
    """Account-scoped access: the sponsor (here a staff member of IT) reads the account's
    instances and every stage of them, other departments' included."""
    from tests.api.flows import open_task, start_project

    instance = start_project(people["sales"], "ACME")
    kickoff = open_task(people["sales"], instance["id"], "kickoff")
    assert people["it"].get(f"/api/v1/process-instances/{instance['id']}").status_code == 403
    assert people["it"].get(f"/api/v1/tasks/{kickoff['id']}").status_code == 403
    made = people["admin"].patch("/api/v1/accounts/ACME", json={"executive_sponsor": "it"})
    assert made.status_code == 200, made.get_json()
    seen = people["it"].get(f"/api/v1/process-instances/{instance['id']}")
    assert seen.status_code == 200 and seen.get_json()["data"]  # the whole instance, like its manager
    assert people["it"].get(f"/api/v1/tasks/{kickoff['id']}").status_code == 200
    listed = people["it"].get("/api/v1/process-instances").get_json()["items"]
    assert instance["id"] in [i["id"] for i in listed]
    assert people["it"].post(f"/api/v1/tasks/{kickoff['id']}/claim").status_code == 403  # seeing is not doing
