# ruff: noqa: RUF001 - Chinese text uses full-width punctuation
"""Stage titles and model names in the reader's language beyond the task and inbox pages: the
SLA dashboard, the breach log, the lead page and the notification centre, through each
model's messages file (account-project is written in English and ships messages/zh_CN.json)."""
from __future__ import annotations

import re

from tests.api.flows import start_project
from tests.support import move_clock, page_client


def _breached_kickoff(leads) -> None:
    start_project(leads["sales"], "GAMMA")  # standard tier: kickoff due Tuesday 18:00
    move_clock(leads["admin"], "2026-03-04T10:00:00+08:00")


def _cells(page: str, testid: str) -> list[str]:
    found = re.findall(rf'data-testid="{testid}"[^>]*>(.*?)</(?:td|a)>', page, flags=re.S)
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in found]


def test_the_breach_log_names_stage_and_model_in_the_readers_language(leads, synced_app) -> None:
    _breached_kickoff(leads)
    auditor = page_client(synced_app, "auditor")
    zh = auditor.get("/breaches").get_data(as_text=True)
    assert _cells(zh, "breach-stage") == ["项目启动 kickoff"] and _cells(zh, "breach-model") == ["大客户新项目"]
    assert ">大客户新项目</option>" in zh  # the process filter too
    en = auditor.get("/breaches?lang=en").get_data(as_text=True)
    assert _cells(en, "breach-stage") == ["Project kickoff kickoff"]
    assert _cells(en, "breach-model") == ["New key-account project"]


def test_the_dashboard_shows_chinese_stage_titles_and_english_on_request(leads, synced_app) -> None:
    _breached_kickoff(leads)
    owner = page_client(synced_app, "owner")
    zh = owner.get("/dashboard").get_data(as_text=True)
    assert _cells(zh, "open-breach-stage") == ["项目启动"] and ">大客户新项目</option>" in zh
    en = owner.get("/dashboard?lang=en").get_data(as_text=True)
    assert _cells(en, "open-breach-stage") == ["Project kickoff"] and "项目启动" not in en


def test_the_lead_page_shows_chinese_stage_titles_and_english_on_request(leads, synced_app) -> None:
    _breached_kickoff(leads)
    lead = page_client(synced_app, "sales2")
    zh = lead.get("/leads").get_data(as_text=True)
    assert "项目启动</a>" in zh and "Project kickoff" not in zh
    en = lead.get("/leads?lang=en").get_data(as_text=True)
    assert "Project kickoff</a>" in en and "项目启动" not in en


def test_the_notification_centre_says_the_stage_in_the_pages_language(leads, synced_app) -> None:
    _breached_kickoff(leads)
    staff = page_client(synced_app, "sales")
    zh = staff.get("/notifications").get_data(as_text=True)
    assert "已超时：项目启动（GAMMA Ltd）" in zh
    en = staff.get("/notifications?lang=en").get_data(as_text=True)
    assert "Overdue: Project kickoff (GAMMA Ltd)" in en and "项目启动" not in en
