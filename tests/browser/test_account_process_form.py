"""A new account process's stage form in the browser, in Chinese by default: the churn-risk
intervention's contact task with its context (the rule that fired), labels, help texts and choices."""
from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from tests.processes.helpers import start

SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def test_the_churn_risk_contact_form_reads_in_chinese_and_completes(page, login, live_server):
    people = live_server.people
    started = start(people["sales"], "churn-risk-intervention", "GAMMA", {
        "account_id": "GAMMA", "trigger": {"rule": "usage_below_70_two_weeks", "facts": {"usage_rate": 0.62}}})
    task = next(t for t in started["tasks"] if t["name"] == "contact_customer")
    assert people["sales"].post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    login(page, "sales")
    page.goto(f"/tasks/{task['id']}")
    expect(page.get_by_test_id("task-title")).to_have_text("联系客户并评估流失风险")
    expect(page.get_by_test_id("instructions")).to_contain_text("1个工作日内联系客户决策人")
    expect(page.get_by_test_id("task-context")).to_contain_text("usage_below_70_two_weeks")
    form = page.get_by_test_id("stage-form")
    expect(form).to_contain_text("主要风险原因")
    expect(form).to_contain_text("客户的反馈、诉求和顾虑。")
    choices = page.locator("#f-risk_cause option")
    expect(choices.nth(1)).to_have_text("使用率下降")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "churn-risk-contact-zh.png"), full_page=True)

    page.fill("#f-contacted_at", "2026-03-02")
    page.fill("#f-contact_person", "王总 (CIO)")
    page.select_option("#f-risk_cause", "low_usage")
    page.fill("#f-contact_summary", "客户反馈培训不足, 使用率下降。")
    page.get_by_test_id("complete").click()
    expect(page.locator("body")).to_contain_text("联系客户并评估流失风险")  # the flash names the stage done
    done = people["sales"].get(f"/api/v1/tasks/{task['id']}").get_json()
    assert done["state"] == "completed" and done["submitted"]["risk_cause"] == "low_usage"

    page.goto(f"/tasks/{task['id']}?lang=en")
    expect(page.get_by_test_id("task-title")).to_have_text("Contact the customer and assess the churn risk")
