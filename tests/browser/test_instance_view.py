"""The instance view: the bpmn-js diagram with completed, current and late
stages marked, SLA status per stage, the timeline, incidents; user text escaped."""
from __future__ import annotations

from playwright.sync_api import expect

from bpm_server.database import db
from bpm_server.modeling.models import ProcessModel
from tests.api.flows import do_stage, open_task, start_project
from tests.fixtures.diagrams import script_task, sequence, user_task
from tests.support import move_clock

XSS = '<img src=x onerror="window.pwned=1">'


def test_diagram_marks_timeline_and_sla_status(page, login, live_server):
    people = live_server.people
    instance = start_project(people["sales"], "ACME")  # Mon 2 Mar 09:00; strategic account
    do_stage(people, instance["id"], "kickoff")  # on time
    move_clock(people["admin"], "2026-03-06T10:00:00+08:00")  # needs research (due Thu 09:00) breaches on the way
    do_stage(people, instance["id"], "needs_research")  # late
    signoff = open_task(people["sales"], instance["id"], "solution_signoff")
    assert people["sales"].post(f"/api/v1/tasks/{signoff['id']}/claim").status_code == 200
    paused = people["sales"].post(f"/api/v1/tasks/{signoff['id']}/sla/pause", json={"reason": XSS})
    assert paused.status_code == 200, paused.get_json()

    login(page, "auditor")
    page.goto(f"/instances/{instance['id']}?lang=en")

    expect(page.locator("#diagram[data-ready=true]")).to_have_count(1)
    expect(page.locator('.djs-element.bpm-done[data-element-id="kickoff"]')).to_have_count(1)
    expect(page.locator('.djs-element.bpm-done.bpm-late[data-element-id="needs_research"]')).to_have_count(1)
    expect(page.locator('.djs-element.bpm-current[data-element-id="solution_signoff"]')).to_have_count(1)
    expect(page.locator('.djs-element.bpm-late[data-element-id="kickoff"]')).to_have_count(0)

    expect(page.get_by_test_id("stage-kickoff")).to_have_attribute("data-status", "on_time")
    research = page.get_by_test_id("stage-needs_research")
    expect(research).to_have_attribute("data-status", "late")
    expect(research).to_contain_text("1 working day 1 h late")  # Thu 09:00 -> Fri 10:00
    expect(page.get_by_test_id("stage-solution_signoff")).to_have_attribute("data-status", "paused")

    timeline = page.get_by_test_id("timeline")
    expect(timeline.locator("li[data-kind=completed]").first).to_contain_text("Project kickoff completed · sales")
    expect(timeline.locator("li[data-kind=breach]")).to_contain_text("SLA of Needs research breached")
    expect(timeline.locator("li[data-kind=pause]")).to_contain_text(XSS)  # shown as text ...
    expect(timeline.locator("img")).to_have_count(0)  # ... never as markup
    assert page.evaluate("window.pwned") is None
    expect(page.get_by_text("No incidents.")).to_be_visible()


def test_chinese_by_default_and_unknown_instance_is_a_404_page(page, login, live_server):
    instance = start_project(live_server.people["sales"], "GAMMA")
    login(page, "sales")
    page.goto(f"/instances/{instance['id']}")
    expect(page.get_by_test_id("instance-state")).to_have_text("运行中")
    expect(page.locator('.djs-element.bpm-current[data-element-id="kickoff"]')).to_have_count(1)
    expect(page.get_by_text("没有异常。")).to_be_visible()
    response = page.goto("/instances/no-such-instance")
    assert response.status == 404
    expect(page.get_by_test_id("not-found")).to_be_visible()
    expect(page.get_by_test_id("instance-state")).to_have_count(0)


def test_an_engine_error_is_listed_as_an_incident(page, login, live_server):
    """A process owner's script fails when it runs: the engine stops the instance and the page says why."""
    people = live_server.people
    with live_server.app.app_context():
        db.session.add(ProcessModel(id="fragile", name="Fragile", description="", created_at=live_server.clock.now()))
        db.session.commit()
    lookup = script_task("init", f"price = {{}}[{XSS!r}]")  # fails with a KeyError naming the key: user text
    uploaded = people["owner"].post("/api/v1/process-models/fragile/versions",
                                    data=sequence("fragile", lookup, user_task("follow_up")),
                                    content_type="application/xml")
    assert uploaded.status_code == 201, uploaded.get_json()
    started = people["sales"].post("/api/v1/process-instances",
                                   json={"process_model_id": "fragile", "account_id": "GAMMA", "data": {}})
    assert started.status_code == 201, started.get_json()
    instance = started.get_json()

    login(page, "owner")
    page.goto(f"/instances/{instance['id']}?lang=en")
    expect(page.get_by_test_id("instance-state")).to_have_text("stopped by an error")
    incident = page.get_by_test_id("incident")
    expect(incident).to_contain_text("init: ")
    expect(incident).to_contain_text(XSS)  # shown as text ...
    expect(page.get_by_test_id("incidents").locator("img")).to_have_count(0)  # ... never as markup
    assert page.evaluate("window.pwned") is None
    expect(page.get_by_text("No incidents.")).to_be_hidden()
