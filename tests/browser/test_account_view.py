"""The account view in the browser: processes, where each stands, what is late, breach history."""
from __future__ import annotations

from playwright.sync_api import expect

from tests.api.flows import do_stage, start_project
from tests.support import move_clock


def test_account_view_shows_processes_what_is_late_and_the_breach_history(page, login, live_server):
    people = live_server.people
    first = start_project(people["sales"], "ACME", signed_at="2026-03-02T09:00:00+08:00")
    do_stage(people, first["id"], "kickoff")
    second = start_project(people["sales"], "ACME", signed_at="2026-03-02T09:00:00+08:00")
    # Wednesday: ACME's kickoff (1 working day, due Monday 18:00) has breached; the timers fire.
    move_clock(people["admin"], "2026-03-04T10:00:00+08:00")
    login(page, "auditor")
    page.goto("/accounts/ACME")
    expect(page.get_by_test_id("account-name")).to_contain_text("ACME Ltd")
    rows = page.get_by_test_id("process-row")
    expect(rows).to_have_count(2)
    # Where each process stands: stages by their Chinese titles, departments by their names.
    expect(rows.and_(page.locator(f"[data-instance-id='{first['id']}']"))).to_contain_text("需求调研 · 产品咨询部")
    expect(rows.and_(page.locator(f"[data-instance-id='{second['id']}']"))).to_contain_text("项目启动 · 销售部")
    late = page.get_by_test_id("late-row")  # the second kickoff is late...
    expect(late).to_have_count(1)
    expect(late).to_contain_text("项目启动")
    expect(late).to_contain_text("已超时")
    history = page.get_by_test_id("breach-row")  # ...and in the breach history, still open
    expect(history).to_have_count(1)
    expect(history).to_contain_text("仍未完成")
