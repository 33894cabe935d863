"""绿色通道服务请求: tier-dependent first reply, fix, and the event-based gateway both ways.

tests.conftest.START is Monday 2026-03-02 09:00 in Shanghai; working hours 09:00-12:00, 13:00-18:00."""
from __future__ import annotations

from tests.processes.helpers import breaches, instance, moment, open_names, start, work
from tests.support import at, move_clock

FIX = {"resolution": "重启同步服务并修复配置", "root_cause": "证书过期"}


def request(caller, account: str, number: str) -> dict:
    return start(caller, "green-channel-request", account,
                 {"request_no": number, "summary": "订单同步中断", "severity": "urgent"})


def confirm(caller, number: str, resolved: bool, message_id: str):
    return caller.post("/api/v1/messages", json={
        "name": "green_channel_confirmed", "correlation": {"request_no": number},
        "payload": {"resolved": resolved}, "message_id": message_id})


def test_strategic_accounts_get_a_first_reply_within_one_working_hour_others_within_a_day(leads) -> None:
    sales, admin = leads["sales"], leads["admin"]
    [strategic] = request(sales, "ACME", "GC-1")["tasks"]
    [standard] = request(sales, "GAMMA", "GC-2")["tasks"]
    assert strategic["name"] == standard["name"] == "first_reply"
    assert moment(strategic["due_at"]) == at("2026-03-02T10:00:00+08:00")
    assert moment(standard["due_at"]) == at("2026-03-02T18:00:00+08:00")
    assert strategic["priority"] == standard["priority"] == 5

    move_clock(admin, "2026-03-02T10:05:00+08:00")
    late = breaches(leads["auditor"], process_model_id="green-channel-request", kind="resolution")
    assert [(b["account_id"], b["task_name"]) for b in late] == [("ACME", "first_reply")]
    # The strategic tier's ladder: 4 working hours after the breach the department lead takes it over.
    move_clock(admin, "2026-03-02T15:05:00+08:00")
    taken = sales.get(f"/api/v1/tasks/{strategic['id']}").get_json()
    assert taken["assignee"] == "sales2" and taken["priority"] > 5
    move_clock(admin, "2026-03-02T15:10:00+08:00")
    assert [b["account_id"] for b in breaches(leads["auditor"], process_model_id="green-channel-request",
                                              kind="resolution")] == ["ACME"]


def test_a_request_must_be_taken_up_quickly_and_fixed_within_three_working_days_end_to_end(leads) -> None:
    """The response clock (claim or comment: 30 working minutes strategic, 4 working hours
    others) and the end-to-end clock from first reply ready to fix completed (3 working days)."""
    sales, delivery, admin = leads["sales"], leads["delivery"], leads["admin"]
    ignored = request(sales, "ACME", "GC-10")["id"]
    answered = request(sales, "ACME", "GC-11")
    slow = request(sales, "GAMMA", "GC-12")["id"]
    move_clock(admin, "2026-03-02T09:20:00+08:00")
    response = sales.post(f"/api/v1/tasks/{answered['tasks'][0]['id']}/comments", json={"body": "收到 马上处理"})
    assert response.status_code in (200, 201), response.get_json()
    move_clock(admin, "2026-03-02T09:45:00+08:00")
    [late] = breaches(leads["auditor"], kind="response")
    assert (late["process_instance_id"], late["clock"], late["task_name"]) == (ignored, "first_response", "first_reply")
    assert moment(late["breached_at"]) == at("2026-03-02T09:30:00+08:00")

    work(sales, slow, "first_reply", {"reply_summary": "已确认问题 技术支持正在处理"})
    assert breaches(leads["auditor"], kind="end_to_end") == []
    move_clock(admin, "2026-03-05T09:30:00+08:00")  # Monday 09:00 + 3 working days = Wednesday 18:00
    mine = [b for b in breaches(leads["auditor"], kind="end_to_end") if b["process_instance_id"] == slow]
    assert [(b["clock"], b["task_name"], moment(b["breached_at"])) for b in mine] == [
        ("request_to_fix", "fix", at("2026-03-04T18:00:00+08:00"))]
    assert delivery.get("/api/v1/sla/breaches").status_code == 403


def test_the_customer_confirms_the_fix_and_the_request_closes(leads) -> None:
    sales, delivery = leads["sales"], leads["delivery"]
    started = request(sales, "BETA", "GC-3")
    work(sales, started["id"], "first_reply", {"reply_summary": "已确认问题 技术支持正在处理"})
    [fix] = instance(sales, started["id"])["tasks"]
    assert fix["department"] == "delivery" and moment(fix["due_at"]) == at("2026-03-03T18:00:00+08:00")  # 48 h
    work(delivery, started["id"], "fix", FIX)
    waiting = instance(sales, started["id"])
    assert {w["kind"] for w in waiting["waiting_for"]} == {"message"}
    assert confirm(leads["erp"], "GC-3", True, "m-1").status_code in (200, 201, 202)
    done = instance(sales, started["id"])
    assert done["state"] == "completed" and done["data"]["confirmation"]["resolved"] is True
    assert "closed_by_timeout" not in done["data"]
    move_clock(leads["admin"], "2026-03-10T09:00:00+08:00")  # the timer lost: nothing happens later
    assert instance(sales, started["id"])["state"] == "completed"


def test_not_fixed_goes_back_to_fix_and_without_confirmation_it_closes_after_three_days(leads) -> None:
    sales, delivery = leads["sales"], leads["delivery"]
    started = request(sales, "BETA", "GC-4")
    work(sales, started["id"], "first_reply", {"reply_summary": "已确认问题"})
    work(delivery, started["id"], "fix", FIX)
    assert confirm(leads["erp"], "GC-4", False, "m-2").status_code in (200, 201, 202)
    assert open_names(sales, started["id"]) == ["fix"]  # the customer says it is not fixed
    move_clock(leads["admin"], "2026-03-02T11:00:00+08:00")
    work(delivery, started["id"], "fix", FIX)
    move_clock(leads["admin"], "2026-03-05T10:59:00+08:00")
    assert instance(sales, started["id"])["state"] == "running"
    move_clock(leads["admin"], "2026-03-05T11:01:00+08:00")  # three days without an answer
    closed = instance(sales, started["id"])
    assert closed["state"] == "completed" and closed["data"]["closed_by_timeout"] is True
    late = confirm(leads["erp"], "GC-4", True, "m-3")
    assert late.status_code == 404 and late.get_json()["error"]["code"] == "no_waiting_instance"
