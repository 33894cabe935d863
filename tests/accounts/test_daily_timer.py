"""The daily evaluation runs by itself: a durable timer per day at BPM_ACCOUNTS_DAILY_AT (06:00)."""
from __future__ import annotations

from datetime import time, timedelta

import pytest
from sqlalchemy import select

from bpm_server.config import Config
from bpm_server.database import db
from bpm_server.sla.models import Timer
from bpm_server.sla.scheduler import TimerPump
from tests.accounts.conftest import rule_dmn
from tests.accounts.test_signals_and_rules import signal
from tests.conftest import START
from tests.support import move_clock

TUESDAY_6 = START + timedelta(hours=21)  # START is Monday 09:00 in Shanghai


def daily_rows(app) -> list[tuple[str, bool]]:
    with app.app_context():
        rows = db.session.scalars(select(Timer).where(Timer.kind == "accounts_daily").order_by(Timer.due_at))
        return [(row.id, row.fired_at is not None) for row in rows]


def health_days(caller, account: str) -> list[str]:
    return [h["day"] for h in caller.get(f"/api/v1/accounts/{account}/health").get_json()["history"]]


def daily_firings(caller, account: str) -> list[dict]:
    items = caller.get(f"/api/v1/accounts/{account}/firings").get_json()["items"]
    return [f for f in items if f["trigger"] == "daily" and f["rule_id"] == "usage-test"]


def usage_rule_after_the_signals(people, intervention: str) -> None:
    """Low usage two weeks running, measured before the rule exists: only an evaluation
    after the rule was published can fire it (the signals' own evaluation did not)."""
    signal(people["erp"], "BETA", "u-w2", "usage_rate", 65, days_ago=9)
    signal(people["erp"], "BETA", "u-w1", "usage_rate", 60, days_ago=1)
    dmn = rule_dmn([("本周", "usage_week_1"), ("上周", "usage_week_2")], [(["&lt; 70", "&lt; 70"], intervention)])
    assert people["owner"].post("/api/v1/account-rules/usage-test/versions", json={"dmn": dmn}).status_code == 201
    assert daily_firings(people["sales"], "BETA") == []


def test_the_clock_passing_six_on_a_working_day_evaluates_once(people, intervention, synced_app) -> None:
    usage_rule_after_the_signals(people, intervention)
    assert health_days(people["sales"], "BETA") == ["2026-03-02"]  # the signals' own evaluation

    move_clock(people["admin"], TUESDAY_6 - timedelta(minutes=1))
    assert daily_firings(people["sales"], "BETA") == []  # not yet 06:00
    moved = move_clock(people["admin"], TUESDAY_6 + timedelta(hours=2))
    assert moved["fired"] == 1
    [fired] = daily_firings(people["sales"], "BETA")
    assert fired["outcome"] == "started" and fired["fired_at"].startswith("2026-03-02T22:00")
    assert health_days(people["sales"], "BETA") == ["2026-03-02", "2026-03-03"]
    instance = people["admin"].get(f"/api/v1/process-instances/{fired['process_instance_id']}").get_json()
    assert instance["account_id"] == "BETA" and [t["name"] for t in instance["tasks"]] == ["call_customer"]

    # Later the same day nothing runs again; the next day's moment is armed, once.
    move_clock(people["admin"], TUESDAY_6 + timedelta(hours=10))
    assert daily_rows(synced_app) == [("accounts-daily-2026-03-03", True), ("accounts-daily-2026-03-04", False)]
    # Two days at once: each day's evaluation, each once, at its own 06:00.
    move_clock(people["admin"], TUESDAY_6 + timedelta(days=2, hours=1))
    assert [fired for _, fired in daily_rows(synced_app)] == [True, True, True, False]
    assert health_days(people["sales"], "BETA")[-2:] == ["2026-03-04", "2026-03-05"]
    assert len(daily_firings(people["sales"], "BETA")) == 1  # the open intervention is not started twice


def test_a_weekend_morning_keeps_the_health_row_but_runs_no_rule(people, intervention) -> None:
    friday_7 = START + timedelta(days=3, hours=22)
    assert move_clock(people["admin"], friday_7)["fired"] == 4  # Tuesday to Friday
    signal(people["erp"], "BETA", "u-now", "usage_rate", 60)
    dmn = rule_dmn([("使用率", "usage_rate")], [(["&lt; 70"], intervention)])
    assert people["owner"].post("/api/v1/account-rules/usage-test/versions", json={"dmn": dmn}).status_code == 201

    assert move_clock(people["admin"], friday_7 + timedelta(days=2))["fired"] == 2  # Saturday, Sunday
    assert health_days(people["sales"], "BETA")[-2:] == ["2026-03-07", "2026-03-08"]
    assert daily_firings(people["sales"], "BETA") == []
    move_clock(people["admin"], friday_7 + timedelta(days=3))  # Monday: a working day again
    assert len(daily_firings(people["sales"], "BETA")) == 1


def test_off_arms_nothing_and_nothing_runs(people, synced_app) -> None:
    synced_app.extensions["bpm"].config = synced_app.extensions["bpm"].config.but(accounts_daily_at=None)
    signal(people["erp"], "BETA", "u-w1", "usage_rate", 60, days_ago=1)
    assert move_clock(people["admin"], START + timedelta(days=3))["fired"] == 0
    assert daily_rows(synced_app) == []
    assert health_days(people["sales"], "BETA") == ["2026-03-02"]


def test_the_pump_arms_the_next_morning_once_however_many_pumps_run(people, synced_app, clock) -> None:
    first, second = TimerPump(synced_app), TimerPump(synced_app)
    with synced_app.app_context():
        first.pump_once()
        second.pump_once()  # a second replica: the same row, not a second one
    assert daily_rows(synced_app) == [("accounts-daily-2026-03-03", False)]
    signal(people["erp"], "BETA", "u-w1", "usage_rate", 60, days_ago=1)
    clock.set(TUESDAY_6 + timedelta(seconds=5))
    with synced_app.app_context():
        first.pump_once()
        synced_app.extensions["bpm"].jobs.drain()
    assert health_days(people["sales"], "BETA") == ["2026-03-02", "2026-03-03"]
    assert daily_rows(synced_app) == [("accounts-daily-2026-03-03", True), ("accounts-daily-2026-03-04", False)]


def test_the_setting_is_a_time_of_day_or_off() -> None:
    assert Config.from_env({}, env_file=None).accounts_daily_at == time(6, 0)
    assert Config.from_env({"BPM_ACCOUNTS_DAILY_AT": "07:30"}, env_file=None).accounts_daily_at == time(7, 30)
    assert Config.from_env({"BPM_ACCOUNTS_DAILY_AT": "OFF"}, env_file=None).accounts_daily_at is None
    for bad in ("7am", "24:00", "6:00", "06:60"):
        with pytest.raises(ValueError, match="BPM_ACCOUNTS_DAILY_AT"):
            Config.from_env({"BPM_ACCOUNTS_DAILY_AT": bad}, env_file=None)
