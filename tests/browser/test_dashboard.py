"""The SLA dashboard: charts and numbers for a chosen period, CSV of the numbers,
for process owners and department leads only."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from playwright.sync_api import expect

from tests.api.flows import do_stage, start_project
from tests.support import move_clock


def _history(live_server) -> None:
    """Kickoffs of ACME (on time, Monday) and GAMMA (late, Thursday); ACME's research breaches by Friday."""
    people = live_server.people
    acme = start_project(people["sales"], "ACME")
    gamma = start_project(people["sales"], "GAMMA")
    do_stage(people, acme["id"], "kickoff")
    move_clock(people["admin"], "2026-03-06T10:00:00+08:00")
    do_stage(people, gamma["id"], "kickoff")


def test_owner_reads_the_charts_and_downloads_the_numbers(page, login, live_server):
    _history(live_server)
    login(page, "owner")
    page.goto("/dashboard?lang=en&from=2026-03-01&to=2026-03-31")

    expect(page.get_by_test_id("kpi-on-time")).to_contain_text("50%")
    expect(page.get_by_test_id("kpi-open-breaches")).to_contain_text("1")
    stage_chart = page.get_by_test_id("chart-stage-rate")
    expect(stage_chart.locator("g.bar-row[data-label='Project kickoff'] .bar-value")).to_have_text("50% (1/2)")
    expect(page.get_by_test_id("chart-department-rate").locator("g.bar-row")).to_have_count(1)
    expect(page.get_by_test_id("chart-working-time").locator("g.bar-row")).to_have_count(2)  # median, p90
    expect(page.get_by_test_id("chart-open-work").locator("g.bar-row")).to_have_count(1)  # consulting
    expect(page.get_by_test_id("open-breaches")).to_contain_text("Needs research")

    with page.expect_download() as download:
        page.get_by_test_id("stats-csv").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert {"section": "stage", "process_model_id": "account-project", "stage": "kickoff", "department": "sales",
            "measure": "on_time_rate", "value": "0.5"} in rows

    page.get_by_role("button", name="Last 7 days").click()  # ends on the deployment's today, Fri 6 Mar
    expect(page.locator("input[name=from]")).to_have_value("2026-02-28")
    expect(page.locator("input[name=to]")).to_have_value("2026-03-06")


def test_a_period_that_ends_before_it_starts_says_so(page, login, live_server):
    login(page, "owner")
    page.goto("/dashboard?lang=en&from=2026-03-10&to=2026-03-01")
    expect(page.get_by_test_id("error-to")).to_be_visible()
    expect(page.get_by_test_id("kpi-on-time")).to_have_count(0)


def test_department_leads_may_see_it_other_staff_get_403(page, login, live_server, leads):
    login(page, "sales")
    assert page.goto("/dashboard").status == 403
    expect(page.get_by_test_id("forbidden")).to_be_visible()
    expect(page.get_by_test_id("period")).to_have_count(0)
    page.context.clear_cookies()  # sign in afresh as someone else
    login(page, "sales2")
    assert page.goto("/dashboard").status == 200
    expect(page.get_by_test_id("period")).to_be_visible()


def test_the_weekly_trend_shows_each_weeks_on_time_rate_and_breaches(page, login, live_server):
    _history(live_server)  # ACME's kickoff on time in the week of 2 Mar, GAMMA's late the same week
    login(page, "owner")
    page.goto("/dashboard?from=2026-03-01&to=2026-03-31")  # Chinese by default
    trends = page.get_by_test_id("trends")
    expect(trends.get_by_role("heading", name="每周趋势")).to_be_visible()
    overall = trends.get_by_test_id("trend-overall")
    week = overall.locator('td[data-week="2026-03-02"]')
    expect(week.locator(".rate")).to_have_text("50%")
    expect(week.locator(".breaches")).to_contain_text("超时")
    expect(week).to_have_class("trend poor")
    expect(overall.locator('td[data-week="2026-03-09"] .rate')).to_have_text("\u2013")  # nothing completed yet
    # The stage in the page's language (account-project's messages/zh_CN.json), English on request.
    expect(trends.get_by_test_id("trend-stage-kickoff").locator("th")).to_have_text("项目启动")
    page.screenshot(path="var/screenshots/dashboard-trends.png", full_page=True)
    page.goto("/dashboard?lang=en&from=2026-03-01&to=2026-03-31")
    expect(page.get_by_test_id("trend-stage-kickoff").locator("th")).to_have_text("Project kickoff")
