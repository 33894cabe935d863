"""Each shipped account process opens in the modeler: its pool, lanes and first stage are drawn."""
from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
FIRST_STAGE = {"churn-risk-intervention": ("contact_customer", "Lane_director"),
               "key-contact-handover": ("handover", "Lane_sales"),
               "green-channel-request": ("first_reply", "Lane_delivery"),
               "quarterly-business-review": ("plan_reviews", "Lane_sales"),
               "tier-review": ("assess", "Lane_approver")}


@pytest.mark.parametrize("model_id", sorted(FIRST_STAGE))
def test_a_shipped_process_opens_in_the_modeler(page, login, live_server, model_id):
    stage, lane = FIRST_STAGE[model_id]
    login(page, "owner")
    page.goto(f"/models/{model_id}/versions/1")
    expect(page.locator(f'.djs-element[data-element-id="{stage}"]')).to_be_visible()
    expect(page.locator(f'.djs-element[data-element-id="{lane}"]')).to_be_visible()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"modeler-{model_id}.png"), full_page=True)
