"""The inbox API: search (account name, contract number, stage title, Chinese too),
sort by any column either way, priority, pages with a total, bulk claim, and saved views."""
from __future__ import annotations

from datetime import timedelta

import pytest

from bpm_server.accounts.models import Account
from bpm_server.database import db
from bpm_server.tasks.models import HumanTask
from tests.api.flows import start_project
from tests.conftest import START

SIGNED = ["2026-02-24T10:00:00+08:00", "2026-03-02T11:00:00+08:00", "2026-02-26T15:00:00+08:00"]


@pytest.fixture
def three(people, synced_app, clock) -> list[dict]:
    """Three kickoffs in sales: ACME (renamed 艾克米科技, stage titled in Chinese, priority 2),
    BETA, GAMMA; contract numbers HT-2026-0001..3."""
    tasks = []
    for i, (account, signed) in enumerate(zip(("ACME", "BETA", "GAMMA"), SIGNED, strict=True)):
        clock.set(START + timedelta(minutes=i))  # created one after the other
        instance = start_project(people["sales"], account, signed_at=signed, contract_no=f"HT-2026-000{i + 1}")
        tasks.append(instance["tasks"][0])
    with synced_app.app_context():
        db.session.get_one(Account, "ACME").name = "艾克米科技"
        acme = db.session.get_one(HumanTask, tasks[0]["id"])
        acme.title, acme.priority = "项目启动会 Kickoff", 2
        db.session.commit()
    return tasks


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [t["id"] for t in response.get_json()["items"]]


def test_search_by_account_name_contract_number_and_stage_title(people, three):
    sales = people["sales"]
    acme, beta, gamma = (t["id"] for t in three)
    assert _ids(sales.get("/api/v1/tasks?q=艾克米")) == [acme]              # account name, Chinese, partial
    assert _ids(sales.get("/api/v1/tasks?q=beta ltd")) == [beta]            # case-insensitive
    assert _ids(sales.get("/api/v1/tasks?q=ht-2026-0003")) == [gamma]      # contract number
    assert _ids(sales.get("/api/v1/tasks?q=启动会")) == [acme]               # Chinese stage title
    assert set(_ids(sales.get("/api/v1/tasks?q=KICKOFF"))) == {acme, beta, gamma}
    assert _ids(sales.get("/api/v1/tasks?q=%25")) == []                    # a literal %, not a wildcard
    assert _ids(people["consulting"].get("/api/v1/tasks?q=艾克米")) == []   # not their department's


def test_sort_by_each_column_both_ways_and_priority_is_shown(people, three):
    sales = people["sales"]
    acme, beta, gamma = (t["id"] for t in three)
    by_priority = sales.get("/api/v1/tasks?sort=priority&order=desc").get_json()["items"]
    assert by_priority[0]["id"] == acme and by_priority[0]["priority"] == 2
    assert _ids(sales.get("/api/v1/tasks?sort=due")) == [acme, gamma, beta]
    assert _ids(sales.get("/api/v1/tasks?sort=due&order=desc")) == [beta, gamma, acme]
    # Account names: "BETA Ltd" < "GAMMA Ltd" < "艾克米科技".
    assert _ids(sales.get("/api/v1/tasks?sort=account")) == [beta, gamma, acme]
    assert _ids(sales.get("/api/v1/tasks?sort=account&order=desc")) == [acme, gamma, beta]
    assert _ids(sales.get("/api/v1/tasks?sort=stage&order=desc"))[0] == acme
    assert _ids(sales.get("/api/v1/tasks?sort=created")) == [acme, beta, gamma]
    assert _ids(sales.get("/api/v1/tasks?sort=created&order=desc")) == [gamma, beta, acme]
    assert len(_ids(sales.get("/api/v1/tasks?sort=department"))) == 3


def test_pages_carry_the_total(people, three):
    sales = people["sales"]
    first = sales.get("/api/v1/tasks?per_page=2&sort=created").get_json()
    second = sales.get("/api/v1/tasks?per_page=2&page=2&sort=created").get_json()
    assert (first["total"], second["total"], first["page"], second["page"]) == (3, 3, 1, 2)
    assert [t["id"] for t in first["items"] + second["items"]] == [t["id"] for t in three]


def test_bad_sort_page_and_size_are_422_naming_the_field(people, three):
    sales = people["sales"]
    response = sales.get("/api/v1/tasks?sort=colour")
    assert response.status_code == 422
    assert "sort" in str(response.get_json()["error"]["details"])
    for column in ("due", "priority", "stage", "account", "created", "department"):
        assert column in str(response.get_json()["error"]["details"])
    assert sales.get("/api/v1/tasks?order=sideways").status_code == 422
    past = sales.get("/api/v1/tasks?page=100001")
    assert past.status_code == 422 and "page" in str(past.get_json()["error"]["details"])
    assert sales.get("/api/v1/tasks?per_page=201").status_code == 422


def test_bulk_claim_reports_each_task_and_a_task_taken_meanwhile_alone(people, three):
    sales, sales2 = people["sales"], people["sales2"]
    acme, beta, gamma = (t["id"] for t in three)
    assert sales2.post(f"/api/v1/tasks/{beta}/claim").status_code == 200   # taken meanwhile
    response = sales.post("/api/v1/tasks/bulk-claim", json={"task_ids": [acme, beta, gamma, "nope"]})
    assert response.status_code == 200
    body = response.get_json()
    assert (body["claimed"], body["failed"]) == (2, 2)
    outcome = {r["task_id"]: (r["status"], r["code"]) for r in body["items"]}
    assert outcome == {acme: (200, "claimed"), beta: (409, "claimed_by_other"), gamma: (200, "claimed"),
                       "nope": (404, "unknown_task")}
    assert sales.get(f"/api/v1/tasks/{acme}").get_json()["assignee"] == "sales"
    assert sales.get(f"/api/v1/tasks/{beta}").get_json()["assignee"] == "sales2"  # untouched
    assert people["consulting"].post("/api/v1/tasks/bulk-claim", json={"task_ids": []}).status_code == 422


def test_saved_views_personal_and_shared_owner_only_changes(people, three):
    sales, sales2, consulting = people["sales"], people["sales2"], people["consulting"]
    acme = three[0]["id"]
    created = sales.post("/api/v1/inbox-views", json={"name": "艾克米", "filters": {"q": "艾克米", "sort": "priority",
                                                                                  "order": "desc"}, "shared": True})
    assert created.status_code == 201, created.get_json()
    view = created.get_json()
    assert (view["owner"], view["shared_with_department"], view["mine"]) == ("sales", "sales", True)
    mine = sales.post("/api/v1/inbox-views", json={"name": "Overdue", "filters": {"overdue": True}})
    assert mine.status_code == 201

    # Shared: the colleague sees it (not the personal one) and gets the same rows.
    names = [v["name"] for v in sales2.get("/api/v1/inbox-views").get_json()["items"]]
    assert names == ["艾克米"]
    assert _ids(sales2.get(f"/api/v1/inbox-views/{view['id']}/tasks")) == [acme]
    assert consulting.get("/api/v1/inbox-views").get_json()["items"] == []

    # Only the owner renames or deletes; others get 403 (shared) or 404 (not visible).
    assert sales2.patch(f"/api/v1/inbox-views/{view['id']}", json={"name": "mine now"}).status_code == 403
    assert sales2.delete(f"/api/v1/inbox-views/{view['id']}").status_code == 403
    assert consulting.delete(f"/api/v1/inbox-views/{view['id']}").status_code == 404
    assert sales2.delete(f"/api/v1/inbox-views/{mine.get_json()['id']}").status_code == 404
    renamed = sales.patch(f"/api/v1/inbox-views/{view['id']}", json={"name": "ACME 重点"})
    assert renamed.status_code == 200 and renamed.get_json()["name"] == "ACME 重点"

    # A name taken by the same owner: 409, nothing changed.
    duplicate = sales.post("/api/v1/inbox-views", json={"name": "Overdue"})
    assert duplicate.status_code == 409 and duplicate.get_json()["error"]["code"] == "duplicate_view_name"
    assert sales.patch(f"/api/v1/inbox-views/{view['id']}", json={"name": "Overdue"}).status_code == 409
    assert len(sales.get("/api/v1/inbox-views").get_json()["items"]) == 2
    # ...but a colleague may use the same name for their own view.
    assert sales2.post("/api/v1/inbox-views", json={"name": "Overdue"}).status_code == 201

    bad = sales.post("/api/v1/inbox-views", json={"name": "x", "filters": {"sort": "colour"}})
    assert bad.status_code == 422 and "sort" in str(bad.get_json()["error"]["details"])
    assert sales.post("/api/v1/inbox-views", json={"name": "y", "filters": {"colour": 1}}).status_code == 422

    assert sales.delete(f"/api/v1/inbox-views/{view['id']}").status_code == 204
    assert [v["name"] for v in sales2.get("/api/v1/inbox-views").get_json()["items"]] == ["Overdue"]


def test_the_openapi_documents_the_new_endpoints(people):
    spec = people["sales"].get("/api/v1/openapi.json").get_json()
    assert "/api/v1/inbox-views" in spec["paths"] and "/api/v1/tasks/bulk-claim" in spec["paths"]
    inbox_params = {p["name"] for p in spec["paths"]["/api/v1/tasks"]["get"]["parameters"]}
    assert {"q", "sort", "order", "page", "per_page"} <= inbox_params


def test_a_view_changes_filters_and_sharing_and_pages_through_its_tasks(people, three):
    sales, sales2 = people["sales"], people["sales2"]
    view = sales.post("/api/v1/inbox-views", json={"name": "two a page",
                                                   "filters": {"sort": "created", "per_page": 2}}).get_json()
    first = sales.get(f"/api/v1/inbox-views/{view['id']}/tasks").get_json()
    second = sales.get(f"/api/v1/inbox-views/{view['id']}/tasks?page=2").get_json()
    assert (first["total"], len(first["items"]), len(second["items"]), first["per_page"]) == (3, 2, 1, 2)
    assert [t["id"] for t in first["items"] + second["items"]] == [t["id"] for t in three]
    past = sales.get(f"/api/v1/inbox-views/{view['id']}/tasks?page=100001")
    assert past.status_code == 422 and "page" in str(past.get_json()["error"]["details"])

    assert sales2.get(f"/api/v1/inbox-views/{view['id']}").status_code == 404   # personal
    changed = sales.patch(f"/api/v1/inbox-views/{view['id']}", json={"filters": {"q": "gamma"}, "shared": True})
    assert changed.status_code == 200 and changed.get_json()["filters"] == {"q": "gamma"}
    seen = sales2.get(f"/api/v1/inbox-views/{view['id']}").get_json()
    assert (seen["mine"], seen["shared_with_department"]) == (False, "sales")
    assert _ids(sales2.get(f"/api/v1/inbox-views/{view['id']}/tasks")) == [three[2]["id"]]
    bad = sales.patch(f"/api/v1/inbox-views/{view['id']}", json={"filters": {"per_page": 0}})
    assert bad.status_code == 422
    assert sales.get(f"/api/v1/inbox-views/{view['id']}").get_json()["filters"] == {"q": "gamma"}  # unchanged
