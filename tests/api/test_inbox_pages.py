"""The inbox merges a person's own tasks with their department's unclaimed ones,
soonest due first, and pages through that list without losing or repeating a task."""
from __future__ import annotations

from datetime import datetime

from tests.api.flows import start_project
from tests.conftest import START

# Contract signing moments: the kickoff SLA counts from them, so each kickoff gets its own due date.
SIGNED = ["2026-02-24T10:00:00+08:00", "2026-03-02T11:00:00+08:00", "2026-02-26T15:00:00+08:00",
          "2026-02-25T09:30:00+08:00", "2026-03-02T09:00:00+08:00", "2026-02-27T16:00:00+08:00",
          "2026-02-20T10:00:00+08:00"]


def _kickoffs(people) -> list[dict]:
    tasks = []
    for i, signed in enumerate(SIGNED):
        instance = start_project(people["sales"], account_id="ACME" if i % 2 else "GAMMA", signed_at=signed,
                                 contract_no=f"HT-{i}")
        tasks.append(instance["tasks"][0])
    return tasks


def _due(task: dict) -> datetime:
    return datetime.fromisoformat(task["due_at"])


def test_inbox_pages_merge_own_and_department_tasks_in_due_order(people, backend):
    sales, sales2 = people["sales"], people["sales2"]
    kickoffs = _kickoffs(people)
    for task in (kickoffs[0], kickoffs[2], kickoffs[4]):
        assert sales.post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    assert sales2.post(f"/api/v1/tasks/{kickoffs[5]['id']}/claim").status_code == 200

    full = sales.get("/api/v1/tasks?per_page=100").get_json()
    expected = {kickoffs[i]["id"] for i in (0, 1, 2, 3, 4, 6)}  # not the one sales2 took
    assert full["total"] == 6
    assert {t["id"] for t in full["items"]} == expected
    dues = [_due(t) for t in full["items"]]
    assert dues == sorted(dues) and len(set(dues)) > 1

    paged = []
    for page in (1, 2, 3, 4):
        body = sales.get(f"/api/v1/tasks?per_page=2&page={page}").get_json()
        assert body["total"] == 6 and body["page"] == page
        paged += [t["id"] for t in body["items"]]
    assert paged == [t["id"] for t in full["items"]]

    colleague = sales2.get("/api/v1/tasks?per_page=100").get_json()
    assert {t["id"] for t in colleague["items"]} == {kickoffs[i]["id"] for i in (1, 3, 5, 6)}
    assert colleague["total"] == 4


def test_inbox_filters_apply_to_both_halves(people, backend):
    sales = people["sales"]
    kickoffs = _kickoffs(people)
    for task in (kickoffs[1], kickoffs[2]):
        assert sales.post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    everything = sales.get("/api/v1/tasks?per_page=100").get_json()["items"]
    by_id = {t["id"]: t for t in everything}

    acme = sales.get("/api/v1/tasks?per_page=100&account_id=ACME").get_json()
    assert [t["id"] for t in acme["items"]] == [t["id"] for t in everything if t["account_id"] == "ACME"]
    assert acme["total"] == 3 and {t["state"] for t in acme["items"]} == {"ready", "claimed"}

    overdue = sales.get("/api/v1/tasks?per_page=100&overdue=true").get_json()
    late = [t["id"] for t in everything if _due(t) < START]
    assert late and len(late) < len(everything)
    assert [t["id"] for t in overdue["items"]] == late and overdue["total"] == len(late)

    claimed = sales.get("/api/v1/tasks?per_page=1&state=claimed").get_json()
    assert claimed["total"] == 2 and len(claimed["items"]) == 1
    assert by_id[claimed["items"][0]["id"]]["state"] == "claimed"
    assert claimed["items"][0]["id"] == min((kickoffs[1], kickoffs[2]), key=lambda t: _due(by_id[t["id"]]))["id"]

    ready = sales.get("/api/v1/tasks?per_page=100&state=ready").get_json()
    assert [t["id"] for t in ready["items"]] == [t["id"] for t in everything if t["state"] == "ready"]
    assert ready["total"] == 5
    assert sales.get("/api/v1/tasks?state=completed").get_json() == {"items": [], "total": 0, "page": 1,
                                                                     "per_page": 20}
