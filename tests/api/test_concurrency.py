"""Two requests on the same task at the same moment: exactly one wins, the other gets 409.

Runs on SQLite (optimistic lock columns) and PostgreSQL (SELECT ... FOR UPDATE
plus the same columns); the threads start together on a barrier.
"""
from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from sqlalchemy import text

from bpm_server.database import db
from bpm_server.instances.service import lock_instance
from tests.api.flows import STAGE_DATA, open_task, start_project


def _race(calls) -> list[int]:
    barrier = threading.Barrier(len(calls))
    statuses: list[int] = [0] * len(calls)

    def run(i, call):
        barrier.wait()
        statuses[i] = call().status_code

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return statuses


def test_two_claims_at_once_one_wins(people):
    iid = start_project(people["sales"])["id"]
    task = open_task(people["sales"], iid, "kickoff")
    for _ in range(3):  # a few rounds: a race that only sometimes overlaps must still be right
        statuses = _race([lambda p=p, task=task: people[p].post(f"/api/v1/tasks/{task['id']}/claim")
                          for p in ("sales", "sales2")])
        assert Counter(statuses) == Counter({200: 1, 409: 1}), statuses
        holder = people["admin"].get(f"/api/v1/tasks/{task['id']}").get_json()["assignee"]
        assert holder in ("sales", "sales2")
        iid = start_project(people["sales"])["id"]
        task = open_task(people["sales"], iid, "kickoff")


def test_two_completions_at_once_one_wins_and_the_process_moves_once(people):
    for _ in range(3):
        iid = start_project(people["sales"])["id"]
        task = open_task(people["sales"], iid, "kickoff")
        statuses = _race([lambda p=p, task=task: people[p].post(f"/api/v1/tasks/{task['id']}/complete",
                                                                json={"data": STAGE_DATA["kickoff"]})
                          for p in ("sales", "sales2")])
        assert Counter(statuses) == Counter({200: 1, 409: 1}), statuses
        instance = people["admin"].get(f"/api/v1/process-instances/{iid}").get_json()
        assert [h["name"] for h in instance["history"]] == ["kickoff"]
        assert [t["name"] for t in instance["tasks"]] == ["needs_research"]


def test_claim_racing_completion_by_a_colleague(people):
    for _ in range(3):
        iid = start_project(people["sales"])["id"]
        task = open_task(people["sales"], iid, "kickoff")
        statuses = _race([
            lambda task=task: people["sales"].post(f"/api/v1/tasks/{task['id']}/complete",
                                                   json={"data": STAGE_DATA["kickoff"]}),
            lambda task=task: people["sales2"].post(f"/api/v1/tasks/{task['id']}/claim"),
        ])
        assert sorted(statuses) == [200, 409], statuses
        instance = people["admin"].get(f"/api/v1/process-instances/{iid}").get_json()
        if statuses[0] == 200:  # the completion won: the claim must not have stuck
            assert [h["completed_by"] for h in instance["history"]] == ["sales"]
        else:  # the claim won: the task is sales2's and still open
            assert instance["tasks"][0]["assignee"] == "sales2" and instance["history"] == []


def _sessions_waiting_for_a_lock(app) -> int:
    with app.app_context(), db.engine.connect() as conn:
        return conn.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                "AND wait_event_type = 'Lock'"))


@pytest.mark.parametrize("backend", ["postgresql"])  # SQLite has no row locks; its lock_version columns decide
def test_a_completion_waits_while_another_transaction_holds_the_instance_lock(people, synced_app):
    iid = start_project(people["sales"])["id"]
    task = open_task(people["sales"], iid, "kickoff")
    answers: list = []
    complete = threading.Thread(target=lambda: answers.append(
        people["sales"].post(f"/api/v1/tasks/{task['id']}/complete", json={"data": STAGE_DATA["kickoff"]})))

    with synced_app.app_context():
        lock_instance(db.session, iid)  # this connection now holds the instance, as a completing request would
        complete.start()
        # Wait (bounded) until PostgreSQL reports the completion's connection as waiting for a lock.
        deadline = time.monotonic() + 30
        while complete.is_alive() and not _sessions_waiting_for_a_lock(synced_app) and time.monotonic() < deadline:
            time.sleep(0.05)
        went_ahead = [(a.status_code, a.get_json()) for a in answers]
        assert complete.is_alive() and answers == [], \
            f"the completion went ahead while the instance was locked: {went_ahead}"
        assert _sessions_waiting_for_a_lock(synced_app) == 1
        db.session.commit()  # releases the lock
        db.session.remove()
    complete.join(timeout=60)
    assert not complete.is_alive()
    [answer] = answers
    assert answer.status_code == 200, answer.get_json()
    instance = people["admin"].get(f"/api/v1/process-instances/{iid}").get_json()
    assert [h["name"] for h in instance["history"]] == ["kickoff"]
    assert [t["name"] for t in instance["tasks"]] == ["needs_research"]
