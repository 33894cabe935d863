"""The calendar is data the deployment owns: official holiday notices imported by
an admin (API or CLI), validated, stored as audited revisions and used by the
calendar at once; a year without a notice or package data is provisional, and
tasks due in it say so (``due_provisional``, a badge in the browser).

2030 stands for "a year we give a notice for" (checked to be provisional first,
so a future package release covering it fails loudly instead of silently
testing nothing); 2099 for a year nobody will have data for.
"""
from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import chinese_calendar
import pytest

from bpm_server.app import create_app
from bpm_server.database import db
from bpm_server.sla import statutory
from bpm_server.sla.calendar import BusinessCalendar
from tests.api.flows import start_project
from tests.cli.test_cli import Cli, failed
from tests.support import page_client

NOTICE_2030: dict[str, Any] = {
    "year": 2030, "source": "国务院办公厅关于2030年部分节假日安排的通知 (test)", "published": "2029-11-12",
    "holidays": [["2030-01-01", "2030-01-01"], ["2030-02-02", "2030-02-10"], ["2030-04-05", "2030-04-07"],
                 ["2030-05-01", "2030-05-05"], ["2030-06-05", "2030-06-07"], ["2030-09-12", "2030-09-14"],
                 ["2030-10-01", "2030-10-07"]],
    "working_days": ["2030-01-26", "2030-02-16"],  # Saturdays
}


def at(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def move_clock(caller, iso: str) -> None:
    response = caller.post("/api/v1/test/clock", json={"now": iso})
    assert response.status_code == 200, response.get_json()


def kickoff(caller, signed_at: str) -> dict:
    """A GAMMA (standard tier) project's kickoff: due 2 working days after signature."""
    [task] = start_project(caller, account_id="GAMMA", signed_at=signed_at)["tasks"]
    return caller.get(f"/api/v1/tasks/{task['id']}").get_json()


@pytest.fixture(autouse=True)
def _years_under_test_have_no_package_data() -> None:
    cal = BusinessCalendar.default()
    assert cal.is_provisional_year(2030) and cal.is_provisional_year(2099), \
        "the installed holiday package covers 2030 or 2099: pick other years for these tests"


# --------------------------------------------------------------------------- the law's days


def test_statutory_holidays_of_2027_are_the_laws_thirteen_days() -> None:
    expected = {date(2027, 1, 1), *(date(2027, 2, d) for d in (5, 6, 7, 8)), date(2027, 4, 5),
                date(2027, 5, 1), date(2027, 5, 2), date(2027, 6, 9), date(2027, 9, 15),
                date(2027, 10, 1), date(2027, 10, 2), date(2027, 10, 3)}
    assert statutory.statutory_holidays(2027) == expected


@pytest.mark.parametrize("year", [2025, 2026])
def test_the_lunar_table_agrees_with_the_published_schedules(year: int) -> None:
    # For the years the package knows, every statutory day we compute is a day off there.
    days = statutory.statutory_holidays(year)
    assert len(days) == 13
    assert [d for d in sorted(days) if not chinese_calendar.is_holiday(d)] == []


def test_a_year_beyond_the_lunar_table_is_a_clear_error() -> None:
    with pytest.raises(statutory.UnknownLunarYear, match="2099"):
        statutory.statutory_holidays(2099)


def test_a_provisional_year_rests_on_the_statutory_days_without_make_up_days() -> None:
    cal = BusinessCalendar.default()
    assert not cal.is_working_day(date(2030, 2, 4))   # Monday, the lunar new year's second day
    assert not cal.is_working_day(date(2030, 6, 5))   # Wednesday, Dragon Boat festival
    assert cal.is_working_day(date(2030, 2, 6))       # Wednesday after: no extra days are guessed
    assert not cal.is_working_day(date(2030, 1, 26))  # a Saturday stays off: make-up days unknown
    assert cal.is_provisional(at("2030-02-06T18:00:00+08:00"))
    assert not cal.is_provisional(at("2026-02-06T18:00:00+08:00"))


# --------------------------------------------------------------------------- provisional due dates


def test_a_task_due_in_a_provisional_year_says_so_in_the_api_and_the_browser(people, synced_app) -> None:
    sales = people["sales"]
    covered = kickoff(sales, "2026-03-02T09:00:00+08:00")
    assert covered["due_provisional"] is False
    move_clock(people["admin"], "2098-12-31T09:00:00+08:00")
    task = kickoff(sales, "2098-12-31T09:00:00+08:00")
    # Wednesday 8 h, Thursday 2099-01-01 is New Year's Day by law, Friday 8 h.
    assert at(task["due_at"]) == at("2099-01-02T18:00:00+08:00")
    assert task["due_provisional"] is True
    listed = {t["id"]: t for t in sales.get("/api/v1/tasks?per_page=100").get_json()["items"]}
    assert listed[task["id"]]["due_provisional"] is True and listed[covered["id"]]["due_provisional"] is False

    browser = page_client(synced_app, "sales")
    for url in ("/inbox?tab=department", f"/tasks/{task['id']}"):
        html = browser.get(url).get_data(as_text=True)
        assert "暂定" in html and 'data-testid="due-provisional"' in html, url
        assert "官方放假安排尚未发布" in html, url  # the badge's title says why
    covered_page = browser.get(f"/tasks/{covered['id']}").get_data(as_text=True)
    assert 'data-testid="due-provisional"' not in covered_page


# --------------------------------------------------------------------------- importing a notice


def test_an_imported_notice_drives_due_dates_and_is_on_the_record(people) -> None:
    admin, sales = people["admin"], people["sales"]
    move_clock(admin, "2030-01-25T09:00:00+08:00")
    assert admin.get("/api/v1/calendar/notices").get_json() == {"items": [], "provisional_years": [2030, 2031, 2032]}
    before = kickoff(sales, "2030-02-01T09:00:00+08:00")
    # Provisional: Friday 8 h, the weekend and the statutory 2-5 February off, Wednesday 8 h.
    assert at(before["due_at"]) == at("2030-02-06T18:00:00+08:00") and before["due_provisional"] is True

    response = admin.post("/api/v1/calendar/notices", json=NOTICE_2030)
    assert response.status_code == 201, response.get_json()
    revision = response.get_json()
    assert (revision["year"], revision["revision"], revision["imported_by"]) == (2030, 1, "admin")

    after = kickoff(sales, "2030-02-01T09:00:00+08:00")
    assert at(after["due_at"]) == at("2030-02-11T18:00:00+08:00")  # the notice's 2-10 February
    assert after["due_provisional"] is False
    saturday = kickoff(sales, "2030-01-25T09:00:00+08:00")
    assert at(saturday["due_at"]) == at("2030-01-26T18:00:00+08:00")  # a make-up Saturday is worked

    listing = admin.get("/api/v1/calendar/notices").get_json()
    assert [item["revision"] for item in listing["items"]] == [1] and 2030 not in listing["provisional_years"]
    health = admin.get("/api/v1/health").get_json()["checks"]["calendar"]
    assert health["notices"] == [2030] and 2030 not in health["provisional_years"]

    again = admin.post("/api/v1/calendar/notices", json=NOTICE_2030)  # the same notice twice: nothing new
    assert again.status_code == 200 and again.get_json()["revision"] == 1
    corrected = admin.post("/api/v1/calendar/notices", json={**NOTICE_2030, "published": "2029-11-20",
                                                              "working_days": ["2030-02-16"]})
    assert corrected.status_code == 201 and corrected.get_json()["revision"] == 2
    assert at(kickoff(sales, "2030-01-25T09:00:00+08:00")["due_at"]) == at("2030-01-28T18:00:00+08:00")

    audit = people["auditor"].get("/api/v1/audit?action=calendar.import").get_json()["items"]
    assert [(e["object_id"], e["actor"], e["details"]["revision"], e["details"]["replaces"]) for e in audit] == \
        [("2030", "admin", 2, 1), ("2030", "admin", 1, None)]


def test_an_older_revision_is_refused_and_changes_nothing(people) -> None:
    admin = people["admin"]
    assert admin.post("/api/v1/calendar/notices", json=NOTICE_2030).status_code == 201
    response = admin.post("/api/v1/calendar/notices", json={**NOTICE_2030, "published": "2029-10-01",
                                                             "working_days": []})
    assert response.status_code == 409, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "stale_revision" and "published" in error["details"]
    [current] = admin.get("/api/v1/calendar/notices").get_json()["items"]
    assert current["revision"] == 1 and current["working_days"] == NOTICE_2030["working_days"]


def test_only_an_admin_imports_notices(people) -> None:
    for name in ("owner", "sales", "auditor"):
        assert people[name].post("/api/v1/calendar/notices", json=NOTICE_2030).status_code == 403, name
    assert people["admin"].get("/api/v1/calendar/notices").get_json()["items"] == []


def _with(**changes) -> dict:
    return {**NOTICE_2030, **changes}


HOLIDAYS: list[list[str]] = NOTICE_2030["holidays"]
BAD_NOTICES = [
    (_with(holidays=[*HOLIDAYS, ["2031-01-01", "2031-01-01"]]), "holidays", "2031-01-01 is outside 2030"),
    (_with(working_days=["2029-12-29"]), "working_days", "2029-12-29 is outside 2030"),
    (_with(working_days=["2030-02-09"]), "working_days", "2030-02-09 is also a holiday"),
    (_with(holidays=[*HOLIDAYS, ["2030-02-08", "2030-02-12"]]), "holidays", "overlap"),
    (_with(working_days=["2030-01-28"]), "working_days", "weekday"),
    (_with(holidays=HOLIDAYS[1:]), "holidays", "2030-01-01"),  # New Year's Day not covered
    (_with(holidays=[["2030-02-10", "2030-02-02"], *HOLIDAYS[2:]]), "holidays", "before"),
    (_with(year=2099), "year", "2025-2035"),
    (_with(year="2030"), "year", ""),
    (_with(published="12 November 2029"), "published", ""),
    (_with(published="2031-01-05"), "published", "after the year"),
    (_with(holidays=[["2030-01-01"]]), "holidays", ""),
    (_with(source=""), "source", ""),
    ({k: v for k, v in NOTICE_2030.items() if k != "holidays"}, "holidays", ""),
    (_with(workdays=["2030-01-26"]), "workdays", ""),
]


@pytest.mark.parametrize("body, field, words", BAD_NOTICES)
def test_a_bad_notice_is_422_naming_the_field_and_stores_nothing(people, body: dict, field: str,
                                                                   words: str) -> None:
    admin = people["admin"]
    response = admin.post("/api/v1/calendar/notices", json=body)
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert field in error["details"], error
    assert words in json.dumps(error["details"], ensure_ascii=False), error
    assert admin.get("/api/v1/calendar/notices").get_json()["items"] == []


# --------------------------------------------------------------------------- the CLI, and other processes


def test_the_cli_imports_a_file_and_a_running_server_uses_it(people, synced_app, database_url: str,
                                                             tmp_path: Path) -> None:
    sales = people["sales"]
    move_clock(people["admin"], "2030-01-25T09:00:00+08:00")
    assert at(kickoff(sales, "2030-02-01T09:00:00+08:00")["due_at"]) == at("2030-02-06T18:00:00+08:00")
    cli = Cli(database_url, tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_with(working_days=["2030-02-09"])), encoding="utf-8")
    assert "working_days" in failed(cli("calendar", "import", str(bad)))
    good = tmp_path / "2030.json"
    good.write_text(json.dumps(NOTICE_2030, ensure_ascii=False), encoding="utf-8")
    assert "revision 1" in cli.ok("calendar", "import", str(good)).stdout
    assert "unchanged" in cli.ok("calendar", "import", str(good)).stdout
    # This server was built before the import, in another process: its next request sees the notice.
    after = kickoff(sales, "2030-02-01T09:00:00+08:00")
    assert at(after["due_at"]) == at("2030-02-11T18:00:00+08:00") and after["due_provisional"] is False


def test_a_server_built_after_an_import_starts_with_the_notice(people, config, clock) -> None:
    assert people["admin"].post("/api/v1/calendar/notices", json=NOTICE_2030).status_code == 201
    other = create_app(config, clock=clock)
    try:
        calendar = other.extensions["bpm"].calendar
        assert sorted(calendar.notices) == [2030] and calendar.is_working_day(date(2030, 1, 26))
    finally:
        with other.app_context():
            db.engine.dispose()


# --------------------------------------------------------------------------- recompute on import


def breached_tasks(caller) -> dict[str, str]:
    return {b["task_name"] + ":" + b["process_instance_id"]: b["due_at"]
            for b in caller.get("/api/v1/sla/breaches").get_json()["items"]}


def test_an_import_moves_open_deadlines_on_the_record_and_a_breach_stays(people) -> None:
    admin, sales = people["admin"], people["sales"]
    move_clock(admin, "2030-01-25T09:00:00+08:00")
    late = kickoff(sales, "2030-01-25T09:00:00+08:00")     # provisional: Friday 8 h + Monday 28th 8 h
    open_ = kickoff(sales, "2030-02-01T09:00:00+08:00")    # provisional: due Wednesday 6 February
    assert at(late["due_at"]) == at("2030-01-28T18:00:00+08:00")
    move_clock(admin, "2030-01-29T09:00:00+08:00")         # the first one is breached
    assert f"kickoff:{late['process_instance_id']}" in breached_tasks(admin)

    response = admin.post("/api/v1/calendar/notices", json=NOTICE_2030)
    assert response.status_code == 201 and response.get_json()["moved_deadlines"] == 1, response.get_json()

    # The breached deadline keeps its due moment (the notice would have made it Saturday 26th).
    assert at(sales.get(f"/api/v1/tasks/{late['id']}").get_json()["due_at"]) == at("2030-01-28T18:00:00+08:00")
    moved = sales.get(f"/api/v1/tasks/{open_['id']}").get_json()
    assert at(moved["due_at"]) == at("2030-02-11T18:00:00+08:00") and moved["due_provisional"] is False
    events = sales.get(f"/api/v1/tasks/{open_['id']}/sla").get_json()["events"]
    assert [(e["kind"], e["actor"]) for e in events] == [("due_moved", "admin")]
    assert at(events[0]["due_at_after"]) == at("2030-02-11T18:00:00+08:00") and "2030" in events[0]["reason"]
    [entry] = people["auditor"].get(f"/api/v1/audit?action=sla.due_moved&object_id={open_['id']}").get_json()["items"]
    assert at(entry["details"]["old_due"]) == at("2030-02-06T18:00:00+08:00")
    assert at(entry["details"]["new_due"]) == at("2030-02-11T18:00:00+08:00") and entry["details"]["revision"] == 1

    # The timers follow: nothing at the old deadline, the breach at the new one.
    key = f"kickoff:{open_['process_instance_id']}"
    move_clock(admin, "2030-02-07T09:00:00+08:00")
    assert key not in breached_tasks(admin)
    move_clock(admin, "2030-02-12T09:00:00+08:00")
    assert at(breached_tasks(admin)[key]) == at("2030-02-11T18:00:00+08:00")
