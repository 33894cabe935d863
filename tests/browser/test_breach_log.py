"""An auditor reads the breach log: chain status, filters, CSV export; read-only."""
from __future__ import annotations

import csv
import io

from playwright.sync_api import expect

from tests.api.flows import start_project
from tests.support import move_clock


def _two_breaches(live_server) -> None:
    """ACME's and GAMMA's kickoffs (due Tue and Wed) both breach by Thursday."""
    people = live_server.people
    start_project(people["sales"], "ACME")
    start_project(people["sales"], "GAMMA")
    assert move_clock(people["admin"], "2026-03-05T10:00:00+08:00")["fired"] >= 2


def test_filter_and_export_the_breach_log(page, login, live_server):
    _two_breaches(live_server)
    login(page, "auditor")
    page.goto("/breaches?lang=en")
    expect(page.get_by_test_id("chain-intact")).to_contain_text("Hash chain intact")
    expect(page.get_by_test_id("breach-total")).to_have_text("2 breach(es) match.")
    expect(page.get_by_test_id("breach-row")).to_have_count(2)

    page.goto("/breaches?per_page=1")  # one per page: two pages, newest breach (GAMMA's, Wed) first
    expect(page.get_by_test_id("pager")).to_contain_text("Page 1 of 2")
    expect(page.get_by_test_id("breach-account")).to_have_text("GAMMA")
    page.get_by_role("link", name="Next").click()
    expect(page.get_by_test_id("pager")).to_contain_text("Page 2 of 2")
    expect(page.get_by_test_id("breach-account")).to_have_text("ACME")

    page.goto("/breaches")
    filters = page.get_by_test_id("breach-filters")
    filters.get_by_test_id("filter-account").fill("gamma")  # as a person types it: part of it, any case
    filters.get_by_test_id("filter-stage").select_option("kickoff")  # a list of the breached stages, by title
    chosen = filters.get_by_test_id("filter-stage").locator("option:checked")
    expect(chosen).to_have_text("Project kickoff · New key-account project")
    filters.locator("input[name=from]").fill("2026-03-01")
    filters.locator("input[name=to]").fill("2026-03-31")
    filters.get_by_role("button", name="Filter").click()
    expect(page.get_by_test_id("breach-row")).to_have_count(1)
    expect(page.get_by_test_id("breach-account")).to_have_text("GAMMA")

    with page.expect_download() as download:
        page.get_by_test_id("export-csv").click()
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text(encoding="utf-8"))))
    assert [(r["account_id"], r["task_name"], r["department"]) for r in rows] == [("GAMMA", "kickoff", "sales")]

    filters = page.get_by_test_id("breach-filters")
    filters.locator("input[name=from]").fill("2026-03-07")
    filters.locator("input[name=to]").fill("2026-03-06")
    filters.get_by_role("button", name="Filter").click()
    expect(page.get_by_test_id("error-to")).to_be_visible()
    expect(page.get_by_test_id("breach-row")).to_have_count(0)


def test_the_breach_log_is_read_only_and_not_for_staff(page, login, live_server):
    login(page, "auditor")
    page.goto("/breaches")
    expect(page.get_by_test_id("breach-filters")).to_be_visible()  # the page is there ...
    expect(page.locator("form[method=post]:not([action$='/logout'])")).to_have_count(0)  # ... with nothing to change
    page.context.clear_cookies()  # sign in afresh as someone else
    login(page, "sales")
    response = page.goto("/breaches")
    assert response.status == 403
    expect(page.get_by_test_id("forbidden")).to_be_visible()


def test_the_log_and_the_dashboard_tell_the_clock_kinds_apart(page, login, live_server):
    """A green-channel request nobody takes up breaches its response clock (30 working
    minutes for a strategic account) before the reply itself is late (1 working hour)."""
    people = live_server.people
    response = people["sales"].post("/api/v1/process-instances", json={
        "process_model_id": "green-channel-request", "account_id": "ACME",
        "data": {"request_no": "GC-B1", "summary": "订单同步中断", "severity": "urgent"}})
    assert response.status_code == 201, response.get_json()
    move_clock(people["admin"], "2026-03-02T10:30:00+08:00")
    login(page, "owner")
    page.goto("/breaches")  # Chinese by default
    expect(page.get_by_test_id("breach-row")).to_have_count(2)
    expect(page.get_by_test_id("breach-kind")).to_contain_text(["解决", "响应 first_response"])
    page.get_by_test_id("filter-kind").select_option("response")
    page.get_by_test_id("breach-filters").get_by_role("button").first.click()
    expect(page.get_by_test_id("breach-row")).to_have_count(1)
    expect(page.get_by_test_id("breach-kind")).to_have_text("响应 first_response")

    page.goto("/dashboard?lang=en")
    counts = page.get_by_test_id("breaches-by-kind")
    expect(counts.locator("td[data-kind=response]")).to_have_text("1")
    expect(counts.locator("td[data-kind=resolution]")).to_have_text("1")
    expect(page.get_by_test_id("open-breach-kind")).to_contain_text(["Resolution", "Response first_response"])


def test_the_stage_and_process_read_in_chinese_and_in_english_on_request(page, login, live_server):
    """account-project is written in English; its messages/zh_CN.json gives the Chinese the page shows first."""
    _two_breaches(live_server)
    login(page, "auditor")
    page.goto("/breaches")
    expect(page.get_by_test_id("breach-stage").first).to_contain_text("项目启动")
    expect(page.get_by_test_id("breach-model").first).to_have_text("大客户新项目")
    page.goto("/breaches?lang=en")
    expect(page.get_by_test_id("breach-stage").first).to_contain_text("Project kickoff")
    expect(page.get_by_test_id("breach-model").first).to_have_text("New key-account project")
    page.context.clear_cookies()
    login(page, "owner")
    page.goto("/dashboard?lang=zh_CN")
    expect(page.get_by_test_id("open-breach-stage").first).to_have_text("项目启动")
    page.goto("/dashboard?lang=en")
    expect(page.get_by_test_id("open-breach-stage").first).to_have_text("Project kickoff")
