"""季度业务回顾 QBR (a timer start event, one review per strategic account) and 客户分级调整审批."""
from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from bpm_server.database import db
from bpm_server.sla import start_timers
from bpm_server.sla.models import Timer
from tests.processes.helpers import instance, open_names, start, work
from tests.support import move_clock


def arm(app: Flask) -> None:
    """What ``bpm-server models sync`` does after loading the models: arm their timer start events."""
    with app.app_context():
        rt = app.extensions["bpm"]
        start_timers.arm_all(db.session, rt.evaluator, rt.clock.now())
        db.session.commit()


def qbr_timer(app: Flask) -> Timer:
    with app.app_context():
        [timer] = db.session.scalars(select(Timer).where(Timer.kind == "start_timer", Timer.fired_at.is_(None)))
        db.session.expunge(timer)
        return timer


def qbr_instances(caller) -> list[dict]:
    body = caller.get("/api/v1/process-instances",
                      query_string={"process_model_id": "quarterly-business-review"}).get_json()
    return body["items"]


def test_every_quarter_a_qbr_starts_and_each_strategic_account_gets_its_review(leads, synced_app) -> None:
    sales, admin = leads["sales"], leads["admin"]
    arm(synced_app)
    armed = qbr_timer(synced_app)
    assert armed.payload["process_model_id"] == "quarterly-business-review"
    assert 89 * 86400 <= float(armed.payload["every"]) <= 92 * 86400  # a quarter
    move_clock(admin, armed.due_at)
    [qbr] = qbr_instances(admin)
    assert qbr["account_id"] == "internal"
    assert qbr_timer(synced_app).due_at > armed.due_at  # the next quarter is armed
    # "ACME, BETA" typed with a full-width comma, as a Chinese input method writes it
    work(sales, qbr["id"], "plan_reviews", {"quarter": "2026Q2", "account_list": "ACME\uff0c BETA"})
    tasks = [sales.get(f"/api/v1/tasks/{t['id']}").get_json() for t in instance(sales, qbr["id"])["tasks"]]
    assert sorted((t["name"], t["data"]["account"]) for t in tasks) == [
        ("prepare_value_report", "ACME"), ("prepare_value_report", "BETA")]
    for task in tasks:
        assert sales.post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200
        done = sales.post(f"/api/v1/tasks/{task['id']}/complete", json={"data": {
            "report_url": "https://docs.example.com/qbr/" + task["data"]["account"],
            "highlights": "使用率稳定在90% 节省人工30%"}})
        assert done.status_code == 200, done.get_json()
    for _ in range(2):
        work(sales, qbr["id"], "hold_review", {"review_date": "2026-06-10", "customer_executives": "刘总 (COO)",
                                                "minutes": "客户认可本季度价值 希望扩展到华南区。", "satisfaction": 4})
    assert open_names(sales, qbr["id"]) == ["record_actions", "record_actions"]
    for _ in range(2):
        work(sales, qbr["id"], "record_actions", {"action_items": "华南区试点方案;sales;2026-07-01",
                                                   "owners": "sales"})
    assert instance(sales, qbr["id"])["state"] == "completed"


def tier_review(leads, account: str) -> dict:
    sales = leads["sales"]
    started = start(sales, "tier-review", account, {
        "account_id": account, "current_tier": "standard", "suggested_tier": "key", "reason": "价值矩阵 潜力型",
        "trigger": {"rule": "value_matrix", "facts": {"quadrant": "potential"}}})
    work(sales, started["id"], "assess", {"recommendation": "agree", "assessment": "增长潜力高 建议升级"})
    return started


def test_an_approved_tier_change_ends_with_the_approved_tier_in_the_data(leads) -> None:
    started = tier_review(leads, "GAMMA")
    lead = leads["sales2"]
    task = next(t for t in instance(lead, started["id"])["tasks"] if t["name"] == "approve")
    assert lead.post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    missing = lead.post(f"/api/v1/tasks/{task['id']}/complete",
                        json={"data": {"decision": "approved", "decision_reason": "同意"}})
    assert missing.status_code == 422 and "approved_tier" in missing.get_json()["error"]["details"]
    work(lead, started["id"], "approve", {"decision": "approved", "approved_tier": "key", "decision_reason": "同意"})
    done = instance(leads["admin"], started["id"])
    assert done["state"] == "completed"
    assert done["data"]["tier_decision"] == {"decision": "approved", "tier": "key", "reason": "同意"}
    # The approved tier is the account's now, audited with the review and its approver.
    assert leads["sales"].get("/api/v1/accounts/GAMMA").get_json()["tier"] == "key"
    entry = leads["auditor"].get("/api/v1/audit?object_id=GAMMA").get_json()["items"][0]
    assert entry["actor"] == "sales2" and entry["details"]["tier_review"] == started["id"]
    assert (entry["details"]["before"]["tier"], entry["details"]["after"]["tier"]) == ("standard", "key")


def test_a_rejected_tier_change_keeps_the_tier(leads) -> None:
    started = tier_review(leads, "BETA")
    work(leads["sales2"], started["id"], "approve", {"decision": "rejected", "decision_reason": "续约未完成"})
    done = instance(leads["sales"], started["id"])
    assert done["state"] == "completed"
    assert done["data"]["tier_decision"] == {"decision": "rejected", "tier": None, "reason": "续约未完成"}
    assert leads["sales"].get("/api/v1/accounts/BETA").get_json()["tier"] == "key"  # as it was
