# ruff: noqa: RUF001 - Chinese text uses full-width punctuation
"""Names, not ids, where a person reads: departments by their Chinese name (English on
request), the model by its name and the account tier by its label on the task page, and
the escalation rungs of the breach log said again in the reader's language, with people
named, from the English sentences the hash-chained entries keep."""
from __future__ import annotations

import csv
import io
import re

import pytest
from flask import Flask

from bpm_server.database import db
from bpm_server.identity.models import Department, User
from bpm_server.sla import breaches
from tests.api.flows import open_task, start_project
from tests.support import move_clock, page_client


def _cells(page: str, testid: str) -> list[str]:
    found = re.findall(rf'data-testid="{testid}"[^>]*>(.*?)</(?:td|dd|span|a)>', page, flags=re.S)
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in found]


@pytest.fixture
def named(leads, synced_app: Flask):
    """sales2 (周强) leads sales; sales (李娜) owns the accounts."""
    with synced_app.app_context():
        for username, name in (("sales", "李娜"), ("sales2", "周强")):
            db.session.query(User).filter_by(username=username).one().display_name = name
        db.session.commit()
    return leads


def _breached_kickoff(people) -> None:
    start_project(people["sales"], "GAMMA")  # standard tier: kickoff due Tuesday 18:00
    move_clock(people["admin"], "2026-03-05T10:00:00+08:00")  # breached, and a working day later the rung


def test_departments_come_with_chinese_and_english_names_from_the_catalogue(synced_app: Flask) -> None:
    with synced_app.app_context():
        sales = db.session.get_one(Department, "sales")
        assert (sales.name, sales.name_en) == ("销售部", "Sales")
        assert db.session.get_one(Department, "finance").name == "财务部"


def test_the_inbox_and_task_page_name_department_model_and_tier(named, synced_app: Flask) -> None:
    instance = start_project(named["sales"], "ACME")  # a strategic account
    browser = page_client(synced_app, "sales")
    inbox = browser.get("/inbox?tab=department").get_data(as_text=True)
    assert "<td>销售部</td>" in inbox and "<td>sales</td>" not in inbox
    assert "<td>大客户新项目</td>" in inbox and "<td>account-project</td>" not in inbox
    task_id = instance["tasks"][0]["id"]
    zh = browser.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert _cells(zh, "task-department") == ["销售部"]
    assert "(战略客户)" in zh and "(strategic)" not in zh
    assert ">大客户新项目</a>" in zh and ">account-project</a>" not in zh
    en = browser.get(f"/tasks/{task_id}?lang=en").get_data(as_text=True)
    assert _cells(en, "task-department") == ["Sales"]
    assert "(Strategic)" in en and ">New key-account project</a>" in en


def test_a_department_nobody_named_shows_its_code(named, synced_app: Flask) -> None:
    with synced_app.app_context():
        db.session.add(Department(id="legal", name="legal"))
        db.session.query(User).filter_by(username="sales2").one().department_id = "legal"
        db.session.commit()
    page = page_client(synced_app, "sales").get("/settings").get_data(as_text=True)
    assert "周强 (legal)" in page and "李娜 (销售部)" in page


def test_the_breach_log_names_the_department_and_says_what_each_rung_did(named, synced_app: Flask) -> None:
    _breached_kickoff(named)
    auditor = page_client(synced_app, "auditor")
    zh = auditor.get("/breaches").get_data(as_text=True)
    assert _cells(zh, "breach-department") == ["销售部"]
    actions = " | ".join(_cells(zh, "breach-action"))
    assert "已改派给 周强" in actions and "优先级提高到 1" in actions and "已通知客户经理：李娜" in actions
    assert "reassigned to" not in actions and "sales2" not in actions
    en = auditor.get("/breaches?lang=en").get_data(as_text=True)
    assert _cells(en, "breach-department") == ["Sales"]
    actions = " | ".join(_cells(en, "breach-action"))
    assert "Reassigned to 周强" in actions and "Priority raised to 1" in actions
    assert "Notified the account owner: 李娜" in actions
    exported = named["auditor"].get("/api/v1/sla/breaches?format=csv").get_data(as_text=True)
    [row] = csv.DictReader(io.StringIO(exported))
    assert (row["department"], row["department_name"]) == ("sales", "销售部")  # the code kept, the name beside it
    with synced_app.app_context():  # what is shown is read from the entries, never written back
        assert breaches.verify(db.session).intact


def test_the_instance_timeline_says_the_rungs_in_the_readers_language(named, synced_app: Flask) -> None:
    _breached_kickoff(named)
    with synced_app.app_context():
        instance_id = db.session.execute(db.text("SELECT id FROM process_instance")).scalar_one()
    owner = page_client(synced_app, "owner")
    zh = owner.get(f"/instances/{instance_id}").get_data(as_text=True)
    assert "已改派给 周强" in zh and "项目启动 等待 销售部 处理" in zh
    assert "reassigned to sales2" not in zh and "<td>sales</td>" not in zh and "<strong>sales2</strong>" not in zh
    en = owner.get(f"/instances/{instance_id}?lang=en").get_data(as_text=True)
    assert "Reassigned to 周强" in en and "Project kickoff is waiting for Sales" in en


def test_the_account_page_names_the_late_stage_and_its_department(named, synced_app: Flask) -> None:
    _breached_kickoff(named)
    page = page_client(synced_app, "sales").get("/accounts/GAMMA").get_data(as_text=True)
    assert '<tr data-testid="breach-row"><td>项目启动</td><td>销售部</td>' in page
    assert '<tr data-testid="late-row"><td>项目启动</td><td>大客户新项目</td><td>销售部</td>' in page
    english = page_client(synced_app, "sales").get("/accounts/GAMMA?lang=en").get_data(as_text=True)
    assert '<tr data-testid="breach-row"><td>Project kickoff</td><td>Sales</td>' in english


def test_the_start_page_offers_models_by_their_names(named, synced_app: Flask) -> None:
    browser = page_client(synced_app, "sales")
    assert ">大客户新项目</option>" in browser.get("/processes/start").get_data(as_text=True)
    assert ">New key-account project</option>" in browser.get("/processes/start?lang=en").get_data(as_text=True)


def test_the_breach_log_names_who_held_the_stage(named, synced_app: Flask) -> None:
    instance = start_project(named["sales"], "GAMMA")
    task = open_task(named["sales"], instance["id"], "kickoff")
    assert named["sales"].post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    move_clock(named["admin"], "2026-03-04T10:00:00+08:00")  # breached while sales held it
    page = page_client(synced_app, "auditor").get("/breaches").get_data(as_text=True)
    assert _cells(page, "breach-assignee") == ["李娜"]  # the entry keeps the username "sales"
