"""The account list with its value matrix, and one account's health trend, facts, signals
and the rule that fired, in the browser (Chinese by default)."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from playwright.sync_api import expect

from tests.accounts.conftest import patch
from tests.conftest import START
from tests.support import move_clock

SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
SETUP = {"ACME": (5_000_000, 90, "2015-01-01"), "BETA": (4_000_000, 10, "2016-01-01"),
         "GAMMA": (300_000, 85, "2025-01-01")}


def _signal(caller, account: str, signal_id: str, kind: str, value, at) -> None:
    response = caller.post(f"/api/v1/accounts/{account}/signals", json={
        "signal_id": signal_id, "kind": kind, "value": value, "at": at.isoformat(), "source": "crm"})
    assert response.status_code == 201, response.get_json()


def test_the_account_list_shows_the_value_matrix_and_the_account_its_health(page, login, live_server) -> None:
    people = live_server.people
    for account, (value, growth, since) in SETUP.items():
        patch(people["sales"], f"/api/v1/accounts/{account}", {"contract_value": value, "growth_potential": growth,
                                                               "relationship_start": since})
    people["sales"].post("/api/v1/accounts", json={
        "id": "OMEGA", "name": "欧米伽 Omega", "contract_value": 100_000, "growth_potential": 5,
        "relationship_start": "2025-06-01",
        "contacts": [{"name": "王总", "role": "decision_maker", "phone": "+86 138 0000 0000"}]})
    # Four days of ACME's health: usage falls, then payment is 30 days overdue.
    for day, usage in enumerate((92, 85, 74, 66)):
        now = START + timedelta(days=day)
        move_clock(people["admin"], now)
        _signal(people["erp"], "ACME", f"usage-{day}", "usage_rate", usage, now)
    _signal(people["erp"], "ACME", "nps-1", "nps", 10, START + timedelta(days=3))
    _signal(people["erp"], "ACME", "pay-1", "payment_overdue_days", 30, START + timedelta(days=3))

    login(page, "sales")
    page.goto("/accounts")
    dots = page.get_by_test_id("matrix-dot")
    expect(dots).to_have_count(4)
    quadrants = {dots.nth(i).get_attribute("data-account"): dots.nth(i).get_attribute("data-quadrant")
                 for i in range(4)}
    assert set(quadrants.values()) == {"star", "cash_cow", "potential", "problem"}, quadrants
    expect(page.get_by_test_id("value-matrix")).to_contain_text("价值矩阵")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "account-list.png"), full_page=True)

    page.goto("/accounts?q=王总")
    expect(page.get_by_test_id("account-row")).to_have_count(1)
    expect(page.get_by_test_id("account-row")).to_contain_text("OMEGA")

    page.goto("/accounts/ACME")
    expect(page.get_by_test_id("tier")).to_contain_text("战略")
    expect(page.get_by_test_id("health-trend").locator("circle")).to_have_count(4)
    components = page.get_by_test_id("health-components")
    expect(components).to_contain_text("回款")
    expect(components).to_contain_text("payment_overdue_days = 30")
    expect(page.get_by_test_id("signal-row")).to_have_count(6)
    firing = page.get_by_test_id("firing-row")
    expect(firing).to_have_count(1)
    expect(firing).to_contain_text("回款逾期30天")
    expect(firing).to_contain_text("高")
    page.screenshot(path=str(SHOTS / "account-page.png"), full_page=True)

    page.goto("/accounts/ACME?lang=en")  # English on request
    expect(page.get_by_test_id("tier")).to_contain_text("Strategic")
    expect(page.get_by_test_id("health-components")).to_contain_text("Payment")
    expect(page.get_by_test_id("firing-row")).to_contain_text("High")
    page.screenshot(path=str(SHOTS / "account-page-en.png"), full_page=True)
