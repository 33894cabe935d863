"""The inbox page as staff use it: search, sortable columns, priority, page size
and pages, bulk claim with a task taken meanwhile, and saved views in the sidebar;
and the action cell that used to wrap 认领 and break the row borders."""
from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from playwright.sync_api import expect

from bpm_server.accounts.models import Account
from bpm_server.database import db
from bpm_server.tasks.models import HumanTask
from tests.api.flows import start_project
from tests.conftest import START

SHOTS = Path(os.environ.get("BPM_TEST_SCREENSHOTS", "/tmp/inbox-shots"))


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _seed(live_server, count: int = 3) -> list[str]:
    """Kickoffs in sales, one a minute apart; the first renamed to a Chinese account and stage, priority 2."""
    people, ids = live_server.people, []
    accounts = ["ACME", "BETA", "GAMMA"]
    for i in range(count):
        live_server.clock.set(START + timedelta(minutes=i))
        instance = start_project(people["sales"], accounts[i % 3], contract_no=f"HT-2026-{i:04d}")
        ids.append(instance["tasks"][0]["id"])
    with live_server.app.app_context():
        db.session.get_one(Account, "ACME").name = "艾克米科技"
        first = db.session.get_one(HumanTask, ids[0])
        first.title, first.priority = "项目启动会", 2
        db.session.commit()
    return ids


def text_lines(locator) -> int:
    """How many lines the element's text takes on screen (distinct line boxes of its text)."""
    return locator.evaluate("""el => {
        const tops = new Set();
        const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            if (!node.textContent.trim()) continue;
            const range = document.createRange(); range.selectNodeContents(node);
            [...range.getClientRects()].filter(r => r.width > 0).forEach(r => tops.add(Math.round(r.top)));
        }
        return tops.size; }""")


def _rows(page):
    return page.locator("tr[data-testid=task-row]")


def test_search_sort_and_priority_in_the_browser(page, login, live_server):
    _seed(live_server)
    login(page, "sales")
    page.goto("/inbox?tab=department")
    expect(_rows(page)).to_have_count(3)
    first = _rows(page).first
    expect(first).to_contain_text("项目启动会")       # highest priority first by default
    expect(first.get_by_test_id("priority")).to_have_text("紧急")
    expect(first).to_contain_text("艾克米科技")       # the account's name, not its id
    shot(page, "inbox-department")

    page.get_by_test_id("inbox-search").fill("ht-2026-0002")
    page.get_by_role("button", name="筛选").click()
    expect(_rows(page)).to_have_count(1)
    expect(_rows(page).first).to_contain_text("GAMMA Ltd")
    page.get_by_test_id("inbox-search").fill("启动会")
    page.get_by_role("button", name="筛选").click()
    expect(_rows(page)).to_have_count(1)
    page.get_by_test_id("inbox-search").fill("")
    page.get_by_role("button", name="筛选").click()

    page.get_by_test_id("sort-account").click()      # ascending by account name
    expect(page.locator("th[data-sort=account]")).to_have_attribute("aria-sort", "ascending")
    names = [r.locator("td").nth(2).inner_text() for r in _rows(page).all()]
    assert names == ["BETA Ltd", "GAMMA Ltd", "艾克米科技"]
    page.get_by_test_id("sort-account").click()      # and round
    expect(page.locator("th[data-sort=account]")).to_have_attribute("aria-sort", "descending")
    names = [r.locator("td").nth(2).inner_text() for r in _rows(page).all()]
    assert names == ["艾克米科技", "GAMMA Ltd", "BETA Ltd"]


def test_page_size_and_pages(page, login, live_server):
    _seed(live_server, count=23)
    login(page, "sales")
    page.goto("/inbox?tab=department&sort=created&order=asc")
    expect(_rows(page)).to_have_count(23)                 # 50 a page by default
    page.get_by_test_id("per-page").select_option("20")
    page.get_by_role("button", name="筛选").click()
    expect(_rows(page)).to_have_count(20)
    expect(page.get_by_test_id("inbox-total")).to_have_text("共 23 项")
    expect(page.get_by_test_id("pager")).to_contain_text("第 1 页，共 2 页")  # noqa: RUF001 - Chinese punctuation
    page.get_by_test_id("next-page").click()
    expect(_rows(page)).to_have_count(3)
    response = page.goto("/inbox?tab=department&per_page=20&page=999999999")  # past the end: the last page
    assert response.status == 200
    expect(_rows(page)).to_have_count(3)


def test_bulk_claim_reports_the_task_taken_meanwhile(page, login, live_server):
    ids = _seed(live_server)
    login(page, "sales")
    page.goto("/inbox?tab=department&sort=created&order=asc")
    for task_id in ids:
        page.locator(f"tr[data-task-id='{task_id}'] input[type=checkbox]").check()
    # A colleague takes the second one after the page was shown.
    assert live_server.people["sales2"].post(f"/api/v1/tasks/{ids[1]}/claim").status_code == 200
    page.get_by_test_id("bulk-claim").click()
    expect(page.locator(".flash").first).to_contain_text("已认领 2 项任务。")
    expect(page.locator(".flash.error")).to_contain_text("已被 sales2 抢先认领")
    shot(page, "inbox-bulk-claim")
    states = {i: live_server.people["sales"].get(f"/api/v1/tasks/{i}").get_json()["assignee"] for i in ids}
    assert states == {ids[0]: "sales", ids[1]: "sales2", ids[2]: "sales"}


def test_saved_views_personal_shared_renamed_deleted(page, login, live_server, browser):
    _seed(live_server)
    login(page, "sales")
    page.goto("/inbox?tab=department&q=艾克米")
    expect(_rows(page)).to_have_count(1)
    save = page.get_by_test_id("save-view")
    save.locator("input[name=name]").fill("艾克米重点")
    save.locator("input[name=shared]").check()
    save.get_by_role("button", name="保存视图").click()
    views = page.get_by_test_id("view")
    expect(views).to_have_count(1)
    expect(views.first).to_contain_text("已共享给本部门")
    page.goto("/inbox")
    page.get_by_test_id("view").first.get_by_role("link").click()   # the view brings its filters back
    expect(_rows(page)).to_have_count(1)
    expect(page.get_by_test_id("inbox-search")).to_have_value("艾克米")

    # The same name again: refused, said in Chinese.
    page.get_by_test_id("save-view").locator("input[name=name]").fill("艾克米重点")
    page.get_by_test_id("save-view").get_by_role("button", name="保存视图").click()
    expect(page.locator(".flash.error")).to_have_text("你已有同名视图。")
    expect(page.get_by_test_id("view")).to_have_count(1)

    # A colleague in the department sees it, marked as shared, without the owner's edit controls.
    other = browser.new_context(base_url=live_server.url).new_page()
    login(other, "sales2")
    other.goto("/inbox")
    expect(other.get_by_test_id("view")).to_contain_text("艾克米重点")
    expect(other.get_by_test_id("view").locator("details")).to_have_count(0)
    shot(other, "inbox-shared-view")
    other.context.close()

    view = page.get_by_test_id("view").first
    view.locator("summary").click()
    view.locator("input[name=name]").fill("ACME 大客户")
    view.get_by_role("button", name="重命名").click()
    expect(page.get_by_test_id("view").first).to_contain_text("ACME 大客户")
    shot(page, "inbox-views")
    page.get_by_test_id("view").first.locator("summary").click()
    page.get_by_test_id("view").first.get_by_role("button", name="删除").click()
    expect(page.get_by_test_id("view")).to_have_count(0)


def test_the_action_cell_keeps_claim_on_one_line_and_the_row_borders_aligned(page, login, live_server):
    _seed(live_server)
    login(page, "sales")
    page.set_viewport_size({"width": 1024, "height": 800})  # a laptop: the table is at its narrowest
    page.goto("/inbox?tab=department")
    for row in _rows(page).all():
        button = row.get_by_role("button", name="认领")
        assert text_lines(button) == 1, "认领 wraps onto more than one line"
        # ...and in view, not clipped by the table's scroll box.
        frame = page.locator(".table-scroll").bounding_box()
        box = button.bounding_box()
        assert box["x"] + box["width"] <= frame["x"] + frame["width"], "认领 is cut off at the right"
        # Every cell of the row spans exactly the row's height (the borders line up).
        row_box = row.bounding_box()
        for cell in row.locator("td").all():
            box = cell.bounding_box()
            assert abs(box["y"] - row_box["y"]) < 1 and abs(box["height"] - row_box["height"]) < 1
    shot(page, "inbox-1024")


def test_the_inbox_in_english_on_request(page, login, live_server):
    _seed(live_server)
    login(page, "sales")
    page.goto("/inbox?tab=department&lang=en")
    expect(page.get_by_test_id("inbox-views")).to_contain_text("Saved views")
    expect(page.get_by_test_id("bulk-claim")).to_have_text("Claim selected")
    expect(page.locator("th[data-sort=priority]")).to_contain_text("Priority")
    expect(_rows(page).first.get_by_test_id("priority")).to_have_text("Urgent")
