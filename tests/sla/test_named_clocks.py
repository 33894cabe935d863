"""Several clocks per stage and per instance (``slaClock.<name>.*``), through the API
with the test clock: a response clock stops at the first action, an ola clock adds
up a department's time across stages, an end_to_end clock spans named stages. Each
breaches into the breach log with its kind, and the chain still verifies.

The clock starts on Monday 2026-03-02 09:00 in Shanghai; working hours are
09:00-12:00 and 13:00-18:00 (tests.conftest.START).
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from xml.sax.saxutils import quoteattr

import pytest

from bpm_server.config import PROJECT_ROOT
from bpm_server.database import db
from bpm_server.sla.models import BreachEntry
from tests.api.flows import do_stage, open_task, start_project
from tests.support import at, move_clock

BPMN = PROJECT_ROOT / "process_models" / "account-project" / "account-project.bpmn"
UPLOAD = "/api/v1/process-models/account-project/versions"
SIGNED = "2026-03-02T09:00:00+08:00"


def with_clocks(clocks: dict[str, dict[str, str]]) -> bytes:
    """The account-project diagram with extension properties added to some user tasks."""
    xml = BPMN.read_text("utf-8")
    for element, props in clocks.items():
        start = xml.index(f'<bpmn:userTask id="{element}"')
        end = xml.index("</spiffworkflow:properties>", start)
        added = "".join(f"<spiffworkflow:property name={quoteattr(k)} value={quoteattr(v)} />"
                        for k, v in props.items())
        xml = xml[:end] + added + xml[end:]
    return xml.encode()


def publish(people, clocks: dict[str, dict[str, str]]) -> None:
    response = people["owner"].post(UPLOAD, data=with_clocks(clocks), content_type="application/xml")
    assert response.status_code == 201, response.get_json()


def breaches(caller, **filters) -> list[dict]:
    response = caller.get("/api/v1/sla/breaches", query_string=filters)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def test_a_response_clock_breaches_when_nobody_acts_in_time_and_not_when_someone_does(people):
    publish(people, {"kickoff": {"slaClock.first_touch.kind": "response",
                                 "slaClock.first_touch.length": "2 working hours"}})
    sales = people["sales"]
    ignored = start_project(sales, account_id="GAMMA", signed_at=SIGNED)["id"]
    claimed = start_project(sales, account_id="GAMMA", signed_at=SIGNED)["id"]
    commented = start_project(sales, account_id="GAMMA", signed_at=SIGNED)["id"]

    move_clock(people["admin"], "2026-03-02T10:30:00+08:00")
    assert sales.post(f"/api/v1/tasks/{open_task(sales, claimed, 'kickoff')['id']}/claim").status_code == 200
    task = open_task(sales, commented, "kickoff")
    response = sales.post(f"/api/v1/tasks/{task['id']}/comments", json={"body": "已联系客户 今天下午回复"})
    assert response.status_code in (200, 201), response.get_json()

    move_clock(people["admin"], "2026-03-02T11:30:00+08:00")  # due 11:00 (2 working hours from 09:00)
    [breach] = breaches(people["auditor"])
    assert breach["process_instance_id"] == ignored
    assert breach["kind"] == "response" and breach["clock"] == "first_touch" and breach["task_name"] == "kickoff"
    assert at(breach["breached_at"]) == at("2026-03-02T11:00:00+08:00")
    assert [b["process_instance_id"] for b in breaches(people["auditor"], kind="response")] == [ignored]
    assert breaches(people["auditor"], kind="resolution") == []
    assert breaches(people["auditor"], kind="ola") == []
    # The dashboard's numbers tell the kinds apart too.
    stats = people["owner"].get("/api/v1/sla/stats", query_string={"from": "2026-03-01T00:00:00+08:00"}).get_json()
    assert stats["breaches_by_kind"] == {"response": 1, "resolution": 0, "ola": 0, "end_to_end": 0}
    assert [(b["kind"], b["clock"], b["process_instance_id"]) for b in stats["open_breaches"]] == [
        ("response", "first_touch", ignored)]

    # The stage's timeline says which clock breached (its own SLA has not).
    late = open_task(sales, ignored, "kickoff")
    events = sales.get(f"/api/v1/tasks/{late['id']}/timeline").get_json()["events"]
    assert [(e["kind"], e["clock"], e["clock_kind"]) for e in events if e["kind"] in ("warning", "breach")] == [
        ("warning", "first_touch", "response"), ("breach", "first_touch", "response")]

    # The late first action is logged as the breach's follow-up, the breach entry stays as it was.
    assert sales.post(f"/api/v1/tasks/{late['id']}/claim").status_code == 200
    [breach] = breaches(people["auditor"], kind="response")
    assert breach["completed_by"] == "sales" and breach["completed_at"].startswith("2026-03-02T03:30")


def test_an_ola_clock_adds_up_a_departments_time_across_its_stages(people):
    # Sales holds kickoff and solution_signoff; consulting's needs_research in between does not count.
    publish(people, {"kickoff": {"slaClock.sales_time.kind": "ola", "slaClock.sales_time.length": "3 working hours"}})
    iid = start_project(people["sales"], account_id="GAMMA", signed_at=SIGNED)["id"]
    move_clock(people["admin"], "2026-03-02T10:00:00+08:00")
    do_stage(people, iid, "kickoff")  # sales used 1 working hour
    move_clock(people["admin"], "2026-03-03T09:00:00+08:00")  # a day in consulting: sales' clock stands still
    assert breaches(people["auditor"], kind="ola") == []
    do_stage(people, iid, "needs_research")  # solution_signoff opens: 2 working hours left

    move_clock(people["admin"], "2026-03-03T10:30:00+08:00")
    assert breaches(people["auditor"], kind="ola") == []
    move_clock(people["admin"], "2026-03-03T11:30:00+08:00")
    [breach] = breaches(people["auditor"], kind="ola")
    assert breach["clock"] == "sales_time" and breach["department"] == "sales"
    assert breach["task_name"] == "solution_signoff" and breach["process_instance_id"] == iid
    assert at(breach["breached_at"]) == at("2026-03-03T11:00:00+08:00")


def test_an_ola_clock_stands_still_while_its_stage_is_paused(people):
    publish(people, {"kickoff": {"slaClock.sales_time.kind": "ola", "slaClock.sales_time.length": "3 working hours"}})
    iid = start_project(people["sales"], account_id="GAMMA", signed_at=SIGNED)["id"]
    do_stage(people, iid, "kickoff")
    do_stage(people, iid, "needs_research")
    task = open_task(people["sales"], iid, "solution_signoff")  # slaPausable
    assert people["sales"].post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    move_clock(people["admin"], "2026-03-02T10:00:00+08:00")
    response = people["sales"].post(f"/api/v1/tasks/{task['id']}/sla/pause", json={"reason": "等客户确认方案"})
    assert response.status_code == 200, response.get_json()
    move_clock(people["admin"], "2026-03-03T10:00:00+08:00")  # a day paused: not a breach
    assert breaches(people["auditor"], kind="ola") == []
    response = people["sales"].post(f"/api/v1/tasks/{task['id']}/sla/resume", json={"reason": "客户已回复"})
    assert response.status_code == 200, response.get_json()
    move_clock(people["admin"], "2026-03-03T12:30:00+08:00")  # 1 h before the pause + 2 h after it: due 12:00
    [breach] = breaches(people["auditor"], kind="ola")
    assert at(breach["breached_at"]) == at("2026-03-03T12:00:00+08:00")


def test_a_named_resolution_clock_pauses_and_is_re_armed_with_the_stage(people):
    publish(people, {"solution_signoff": {"slaClock.signoff.kind": "resolution",
                                          "slaClock.signoff.length": "2 working hours"}})
    iid = start_project(people["sales"], account_id="GAMMA", signed_at=SIGNED)["id"]
    do_stage(people, iid, "kickoff")
    do_stage(people, iid, "needs_research")
    task = open_task(people["sales"], iid, "solution_signoff")
    assert people["sales"].post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    move_clock(people["admin"], "2026-03-02T10:00:00+08:00")
    assert people["sales"].post(f"/api/v1/tasks/{task['id']}/sla/pause",
                                json={"reason": "等客户确认方案"}).status_code == 200
    move_clock(people["admin"], "2026-03-03T10:00:00+08:00")
    assert breaches(people["auditor"], kind="resolution") == []
    assert people["sales"].post(f"/api/v1/tasks/{task['id']}/sla/resume", json={}).status_code == 200
    move_clock(people["admin"], "2026-03-03T11:30:00+08:00")  # 1 h used before the pause, 1 h left: due 11:00
    [breach] = breaches(people["auditor"], kind="resolution")
    assert breach["clock"] == "signoff" and at(breach["breached_at"]) == at("2026-03-03T11:00:00+08:00")


def test_an_end_to_end_clock_spans_its_named_stages(people):
    publish(people, {"needs_research": {"slaClock.to_research.kind": "end_to_end",
                                        "slaClock.to_research.from": "kickoff",
                                        "slaClock.to_research.to": "needs_research",
                                        "slaClock.to_research.length": "1 working day"}})
    slow = start_project(people["sales"], account_id="GAMMA", signed_at=SIGNED)["id"]
    quick = start_project(people["sales"], account_id="GAMMA", signed_at=SIGNED)["id"]
    move_clock(people["admin"], "2026-03-02T11:00:00+08:00")
    do_stage(people, slow, "kickoff")
    do_stage(people, quick, "kickoff")
    move_clock(people["admin"], "2026-03-02T16:00:00+08:00")
    do_stage(people, quick, "needs_research")  # done within the day: the clock stops, no breach

    move_clock(people["admin"], "2026-03-03T10:00:00+08:00")
    [breach] = breaches(people["auditor"], kind="end_to_end")
    assert breach["process_instance_id"] == slow and breach["clock"] == "to_research"
    assert breach["task_name"] == "needs_research"  # where the work is when time ran out
    assert at(breach["breached_at"]) == at("2026-03-02T18:00:00+08:00")
    # The instance's timeline has the clock's warning (80% of the day: 16:24), which belongs to no one stage.
    events = people["sales"].get(f"/api/v1/process-instances/{slow}/timeline").get_json()["events"]
    [warning] = [e for e in events if e["kind"] == "warning" and e["clock"] == "to_research"]
    assert warning["clock_kind"] == "end_to_end" and at(warning["at"]) == at("2026-03-02T16:24:00+08:00")
    quick_events = people["sales"].get(f"/api/v1/process-instances/{quick}/timeline").get_json()["events"]
    assert not [e for e in quick_events if e["kind"] == "warning"]  # done by 16:00, before the warning


def _old_digest(entry: BreachEntry) -> str:
    """The chain hash as written before named clocks existed (no clock_kind field)."""
    fields = {"seq": entry.seq, "id": entry.id, "kind": entry.kind, "breach_id": entry.breach_id,
              "process_instance_id": entry.process_instance_id, "process_model_id": entry.process_model_id,
              "account_id": entry.account_id, "task_id": entry.task_id, "task_name": entry.task_name,
              "department": entry.department, "assignee": entry.assignee, "due_at": entry.due_at.isoformat(),
              "breached_at": entry.breached_at.isoformat(), "recorded_at": entry.recorded_at.isoformat(),
              "details": entry.details}
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256((entry.prev_hash + canonical).encode()).hexdigest()


def test_the_chain_verifies_with_entries_from_before_and_after_named_clocks_and_csv_names_the_kind(people, app):
    publish(people, {"kickoff": {"slaClock.first_touch.kind": "response",
                                 "slaClock.first_touch.length": "1 working hour"}})
    start_project(people["sales"], account_id="GAMMA", signed_at=SIGNED)
    move_clock(people["admin"], "2026-03-04T10:00:00+08:00")  # the response clock and kickoff's own SLA breach
    kinds = sorted(b["kind"] for b in breaches(people["auditor"]))
    assert kinds == ["resolution", "response"]
    assert [b["clock"] for b in breaches(people["auditor"], kind="resolution")] == [None]
    verified = people["auditor"].get("/api/v1/sla/breaches/verify").get_json()
    assert verified["intact"] is True and verified["entries"] >= 2, verified
    with app.app_context():
        entries = db.session.query(BreachEntry).order_by(BreachEntry.seq).all()
        legacy = [e for e in entries if e.clock_kind is None]
        assert legacy and all(_old_digest(e) == e.hash for e in legacy)  # old rows hash as they always did
        assert all(_old_digest(e) != e.hash for e in entries if e.clock_kind is not None)  # the kind is sealed

    response = people["auditor"].get("/api/v1/sla/breaches", query_string={"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert sorted((r["kind"], r["clock"]) for r in rows) == [("resolution", ""), ("response", "first_touch")]
    assert list(rows[0])[-3:] == ["kind", "clock", "department_name"]
    response = people["auditor"].get("/api/v1/sla/breaches", query_string={"kind": "weekly"})
    assert response.status_code == 422 and "kind" in json.dumps(response.get_json())


BAD_CLOCKS = [
    # element, properties, words the message must contain
    ("kickoff", {"slaClock.x.kind": "speedy", "slaClock.x.length": "1 working hour"}, ["slaClock.x.kind", "speedy"]),
    ("kickoff", {"slaClock.x.kind": "response"}, ["slaClock.x.length"]),
    ("kickoff", {"slaClock.x.kind": "response", "slaClock.x.length": "soon"}, ["slaClock.x.length", "soon"]),
    ("invoicing", {"slaClock.e2e.kind": "end_to_end", "slaClock.e2e.length": "10 working days",
                   "slaClock.e2e.from": "kickoff", "slaClock.e2e.to": "billing"}, ["slaClock.e2e.to", "billing"]),
    ("invoicing", {"slaClock.e2e.kind": "end_to_end", "slaClock.e2e.length": "10 working days",
                   "slaClock.e2e.from": "kickoff"}, ["slaClock.e2e.to"]),
    ("kickoff", {"slaClock.x.kind": "response", "slaClock.x.length": "1 working hour",
                 "slaClock.x.colour": "red"}, ["slaClock.x.colour"]),
]


@pytest.mark.parametrize("element, props, words", BAD_CLOCKS,
                         ids=[f"{e}-{i}" for i, (e, _, _) in enumerate(BAD_CLOCKS)])
def test_a_bad_clock_is_refused_at_upload_naming_the_element(people, element, props, words):
    before = people["owner"].get("/api/v1/process-models/account-project").get_json()["versions"]
    response = people["owner"].post(UPLOAD, data=with_clocks({element: props}), content_type="application/xml")
    assert response.status_code == 422, response.get_json()
    problems = response.get_json()["error"]["details"]["problems"]
    assert {p["element_id"] for p in problems} == {element}, problems
    assert any(all(w in p["message"] for w in words) for p in problems), problems
    assert people["owner"].get("/api/v1/process-models/account-project").get_json()["versions"] == before


def test_green_channel_ships_a_response_clock_and_an_end_to_end_clock():
    xml = (PROJECT_ROOT / "process_models" / "green-channel-request" / "green-channel-request.bpmn").read_text()
    kinds = set(re.findall(r'name="slaClock\.[\w-]+\.kind" value="(\w+)"', xml))
    assert kinds == {"response", "end_to_end"}
