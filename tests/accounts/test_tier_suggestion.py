"""The tier review (客户分级调整审批) carries the value matrix's suggested tier, shown on its task."""
from __future__ import annotations

from tests.accounts.conftest import patch
from tests.accounts.test_signals_and_rules import signal
from tests.support import page_client

# Value today, growth potential, relationship start: ACME a star, BETA a cash cow, GAMMA a potential.
MATRIX = {"ACME": (5_000_000, 90, "2015-01-01"), "BETA": (4_000_000, 10, "2016-01-01"),
          "GAMMA": (300_000, 85, "2025-01-01")}


def place(people) -> None:
    for account, (value, growth, start) in MATRIX.items():
        assert patch(people["sales"], f"/api/v1/accounts/{account}", {
            "contract_value": value, "growth_potential": growth, "relationship_start": start}).status_code == 200


def review_of(people, account: str) -> dict:
    [firing] = [f for f in people["sales"].get(f"/api/v1/accounts/{account}/firings").get_json()["items"]
                if f["process_model_id"] == "tier-review"]
    assert firing["outcome"] == "started", firing
    return people["admin"].get(f"/api/v1/process-instances/{firing['process_instance_id']}").get_json()


def test_the_health_rule_starts_the_review_with_the_matrix_suggestion_shown_on_its_task(people, synced_app) -> None:
    place(people)
    erp = people["erp"]
    # GAMMA (standard) turns unhealthy: the shipped health-low rule (health below 40) starts a tier review.
    signal(erp, "GAMMA", "u1", "usage_rate", 10)
    signal(erp, "GAMMA", "n1", "nps", -90)
    signal(erp, "GAMMA", "c1", "key_contact_left", 1)
    review = review_of(people, "GAMMA")
    data = review["data"]
    assert (data["current_tier"], data["suggested_tier"], data["quadrant"]) == ("standard", "key", "potential")
    assert "潜力客户" in data["reason"] and "健康度" in data["reason"] and "health-low" in data["reason"]
    assert data["trigger"]["rule"] == "health-low"

    [assess] = [t for t in review["tasks"] if t["name"] == "assess"]
    assert people["sales"].post(f"/api/v1/tasks/{assess['id']}/claim").status_code == 200
    browser = page_client(synced_app, "sales")
    zh = browser.get(f"/tasks/{assess['id']}").get_data(as_text=True)
    for text in ("建议分级", "重点客户", "当前分级", "标准客户", "潜力客户"):
        assert text in zh, text
    en = browser.get(f"/tasks/{assess['id']}?lang=en").get_data(as_text=True)
    for text in ("Suggested tier", "Key", "Current tier", "Standard"):
        assert text in en, text
    assert "重点客户" not in en.replace(data["reason"], "")  # the choice is translated; the reason is data


def test_a_review_started_by_hand_carries_the_suggestion_too(people) -> None:
    place(people)
    started = people["sales"].post("/api/v1/accounts/BETA/tier-review", json={"reason": "续约谈判中"})
    assert started.status_code == 201 and started.get_json()["suggested_tier"] == "key"
    review = people["admin"].get(f"/api/v1/process-instances/{started.get_json()['process_instance_id']}").get_json()
    data = review["data"]
    assert (data["current_tier"], data["suggested_tier"], data["quadrant"]) == ("key", "key", "cash_cow")
    assert data["reason"].startswith("续约谈判中") and "现金牛客户" in data["reason"]
    chosen = people["sales"].post("/api/v1/accounts/GAMMA/tier-review", json={"suggested_tier": "strategic"})
    assert chosen.get_json()["suggested_tier"] == "strategic"
