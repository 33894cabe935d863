"""A process owner creates a model from a file in the browser, uploads a second version,
rolls back to the first, and archives the model; the page says what happened."""
from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from tests.fixtures.diagrams import sequence, user_task

SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def diagram(tmp_path: Path, name: str, title: str) -> Path:
    path = tmp_path / name
    path.write_bytes(sequence("follow_up", user_task("call", "sales").replace('name="Call"', f'name="{title}"')))
    return path


def test_new_model_upload_files_republish_and_archive(page, login, live_server, tmp_path):
    login(page, "owner")
    page.goto("/models?lang=en")
    new = page.get_by_test_id("new-model")
    new.locator("summary").click()
    new.get_by_label("Model id").fill("follow-up")
    new.get_by_label("Name", exact=True).fill("Follow up")
    new.get_by_label("BPMN file").set_input_files(str(diagram(tmp_path, "v1.bpmn", "call the customer")))
    new.get_by_test_id("create-model").click()
    expect(page.locator(".flash.ok")).to_have_text("Model follow-up created with version 1.")
    card = page.get_by_test_id("model-follow-up")
    expect(card.get_by_test_id("version-1")).to_contain_text("current")

    card.get_by_test_id("upload-input").set_input_files(str(diagram(tmp_path, "v2.bpmn", "call twice")))
    card.get_by_test_id("upload-files").click()
    expect(page.locator(".flash.ok")).to_have_text("Published as version 2.")
    expect(card.get_by_test_id("version-2")).to_contain_text("current")

    card.get_by_test_id("republish-1").click()
    expect(page.locator(".flash.ok")).to_contain_text("Version 1 is current again")
    expect(card.get_by_test_id("version-1").locator(".sla")).to_have_text("current")
    expect(card.get_by_test_id("version-2").locator(".sla")).to_have_count(0)
    expect(card.get_by_test_id("republish-2")).to_be_visible()

    card.get_by_test_id("archive").click()
    expect(page.locator(".flash.ok")).to_have_text("The model is archived: it starts no new instances.")
    expect(card.get_by_test_id("archived")).to_be_visible()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "model-management.png"), full_page=True)
    started = live_server.people["sales"].post("/api/v1/process-instances", json={
        "process_model_id": "follow-up", "account_id": "ACME", "data": {}})
    assert started.status_code == 409

    # A broken file is refused with the element named, and nothing is created.
    new.locator("summary").click()
    new.get_by_label("Model id").fill("broken")
    new.get_by_label("Name", exact=True).fill("Broken")
    broken = tmp_path / "broken.bpmn"
    broken.write_bytes(sequence("b", user_task("call", "nobody-knows-this")))  # no such department
    new.get_by_label("BPMN file").set_input_files(str(broken))
    new.get_by_test_id("create-model").click()
    expect(page.locator(".flash.error")).to_contain_text("call:")
    expect(page.get_by_test_id("model-broken")).to_have_count(0)

    page.goto("/models?lang=zh_CN")  # the default language
    expect(page.get_by_test_id("new-model").locator("summary")).to_have_text("新建模型")


def test_a_model_of_several_files_is_created_in_the_browser(page, login, live_server):
    """The model's BPMN and DMN files and its own form chosen together make one model."""
    folder = Path(__file__).resolve().parents[1] / "fixtures" / "multifile"
    login(page, "owner")
    page.goto("/models?lang=en")
    new = page.get_by_test_id("new-model")
    new.locator("summary").click()
    new.get_by_label("Model id").fill("quotes")
    new.get_by_label("Name", exact=True).fill("Quotes")
    new.get_by_label("BPMN file").set_input_files([str(p) for p in sorted(folder.iterdir())])
    new.get_by_test_id("create-model").click()
    expect(page.locator(".flash.ok")).to_have_text("Model quotes created with version 1.")
    started = live_server.people["sales"].post("/api/v1/process-instances", json={
        "process_model_id": "quotes", "account_id": "ACME", "data": {}})
    assert started.status_code == 201, started.get_json()
    assert [t["name"] for t in started.get_json()["tasks"]] == ["enter_amount"]
