"""The SLA breach log as auditors use it: filters, CSV export, who may read it,
and that nobody can change it, neither through the API nor in the database,
and that tampering behind the database's back is detected.

Three breaches are produced by moving the test clock (tests.conftest.START is
Monday 2026-03-02 09:00 in Shanghai; working hours 09:00-12:00, 13:00-18:00):

* BETA, model ``quick-check``, stage ``quick_check`` (sales, 1 working hour): breached Mon 10:00
* ACME (strategic), ``account-project`` ``kickoff`` (sales, 1 working day): breached Mon 18:00
* GAMMA, ``account-project`` ``needs_research`` (consulting, 5 working days from
  kickoff, done at once on Monday 09:00): breached Fri 2026-03-06 18:00
"""
from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import cast

import pytest
from flask import Flask
from sqlalchemy import Table, func, select, text, update
from sqlalchemy.exc import DBAPIError

from bpm_server.config import PROJECT_ROOT
from bpm_server.database import db
from bpm_server.modeling.models import ProcessModel
from bpm_server.sla.models import BreachEntry
from tests.api.flows import do_stage, start_project
from tests.conftest import START
from tests.fixtures.diagrams import sequence, user_task
from tests.support import at, move_clock, page_client

SIGNED = "2026-03-02T09:00:00+08:00"
QUICK = "quick-check"
API_COLUMNS = ["id", "process_instance_id", "process_model_id", "account_id", "task_name", "department",
               "assignee", "due_at", "breached_at"]
ACME_KICKOFF = ("ACME", "kickoff")
GAMMA_RESEARCH = ("GAMMA", "needs_research")
BETA_QUICK = ("BETA", "quick_check")


def breach_items(caller, **filters) -> list[dict]:
    response = caller.get("/api/v1/sla/breaches", query_string={"per_page": 200, **filters})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["total"] == len(body["items"])
    return body["items"]


def keys(items: list[dict]) -> set[tuple[str, str]]:
    return {(b["account_id"], b["task_name"]) for b in items}


def csv_rows(caller, **filters) -> tuple[list[str], list[dict[str, str]]]:
    response = caller.get("/api/v1/sla/breaches", query_string={"format": "csv", **filters})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/csv"
    reader = csv.reader(io.StringIO(response.get_data(as_text=True)))
    header, *rows = list(reader)
    return header, [dict(zip(header, row, strict=False)) for row in rows]


@pytest.fixture
def logged(leads, synced_app: Flask) -> dict:
    """Three breaches on three accounts, two models, three stages (see the module docstring)."""
    people = leads
    with synced_app.app_context():
        db.session.add(ProcessModel(id=QUICK, name="Quick check", description="", created_at=START))
        db.session.commit()
    sla = '<spiffworkflow:property name="sla" value="1 working hour"/>'
    response = people["owner"].post(f"/api/v1/process-models/{QUICK}/versions",
                                    data=sequence("quick_check_process", user_task("quick_check", "sales", extra=sla)),
                                    content_type="application/xml")
    assert response.status_code == 201, response.get_json()

    start_project(people["sales"], account_id="ACME", signed_at=SIGNED)
    gamma = start_project(people["sales"], account_id="GAMMA", signed_at=SIGNED)["id"]
    quick = people["sales"].post("/api/v1/process-instances",
                                 json={"process_model_id": QUICK, "account_id": "BETA", "data": {}})
    assert quick.status_code == 201, quick.get_json()
    do_stage(people, gamma, "kickoff")  # on time; needs research counts from here
    assert breach_items(people["auditor"]) == []
    move_clock(people["admin"], "2026-03-09T10:00:00+08:00")
    return people


# --------------------------------------------------------------------------- reading


def test_json_list_has_the_api_fields_for_each_breach(logged) -> None:
    items = breach_items(logged["auditor"])
    assert [(b["account_id"], b["task_name"]) for b in items] == [GAMMA_RESEARCH, ACME_KICKOFF, BETA_QUICK], \
        "newest breach first"
    by_key = {(b["account_id"], b["task_name"]): b for b in items}
    for item in items:
        assert set(API_COLUMNS) <= set(item), item
    assert by_key[BETA_QUICK]["process_model_id"] == QUICK
    assert by_key[ACME_KICKOFF]["process_model_id"] == by_key[GAMMA_RESEARCH]["process_model_id"] == "account-project"
    assert by_key[GAMMA_RESEARCH]["department"] == "consulting" and by_key[ACME_KICKOFF]["department"] == "sales"
    assert at(by_key[BETA_QUICK]["breached_at"]) == at("2026-03-02T10:00:00+08:00")
    assert at(by_key[ACME_KICKOFF]["breached_at"]) == at("2026-03-02T18:00:00+08:00")
    assert at(by_key[GAMMA_RESEARCH]["due_at"]) == at(by_key[GAMMA_RESEARCH]["breached_at"]) \
        == at("2026-03-06T18:00:00+08:00")


def test_csv_export_has_the_api_columns_and_one_row_per_breach(logged) -> None:
    items = breach_items(logged["auditor"])
    header, rows = csv_rows(logged["auditor"])
    assert header[:len(API_COLUMNS)] == API_COLUMNS
    # Escalations are follow-up entries of a breach, not rows of their own.
    assert any(item["escalations"] for item in items)
    assert len(rows) == len(items) == 3
    by_id = {item["id"]: item for item in items}
    assert set(by_id) == {row["id"] for row in rows}
    for row in rows:
        item = by_id[row["id"]]
        for column in ("process_instance_id", "process_model_id", "account_id", "task_name", "department"):
            assert row[column] == item[column], column
        assert row["assignee"] == (item["assignee"] or "")
        assert at(row["due_at"]) == at(item["due_at"]) and at(row["breached_at"]) == at(item["breached_at"])



def test_csv_cells_that_a_spreadsheet_would_run_as_formulas_are_quoted() -> None:
    """An auditor opens the export in a spreadsheet: a value from outside (an account id,
    a user name) that starts with = + - @ must arrive as text, not run as a formula."""
    from bpm_server.sla.breaches import CSV_COLUMNS, to_csv

    row: dict = dict.fromkeys(CSV_COLUMNS)
    row.update(id="b-1", account_id="=HYPERLINK(\"http://x\")", task_name="+kickoff", department="-sales",
               assignee="@mallory", process_model_id="quick", due_at=START, escalations=[])
    [header, cells] = list(csv.reader(io.StringIO(to_csv([row]))))
    got = dict(zip(header, cells, strict=True))
    assert got["account_id"] == "\'=HYPERLINK(\"http://x\")"
    assert (got["task_name"], got["department"], got["assignee"]) == ("'+kickoff", "'-sales", "'@mallory")
    assert got["id"] == "b-1" and got["process_model_id"] == "quick"  # ordinary text is left alone
    assert got["due_at"] == START.isoformat() and got["completed_at"] == "" and got["escalations"] == ""

def test_csv_export_is_not_paged(logged) -> None:
    page = logged["auditor"].get("/api/v1/sla/breaches", query_string={"per_page": 1}).get_json()
    assert len(page["items"]) == 1 and page["total"] == 3
    _, rows = csv_rows(logged["auditor"], per_page=1)
    assert len(rows) == 3


FILTER_CASES = [
    ({}, {ACME_KICKOFF, GAMMA_RESEARCH, BETA_QUICK}),
    ({"process_model_id": "account-project"}, {ACME_KICKOFF, GAMMA_RESEARCH}),
    ({"process_model_id": QUICK}, {BETA_QUICK}),
    ({"task_name": "kickoff"}, {ACME_KICKOFF}),
    ({"task_name": "needs_research"}, {GAMMA_RESEARCH}),
    ({"department": "sales"}, {ACME_KICKOFF, BETA_QUICK}),
    ({"department": "consulting"}, {GAMMA_RESEARCH}),
    ({"account_id": "GAMMA"}, {GAMMA_RESEARCH}),
    ({"account_id": "ACME"}, {ACME_KICKOFF}),
    ({"account_id": "NOBODY"}, set()),
    ({"from": "2026-03-02T12:00:00+08:00"}, {ACME_KICKOFF, GAMMA_RESEARCH}),
    ({"to": "2026-03-02T12:00:00+08:00"}, {BETA_QUICK}),
    ({"from": "2026-03-02T12:00:00+08:00", "to": "2026-03-03T00:00:00+08:00"}, {ACME_KICKOFF}),
    ({"from": "2026-03-05T00:00:00Z"}, {GAMMA_RESEARCH}),
    ({"department": "sales", "process_model_id": "account-project"}, {ACME_KICKOFF}),
]


def test_each_filter_narrows_json_and_csv(logged) -> None:
    for filters, expected in FILTER_CASES:
        assert keys(breach_items(logged["auditor"], **filters)) == expected, filters
        _, rows = csv_rows(logged["owner"], **filters)
        assert {(r["account_id"], r["task_name"]) for r in rows} == expected, ("csv", filters)


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_to_before_from_is_rejected(logged, fmt: str) -> None:
    response = logged["auditor"].get("/api/v1/sla/breaches", query_string={
        "from": "2026-03-05T00:00:00+08:00", "to": "2026-03-04T00:00:00+08:00", "format": fmt})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] and "to" in (error.get("details") or {}), error


@pytest.mark.parametrize("filters", [{"from": "last tuesday"}, {"to": "2026-03-04"}, {"format": "xlsx"}])
def test_unreadable_filters_are_invalid_input(logged, filters: dict) -> None:
    response = logged["auditor"].get("/api/v1/sla/breaches", query_string=filters)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"]


# --------------------------------------------------------------------------- who may read


@pytest.mark.parametrize("who", ["auditor", "owner", "admin"])
def test_auditors_owners_and_admins_read_the_log(logged, who: str) -> None:
    assert len(breach_items(logged[who])) == 3
    assert len(csv_rows(logged[who])[1]) == 3
    assert logged[who].get("/api/v1/sla/breaches/verify").status_code == 200


def test_staff_and_integrations_may_not_read_the_log(logged) -> None:
    for who in ("sales", "consulting", "finance", "erp"):
        for query in ({}, {"format": "csv"}, {"account_id": "ACME"}):
            response = logged[who].get("/api/v1/sla/breaches", query_string=query)
            assert response.status_code == 403, (who, query, response.status_code)
            assert response.get_json()["error"]["code"]
            assert "ACME" not in response.get_data(as_text=True)
        assert logged[who].get("/api/v1/sla/breaches/verify").status_code == 403, who


def test_anonymous_callers_get_401(logged) -> None:
    client = logged["auditor"].client
    assert client.get("/api/v1/sla/breaches").status_code == 401
    assert client.get("/api/v1/sla/breaches?format=csv").status_code == 401


# --------------------------------------------------------------------------- no changes, ever


@pytest.mark.parametrize("who", ["admin", "auditor", "owner"])
def test_no_endpoint_changes_or_removes_entries(logged, who: str) -> None:
    caller = logged[who]
    before = breach_items(logged["auditor"])
    target = before[0]["id"]
    attempts = []
    for path in ("/api/v1/sla/breaches", f"/api/v1/sla/breaches/{target}", "/api/v1/sla/breaches/verify"):
        for method in ("PUT", "PATCH", "DELETE", "POST"):
            response = caller.client.open(path, method=method, json={"assignee": "mallory", "id": target},
                                          headers={"Authorization": f"Bearer {caller.token}"})
            attempts.append((method, path, response.status_code))
            assert response.status_code in (404, 405), (method, path, response.status_code, response.get_json())
            assert response.get_json()["error"]["code"], (method, path)
    assert not [a for a in attempts if 200 <= a[2] < 300]
    assert breach_items(logged["auditor"]) == before
    assert logged["auditor"].get("/api/v1/sla/breaches/verify").get_json()["intact"] is True


def _snapshot(app: Flask) -> list[tuple]:
    with app.app_context():
        try:
            rows = db.session.execute(text(
                "SELECT seq, id, kind, assignee, breached_at, hash FROM sla_breach_log ORDER BY seq")).all()
            return [tuple(r) for r in rows]
        finally:
            db.session.remove()


REFUSED_SQL = [
    "UPDATE sla_breach_log SET assignee = 'mallory' WHERE seq = 1",
    "UPDATE sla_breach_log SET breached_at = due_at",
    "UPDATE sla_breach_log SET hash = prev_hash WHERE kind = 'breach'",
    "DELETE FROM sla_breach_log WHERE seq = 1",
    "DELETE FROM sla_breach_log",
]


def _assert_refused(app: Flask, sql: str) -> None:
    with app.app_context():
        try:
            with pytest.raises(DBAPIError, match="append-only"):
                db.session.execute(text(sql))
                db.session.commit()
            db.session.rollback()
        finally:
            db.session.remove()


def test_database_refuses_update_and_delete(logged, synced_app: Flask) -> None:
    before = _snapshot(synced_app)
    assert len(before) >= 3
    for sql in REFUSED_SQL:
        _assert_refused(synced_app, sql)
        assert _snapshot(synced_app) == before, sql
    assert logged["auditor"].get("/api/v1/sla/breaches/verify").get_json()["intact"] is True


# --------------------------------------------------------------------------- tamper detection


def audit_verify(database_url: str, cwd: Path, *args: str, command: str = "verify",
                 **env_extra: str) -> subprocess.CompletedProcess[str]:
    """The real ``bpm-server audit verify`` (or another ``audit`` command), configured by environment only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BPM_")}
    env.update(BPM_DATABASE_URL=database_url,
               PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")])), **env_extra)
    return subprocess.run([sys.executable, "-m", "bpm_server.cli", "audit", command, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def _bypass_trigger_and_run(app: Flask, sql: str, params: dict) -> None:
    """What an attacker with database access could do: get past the append-only trigger."""
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("ALTER TABLE sla_breach_log DISABLE TRIGGER sla_breach_log_append_only"))
                conn.execute(text(sql), params)
                conn.execute(text("ALTER TABLE sla_breach_log ENABLE TRIGGER sla_breach_log_append_only"))
            else:
                conn.execute(text("DROP TRIGGER sla_breach_log_no_update"))
                conn.execute(text("DROP TRIGGER sla_breach_log_no_delete"))
                conn.execute(text(sql), params)


def _names_entry(output: str, seq: int) -> bool:
    return re.search(rf"\bentry {seq}\b", output) is not None


def test_audit_verify_detects_an_edited_entry(logged, synced_app: Flask, database_url: str,
                                              tmp_path: Path) -> None:
    result = audit_verify(database_url, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "intact" in result.stdout

    # Rewrite who was responsible for GAMMA's breach (not the first entry of the chain).
    [gamma] = breach_items(logged["auditor"], account_id="GAMMA")
    assert gamma["seq"] > 1
    _bypass_trigger_and_run(synced_app, "UPDATE sla_breach_log SET assignee = :who WHERE seq = :seq",
                            {"who": "mallory", "seq": gamma["seq"]})
    assert breach_items(logged["auditor"], account_id="GAMMA")[0]["assignee"] == "mallory"

    result = audit_verify(database_url, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert _names_entry(output, gamma["seq"]), output
    assert "intact" not in result.stdout
    status = logged["auditor"].get("/api/v1/sla/breaches/verify").get_json()
    assert status["intact"] is False and status["first_broken_seq"] == gamma["seq"]
    assert status["first_broken_id"] == gamma["id"]
    if synced_app.extensions["bpm"].config.database_url.startswith("postgresql"):
        _assert_refused(synced_app, REFUSED_SQL[0])  # the trigger is back on for everyone else


# Every column the chain vouches for, with a forged value an attacker might want there.
FORGERIES = {
    "id": lambda old: "00000000-0000-0000-0000-000000000000",
    "kind": lambda old: "completion",
    "breach_id": lambda old: "00000000-0000-0000-0000-000000000001",
    "process_instance_id": lambda old: "00000000-0000-0000-0000-000000000002",
    "process_model_id": lambda old: QUICK,
    "account_id": lambda old: "BETA",
    "task_id": lambda old: "00000000-0000-0000-0000-000000000003",
    "task_name": lambda old: "invoicing",
    "department": lambda old: "finance",
    "assignee": lambda old: "mallory",
    "due_at": lambda old: old + timedelta(days=3),  # "it was not due yet"
    "breached_at": lambda old: old + timedelta(days=3),
    "recorded_at": lambda old: old + timedelta(hours=1),
    "details": lambda old: {**old, "sla": "20 working days"},
}


@pytest.mark.parametrize("backend", ["postgresql"])  # detection is the same code on both databases
@pytest.mark.parametrize("column", sorted(FORGERIES))
def test_editing_any_column_of_an_entry_breaks_the_chain_there(logged, synced_app: Flask, column: str) -> None:
    [gamma] = breach_items(logged["auditor"], account_id="GAMMA")
    table = cast(Table, BreachEntry.__table__)  # a mapped class's __table__ is its Table
    with synced_app.app_context():
        old = db.session.execute(select(table.c[column]).where(table.c.seq == gamma["seq"])).scalar_one()
        db.session.remove()
    forged = FORGERIES[column](old)
    assert forged != old
    with synced_app.app_context(), db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE sla_breach_log DISABLE TRIGGER sla_breach_log_append_only"))
        conn.execute(update(table).where(table.c.seq == gamma["seq"]).values({column: forged}))
        conn.execute(text("ALTER TABLE sla_breach_log ENABLE TRIGGER sla_breach_log_append_only"))

    status = logged["auditor"].get("/api/v1/sla/breaches/verify").get_json()
    assert status["intact"] is False, f"{column} changed from {old!r} to {forged!r} and the chain still verifies"
    assert status["first_broken_seq"] == gamma["seq"]
    assert status["reason"] == "its content does not match its hash"


def test_audit_verify_detects_a_removed_last_entry(logged, synced_app: Flask, database_url: str,
                                                   tmp_path: Path) -> None:
    with synced_app.app_context():
        last = db.session.scalar(select(BreachEntry.seq).order_by(BreachEntry.seq.desc()).limit(1))
        db.session.remove()
    assert audit_verify(database_url, tmp_path).returncode == 0

    _bypass_trigger_and_run(synced_app, "DELETE FROM sla_breach_log WHERE seq = :seq", {"seq": last})

    result = audit_verify(database_url, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert last is not None and _names_entry(output, last), output
    status = logged["auditor"].get("/api/v1/sla/breaches/verify").get_json()
    assert status["intact"] is False and status["first_broken_seq"] == last


def test_audit_verify_detects_a_removed_middle_entry(logged, synced_app: Flask, database_url: str,
                                                     tmp_path: Path) -> None:
    [acme] = breach_items(logged["auditor"], account_id="ACME")
    _bypass_trigger_and_run(synced_app, "DELETE FROM sla_breach_log WHERE seq = :seq", {"seq": acme["seq"]})
    result = audit_verify(database_url, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and _names_entry(output, acme["seq"]), output
    status = logged["auditor"].get("/api/v1/sla/breaches/verify").get_json()
    assert status["intact"] is False and status["first_broken_seq"] == acme["seq"]


def test_audit_verify_detects_a_removed_head_row(logged, synced_app: Flask, database_url: str,
                                                 tmp_path: Path) -> None:
    """Removing the last entry and the head that remembers it must not pass as a shorter, intact log."""
    with synced_app.app_context():
        last = db.session.scalar(select(BreachEntry.seq).order_by(BreachEntry.seq.desc()).limit(1))
        db.session.remove()
    _bypass_trigger_and_run(synced_app, "DELETE FROM sla_breach_log WHERE seq = :seq", {"seq": last})
    with synced_app.app_context(), db.engine.begin() as conn:  # the head row has no trigger: only the log's rows do
        conn.execute(text("DELETE FROM sla_breach_log_head"))

    result = audit_verify(database_url, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "head" in output, output
    status = logged["auditor"].get("/api/v1/sla/breaches/verify").get_json()
    assert status["intact"] is False and "head" in status["reason"]


# --------------------------------------------------------------------------- the breach-log page's chain status


def _chain_on_page(client, query: str = "") -> str:
    response = client.get(f"/breaches?lang=en{query}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'data-testid="chain-checked"' in html
    return "intact" if 'data-testid="chain-intact"' in html else "broken"


def test_page_walks_the_whole_chain_on_demand_and_at_least_every_ten_minutes(logged, synced_app: Flask) -> None:
    client = page_client(synced_app, "auditor")
    assert _chain_on_page(client) == "intact"
    [gamma] = breach_items(logged["auditor"], account_id="GAMMA")
    _bypass_trigger_and_run(synced_app, "UPDATE sla_breach_log SET assignee = :who WHERE seq = :seq",
                            {"who": "mallory", "seq": gamma["seq"]})
    # The API always walks the whole chain; the page relies on its last full walk
    # (it says when that was) for up to ten minutes, unless asked to check now.
    assert logged["auditor"].get("/api/v1/sla/breaches/verify").get_json()["intact"] is False
    assert _chain_on_page(client) == "intact"
    move_clock(logged["admin"], "2026-03-09T10:10:00+08:00")
    assert _chain_on_page(client) == "broken"


def test_check_now_on_the_page_finds_an_edited_old_entry_at_once(logged, synced_app: Flask) -> None:
    client = page_client(synced_app, "auditor")
    assert _chain_on_page(client) == "intact"
    _bypass_trigger_and_run(synced_app, "UPDATE sla_breach_log SET assignee = :who WHERE seq = 1", {"who": "mallory"})
    assert _chain_on_page(client, "&verify=1") == "broken"
    assert _chain_on_page(client) == "broken"  # and stays so: a broken chain is walked again on every view


def test_entries_added_since_the_last_full_walk_are_checked_on_every_view(logged, synced_app: Flask) -> None:
    quick = logged["sales"].post("/api/v1/process-instances",
                                 json={"process_model_id": QUICK, "account_id": "BETA", "data": {}})
    assert quick.status_code == 201  # one working hour: due at 11:00
    move_clock(logged["admin"], "2026-03-09T10:59:00+08:00")
    client = page_client(synced_app, "auditor")
    assert _chain_on_page(client) == "intact"  # the full walk the next view builds on
    with synced_app.app_context():
        before = db.session.scalar(select(func.max(BreachEntry.seq)))
    move_clock(logged["admin"], "2026-03-09T11:01:00+08:00")
    with synced_app.app_context():
        newest = db.session.scalar(select(func.max(BreachEntry.seq)))
    assert newest is not None and newest > before
    _bypass_trigger_and_run(synced_app, "UPDATE sla_breach_log SET assignee = :who WHERE seq = :seq",
                            {"who": "mallory", "seq": newest})
    assert _chain_on_page(client) == "broken"  # two minutes after the full walk


# --------------------------------------------------------------------------- filtering as a person types


def test_the_account_filter_takes_part_of_an_id_or_a_name_in_any_case(logged) -> None:
    auditor = logged["auditor"]
    assert keys(breach_items(auditor, account="acm")) == {ACME_KICKOFF}
    assert keys(breach_items(auditor, account="gamma LTD")) == {GAMMA_RESEARCH}  # the account's name
    assert keys(breach_items(auditor, account="ltd")) == {ACME_KICKOFF, GAMMA_RESEARCH, BETA_QUICK}
    assert breach_items(auditor, account="%") == []  # a LIKE wildcard is a character like any other
    assert keys(breach_items(auditor, account_id="ACME")) == {ACME_KICKOFF}  # the exact filter is unchanged
    assert breach_items(auditor, account_id="acme") == []


def test_the_breach_log_page_offers_stages_by_title_and_finds_accounts_as_typed(logged, synced_app: Flask) -> None:
    client = page_client(synced_app, "auditor")
    page = client.get("/breaches").get_data(as_text=True)
    stages = dict(re.findall(r'<option value="([^"]+)" >([^<]+)</option>',
                             page.split('data-testid="filter-stage"')[1].split("</select>")[0]))
    assert stages == {"kickoff": "项目启动 · 大客户新项目", "needs_research": "需求调研 · 大客户新项目",
                      "quick_check": "Quick Check · Quick check"}  # a model without a catalogue: its own words
    chosen = client.get("/breaches?task_name=needs_research").get_data(as_text=True)
    assert chosen.count('data-testid="breach-row"') == 1
    assert '<option value="needs_research" selected>' in chosen

    found = client.get("/breaches?account=beta").get_data(as_text=True)
    assert found.count('data-testid="breach-row"') == 1
    assert 'value="beta"' in found  # the form keeps what was typed
    link = re.search(r'href="([^"]+)" data-testid="export-csv"', found)
    assert link is not None, "the page offers the CSV of what it shows"
    csv_link = link.group(1).replace("&amp;", "&")
    assert "account=beta" in csv_link
    rows = list(csv.DictReader(io.StringIO(logged["auditor"].get(csv_link).get_data(as_text=True))))
    assert [(r["account_id"], r["task_name"]) for r in rows] == [BETA_QUICK]
