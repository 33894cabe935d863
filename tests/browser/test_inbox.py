"""Department staff in the browser: inbox, claim, the stage form (checked in
the browser and again on the server), complete, and the next department."""
from __future__ import annotations

from playwright.sync_api import expect

from tests.api.flows import do_stage, start_project


def _row(page, instance_id: str, stage_title: str):
    return page.locator(f"tr[data-testid=task-row]:has-text('{stage_title}')")


def test_claim_and_complete_a_stage_with_an_invalid_then_a_valid_form(page, login, live_server, browser):
    people = live_server.people
    instance = start_project(people["sales"], "ACME")
    login(page, "sales")
    page.get_by_test_id("tab-department").click()
    row = page.locator("tr[data-testid=task-row]").filter(has_text="ACME")
    expect(row).to_have_count(1)
    expect(row.locator("[data-sla]")).to_have_attribute("data-sla", "on_time")
    expect(row.locator("[data-sla]")).to_contain_text("剩余")  # the working time left, in Chinese

    row.get_by_role("button", name="认领").click()
    page.wait_for_url("**/tasks/*")
    # The account and the form rendered from the stage's JSON Schema.
    expect(page.locator("dl.facts")).to_contain_text("ACME Ltd")
    minutes = page.locator("textarea[name='field:kickoff_minutes']")
    expect(minutes).to_be_visible()
    expect(page.locator("input[name='field:kickoff_date'][type=date]")).to_be_visible()

    # Invalid: too short. The browser says so next to the field and sends nothing.
    minutes.fill("too short")
    page.get_by_test_id("complete").click()
    expect(page.get_by_test_id("error-kickoff_minutes")).to_have_text("至少 10 个字符。")
    task_id = page.url.rstrip("/").rsplit("/", 1)[1]
    api_task = people["sales"].get(f"/api/v1/tasks/{task_id}").get_json()
    assert api_task["state"] == "claimed" and api_task["submitted"] is None  # nothing saved

    # Valid: lands back in the inbox, the stage is gone from it...
    minutes.fill("Kickoff held; scope and milestones agreed with the customer.")
    page.get_by_test_id("complete").click()
    page.wait_for_url("**/inbox")
    expect(page.locator(".flash")).to_contain_text("已完成，已流转到下一阶段。")  # noqa: RUF001 - Chinese punctuation
    expect(page.locator("tr[data-testid=task-row]").filter(has_text="ACME")).to_have_count(0)

    # ...and the next department (consulting) has it at once.
    consulting = browser.new_context(base_url=live_server.url).new_page()
    login(consulting, "consulting")
    consulting.get_by_test_id("tab-department").click()
    next_row = consulting.locator("tr[data-testid=task-row]").filter(has_text="ACME")
    expect(next_row).to_have_count(1)
    next_row.get_by_role("button", name="认领").click()
    consulting.wait_for_url("**/tasks/*")
    claimed = people["consulting"].get(f"/api/v1/tasks/{consulting.url.rstrip('/').rsplit('/', 1)[1]}").get_json()
    assert (claimed["process_instance_id"], claimed["name"]) == (instance["id"], "needs_research")
    consulting.context.close()


def test_the_server_checks_the_form_again_and_shows_its_messages_next_to_the_fields(live_server, browser, login):
    """With JavaScript off the browser checks nothing: the server's 422 comes back inline, nothing saved."""
    people = live_server.people
    instance = start_project(people["sales"], "BETA")
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    login(page, "sales")
    page.goto("/inbox?tab=department")
    page.locator("tr[data-testid=task-row]").filter(has_text="BETA").get_by_role("button", name="认领").click()
    page.wait_for_url("**/tasks/*")
    page.locator("textarea[name='field:kickoff_minutes']").fill("short")
    page.locator("input[name='field:kickoff_date']").fill("2026-03-02")
    page.get_by_test_id("complete").click()
    expect(page.get_by_test_id("error-kickoff_minutes")).to_have_text("至少 10 个字符。")
    # What the user typed is still there to correct.
    expect(page.locator("textarea[name='field:kickoff_minutes']")).to_have_value("short")
    body = people["sales"].get(f"/api/v1/process-instances/{instance['id']}").get_json()
    assert [(t["name"], t["state"]) for t in body["tasks"]] == [("kickoff", "claimed")]  # nothing saved
    context.close()


def test_user_text_is_escaped_where_the_next_stage_shows_it(page, login, live_server):
    people = live_server.people
    instance = start_project(people["sales"], "GAMMA")
    hostile = "<script>window.__owned = 1</script><b>bold?</b> minutes"
    do_stage(people, instance["id"], "kickoff", {"kickoff_minutes": hostile})
    login(page, "consulting")
    page.goto("/inbox?tab=department")
    page.locator("tr[data-testid=task-row]").filter(has_text="GAMMA").get_by_role("button", name="认领").click()
    page.wait_for_url("**/tasks/*")
    deliverable = page.get_by_test_id("deliverable")
    expect(deliverable).to_contain_text(hostile)  # shown as text...
    expect(deliverable.locator("b")).to_have_count(0)  # ...not as markup
    assert page.evaluate("window.__owned") is None


def test_a_form_post_without_csrf_token_is_refused_and_changes_nothing(page, login, live_server):
    people = live_server.people
    instance = start_project(people["sales"], "ACME")
    task = people["sales"].get("/api/v1/tasks").get_json()["items"][0]
    login(page, "sales")
    response = page.request.post(f"/inbox/tasks/{task['id']}/claim", form={"x": "1"})
    assert response.status == 400
    assert "表单已失效" in response.text()
    # Cookie-authenticated API calls need the header too.
    response = page.request.post(f"/api/v1/tasks/{task['id']}/claim")
    assert response.status == 403
    unchanged = people["sales"].get(f"/api/v1/tasks/{task['id']}").get_json()
    assert (unchanged["state"], unchanged["assignee"]) == ("ready", None)
    assert unchanged["process_instance_id"] == instance["id"]
    page.goto("/inbox?tab=department")  # and the inbox still offers it to claim
    expect(page.locator("tr[data-testid=task-row]").filter(has_text="ACME").get_by_role("button", name="认领")) \
        .to_be_visible()


def test_an_auditor_trying_a_staff_action_gets_the_403_page(page, login, live_server):
    people = live_server.people
    start_project(people["sales"], "ACME")
    task = people["sales"].get("/api/v1/tasks").get_json()["items"][0]
    login(page, "auditor")
    for path in ("/inbox", f"/tasks/{task['id']}"):
        response = page.goto(path)
        assert response.status == 403
        expect(page.get_by_test_id("forbidden")).to_be_visible()
        expect(page.locator("h1")).to_contain_text("无权访问")
    # The claim button's form, posted with a valid token, is refused too.
    token = page.locator("meta[name=csrf-token]").get_attribute("content")
    response = page.request.post(f"/inbox/tasks/{task['id']}/claim", form={"csrf_token": token})
    assert response.status == 403 and "Traceback" not in response.text()
    assert people["sales"].get(f"/api/v1/tasks/{task['id']}").get_json()["state"] == "ready"


def test_the_inbox_lists_stage_titles_in_the_readers_language(page, login, live_server):
    """account-project is written in English and ships messages/zh_CN.json: its stages read in
    Chinese in the default language, as written with ?lang=en."""
    start_project(live_server.people["sales"], "ACME")
    login(page, "sales")
    page.goto("/inbox?tab=department")
    expect(page.locator("td.stage a").first).to_have_text("项目启动")
    page.goto("/inbox?tab=department&lang=en")
    expect(page.locator("td.stage a").first).to_have_text("Project kickoff")
