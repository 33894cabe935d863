"""A process owner opens the modeler, changes a stage's SLA, validates, publishes,
and sees the new version listed; an invalid SLA is shown on the element and
nothing is published."""
from __future__ import annotations

from playwright.sync_api import expect

from bpm_server.database import db
from bpm_server.modeling.models import ProcessModelVersion
from tests.api.flows import start_project


def _versions(live_server) -> list[int]:
    with live_server.app.app_context():
        return sorted(v.version for v in db.session.query(ProcessModelVersion)
                      .filter_by(process_model_id="account-project").all())


def _open_kickoff(page) -> None:
    page.goto("/models/account-project/versions/1?lang=en")
    page.locator('.djs-element[data-element-id="kickoff"]').click()
    expect(page.locator("#prop-id")).to_have_text("kickoff")


def test_change_an_sla_validate_publish_and_see_the_new_version(page, login, live_server):
    start_project(live_server.people["sales"], "ACME")  # one instance stays on v1
    login(page, "owner")
    page.goto("/models?lang=en")
    v1 = page.get_by_test_id("model-account-project").get_by_test_id("version-1")
    expect(v1.get_by_test_id("running")).to_have_text("1")
    v1.get_by_role("link", name="Open in the modeler").click()
    page.locator('.djs-element[data-element-id="kickoff"]').click()

    sla = page.locator('#props input[name="sla"]')
    expect(sla).to_have_value("2 working days")
    sla.fill("4 working days")
    sla.press("Tab")  # change event: the property is written into the diagram
    page.get_by_role("button", name="Validate").click()
    expect(page.get_by_test_id("status")).to_have_text("No problems found: the diagram can be published.")
    page.get_by_role("button", name="Publish as a new version").click()
    expect(page.get_by_test_id("status")).to_contain_text("Published as version 2.")

    page.get_by_test_id("published-link").click()
    model = page.get_by_test_id("model-account-project")
    expect(model.get_by_test_id("version-2")).to_contain_text("current")
    expect(model.get_by_test_id("version-2").get_by_test_id("running")).to_have_text("0")
    expect(model.get_by_test_id("version-1").get_by_test_id("running")).to_have_text("1")
    # The published diagram carries the new SLA, and the other stages' properties are untouched.
    response = live_server.people["owner"].get("/api/v1/process-models/account-project/versions/2/bpmn")
    xml = response.get_data(as_text=True)
    assert 'name="sla" value="4 working days"' in xml
    assert 'name="formJsonSchemaFilename" value="account-project/invoicing.json"' in xml
    assert "spiffworkflow:instructionsForEndUser" in xml
    assert '<spiffworkflow:parameter id="rework_rounds" type="int" value="rework_rounds"' in xml  # service task kept
    assert "<spiffworkflow:messageVariable>invoice</spiffworkflow:messageVariable>" in xml


def test_an_invalid_sla_is_marked_on_the_element_and_not_published(page, login, live_server):
    login(page, "owner")
    _open_kickoff(page)
    sla = page.locator('#props input[name="sla"]')
    sla.fill("two days")
    sla.press("Tab")

    page.get_by_role("button", name="Validate").click()
    problem = page.get_by_test_id("problems").locator('li[data-element-id="kickoff"]')
    expect(problem).to_contain_text("two days")
    expect(page.locator('.djs-element.bpm-problem[data-element-id="kickoff"]')).to_have_count(1)

    page.get_by_role("button", name="Publish as a new version").click()
    expect(page.get_by_test_id("status")).to_have_text("Not published: the diagram has problems.")
    assert _versions(live_server) == [1]

    # A cookie-authenticated publish without the CSRF header is refused before anything is read.
    forged = page.evaluate("""async () => {
        const bpmn = await (await fetch('/api/v1/process-models/account-project/versions/1/bpmn')).text();
        const changed = bpmn.replace('value="2 working days"', 'value="9 working days"');
        return (await fetch('/api/v1/process-models/account-project/versions',
                            {method: 'POST', headers: {'Content-Type': 'application/xml'}, body: changed})).status;
    }""")
    assert forged == 403
    assert _versions(live_server) == [1]


def test_the_department_and_form_panel_edits_properties(page, login, live_server):
    login(page, "owner")
    _open_kickoff(page)
    page.locator('#props select[name="department"]').select_option("finance")
    page.locator('#props input[name="slaPausable"]').check()
    page.get_by_role("button", name="Publish as a new version").click()
    expect(page.get_by_test_id("status")).to_contain_text("Published as version 2.")
    xml = live_server.people["owner"].get("/api/v1/process-models/account-project/versions/2/bpmn").get_data(True)
    kickoff = xml[xml.index('id="kickoff"'):xml.index("</bpmn:userTask>", xml.index('id="kickoff"'))]
    assert 'name="department" value="finance"' in kickoff
    assert 'name="slaPausable" value="true"' in kickoff


def test_staff_get_the_403_page_for_the_modeler(page, login):
    login(page, "sales")
    response = page.goto("/models/account-project/versions/1")
    assert response.status == 403
    expect(page.get_by_test_id("forbidden")).to_be_visible()


def test_the_what_if_panel_shows_past_stages_under_the_sla_as_drawn(page, login, live_server):
    """Kickoff was done in 3 working hours (on time for a day); drawn at 2 hours, it would breach."""
    from tests.api.flows import do_stage
    from tests.support import move_clock

    people = live_server.people
    instance = start_project(people["sales"], "ACME")  # strategic: kickoff 1 working day
    move_clock(people["admin"], "2026-03-02T13:00:00+08:00")
    do_stage(people, instance["id"], "kickoff")
    login(page, "owner")
    page.goto("/models/account-project/versions/1")  # Chinese by default
    page.locator('.djs-element[data-element-id="kickoff"]').click()
    strategic = page.locator('#props input[name="sla.strategic"]')
    expect(strategic).to_have_value("1 working day")
    strategic.fill("2 working hours")
    strategic.press("Tab")

    panel = page.get_by_test_id("sla-preview-panel")
    panel.locator("summary").click()
    page.get_by_test_id("sla-preview").click()
    expect(page.get_by_test_id("sla-preview-summary")).to_have_text("已对比最近 90 天内完成的 1 个阶段。")
    row = page.locator('#sla-preview-result tr[data-stage="kickoff"]')
    expect(row.locator("td").nth(2)).to_have_text("2 working days; strategic: 2 working hours")
    expect(row.locator("td").nth(3)).to_have_text("100%")
    expect(row.locator("td").nth(4)).to_have_text("0%")
    expect(page.get_by_test_id("sla-preview-newly_breaching").locator("li")).to_have_count(1)
    page.screenshot(path="var/screenshots/modeler-sla-preview.png", full_page=True)
    assert people["owner"].get("/api/v1/process-models/account-project").get_json()["current_version"][
        "version"] == 1  # nothing published
