"""The SLA dashboard's numbers: on-time rates per stage and department, working
time percentiles, open work and open breaches, on SQLite and PostgreSQL with
the clock moved by hand (Shanghai working hours 09:00-12:00 and 13:00-18:00)."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import pytest

from bpm_server.database import db
from bpm_server.sla.stats import percentile, sla_stats
from tests.api.flows import do_stage, start_project

SHANGHAI = timezone(timedelta(hours=8))
STATS = "/api/v1/sla/stats"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in March 2026, Shanghai time (2 March is a Monday)."""
    return datetime(2026, 3, day, hour, minute, tzinfo=SHANGHAI)


@pytest.fixture
def history(people, clock, synced_app):
    """ACME (strategic) and GAMMA (standard) projects, both started Monday 09:00.

    ACME: kickoff done Mon 11:00 (2 h, on time); needs research done Fri 10:00,
    due Thu 11:00 (31 h, late); solution sign-off then open, due Tue 10 Mar 10:00.
    GAMMA: kickoff done Mon 16:00 (6 h, on time); needs research open, due Mon 9 Mar 16:00.
    The clock ends on Tue 10 Mar 09:30."""
    clock.set(at(2, 9))
    acme = start_project(people["sales"], "ACME")
    gamma = start_project(people["sales"], "GAMMA")
    clock.set(at(2, 11))
    do_stage(people, acme["id"], "kickoff")
    clock.set(at(2, 16))
    do_stage(people, gamma["id"], "kickoff")
    clock.set(at(6, 10))
    do_stage(people, acme["id"], "needs_research")
    clock.set(at(10, 9, 30))
    return {"acme": acme["id"], "gamma": gamma["id"]}


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.9) == 7.0
    assert percentile([2.0, 6.0], 0.5) == 4.0
    assert percentile([2.0, 6.0], 0.9) == pytest.approx(5.6)
    assert percentile([5, 1, 3, 2, 4], 0.5) == 3


def test_on_time_rates_and_working_times_per_stage_and_department(history, synced_app) -> None:
    with synced_app.app_context():
        rt = synced_app.extensions["bpm"]
        stats = sla_stats(db.session, rt.calendar, start=at(1, 0), end=at(8, 0), now=rt.clock.now())

    stages = {s.stage: s for s in stats.stages}
    assert set(stages) == {"kickoff", "needs_research"}
    kickoff, research = stages["kickoff"], stages["needs_research"]
    assert (kickoff.completed, kickoff.with_sla, kickoff.on_time, kickoff.on_time_rate) == (2, 2, 2, 1.0)
    assert kickoff.median_hours == pytest.approx(4.0)  # 2 h and 6 h of working time
    assert kickoff.p90_hours == pytest.approx(5.6)
    assert (research.completed, research.on_time, research.on_time_rate) == (1, 0, 0.0)
    assert research.median_hours == pytest.approx(31.0)  # Mon 11:00 -> Fri 10:00, nights and lunches excluded
    departments = {d.department: d for d in stats.departments}
    assert departments["sales"].on_time_rate == 1.0
    assert departments["consulting"].on_time_rate == 0.0


def test_open_work_and_open_breaches_at_now(history, synced_app) -> None:
    with synced_app.app_context():
        rt = synced_app.extensions["bpm"]
        stats = sla_stats(db.session, rt.calendar, start=at(1, 0), end=at(8, 0), now=rt.clock.now())

    work = {w.department: w for w in stats.open_work}
    assert (work["consulting"].breached, work["consulting"].total) == (1, 1)  # GAMMA's research, due Mon 16:00
    assert (work["sales"].warning, work["sales"].breached) == (1, 0)  # ACME's sign-off: warned, due 10:00
    [breach] = stats.open_breaches
    assert (breach.process_instance_id, breach.stage, breach.account_id) == (history["gamma"], "needs_research",
                                                                              "GAMMA")
    assert breach.overdue_hours == pytest.approx(2.5)  # Mon 16:00-18:00 plus Tue 09:00-09:30


def test_period_and_model_filters(history, synced_app) -> None:
    with synced_app.app_context():
        rt = synced_app.extensions["bpm"]
        friday_only = sla_stats(db.session, rt.calendar, start=at(6, 0), end=at(7, 0), now=rt.clock.now())
        later = sla_stats(db.session, rt.calendar, start=at(7, 0), end=at(10, 0), now=rt.clock.now())
        other = sla_stats(db.session, rt.calendar, start=at(1, 0), end=at(8, 0), now=rt.clock.now(),
                          process_model_id="no-such-model")

    assert [s.stage for s in friday_only.stages] == ["needs_research"]
    assert later.stages == [] and later.departments == []
    assert len(later.open_work) == 2  # open work is "now", whatever the period
    assert other.stages == [] and other.open_work == [] and other.open_breaches == []


def test_stats_api_json_and_csv(history, people) -> None:
    owner = people["owner"]
    query = {"from": at(1, 0).isoformat(), "to": at(8, 0).isoformat()}

    body = owner.get(STATS, query_string=query).get_json()

    kickoff = next(s for s in body["stages"] if s["stage"] == "kickoff")
    assert kickoff["on_time_rate"] == 1.0 and kickoff["median_working_hours"] == 4.0
    assert body["open_breaches"][0]["overdue_working_hours"] == 2.5
    assert datetime.fromisoformat(body["from"]) == at(1, 0)

    response = owner.get(STATS, query_string={**query, "format": "csv"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert {"section": "stage", "process_model_id": "account-project", "stage": "kickoff", "department": "sales",
            "measure": "p90_working_hours", "value": "5.6"} in rows
    assert {"section": "open_work", "process_model_id": "", "stage": "", "department": "consulting",
            "measure": "breached", "value": "1"} in rows


def test_stats_api_defaults_to_the_last_30_days_and_refuses_a_backwards_period(history, people) -> None:
    owner = people["owner"]
    body = owner.get(STATS).get_json()
    assert datetime.fromisoformat(body["to"]) == at(10, 9, 30)  # now
    assert {s["stage"] for s in body["stages"]} == {"kickoff", "needs_research"}

    response = owner.get(STATS, query_string={"from": at(8, 0).isoformat(), "to": at(1, 0).isoformat()})
    assert response.status_code == 422
    assert "to" in response.get_json()["error"]["details"]


def test_stats_are_for_process_owners_and_department_leads(leads) -> None:
    people = leads  # sales2 leads sales
    assert people["sales"].get(STATS).status_code == 403
    assert people["auditor"].get(STATS).status_code == 403
    assert people["sales2"].get(STATS).status_code == 200
    assert people["owner"].get(STATS).status_code == 200
