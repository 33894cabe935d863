"""Incidents and instance operations in the browser, as a process owner works them:
an instance stopped by a script error is listed with its element and message,
retried after an admin fixed its data; an instance is suspended, resumed and
cancelled from its own page; Chinese by default."""
from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from tests.api.flows import start_project
from tests.fixtures.diagrams import script_task, sequence, user_task
from tests.support import new_model

SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def _failing_instance(live_server) -> str:
    app, people = live_server.app, live_server.people
    new_model(app, "brittle", "脆弱流程")
    xml = sequence("brittle", script_task("compute", "total = amount * 2"), user_task("check"))
    assert people["owner"].post("/api/v1/process-models/brittle/versions", data=xml,
                                headers={"Content-Type": "application/xml"}).status_code == 201
    started = people["sales"].post("/api/v1/process-instances", json={
        "process_model_id": "brittle", "account_id": "ACME", "data": {}}).get_json()
    assert started["state"] == "error"
    return started["id"]


def test_an_owner_retries_a_failed_instance_from_the_incidents_page(page, login, live_server):
    iid = _failing_instance(live_server)
    login(page, "owner")
    page.goto("/incidents")
    row = page.get_by_test_id(f"failed-{iid}")
    expect(row).to_contain_text("compute")
    expect(row).to_contain_text("amount")
    expect(page.get_by_role("heading", name="因错误停止的流程实例")).to_be_visible()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "incidents.png"), full_page=True)

    page.get_by_test_id(f"retry-{iid}").click()
    expect(page.locator(".flash.error")).to_contain_text("重试后再次停止")  # the data is still missing
    expect(page.get_by_test_id(f"failed-{iid}")).to_be_visible()

    admin = live_server.app.test_client()
    fixed = admin.patch(f"/api/v1/process-instances/{iid}/data", json={"data": {"amount": 4}},
                        headers={"Authorization": f"Bearer {live_server.people['admin'].token}"})
    assert fixed.status_code == 200, fixed.get_json()
    page.get_by_test_id(f"retry-{iid}").click()
    expect(page.locator(".flash.ok")).to_contain_text("实例已重新运行")
    expect(page.get_by_test_id(f"failed-{iid}")).to_have_count(0)
    instance = live_server.people["sales"].get(f"/api/v1/process-instances/{iid}").get_json()
    assert instance["state"] == "running" and instance["data"]["total"] == 8


def test_suspend_resume_and_cancel_from_the_instance_page(page, login, live_server):
    iid = start_project(live_server.people["sales"], "GAMMA")["id"]
    login(page, "owner")
    page.goto(f"/instances/{iid}")
    page.get_by_test_id("op-suspend").click()
    expect(page.locator(".flash.ok")).to_contain_text("实例已挂起")
    expect(page.get_by_test_id("instance-suspended")).to_contain_text("owner")
    page.goto("/incidents")
    expect(page.get_by_test_id(f"held-{iid}")).to_be_visible()
    page.goto(f"/instances/{iid}")
    page.screenshot(path=str(SHOTS / "instance-operations.png"), full_page=True)
    page.get_by_test_id("op-resume").click()
    expect(page.locator(".flash.ok")).to_contain_text("实例已恢复")
    expect(page.get_by_test_id("instance-suspended")).to_have_count(0)

    page.get_by_test_id("op-cancel-reason").fill("客户取消合同")
    page.get_by_test_id("op-cancel").click()
    expect(page.get_by_test_id("instance-state")).to_have_text("已取消")
    expect(page.get_by_text("客户取消合同")).to_be_visible()
    expect(page.get_by_test_id("operations")).to_have_count(0)


def test_staff_see_no_operations_and_cannot_post_them(page, login, live_server):
    iid = start_project(live_server.people["sales"], "GAMMA")["id"]
    login(page, "sales")
    page.goto(f"/instances/{iid}")
    expect(page.get_by_test_id("instance-state")).to_be_visible()
    expect(page.get_by_test_id("operations")).to_have_count(0)
    page.goto("/incidents")
    expect(page.get_by_test_id("forbidden")).to_be_visible()


def test_an_owner_checks_then_migrates_an_instance_from_its_page(page, login, live_server):
    app, people = live_server.app, live_server.people
    new_model(app, "twostep", "两步流程")

    def upload(*tasks: str) -> None:
        xml = sequence("twostep", *(user_task(t) for t in tasks))
        assert people["owner"].post("/api/v1/process-models/twostep/versions", data=xml,
                                    headers={"Content-Type": "application/xml"}).status_code == 201

    upload("first", "second")
    iid = people["sales"].post("/api/v1/process-instances", json={
        "process_model_id": "twostep", "account_id": "ACME", "data": {}}).get_json()["id"]
    upload("first", "review", "second")
    login(page, "owner")
    page.goto(f"/instances/{iid}")
    page.get_by_test_id("op-migrate-check").click()
    expect(page.locator(".flash.ok")).to_contain_text("实例可以迁移到版本 2")
    assert people["sales"].get(f"/api/v1/process-instances/{iid}").get_json()["version"] == 1
    page.get_by_test_id("op-migrate-go").click()
    expect(page.locator(".flash.ok")).to_contain_text("实例现在运行版本 2")
    expect(page.locator("h1")).to_contain_text("两步流程 v2")  # the model by its name, not its id


def test_an_admin_gives_a_stuck_external_task_new_retries_from_the_incidents_page(page, login, live_server):
    """A worker gave up (failure with no retries left): the incident is listed with its topic and
    error, and an admin's retries make it fetchable again."""
    from tests.external_tasks.test_external_tasks import create, fetch, start

    people = live_server.people
    assert create(people).status_code == 201
    iid = start(people)
    (task,) = fetch(people["erp"])
    failed = people["erp"].post(f"/api/v1/external-tasks/{task['id']}/failure", json={
        "worker_id": "w1", "error_message": "征信系统超时", "retries": 0, "retry_timeout_ms": 0})
    assert failed.status_code == 200, failed.get_json()
    assert fetch(people["erp"]) == []

    login(page, "admin")
    page.goto("/incidents")
    row = page.get_by_test_id(f"external-{task['id']}")
    expect(page.get_by_role("heading", name="工作者放弃的外部任务")).to_be_visible()
    expect(row).to_contain_text("credit-check")
    expect(row).to_contain_text("征信系统超时")
    expect(row.get_by_role("link", name="Credit")).to_have_attribute("href", f"/instances/{iid}")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "incidents-external.png"), full_page=True)
    row.get_by_role("spinbutton").fill("2")
    page.get_by_test_id(f"retry-external-{task['id']}").click()
    expect(page.locator(".flash.ok")).to_contain_text("重试 2 次")
    expect(page.get_by_test_id(f"external-{task['id']}")).to_have_count(0)
    assert [t["id"] for t in fetch(people["erp"])] == [task["id"]]
