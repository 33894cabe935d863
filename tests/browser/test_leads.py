"""Department leads in the browser: what will breach, bulk reassign with a reason, delegations
(委托, also a person's own on the settings page)."""
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


def test_lead_delegates_an_absent_persons_work_and_their_new_tasks_land_on_the_delegate(page, login, live_server):
    people = live_server.people
    start_project(people["sales"], "ACME")
    login(page, "sales2")
    page.goto("/leads")
    section = page.get_by_test_id("department-delegations")
    expect(section.get_by_role("heading", name="委托")).to_be_visible()
    form = page.get_by_test_id("delegation-form")
    form.locator("select[name=delegator]").select_option("sales")
    form.locator("select[name=delegate]").select_option("sales2")
    form.locator("input[name=starts_at]").fill("2026-03-02T08:00")
    form.locator("input[name=ends_at]").fill("2026-03-01T08:00")  # ends before it starts: refused
    form.get_by_role("button", name="委托", exact=True).click()
    expect(page.locator(".flash.error")).to_contain_text("结束时间必须晚于开始时间")
    expect(page.get_by_test_id("delegation-row")).to_have_count(0)

    form.locator("select[name=delegator]").select_option("sales")
    form.locator("select[name=delegate]").select_option("sales2")
    form.locator("input[name=starts_at]").fill("2026-03-02T08:00")
    form.locator("input[name=ends_at]").fill("2026-03-07T00:00")
    form.locator("input[name=reason]").fill("<i>annual leave</i>")
    form.get_by_role("button", name="委托", exact=True).click()
    expect(page.locator(".flash.ok")).to_contain_text("代 sales")
    row = page.get_by_test_id("delegation-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("<i>annual leave</i>")  # escaped, shown as typed
    expect(row).to_contain_text("全部流程")

    reassign = page.get_by_test_id("reassign-form")
    reassign.locator("input[name=task_id]").first.check()
    page.select_option("select[name=to]", "sales")
    page.fill("input[name=reason]", "customer asked for Li")
    reassign.get_by_role("button", name="重新分配所选").click()
    # Li (sales) is away this week: the task went to the delegate, on Li's behalf.
    expect(reassign.get_by_test_id("assignee")).to_have_text(["sales2"])
    reassign.get_by_test_id("open-task").first.locator("a").click()
    expect(page.get_by_test_id("task-assignee")).to_have_text("sales2 代 sales")
    page.goto("/inbox")  # the delegate's inbox says for whom
    expect(page.get_by_test_id("inbox-assignee")).to_have_text(["sales2 代 sales"])

    page.goto("/leads")
    page.get_by_test_id("delegation-row").get_by_role("button", name="结束委托").click()
    expect(page.locator(".flash.ok")).to_contain_text("委托已结束")
    expect(page.get_by_test_id("delegation-row")).to_have_count(0)


def test_a_person_delegates_their_own_work_on_the_settings_page(page, login, live_server):
    login(page, "sales")
    page.get_by_test_id("settings-link").click()
    section = page.get_by_test_id("my-delegations")
    form = section.get_by_test_id("delegation-form")
    form.locator("select[name=delegate]").select_option("sales")  # oneself: refused
    form.locator("input[name=ends_at]").fill("2026-03-06T18:00")
    form.get_by_role("button", name="委托", exact=True).click()
    expect(page.locator(".flash.error")).to_contain_text("不能委托给自己")

    form = page.get_by_test_id("delegation-form")
    form.locator("select[name=delegate]").select_option("consulting")
    form.locator("select[name=process_model_id]").select_option(["account-project"])
    form.locator("input[name=ends_at]").fill("2026-03-06T18:00")
    form.get_by_role("button", name="委托", exact=True).click()
    expect(page.locator(".flash.ok")).to_contain_text("consulting 代 sales")
    row = page.get_by_test_id("my-delegations").get_by_test_id("delegation-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("大客户新项目")  # the name in the reader's language, not the id

    # The delegate sees the work delegated to them, and cannot end it themselves.
    page.get_by_role("button", name="退出").click()
    login(page, "consulting")
    page.goto("/settings")
    taken = page.get_by_test_id("delegations-taken")
    expect(taken.get_by_test_id("delegation-row")).to_contain_text("sales")
    expect(taken.get_by_role("button", name="结束委托")).to_have_count(0)
