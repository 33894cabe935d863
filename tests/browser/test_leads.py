"""Department leads in the browser: what will breach, bulk reassign with a reason, substitutes."""
from __future__ import annotations

from datetime import UTC, datetime

from bpm_server.database import db
from bpm_server.identity.models import Department, User
from tests.api.flows import start_project


def _make_lead(live_server, username: str) -> None:
    with live_server.app.app_context():
        user = db.session.query(User).filter_by(username=username).one()
        db.session.get_one(Department, user.department_id).lead_user_id = user.id
        db.session.commit()


def test_lead_sees_what_will_breach_grouped_by_account(page, login, live_server):
    people = live_server.people
    _make_lead(live_server, "sales2")
    start_project(people["sales"], "ACME")  # strategic: kickoff due in 1 working day
    start_project(people["sales"], "BETA")  # key: 2 working days
    login(page, "sales2")
    page.get_by_role("link", name="部门管理").click()
    page.fill("input[name=days]", "1")
    page.get_by_role("button", name="显示").click()
    groups = page.get_by_test_id("forecast-account")
    assert [groups.nth(i).get_attribute("data-account") for i in range(groups.count())] == ["ACME"]

    page.fill("input[name=days]", "2")
    page.get_by_role("button", name="显示").click()
    assert [groups.nth(i).get_attribute("data-account") for i in range(groups.count())] == ["ACME", "BETA"]

    live_server.clock.set(datetime(2026, 3, 3, 2, 0, tzinfo=UTC))  # Tuesday 10:00 in Shanghai
    page.reload()
    acme = page.locator("[data-testid=forecast-account][data-account=ACME]")
    assert acme.locator("[data-sla]").get_attribute("data-sla") == "breached"
    assert "超时 1 小时" in acme.locator("[data-sla]").inner_text()


def test_lead_reassigns_two_tasks_at_once_with_a_reason_recorded_in_the_audit_trail(page, login, live_server):
    people = live_server.people
    _make_lead(live_server, "sales2")
    start_project(people["sales"], "ACME")
    start_project(people["sales"], "BETA")
    login(page, "sales2")
    page.goto("/leads")
    form = page.get_by_test_id("reassign-form")
    for checkbox in form.locator("input[name=task_id]").all():
        checkbox.check()
    page.select_option("select[name=to]", "sales")
    # No reason: refused, nothing moved.
    form.get_by_role("button", name="重新分配所选").click()
    assert "请说明重新分配的原因" in page.locator(".flash.error").inner_text()
    assert form.get_by_test_id("assignee").all_inner_texts() == ["—", "—"]

    for checkbox in form.locator("input[name=task_id]").all():
        checkbox.check()
    page.select_option("select[name=to]", "sales")
    page.fill("input[name=reason]", "Li knows both customers <well>")
    form.get_by_role("button", name="重新分配所选").click()
    assert "2" in page.locator(".flash.ok").inner_text()
    assert form.get_by_test_id("assignee").all_inner_texts() == ["sales", "sales"]

    events = people["auditor"].get("/api/v1/audit?action=task.reassign").get_json()["items"]
    assert len(events) == 2
    assert {e["details"]["reason"] for e in events} == {"Li knows both customers <well>"}
    assert {e["actor"] for e in events} == {"sales2"}


def test_lead_sets_a_substitute_and_the_absent_persons_new_tasks_go_there(page, login, live_server):
    people = live_server.people
    _make_lead(live_server, "sales2")
    start_project(people["sales"], "ACME")
    login(page, "sales2")
    page.goto("/leads")
    form = page.get_by_test_id("substitute-form")
    form.locator("select[name=user]").select_option("sales")
    form.locator("select[name=substitute]").select_option("sales2")
    form.locator("input[name=from]").fill("2026-03-02")
    form.locator("input[name=until]").fill("2026-03-06")
    form.locator("input[name=reason]").fill("<i>annual leave</i>")
    form.get_by_role("button", name="设置代理人").click()
    row = page.get_by_test_id("substitute-row")
    assert row.count() == 1
    assert "<i>annual leave</i>" in row.inner_text()  # escaped, shown as typed

    reassign = page.get_by_test_id("reassign-form")
    reassign.locator("input[name=task_id]").first.check()
    page.select_option("select[name=to]", "sales")
    page.fill("input[name=reason]", "customer asked for Li")
    reassign.get_by_role("button", name="重新分配所选").click()
    # Li (sales) is away this week: the task went to the substitute.
    assert reassign.get_by_test_id("assignee").all_inner_texts() == ["sales2"]
