"""A deployment's calendar file (``Config.calendar_file`` / ``BPM_CALENDAR_FILE``)
drives every SLA; a bad file stops the server at start, loudly; the health
endpoint says when holiday data runs out.

The calendar file used here declares Tuesday 2026-03-03 a holiday, Saturday
2026-03-07 a working day and Friday 2100-01-01 a holiday (a year no release of
the holiday package will cover: which years a release covers is a fact about
the installed package, not about this product). The test clock starts Monday
2026-03-02 09:00 Shanghai.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bpm_server.app import create_app
from bpm_server.config import PROJECT_ROOT, Config
from bpm_server.sla.calendar import BusinessCalendar, CalendarFileError, WorkingDuration
from tests.api.flows import do_stage, open_task, start_project
from tests.support import at, move_clock

SIGNED = "2026-03-02T09:00:00+08:00"
CALENDAR = {"holidays": ["2026-03-03", "2100-01-01"], "working_days": ["2026-03-07"]}


def breaches(caller) -> list[dict]:
    return caller.get("/api/v1/sla/breaches").get_json()["items"]


@pytest.fixture
def calendar_file(tmp_path: Path) -> Path:
    path = tmp_path / "calendar.json"
    path.write_text(json.dumps(CALENDAR), encoding="utf-8")
    return path


@pytest.fixture
def config(config: Config, calendar_file: Path) -> Config:  # the SLA test config, plus the calendar file
    # The tests here move the clock decades ahead: the accounts' daily evaluation would fire once
    # for every day on the way (~27,000 times), as real time would. It is not what they test.
    return config.but(calendar_file=calendar_file, accounts_daily_at=None)


# --------------------------------------------------------------------------- the file is used


def test_a_holiday_in_the_calendar_file_moves_the_due_date(leads) -> None:
    people = leads
    # Without the file, kickoff (2 working days from Monday 09:00) would be due Tuesday 18:00.
    default_due = BusinessCalendar.default().add_working_time(at(SIGNED), WorkingDuration(2, "day"))
    assert default_due == at("2026-03-03T18:00:00+08:00")

    project = start_project(people["sales"], account_id="GAMMA", signed_at=SIGNED)
    [kickoff] = project["tasks"]
    assert at(kickoff["due_at"]) == at("2026-03-04T18:00:00+08:00")  # Tuesday is a holiday here
    assert at(kickoff["warn_at"]) == at("2026-03-04T14:48:00+08:00")
    assert at(open_task(people["sales"], project["id"], "kickoff")["due_at"]) == at(kickoff["due_at"])

    # Tuesday evening passes without a breach; Wednesday evening does not.
    move_clock(people["admin"], "2026-03-04T10:00:00+08:00")
    assert breaches(people["auditor"]) == []
    move_clock(people["admin"], "2026-03-04T18:30:00+08:00")
    [breach] = breaches(people["auditor"])
    assert breach["task_name"] == "kickoff" and at(breach["due_at"]) == at("2026-03-04T18:00:00+08:00")


def test_an_extra_working_day_in_the_calendar_file_counts(leads) -> None:
    people = leads
    iid = start_project(people["sales"], account_id="GAMMA", signed_at=SIGNED)["id"]
    do_stage(people, iid, "kickoff")  # Monday 09:00
    research = open_task(people["consulting"], iid, "needs_research")
    # 5 working days from Monday 09:00: Mon, Wed, Thu, Fri and the working Saturday (Tuesday is off).
    assert at(research["due_at"]) == at("2026-03-07T18:00:00+08:00")


def test_calendar_file_fills_a_year_the_holiday_package_does_not_cover(leads, caplog) -> None:
    people = leads
    move_clock(people["admin"], "2099-12-31T17:00:00+08:00")
    with caplog.at_level(logging.WARNING, logger="bpm_server.sla.calendar"):
        [kickoff] = start_project(people["sales"], account_id="GAMMA",
                                  signed_at="2099-12-31T17:00:00+08:00")["tasks"]
    # 1 h on Thursday, Friday 2100-01-01 off (calendar file), Monday 8 h, Tuesday 7 h.
    assert at(kickoff["due_at"]) == at("2100-01-05T17:00:00+08:00")
    warnings = [r.getMessage() for r in caplog.records
                if r.name == "bpm_server.sla.calendar" and r.levelno == logging.WARNING]
    assert any("2100" in message for message in warnings), warnings


# --------------------------------------------------------------------------- a bad file fails at start


BAD_FILES = [
    ({"holidays": ["2026-02-30"]}, ["holidays", "2026-02-30"]),
    ({"holidays": "2026-03-03"}, ["holidays"]),
    ({"working_days": ["next monday"]}, ["working_days", "next monday"]),
    ({"working_hours": [["18:00", "09:00"]]}, ["working_hours"]),
    ({"working_hours": [["09:00", "25:00"]]}, ["working_hours", "25:00"]),
    ({"time_zone": "Mars/Olympus"}, ["time_zone", "Mars/Olympus"]),
    ({"holiday": ["2026-03-03"]}, ["holiday"]),
    ({"use_chinese_holidays": "yes"}, ["use_chinese_holidays"]),
    ({"holidays": ["2026-03-03"], "working_days": ["2026-03-03"]}, ["2026-03-03"]),
]


@pytest.mark.parametrize("content, words", BAD_FILES, ids=[json.dumps(c) for c, _ in BAD_FILES])
def test_an_invalid_calendar_file_stops_create_app_naming_the_key(tmp_path: Path, content: dict,
                                                                  words: list[str]) -> None:
    path = tmp_path / "calendar.json"
    path.write_text(json.dumps(content), encoding="utf-8")
    with pytest.raises(CalendarFileError) as raised:
        create_app(Config(database_url=f"sqlite:///{tmp_path / 'bpm.sqlite3'}", calendar_file=path))
    message = str(raised.value)
    for word in words:
        assert word in message, (word, message)
    assert str(path) in message


@pytest.mark.parametrize("text", ["{not json", "", "[\"2026-03-03\"]"])
def test_an_unreadable_calendar_file_stops_create_app(tmp_path: Path, text: str) -> None:
    path = tmp_path / "calendar.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CalendarFileError, match="calendar"):
        create_app(Config(database_url=f"sqlite:///{tmp_path / 'bpm.sqlite3'}", calendar_file=path))


def test_a_missing_calendar_file_stops_create_app(tmp_path: Path) -> None:
    with pytest.raises(CalendarFileError, match=r"nowhere\.json"):
        create_app(Config(database_url=f"sqlite:///{tmp_path / 'bpm.sqlite3'}",
                          calendar_file=tmp_path / "nowhere.json"))


def test_the_cli_refuses_to_start_with_a_bad_calendar_file(tmp_path: Path) -> None:
    path = tmp_path / "calendar.json"
    path.write_text(json.dumps({"holidays": ["2026-13-01"]}), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BPM_")}
    env.update(BPM_DATABASE_URL=f"sqlite:///{tmp_path / 'bpm.sqlite3'}", BPM_CALENDAR_FILE=str(path),
               PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, "-m", "bpm_server.cli", "db", "upgrade"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0, result.stdout
    assert "holidays" in result.stderr and "2026-13-01" in result.stderr, result.stderr
    assert "up to date" not in result.stdout


# --------------------------------------------------------------------------- health


def test_health_names_the_years_without_holiday_data(app, clock) -> None:
    clock.set(at("2099-06-01T09:00:00+08:00"))  # this year and the next: no package covers either
    client = app.test_client()
    response = client.get("/api/v1/health")  # no authentication: monitors poll it
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "ok"
    calendar = body["checks"]["calendar"]
    assert calendar["uncovered_years"] == [2099, 2100]
    assert "2099" in calendar["warning"] and "2100" in calendar["warning"]
    assert calendar["time_zone"] == "Asia/Shanghai"


def test_health_has_no_warning_for_a_covered_year(app, clock) -> None:
    clock.set(at("2025-06-01T09:00:00+08:00"))  # 2025 and 2026 are in every supported package release
    calendar = app.test_client().get("/api/v1/health").get_json()["checks"]["calendar"]
    assert calendar["uncovered_years"] == [] and "warning" not in calendar


def test_health_follows_the_clock_into_uncovered_years(leads, app) -> None:
    before = app.test_client().get("/api/v1/health").get_json()["checks"]["calendar"]["uncovered_years"]
    assert 2098 not in before
    move_clock(leads["admin"], "2098-02-01T09:00:00+08:00")
    body = app.test_client().get("/api/v1/health").get_json()
    assert body["status"] == "ok"
    assert body["checks"]["calendar"]["uncovered_years"] == [2098, 2099]
    assert "2098" in body["checks"]["calendar"]["warning"] and "2099" in body["checks"]["calendar"]["warning"]
