"""What-if before publishing: a draft's SLAs held against the model's completed stages of the
last N days, computed from history (POST /api/v1/process-models/{id}/sla-preview)."""
from __future__ import annotations

from tests.api.flows import do_stage, start_project
from tests.support import move_clock

PREVIEW = "/api/v1/process-models/account-project/sla-preview"


def _history(people) -> dict:
    """Kickoff done in 3 working hours (on time for a day); needs research a working day late."""
    instance = start_project(people["sales"], "ACME")  # Mon 2 Mar 09:00; strategic: kickoff 1 day, research 3
    move_clock(people["admin"], "2026-03-02T13:00:00+08:00")
    do_stage(people, instance["id"], "kickoff")
    move_clock(people["admin"], "2026-03-06T10:00:00+08:00")  # research was due Thu 09:00
    do_stage(people, instance["id"], "needs_research")
    return instance


def _by_stage(answer: dict) -> dict[str, dict]:
    return {row["stage"]: row for row in answer["stages"]}


def test_an_sla_table_shows_which_past_stages_would_breach_or_stop_breaching(people) -> None:
    instance = _history(people)
    response = people["owner"].post(PREVIEW, json={"sla": {"kickoff": "2 working hours",
                                                           "needs_research": "5 working days"}})
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert answer["stages_compared"] == 2 and answer["note"] is None
    stages = _by_stage(answer)
    assert (stages["kickoff"]["on_time_before_percent"], stages["kickoff"]["on_time_after_percent"]) == (100, 0)
    assert stages["kickoff"]["sla_after"] == "2 working hours"
    research = stages["needs_research"]
    assert (research["on_time_before_percent"], research["on_time_after_percent"]) == (0, 100)
    assert [s["stage"] for s in answer["newly_breaching"]] == ["kickoff"]
    assert [s["stage"] for s in answer["no_longer_breaching"]] == ["needs_research"]
    newly = answer["newly_breaching"][0]
    assert newly["process_instance_id"] == instance["id"] and newly["account_id"] == "ACME"
    assert newly["used_working_seconds"] > newly["length_after_working_seconds"] == 2 * 3600
    # Nothing was published: the model still has one version and the same SLAs.
    versions = people["owner"].get("/api/v1/process-models/account-project").get_json()["versions"]
    assert len(versions) == 1


def test_a_draft_diagram_is_previewed_with_its_tier_lengths(people) -> None:
    _history(people)
    xml = people["owner"].get("/api/v1/process-models/account-project/versions/1/bpmn").get_data()
    strategic_kickoff = b'<spiffworkflow:property name="sla.strategic" value="1 working day" />'
    assert xml.index(b'id="kickoff"') < xml.index(strategic_kickoff) < xml.index(b'id="needs_research"')
    draft = xml.replace(strategic_kickoff, strategic_kickoff.replace(b"1 working day", b"2 working hours"), 1)
    response = people["owner"].post(PREVIEW, data=draft, headers={"Content-Type": "application/xml"})
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert [s["stage"] for s in answer["newly_breaching"]] == ["kickoff"]
    assert answer["no_longer_breaching"] == []  # research stays 3 days: late before and after


def test_no_history_is_an_empty_answer_that_says_so_and_bad_tables_are_refused_by_stage(people) -> None:
    empty = people["owner"].post(PREVIEW + "?days=7", json={"sla": {"kickoff": "1 working day"}})
    assert empty.status_code == 200, empty.get_json()
    assert empty.get_json()["stages_compared"] == 0 and "nothing to compare" in empty.get_json()["note"]

    unknown = people["owner"].post(PREVIEW, json={"sla": {"no_such_stage": "1 working day"}})
    assert unknown.status_code == 422
    assert "kickoff" in unknown.get_json()["error"]["details"]["sla"]["no_such_stage"][0]
    bad = people["owner"].post(PREVIEW, json={"sla": {"kickoff": "soon"}})
    assert bad.status_code == 422 and "kickoff" in bad.get_json()["error"]["details"]["sla"]
    assert people["owner"].post(PREVIEW, json={"sla": "x"}).status_code == 422
    assert people["owner"].post(PREVIEW + "?days=0", json={"sla": {}}).status_code == 422
    broken = people["owner"].post(PREVIEW, data=b"<nope", headers={"Content-Type": "application/xml"})
    assert broken.status_code == 422 and broken.get_json()["error"]["details"]["problems"]
    assert people["sales"].post(PREVIEW, json={"sla": {}}).status_code == 403
    assert people["owner"].post("/api/v1/process-models/nope/sla-preview", json={"sla": {}}).status_code == 404
