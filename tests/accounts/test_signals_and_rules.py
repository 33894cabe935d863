"""Signals arrive, the rules (DMN tables) decide, the runtime starts the intervention."""
from __future__ import annotations

from datetime import timedelta

from tests.accounts.conftest import MODEL_ID, patch, rule_dmn
from tests.conftest import START


def signal(caller, account: str, signal_id: str, kind: str, value, days_ago: float = 0, **extra):
    at = (START - timedelta(days=days_ago)).isoformat()
    return caller.post(f"/api/v1/accounts/{account}/signals", json={
        "signal_id": signal_id, "kind": kind, "value": value, "at": at, "source": "usage-db", **extra})


def history(caller, account: str) -> list[dict]:
    return caller.get(f"/api/v1/accounts/{account}/signals").get_json()["items"]


def test_bad_signals_are_refused_with_the_field_and_nothing_is_kept(people) -> None:
    erp = people["erp"]
    unknown_account = signal(erp, "NOPE", "s1", "usage_rate", 50)
    assert unknown_account.status_code == 404
    assert unknown_account.get_json()["error"]["code"] == "unknown_account"
    unknown_kind = signal(erp, "ACME", "s2", "mood", 3)
    assert unknown_kind.status_code == 422
    body = unknown_kind.get_json()["error"]
    assert body["code"] == "unknown_signal_kind"
    assert "usage_rate" in body["message"] and "support_tickets" in body["message"]
    out_of_range = signal(erp, "ACME", "s3", "usage_rate", 140)
    assert out_of_range.status_code == 422
    assert "value" in out_of_range.get_json()["error"]["details"]
    assert signal(erp, "ACME", "s4", "nps", -101).status_code == 422
    assert signal(erp, "ACME", "s5", "usage_rate", 50, days_ago=-1).status_code == 422  # measured tomorrow
    assert history(people["auditor"], "ACME") == []


def test_a_signal_is_kept_once_whatever_how_often_it_is_sent(people) -> None:
    first = signal(people["erp"], "ACME", "usage-2026-03-02", "usage_rate", 82)
    assert first.status_code == 201, first.get_json()
    again = signal(people["erp"], "ACME", "usage-2026-03-02", "usage_rate", 82)
    assert again.status_code == 200 and again.get_json()["created"] is False
    assert signal(people["sales"], "ACME", "nps-q1", "nps", 40).status_code == 201  # staff may report too
    kept = history(people["auditor"], "ACME")
    assert [(s["kind"], s["value"], s["recorded_by"]) for s in kept] == [("nps", 40.0, "sales"),  # newest first
                                                                        ("usage_rate", 82.0, "erp")]


def test_usage_below_70_two_weeks_running_starts_one_intervention_with_its_facts(people, low_usage_rule) -> None:
    erp = people["erp"]
    signal(erp, "BETA", "u-w2", "usage_rate", 65, days_ago=9)
    answer = signal(erp, "BETA", "u-w1", "usage_rate", 60, days_ago=1).get_json()
    fired = [f for f in answer["firings"] if f["rule_id"] == "usage-test"]
    assert len(fired) == 1 and fired[0]["outcome"] == "started", answer
    assert fired[0]["inputs"] == [60.0, 65.0]
    assert fired[0]["facts"]["usage_week_1"] == 60.0 and fired[0]["facts"]["usage_week_2"] == 65.0

    instance = people["admin"].get(f"/api/v1/process-instances/{fired[0]['process_instance_id']}").get_json()
    assert instance["process_model_id"] == MODEL_ID and instance["account_id"] == "BETA"
    assert [t["name"] for t in instance["tasks"]] == ["call_customer"]
    assert instance["data"]["trigger"]["rule"] == "usage-test"

    # Still low the next day, while the intervention is open: no second one.
    later = signal(erp, "BETA", "u-w1b", "usage_rate", 55, days_ago=0).get_json()
    assert [f for f in later["firings"] if f["rule_id"] == "usage-test"] == []
    started = people["admin"].get(f"/api/v1/process-instances?process_model_id={MODEL_ID}").get_json()
    assert started["total"] == 1
    firings = people["auditor"].get("/api/v1/accounts/BETA/firings").get_json()["items"]
    assert [f["rule_id"] for f in firings if f["rule_id"] == "usage-test"] == ["usage-test"]


def test_the_shipped_rules_fire_on_overdue_payment_and_a_contact_change(people, synced_app) -> None:
    erp = people["erp"]
    quiet = signal(erp, "GAMMA", "pay-1", "payment_overdue_days", 12).get_json()
    assert quiet["firings"] == []
    overdue = signal(erp, "GAMMA", "pay-2", "payment_overdue_days", 31).get_json()
    assert [(f["rule_id"], f["process_model_id"], f["priority"]) for f in overdue["firings"]] == [
        ("churn-payment-overdue", "churn-risk-intervention", "high")]
    changed = signal(erp, "GAMMA", "contact-1", "key_contact_changed", None).get_json()
    assert [(f["rule_id"], f["process_model_id"]) for f in changed["firings"]] == [
        ("contact-changed", "key-contact-handover")]
    models = {m["id"] for m in people["admin"].get("/api/v1/process-models").get_json()}
    for firing in overdue["firings"] + changed["firings"]:
        # Started when the shipped process exists; otherwise the firing says why it could not start.
        assert firing["outcome"] == ("started" if firing["process_model_id"] in models else "failed"), firing
    rules = people["auditor"].get("/api/v1/account-rules").get_json()["items"]
    assert {r["rule_id"] for r in rules} >= {"churn-usage-low", "churn-contact-left", "churn-payment-overdue",
                                            "contact-changed", "health-low"}


def test_a_rule_table_must_name_a_process_model_and_versions_are_audited(people, intervention) -> None:
    owner = people["owner"]
    url = "/api/v1/account-rules/nps-low/versions"
    no_output = owner.post(url, json={"dmn": rule_dmn([("nps", "nps")], [(["&lt; 0"], "x")], outputs="action")})
    assert no_output.status_code == 422 and "process_model_id" in no_output.get_json()["error"]["message"]
    unknown = owner.post(url, json={"dmn": rule_dmn([("nps", "nps")], [(["&lt; 0"], "no-such-model")])})
    assert unknown.status_code == 422
    assert "no-such-model" in str(unknown.get_json()["error"]["details"])
    broken = owner.post(url, json={"dmn": "<definitions"})
    assert broken.status_code == 422
    assert owner.get("/api/v1/account-rules/nps-low").status_code == 404
    assert people["sales"].post(url, json={"dmn": rule_dmn([("nps", "nps")], [(["&lt; 0"], MODEL_ID)])}
                                ).status_code == 403

    first = owner.post(url, json={"dmn": rule_dmn([("nps", "nps")], [(["&lt; 0"], MODEL_ID)])})
    second = owner.post(url, json={"dmn": rule_dmn([("nps", "nps")], [(["&lt; -20"], MODEL_ID)])})
    assert (first.status_code, second.status_code) == (201, 201)
    rule = owner.get("/api/v1/account-rules/nps-low").get_json()
    assert rule["version"] == 2 and [v["version"] for v in rule["versions"]] == [2, 1]
    assert "&lt; -20" in rule["dmn"]
    trail = people["auditor"].get("/api/v1/audit?object_id=nps-low").get_json()["items"]
    assert [(e["action"], e["details"]["version"]) for e in trail] == [("account.rule_version", 2),
                                                                      ("account.rule_version", 1)]
    # Version 2 decides: -10 no longer fires, -30 does.
    assert [f for f in signal(people["erp"], "ACME", "n1", "nps", -10).get_json()["firings"]
            if f["rule_id"] == "nps-low"] == []
    assert [f["rule_version"] for f in signal(people["erp"], "ACME", "n2", "nps", -30).get_json()["firings"]
            if f["rule_id"] == "nps-low"] == [2]


def test_a_rule_switched_off_does_not_fire(people, low_usage_rule) -> None:
    assert patch(people["owner"], "/api/v1/account-rules/usage-test", {"active": False}).status_code == 200
    signal(people["erp"], "BETA", "u-w2", "usage_rate", 65, days_ago=9)
    answer = signal(people["erp"], "BETA", "u-w1", "usage_rate", 60, days_ago=1).get_json()
    assert [f for f in answer["firings"] if f["rule_id"] == "usage-test"] == []
