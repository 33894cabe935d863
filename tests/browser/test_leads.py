"""Department leads in the browser: what will breach, bulk reassign with a reason, substitutes."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from tests.api.flows import start_project

pytestmark = pytest.mark.usefixtures("leads")  # sales2 leads sales (tests/conftest.py)


def test_lead_sees_what_will_breach_grouped_by_account(page, login, live_server):
    people = live_server.people
    start_project(people["sales"], "ACME")  # strategic: kickoff due in 1 working day
    start_project(people["sales"], "BETA")  # key: 2 working days
    login(page, "sales2")
    page.get_by_role("link", name="部门管理").click()
    page.fill("input[name=days]", "1")
    page.get_by_role("button", name="显示").click()
    groups = page.get_by_test_id("forecast-account")
    expect(groups).to_have_count(1)
    expect(groups).to_have_attribute("data-account", "ACME")

    page.fill("input[name=days]", "2")
    page.get_by_role("button", name="显示").click()
    expect(groups).to_have_count(2)
    assert [groups.nth(i).get_attribute("data-account") for i in range(2)] == ["ACME", "BETA"]

    live_server.clock.set(datetime(2026, 3, 3, 2, 0, tzinfo=UTC))  # Tuesday 10:00 in Shanghai
    page.reload()
    acme = page.locator("[data-testid=forecast-account][data-account=ACME]")
    expect(acme.locator("[data-sla]")).to_have_attribute("data-sla", "breached")
    expect(acme.locator("[data-sla]")).to_contain_text("超时 1 小时")


def test_lead_reassigns_two_tasks_at_once_with_a_reason_recorded_in_the_audit_trail(page, login, live_server):
    people = live_server.people
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
    expect(page.locator(".flash.error")).to_contain_text("请说明重新分配的原因")
    expect(form.get_by_test_id("assignee")).to_have_text(["—", "—"])

    for checkbox in form.locator("input[name=task_id]").all():
        checkbox.check()
    page.select_option("select[name=to]", "sales")
    page.fill("input[name=reason]", "Li knows both customers <well>")
    form.get_by_role("button", name="重新分配所选").click()
    expect(page.locator(".flash.ok")).to_contain_text("2")
    expect(form.get_by_test_id("assignee")).to_have_text(["sales", "sales"])

    events = people["auditor"].get("/api/v1/audit?action=task.reassign").get_json()["items"]
    assert len(events) == 2
    assert {e["details"]["reason"] for e in events} == {"Li knows both customers <well>"}
    assert {e["actor"] for e in events} == {"sales2"}


def test_lead_sets_a_substitute_and_the_absent_persons_new_tasks_go_there(page, login, live_server):
    people = live_server.people
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
    expect(row).to_have_count(1)
    expect(row).to_contain_text("<i>annual leave</i>")  # escaped, shown as typed

    reassign = page.get_by_test_id("reassign-form")
    reassign.locator("input[name=task_id]").first.check()
    page.select_option("select[name=to]", "sales")
    page.fill("input[name=reason]", "customer asked for Li")
    reassign.get_by_role("button", name="重新分配所选").click()
    # Li (sales) is away this week: the task went to the substitute.
    expect(reassign.get_by_test_id("assignee")).to_have_text(["sales2"])
