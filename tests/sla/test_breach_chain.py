"""What the breach log's chain check tells an auditor, in the process (``/api/v1/sla/breaches/verify``
and the breach-log page), for each way the log can be tampered with behind the database's back.

test_breach_log.py shows the same through ``bpm-server audit verify`` in a child process; these
read the answer itself (which entry, how many were checked, why), with the same three breaches.
"""
from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from flask import Flask
from sqlalchemy import func, select, text, update

from bpm_server.database import db
from bpm_server.sla.models import BreachEntry, BreachLogHead
from tests.sla.test_breach_log import (  # noqa: F401 (logged is a fixture)
    _bypass_trigger_and_run,
    _chain_on_page,
    breach_items,
    logged,
)
from tests.support import move_clock, page_client


def chain(people) -> dict:
    response = people["auditor"].get("/api/v1/sla/breaches/verify")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def entries(app: Flask) -> list[tuple[int, str]]:
    with app.app_context():
        rows = db.session.execute(select(BreachEntry.seq, BreachEntry.id).order_by(BreachEntry.seq)).all()
        db.session.remove()
    return [(seq, entry_id) for seq, entry_id in rows]


# Two entries as an earlier release wrote them: the hash is SHA-256 over the previous hash and the
# entry's canonical JSON (keys sorted, no spaces, UTF-8 as is), written out here by hand, so a
# change to what the chain covers or how it is spelled fails this test instead of every stored log.
EARLIER = [
    ({"seq": 1, "id": "e0000000-0000-0000-0000-000000000001", "kind": "breach", "breach_id": None,
      "process_instance_id": "10000000-0000-0000-0000-000000000001", "process_model_id": "account-project",
      "account_id": "ACME", "task_id": "20000000-0000-0000-0000-000000000001", "task_name": "kickoff",
      "department": "sales", "assignee": "sales", "details": {"sla": "1 个工作日", "clock": "kickoff"},
      "clock_kind": None},
     '{"account_id":"ACME","assignee":"sales","breach_id":null,"breached_at":"2026-03-02T10:00:00+00:00",'
     '"department":"sales","details":{"clock":"kickoff","sla":"1 个工作日"},"due_at":"2026-03-02T10:00:00+00:00",'
     '"id":"e0000000-0000-0000-0000-000000000001","kind":"breach",'
     '"process_instance_id":"10000000-0000-0000-0000-000000000001","process_model_id":"account-project",'
     '"recorded_at":"2026-03-02T10:00:00+00:00","seq":1,"task_id":"20000000-0000-0000-0000-000000000001",'
     '"task_name":"kickoff"}'),
    ({"seq": 2, "id": "e0000000-0000-0000-0000-000000000002", "kind": "breach", "breach_id": None,
      "process_instance_id": "10000000-0000-0000-0000-000000000001", "process_model_id": "account-project",
      "account_id": "ACME", "task_id": "20000000-0000-0000-0000-000000000001", "task_name": "kickoff",
      "department": "sales", "assignee": None, "details": {"clock": "first_response"}, "clock_kind": "response"},
     '{"account_id":"ACME","assignee":null,"breach_id":null,"breached_at":"2026-03-02T10:00:00+00:00",'
     '"clock_kind":"response","department":"sales","details":{"clock":"first_response"},'
     '"due_at":"2026-03-02T10:00:00+00:00","id":"e0000000-0000-0000-0000-000000000002","kind":"breach",'
     '"process_instance_id":"10000000-0000-0000-0000-000000000001","process_model_id":"account-project",'
     '"recorded_at":"2026-03-02T10:00:00+00:00","seq":2,"task_id":"20000000-0000-0000-0000-000000000001",'
     '"task_name":"kickoff"}'),
]


def test_a_log_written_by_an_earlier_release_still_verifies(people, synced_app: Flask) -> None:
    moment = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    prev = "0" * 64
    with synced_app.app_context():
        for columns, canonical in EARLIER:
            digest = hashlib.sha256((prev + canonical).encode()).hexdigest()
            db.session.add(BreachEntry(**columns, due_at=moment, breached_at=moment, recorded_at=moment,
                                       prev_hash=prev, hash=digest))
            prev = digest
        db.session.execute(update(BreachLogHead).where(BreachLogHead.id == 1).values(seq=2, hash=prev))
        db.session.commit()
        db.session.remove()
    assert chain(people) == {"intact": True, "entries": 2, "first_broken_seq": None, "first_broken_id": None,
                             "reason": None}
    # And the named clock's kind is vouched for like every other column.
    _bypass_trigger_and_run(synced_app, "UPDATE sla_breach_log SET clock_kind = 'resolution' WHERE seq = 2", {})
    assert chain(people)["first_broken_seq"] == 2


def test_an_untouched_log_is_intact_with_every_entry_counted(logged, synced_app: Flask) -> None:  # noqa: F811
    assert len(entries(synced_app)) >= 3
    assert chain(logged) == {"intact": True, "entries": len(entries(synced_app)), "first_broken_seq": None,
                             "first_broken_id": None, "reason": None}


def test_an_edited_entry_is_named_with_the_entries_before_it_counted(logged, synced_app: Flask) -> None:  # noqa: F811
    [gamma] = breach_items(logged["auditor"], account_id="GAMMA")
    assert gamma["seq"] > 1
    _bypass_trigger_and_run(synced_app, "UPDATE sla_breach_log SET assignee = :who WHERE seq = :seq",
                            {"who": "mallory", "seq": gamma["seq"]})
    assert chain(logged) == {"intact": False, "entries": gamma["seq"] - 1, "first_broken_seq": gamma["seq"],
                             "first_broken_id": gamma["id"], "reason": "its content does not match its hash"}


def test_an_entry_chained_to_another_predecessor_is_named(logged, synced_app: Flask) -> None:  # noqa: F811
    """Its own content and hash untouched, but it no longer follows the entry before it."""
    [gamma] = breach_items(logged["auditor"], account_id="GAMMA")
    _bypass_trigger_and_run(synced_app, "UPDATE sla_breach_log SET prev_hash = :forged WHERE seq = :seq",
                            {"forged": "f" * 64, "seq": gamma["seq"]})
    assert chain(logged) == {"intact": False, "entries": gamma["seq"] - 1, "first_broken_seq": gamma["seq"],
                             "first_broken_id": gamma["id"],
                             "reason": "its prev_hash does not match the entry before"}


def test_a_removed_middle_entry_is_named_by_its_number(logged, synced_app: Flask) -> None:  # noqa: F811
    [acme] = breach_items(logged["auditor"], account_id="ACME")
    assert 1 < acme["seq"] < entries(synced_app)[-1][0]
    _bypass_trigger_and_run(synced_app, "DELETE FROM sla_breach_log WHERE seq = :seq", {"seq": acme["seq"]})
    assert chain(logged) == {"intact": False, "entries": acme["seq"] - 1, "first_broken_seq": acme["seq"],
                             "first_broken_id": None, "reason": f"entry {acme['seq']} is missing"}


def test_a_removed_first_entry_is_named(logged, synced_app: Flask) -> None:  # noqa: F811
    _bypass_trigger_and_run(synced_app, "DELETE FROM sla_breach_log WHERE seq = 1", {})
    assert chain(logged) == {"intact": False, "entries": 0, "first_broken_seq": 1, "first_broken_id": None,
                             "reason": "entry 1 is missing"}


def test_a_removed_last_entry_is_seen_from_the_head(logged, synced_app: Flask) -> None:  # noqa: F811
    last = entries(synced_app)[-1][0]
    _bypass_trigger_and_run(synced_app, "DELETE FROM sla_breach_log WHERE seq = :seq", {"seq": last})
    assert chain(logged) == {
        "intact": False, "entries": last - 1, "first_broken_seq": last, "first_broken_id": None,
        "reason": f"the log ends at entry {last - 1} but the head says {last}: entries were removed"}


def test_a_head_that_remembers_another_last_hash_breaks_the_chain(logged, synced_app: Flask) -> None:  # noqa: F811
    """The last entry replaced by a forged one chained properly would leave the head's hash behind."""
    last = entries(synced_app)[-1][0]
    with synced_app.app_context(), db.engine.begin() as conn:  # the head row has no trigger
        conn.execute(text("UPDATE sla_breach_log_head SET hash = :forged"), {"forged": "e" * 64})
    status = chain(logged)
    assert (status["intact"], status["entries"], status["first_broken_seq"]) == (False, last, last + 1)


def test_a_removed_head_row_is_reported_as_such(logged, synced_app: Flask) -> None:  # noqa: F811
    count = len(entries(synced_app))
    with synced_app.app_context(), db.engine.begin() as conn:
        conn.execute(text("DELETE FROM sla_breach_log_head"))
    assert chain(logged) == {"intact": False, "entries": count, "first_broken_seq": None, "first_broken_id": None,
                             "reason": "the log's head row is missing"}


def test_new_untouched_entries_keep_the_page_intact_between_full_walks(logged, synced_app: Flask) -> None:  # noqa: F811
    """The page checks only what was added since its last full walk, chained on from where that walk ended."""
    quick = logged["sales"].post("/api/v1/process-instances",
                                 json={"process_model_id": "quick-check", "account_id": "BETA", "data": {}})
    assert quick.status_code == 201  # one working hour: due at 11:00
    move_clock(logged["admin"], "2026-03-09T10:59:00+08:00")
    client = page_client(synced_app, "auditor")
    assert _chain_on_page(client) == "intact"  # the full walk the next view builds on
    before = len(entries(synced_app))
    move_clock(logged["admin"], "2026-03-09T11:01:00+08:00")  # two minutes later: not yet a full walk
    with synced_app.app_context():
        assert (db.session.scalar(select(func.count()).select_from(BreachEntry)) or 0) > before
        db.session.remove()
    assert _chain_on_page(client) == "intact"
    assert chain(logged)["intact"] is True
