# ruff: noqa: RUF001 - Chinese text uses full-width punctuation
"""SLA notices reach each person in their own language: Chinese unless they chose English, the
stage's title too (its model's messages file: account-project is written in English)."""
from __future__ import annotations

from tests.api.flows import start_project
from tests.support import move_clock

SIGNED = "2026-03-02T09:00:00+08:00"


def _notes(caller, kind: str) -> list[dict]:
    items = caller.get("/api/v1/notifications").get_json()["items"]
    return [n for n in items if n["kind"] == kind]


def test_breach_notices_are_chinese_by_default_and_english_for_who_chose_it(leads):
    people = leads
    assert people["sales2"].get("/api/v1/notifications/language").get_json() == {"locale": "zh_CN"}
    chosen = people["sales2"].put("/api/v1/notifications/language", json={"locale": "en"})
    assert chosen.status_code == 200 and chosen.get_json() == {"locale": "en"}
    start_project(people["sales"], account_id="GAMMA", signed_at=SIGNED)
    move_clock(people["admin"], "2026-03-04T10:00:00+08:00")  # past Tuesday 18:00

    [chinese] = _notes(people["sales"], "sla_breach")
    assert chinese["title"] == "已超时：项目启动（GAMMA Ltd）"
    assert chinese["body"] == "客户 GAMMA Ltd 的阶段“项目启动”已超过截止时间（2026-03-03 18:00）。"
    [warning] = _notes(people["sales"], "sla_warning")
    assert warning["title"] == "即将超时：项目启动（GAMMA Ltd）"

    [english] = _notes(people["sales2"], "sla_breach")  # the same breach, for the lead who reads English
    assert english["title"] == "Overdue: Project kickoff (GAMMA Ltd)"
    assert english["body"] == "The stage “Project kickoff” of GAMMA Ltd is past its due time (2026-03-03 18:00)."


def test_an_unknown_language_is_refused_naming_the_field(leads):
    refused = leads["sales"].put("/api/v1/notifications/language", json={"locale": "fr"})
    assert refused.status_code == 422
    error = refused.get_json()["error"]
    assert error["code"] == "invalid_locale" and "locale" in error["details"]
    assert leads["sales"].get("/api/v1/notifications/language").get_json() == {"locale": "zh_CN"}
