# ruff: noqa: RUF001 - Chinese text uses full-width punctuation
"""In Chromium: the breach log and the task page name departments, the model, the tier and
the people an escalation reached, in Chinese (the default); the breach log in English too."""
from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from bpm_server.database import db
from bpm_server.identity.models import Department, User
from tests.api.flows import start_project
from tests.support import move_clock

SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def test_breach_log_and_task_page_show_names_not_codes(page, login, live_server, synced_app):
    with synced_app.app_context():
        lead = db.session.query(User).filter_by(username="sales2").one()
        lead.display_name = "周强"
        db.session.get_one(Department, "sales").lead_user_id = lead.id
        db.session.commit()
    people = live_server.people
    start_project(people["sales"], "GAMMA")  # standard: kickoff due Tuesday, the rung a working day later
    instance = start_project(people["sales"], "ACME")  # strategic
    move_clock(people["admin"], "2026-03-05T10:00:00+08:00")

    login(page, "auditor")
    page.goto("/breaches?account_id=GAMMA")
    row = page.get_by_test_id("breach-row")
    expect(row.get_by_test_id("breach-department")).to_have_text("销售部")
    actions = row.get_by_test_id("breach-action")
    expect(actions.last).to_contain_text("已改派给 周强")
    expect(actions.last).to_contain_text("优先级提高到 1")
    expect(actions.first).to_contain_text("已通知部门负责人：周强")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "breach-log-names.png"), full_page=True)
    page.goto("/breaches?account_id=GAMMA&lang=en")
    expect(row.get_by_test_id("breach-department")).to_have_text("Sales")
    expect(row.get_by_test_id("breach-action").last).to_contain_text("Reassigned to 周强")

    page.context.clear_cookies()
    login(page, "sales")
    page.goto(f"/tasks/{instance['tasks'][0]['id']}?lang=zh_CN")
    expect(page.get_by_test_id("task-department")).to_have_text("销售部")
    facts = page.locator("dl.facts").first
    expect(facts).to_contain_text("(战略客户)")
    expect(facts).to_contain_text("大客户新项目")
    expect(facts).not_to_contain_text("account-project")
    page.screenshot(path=str(SHOTS / "task-page-names.png"), full_page=True)
