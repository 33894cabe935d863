"""The task verbs in the browser: send back, transfer, comment, and the notification centre."""
from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from tests.api.flows import do_stage, open_task, start_project

SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_send_back_comment_and_the_notification_centre(page, login, live_server, browser):
    people = live_server.people
    instance = start_project(people["sales"], "ACME")
    do_stage(people, instance["id"], "kickoff")
    research = open_task(people["consulting"], instance["id"], "needs_research")
    people["consulting"].post(f"/api/v1/tasks/{research['id']}/claim")

    login(page, "consulting")
    page.goto(f"/tasks/{research['id']}")
    page.get_by_test_id("comment-form").locator("textarea").fill("纪要里缺少客户签字页")
    page.get_by_test_id("comment-form").get_by_role("button", name="添加评论").click()
    expect(page.get_by_test_id("comment")).to_contain_text("纪要里缺少客户签字页")
    form = page.get_by_test_id("send-back-form")
    form.locator("select[name=to_stage]").select_option("kickoff")
    form.locator("input[name=reason]").fill("请补充客户签字")
    _shot(page, "task-verbs-send-back")
    form.get_by_role("button", name="退回").click()
    page.wait_for_url("**/inbox**")
    assert open_task(people["sales"], instance["id"], "kickoff")["state"] == "claimed"

    other = browser.new_context(base_url=live_server.url).new_page()
    login(other, "sales")
    expect(other.get_by_test_id("unread-count")).to_have_text("1")
    other.get_by_test_id("notifications-link").click()
    note = other.get_by_test_id("notification").first
    expect(note).to_contain_text("任务被退回")
    expect(note).to_contain_text("请补充客户签字")
    _shot(other, "notification-centre")
    note.get_by_test_id("mark-read").click()
    expect(other.get_by_test_id("unread-count")).to_have_count(0)
    other.get_by_test_id("notification-task").first.click()
    expect(other.get_by_test_id("action").first).to_contain_text("请补充客户签字")
    _shot(other, "task-reopened-with-reason")
    other.context.close()


def test_transfer_from_the_task_page(page, login, live_server):
    people = live_server.people
    instance = start_project(people["sales"], "ACME")
    kickoff = open_task(people["sales"], instance["id"], "kickoff")
    people["sales"].post(f"/api/v1/tasks/{kickoff['id']}/claim")
    login(page, "sales")
    page.goto(f"/tasks/{kickoff['id']}")
    form = page.get_by_test_id("transfer-form")
    form.locator("input[name=to]").fill("ghost")
    form.locator("input[name=reason]").fill("出差")
    form.get_by_role("button", name="转交").click()
    expect(page.locator("body")).to_contain_text("ghost")  # the 422 page names the unknown person
    page.goto(f"/tasks/{kickoff['id']}")
    form = page.get_by_test_id("transfer-form")
    form.locator("input[name=to]").fill("sales2")
    form.locator("input[name=reason]").fill("出差")
    form.get_by_role("button", name="转交").click()
    page.wait_for_url("**/inbox**")
    assert people["sales"].get(f"/api/v1/tasks/{kickoff['id']}").get_json()["assignee"] == "sales2"


def test_start_a_process_from_the_browser(page, login, live_server):
    people = live_server.people
    login(page, "sales")
    page.get_by_role("link", name="发起流程").click()
    page.locator("[data-testid=choose-model] select[name=model]").select_option("account-project")
    form = page.get_by_test_id("start-form")
    form.locator("select[name=account_id]").select_option("BETA")
    for name, value in (("contract_no", "HT-BROWSER-1"), ("signed_at", "2026-03-02T09:00:00+08:00")):
        box = form.locator(f"[name='field:{name}']")
        if box.count():
            box.fill(value)
    _shot(page, "start-process")
    form.get_by_test_id("start").click()
    page.wait_for_url("**/instances/*")
    instance_id = page.url.rstrip("/").rsplit("/", 1)[1]
    got = people["sales"].get(f"/api/v1/process-instances/{instance_id}").get_json()
    assert got["account_id"] == "BETA" and got["tasks"][0]["name"] == "kickoff"


def test_attach_a_file_from_the_task_page_and_download_it(page, login, live_server, tmp_path):
    people = live_server.people
    instance = start_project(people["sales"], "ACME")
    kickoff = open_task(people["sales"], instance["id"], "kickoff")
    login(page, "sales")
    page.goto(f"/tasks/{kickoff['id']}")
    minutes = tmp_path / "会议纪要.txt"
    minutes.write_text("客户同意下周启动", encoding="utf-8")
    form = page.get_by_test_id("attach-form")
    form.locator("input[type=file]").set_input_files(str(minutes))
    form.get_by_role("button", name="上传", exact=True).click()
    expect(page.locator(".flash.ok")).to_have_text("已上传附件 会议纪要.txt。")
    link = page.get_by_test_id("attachment").get_by_role("link", name="会议纪要.txt")
    expect(link).to_be_visible()
    with page.expect_download() as download:
        link.click()
    assert Path(download.value.path()).read_text(encoding="utf-8") == "客户同意下周启动"

    form = page.get_by_test_id("attach-form")
    form.locator("input[type=file]").set_input_files({"name": "run.sh", "mimeType": "application/x-sh",
                                                      "buffer": b"#!/bin/sh\n"})
    form.get_by_role("button", name="上传", exact=True).click()
    expect(page.locator(".flash.error")).to_contain_text("不接受这种文件类型")
    expect(page.get_by_test_id("attachment")).to_have_count(1)
    _shot(page, "task-attachments")


def _open_in(caller, instance_id: str) -> list[dict]:
    items = caller.get("/api/v1/tasks?per_page=200").get_json()["items"]
    return [t for t in items if t["process_instance_id"] == instance_id and t["assignee"] == caller.username]


def test_add_signers_and_copy_from_the_task_page(page, login, live_server):
    """加签 to two people at once (或签: the first signature decides) and 抄送, typed as a person
    would (a Chinese list separator), with an unknown name refused by name."""
    people = live_server.people
    instance = start_project(people["sales"], "ACME")
    kickoff = open_task(people["sales"], instance["id"], "kickoff")
    people["sales"].post(f"/api/v1/tasks/{kickoff['id']}/claim")
    login(page, "sales")
    page.goto(f"/tasks/{kickoff['id']}")
    form = page.get_by_test_id("add-signer-form")
    form.locator("input[name=users]").fill("sales2、ghost")
    form.get_by_role("button", name="加签").click()
    expect(page.locator("body")).to_contain_text("ghost")  # the 422 page names the unknown person
    assert _open_in(people["sales2"], instance["id"]) == []  # nothing changed

    page.goto(f"/tasks/{kickoff['id']}")
    form = page.get_by_test_id("add-signer-form")
    form.locator("input[name=users]").fill("sales2、consulting")
    form.locator("select[name=mode]").select_option("any")
    form.locator("input[name=reason]").fill("请两位之一先确认报价")
    form.get_by_role("button", name="加签").click()
    expect(page.locator(".flash.ok")).to_contain_text("已加签\uff1asales2、consulting")
    expect(page.get_by_test_id("action").first).to_contain_text("请两位之一先确认报价")
    [step] = _open_in(people["consulting"], instance["id"])
    assert len(_open_in(people["sales2"], instance["id"])) == 1
    assert people["consulting"].post(f"/api/v1/tasks/{step['id']}/complete", json={"data": {}}).status_code == 200
    assert _open_in(people["sales2"], instance["id"]) == []  # 或签: the other signer's step is cancelled

    page.goto(f"/tasks/{kickoff['id']}")
    form = page.get_by_test_id("cc-form")
    form.locator("input[name=users]").fill("finance")
    form.get_by_role("button", name="抄送").click()
    expect(page.locator(".flash.ok")).to_contain_text("已抄送给 finance")
    _shot(page, "task-verbs-add-signer-cc")
    copies = people["sales"].get(f"/api/v1/tasks/{kickoff['id']}/cc").get_json()["items"]
    assert [c["user"] for c in copies] == ["finance"]
