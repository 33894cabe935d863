"""A person's own settings page in the browser: the language of their notifications
(Chinese by default, English on request; docs/notification-language.md)."""
from __future__ import annotations

from playwright.sync_api import expect

from tests.api.flows import open_task, start_project


def test_a_person_chooses_english_notifications_and_new_ones_come_in_english(page, login, live_server):
    people = live_server.people
    login(page, "sales")
    page.get_by_test_id("settings-link").click()
    section = page.get_by_test_id("notification-language")
    expect(section.get_by_role("heading", name="通知语言")).to_be_visible()
    expect(section.locator("select[name=locale]")).to_have_value("zh_CN")  # Chinese unless chosen

    section.locator("select[name=locale]").select_option("en")
    section.get_by_role("button", name="保存").click()
    expect(page.locator(".flash.ok")).to_contain_text("今后你的通知将使用所选语言")
    page.reload()
    expect(page.get_by_test_id("notification-language").locator("select[name=locale]")).to_have_value("en")
    assert people["sales"].get("/api/v1/notifications/language").get_json() == {"locale": "en"}

    # A colleague hands Li a task: the notice is written in English for Li.
    instance = start_project(people["sales2"])
    task = open_task(people["sales2"], instance["id"], "kickoff")
    assert people["sales2"].post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    moved = people["sales2"].post(f"/api/v1/tasks/{task['id']}/transfer", json={"to": "sales", "reason": "trip"})
    assert moved.status_code == 200, moved.get_json()
    [note] = people["sales"].get("/api/v1/notifications").get_json()["items"]
    assert note["title"].startswith("Transferred to you")

    # Back to Chinese.
    section = page.get_by_test_id("notification-language")
    section.locator("select[name=locale]").select_option("zh_CN")
    section.get_by_role("button", name="保存").click()
    expect(page.locator(".flash.ok")).to_be_visible()
    assert people["sales"].get("/api/v1/notifications/language").get_json() == {"locale": "zh_CN"}
