"""Signing in and out in the browser, in Chinese by default and English on request."""
from __future__ import annotations

from playwright.sync_api import expect


def test_login_lands_on_the_inbox_and_logout_ends_the_session(page, login):
    login(page, "sales")
    assert "/inbox" in page.url
    expect(page.get_by_test_id("current-user")).to_have_text("sales")
    page.get_by_role("button", name="退出").click()
    page.wait_for_url("**/login")
    page.goto("/inbox")
    assert "/login" in page.url  # signed out: the inbox sends us to the login form


def test_wrong_password_and_unknown_user_get_the_same_message(page, live_server):
    for username in ("sales", "nobody-at-all"):
        page.goto("/login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", "wrong password")
        page.click("form button[type=submit]")
        expect(page.get_by_test_id("login-error")).to_have_text("用户名或密码错误。")


def test_english_on_request_and_remembered(page, login):
    page.goto("/login?lang=en")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    login(page, "sales")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()  # still English after signing in
    page.get_by_role("link", name="中文").click()
    expect(page.get_by_role("button", name="退出")).to_be_visible()
