"""Health score from signals (weights that sum to 100), its daily history, and the value matrix."""
from __future__ import annotations

from datetime import timedelta

from tests.accounts.conftest import patch
from tests.accounts.test_signals_and_rules import signal
from tests.conftest import START
from tests.support import move_clock


def test_health_comes_from_the_signals_with_the_facts_behind_it(people) -> None:
    erp = people["erp"]
    signal(erp, "ACME", "u1", "usage_rate", 80)
    signal(erp, "ACME", "n1", "nps", 20)
    signal(erp, "ACME", "p1", "payment_overdue_days", 30)
    health = people["sales"].get("/api/v1/accounts/ACME/health").get_json()
    parts = health["components"]
    assert parts["usage"]["score"] == 80 and parts["usage"]["facts"]["usage_rate"] == 80
    assert parts["satisfaction"]["score"] == 60 and parts["payment"]["score"] == 50
    assert parts["relationship"]["score"] == 100
    # Weights 30/25/20/15 over the components with data (support has none).
    expected = round((80 * 30 + 60 * 25 + 50 * 20 + 100 * 15) / 90, 1)
    assert health["score"] == expected and health["band"] == "healthy"
    assert people["sales"].get("/api/v1/accounts?health_band=healthy").get_json()["items"][0]["id"] == "ACME"


def test_weights_must_sum_to_100_and_a_change_is_audited(people) -> None:
    owner = people["owner"]
    url = "/api/v1/accounts/settings/health_weights"
    bad = owner.put(url, json={"weights": {"usage": 50, "satisfaction": 25, "payment": 20, "support": 10,
                                           "relationship": 15}})
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "weights_not_100"
    unknown = owner.put(url, json={"weights": {"usage": 100, "luck": 0}})
    assert unknown.status_code == 422 and "luck" in unknown.get_json()["error"]["details"]
    assert people["sales"].put(url, json={"weights": {}}).status_code == 403
    assert people["sales"].get("/api/v1/accounts/settings").get_json()["health_weights"]["usage"] == 30
    matrix_bad = owner.put("/api/v1/accounts/settings/value_weights",
                           json={"weights": {"revenue": 40, "growth": 40, "tenure": 10, "satisfaction": 20}})
    assert matrix_bad.status_code == 422

    good = owner.put(url, json={"weights": {"usage": 100, "satisfaction": 0, "payment": 0, "support": 0,
                                            "relationship": 0}})
    assert good.status_code == 200
    signal(people["erp"], "ACME", "u1", "usage_rate", 42)
    assert people["sales"].get("/api/v1/accounts/ACME/health").get_json()["score"] == 42
    trail = people["auditor"].get("/api/v1/audit?object_id=health_weights").get_json()["items"]
    assert trail[0]["details"]["after"]["usage"] == 100


def test_the_daily_evaluation_keeps_one_health_row_per_day(people) -> None:
    signal(people["erp"], "ACME", "u1", "usage_rate", 90)
    for day in (1, 2):
        move_clock(people["admin"], START + timedelta(days=day))
        assert people["owner"].post("/api/v1/account-rules/evaluate").status_code == 200
    people["owner"].post("/api/v1/account-rules/evaluate")  # the same day again: still one row
    history = people["sales"].get("/api/v1/accounts/ACME/health").get_json()["history"]
    assert [h["day"] for h in history] == ["2026-03-02", "2026-03-03", "2026-03-04"]


def test_the_value_matrix_places_accounts_in_quadrants_and_suggests_a_tier(people) -> None:
    sales = people["sales"]
    setup = {"ACME": (5_000_000, 90, "2015-01-01"), "BETA": (4_000_000, 10, "2016-01-01"),
             "GAMMA": (300_000, 85, "2025-01-01")}
    for account, (value, growth, start) in setup.items():
        assert patch(sales, f"/api/v1/accounts/{account}", {"contract_value": value, "growth_potential": growth,
                                                          "relationship_start": start}).status_code == 200
    sales.post("/api/v1/accounts", json={"id": "OMEGA", "name": "Omega", "contract_value": 100_000,
                                         "growth_potential": 5, "relationship_start": "2025-06-01"})
    matrix = sales.get("/api/v1/accounts/matrix").get_json()
    placed = {p["account_id"]: (p["quadrant"], p["suggested_tier"]) for p in matrix["items"]}
    assert placed == {"ACME": ("star", "strategic"), "BETA": ("cash_cow", "key"), "GAMMA": ("potential", "key"),
                      "OMEGA": ("problem", "standard")}
    assert matrix["weights"] == {"revenue": 40, "growth": 30, "tenure": 10, "satisfaction": 20}
    # A configured cut instead of the median: a potential of 95 is needed to count as high.
    assert people["owner"].put("/api/v1/accounts/settings/matrix_cut",
                               json={"value_cut": None, "potential_cut": 95}).status_code == 200
    quadrants = {p["account_id"]: p["quadrant"] for p in sales.get("/api/v1/accounts/matrix").get_json()["items"]}
    assert quadrants["ACME"] == "cash_cow" and quadrants["GAMMA"] == "problem"
    assert people["owner"].put("/api/v1/accounts/settings/matrix_cut",
                               json={"potential_cut": 120}).status_code == 422
