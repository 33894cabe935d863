"""Layout defects a user saw (issue 15), measured in real Chromium: a label or a
header that wraps, a diagram that does not fit or sits under the palette."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.api.flows import start_project
from tests.browser.test_inbox_search import shot, text_lines
from tests.support import move_clock

LAPTOP = {"width": 1280, "height": 800}


def _overlap(a: dict, b: dict) -> bool:
    return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])


@pytest.mark.usefixtures("leads")
def test_the_lead_pages_days_control_stays_on_one_line(page, login, live_server):
    start_project(live_server.people["sales"], "ACME")
    page.set_viewport_size(LAPTOP)
    login(page, "sales2")
    page.goto("/leads")
    label = page.locator("label:has(input[name=days])")
    expect(label).to_contain_text("未来")
    expect(label).to_contain_text("个工作日内")
    days = label.locator("input[name=days]").bounding_box()
    # "未来 [3] 个工作日内": the words and the box share one line.
    assert text_lines(label) == 1, "the label's words wrap"
    box = label.bounding_box()
    assert box["height"] < days["height"] + 12, f"label {box['height']}px high around a {days['height']}px box"
    shot(page, "leads")


def test_the_breach_logs_headers_stay_on_one_line(page, login, live_server):
    people = live_server.people
    start_project(people["sales"], "ACME")
    start_project(people["sales"], "GAMMA")
    assert move_clock(people["admin"], "2026-03-05T10:00:00+08:00")["fired"] >= 2
    page.set_viewport_size(LAPTOP)
    login(page, "auditor")
    page.goto("/breaches")
    expect(page.get_by_test_id("breach-row")).to_have_count(2)
    headers = page.locator("[data-testid=breaches] th")
    expect(headers.filter(has_text="处理人")).to_have_count(1)
    for header in headers.all():
        assert text_lines(header) == 1, f"header {header.inner_text()!r} wraps"
    shot(page, "breaches")


def test_the_modeler_opens_with_the_whole_diagram_in_view_beside_the_palette(page, login, live_server):
    page.set_viewport_size({"width": 1440, "height": 900})
    login(page, "owner")
    page.goto("/models/account-project/versions/1")
    expect(page.locator("#canvas[data-ready=true]")).to_have_count(1)
    canvas = page.get_by_test_id("canvas").bounding_box()
    palette = page.locator("#canvas .djs-palette").bounding_box()
    shapes = page.locator("#canvas .djs-element.djs-shape")
    assert shapes.count() > 10
    for shape in shapes.all():
        box = shape.bounding_box()
        element = shape.get_attribute("data-element-id")
        assert not _overlap(box, palette), f"{element} lies under the palette"
        assert box["x"] >= canvas["x"] and box["x"] + box["width"] <= canvas["x"] + canvas["width"] + 1, element
        assert box["y"] >= canvas["y"] and box["y"] + box["height"] <= canvas["y"] + canvas["height"] + 1, element
    # The start event and the lane names (the participant's and lanes' left bands) in particular.
    for element in ("start", "Participant_account_project", "Lane_sales", "Lane_finance"):
        located = page.locator(f'#canvas .djs-element.djs-shape[data-element-id="{element}"]')
        expect(located).to_have_count(1)
        assert not _overlap(located.bounding_box(), palette), f"{element} lies under the palette"
    shot(page, "modeler")


def test_the_instance_diagram_is_centred_and_uses_its_box(page, login, live_server):
    instance = start_project(live_server.people["sales"], "ACME")
    page.set_viewport_size(LAPTOP)
    login(page, "auditor")
    page.goto(f"/instances/{instance['id']}")
    expect(page.locator("#diagram[data-ready=true]")).to_have_count(1)
    frame = page.get_by_test_id("diagram").bounding_box()
    drawn = page.locator("#diagram .viewport").bounding_box()
    left = drawn["x"] - frame["x"]
    right = frame["x"] + frame["width"] - (drawn["x"] + drawn["width"])
    top = drawn["y"] - frame["y"]
    bottom = frame["y"] + frame["height"] - (drawn["y"] + drawn["height"])
    # Centred (labels below a shape may stick out a few pixels more on one side).
    assert abs(left - right) < 8 and abs(top - bottom) < 8, (left, right, top, bottom)
    # It fills the box in one direction (all but the margins), and is not tiny.
    assert drawn["width"] > frame["width"] - 60 or drawn["height"] > frame["height"] - 60, (drawn, frame)
    assert drawn["width"] > 0.8 * frame["width"], (drawn, frame)
    shot(page, "instance")
