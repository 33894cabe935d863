"""客户流失风险干预 and 关键联系人变更交接, end to end over the API with the test clock.

tests.conftest.START is Monday 2026-03-02 09:00 in Shanghai; working hours 09:00-12:00, 13:00-18:00."""
from __future__ import annotations

from tests.processes.helpers import breaches, instance, moment, open_names, start, work
from tests.support import at, move_clock

TRIGGER = {"rule": "usage_below_70_two_weeks", "facts": {"usage_rate": 0.62, "weeks": 2}}


def test_churn_risk_intervention_runs_from_signal_to_follow_up_with_breach_and_escalation(leads) -> None:
    sales, lead = leads["sales"], leads["sales2"]
    started = start(sales, "churn-risk-intervention", "GAMMA", {"account_id": "GAMMA", "trigger": TRIGGER})
    tasks = {t["name"]: t for t in started["tasks"]}
    assert sorted(tasks) == ["contact_customer", "director_review"]
    for task in tasks.values():  # high priority, in the sales inbox, due within 1 working day
        assert task["department"] == "sales" and task["priority"] == 5
        assert moment(task["due_at"]) == at("2026-03-02T18:00:00+08:00")  # the end of this working day
    contact = sales.get(f"/api/v1/tasks/{tasks['contact_customer']['id']}").get_json()
    assert contact["title"] == "联系客户并评估流失风险" and contact["data"]["trigger"] == TRIGGER

    # Nobody called the customer within the working day: breach, then the ladder escalates to the lead.
    move_clock(leads["admin"], "2026-03-02T18:30:00+08:00")
    [breach] = [b for b in breaches(leads["auditor"], process_model_id="churn-risk-intervention")
                if b["task_name"] == "contact_customer"]
    assert breach["account_id"] == "GAMMA"
    move_clock(leads["admin"], "2026-03-03T14:30:00+08:00")  # 4 working hours after the breach: Tuesday 14:00
    escalated = sales.get(f"/api/v1/tasks/{tasks['contact_customer']['id']}").get_json()
    assert escalated["assignee"] == "sales2" and escalated["priority"] == 7

    work(lead, started["id"], "contact_customer",
         {"contacted_at": "2026-03-03", "contact_person": "王总 (CIO)", "risk_cause": "low_usage",
          "contact_summary": "客户反馈新系统培训不足 使用率下降。"})
    assert open_names(sales, started["id"]) == ["director_review"]  # the join waits for the director
    work(lead, started["id"], "director_review", {"director_opinion": "安排专项培训", "executive_visit": True})
    assert open_names(sales, started["id"]) == ["recovery_plan"]
    work(sales, started["id"], "recovery_plan",
         {"plan": "两周内完成三场专项培训并每周回访", "plan_owner": "sales", "target_date": "2026-03-17"})
    assert open_names(sales, started["id"]) == []  # waiting two weeks
    move_clock(leads["admin"], "2026-03-18T09:00:00+08:00")
    assert open_names(sales, started["id"]) == ["follow_up"]
    work(sales, started["id"], "follow_up", {"outcome": "recovered", "outcome_notes": "使用率回升到85%"})
    done = instance(sales, started["id"])
    assert done["state"] == "completed" and done["data"]["outcome"] == "recovered"


def test_churn_director_task_goes_to_the_named_sales_director(leads) -> None:
    started = start(leads["sales"], "churn-risk-intervention", "BETA", {"sales_director": "sales2"})
    director = next(t for t in started["tasks"] if t["name"] == "director_review")
    assert director["state"] == "claimed" and director["assignee"] == "sales2"


def test_key_contact_handover_within_a_day_and_visit_within_five_working_days(leads) -> None:
    sales = leads["sales"]
    started = start(sales, "key-contact-handover", "BETA", {
        "account_id": "BETA", "trigger": {"rule": "key_contact_changed", "facts": {"previous": "张经理"}}})
    [handover] = started["tasks"]
    assert handover["name"] == "handover" and handover["priority"] == 3
    assert moment(handover["due_at"]) == at("2026-03-02T18:00:00+08:00")  # 24 hours = 1 working day
    move_clock(leads["admin"], "2026-03-02T15:00:00+08:00")
    work(sales, started["id"], "handover",
         {"new_contact_name": "李娜", "new_contact_role": "decision_maker", "new_contact_channel": "li@example.com",
          "handover_notes": "已整理合作历史与在办事项 已介绍给新联系人。", "team_informed": True})
    [visit] = instance(sales, started["id"])["tasks"]
    assert visit["name"] == "visit_new_contact"
    assert moment(visit["due_at"]) == at("2026-03-09T15:00:00+08:00")  # 5 working days after the handover
    move_clock(leads["admin"], "2026-03-09T16:00:00+08:00")  # the visit is late: logged
    assert [b["task_name"] for b in breaches(leads["auditor"], process_model_id="key-contact-handover")] == \
        ["visit_new_contact"]
    work(sales, started["id"], "visit_new_contact",
         {"visit_date": "2026-03-09", "visit_summary": "新联系人希望每月一次例会。", "relationship": "good"})
    assert instance(sales, started["id"])["state"] == "completed"
