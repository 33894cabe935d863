"""SLA trends per week (GET /api/v1/sla/trends): on-time % of the stages completed each week
and the breaches that happened in it, overall, per stage and per department."""
from __future__ import annotations

from tests.api.flows import do_stage, start_project
from tests.support import move_clock

TRENDS = "/api/v1/sla/trends"


def _weeks(series: list[dict]) -> dict[str, tuple[int, float | None, int]]:
    return {w["week"]: (w["completed"], w["on_time_percent"], w["breaches"]) for w in series}


def test_each_week_counts_its_completions_on_time_and_its_breaches(people) -> None:
    acme = start_project(people["sales"], "ACME")    # Mon 2 Mar 09:00 (strategic: kickoff 1 working day)
    gamma = start_project(people["sales"], "GAMMA")
    do_stage(people, acme["id"], "kickoff")          # week of 2 Mar, on time
    move_clock(people["admin"], "2026-03-10T10:00:00+08:00")  # GAMMA's kickoff and ACME's research breach
    do_stage(people, gamma["id"], "kickoff")         # week of 9 Mar, late

    response = people["owner"].get(TRENDS, query_string={"from": "2026-03-01T00:00:00+08:00",
                                                         "to": "2026-03-16T00:00:00+08:00"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["weeks"] == ["2026-02-23", "2026-03-02", "2026-03-09"]  # Sunday 1 Mar is in the week of 23 Feb
    overall = _weeks(body["overall"])
    assert overall["2026-02-23"] == (0, None, 0)
    assert overall["2026-03-02"][:2] == (1, 100.0)
    assert overall["2026-03-09"][:2] == (1, 0.0)
    assert sum(w["breaches"] for w in body["overall"]) >= 2  # GAMMA's kickoff and ACME's research
    kickoff = next(s for s in body["stages"] if s["stage"] == "kickoff")
    assert kickoff["title"] == "Project kickoff" and kickoff["department"] == "sales"
    # ACME's done on time that week, GAMMA's breached that week (and was completed the next).
    assert _weeks(kickoff["weeks"])["2026-03-02"] == (1, 100.0, 1)
    assert _weeks(kickoff["weeks"])["2026-03-09"] == (1, 0.0, 0)
    research = next(s for s in body["stages"] if s["stage"] == "needs_research")
    assert research["title"] == "Needs research"  # breached, not yet completed: still named
    assert sum(w["breaches"] for w in research["weeks"]) == 1 and sum(w["completed"] for w in research["weeks"]) == 0
    sales = next(d for d in body["departments"] if d["department"] == "sales")
    assert sales["name"] and _weeks(sales["weeks"])["2026-03-09"][:2] == (1, 0.0)


def test_trends_are_for_owners_and_leads_and_a_period_is_bounded(people) -> None:
    assert people["it"].get(TRENDS).status_code == 403
    too_long = people["owner"].get(TRENDS, query_string={"from": "2024-01-01T00:00:00+08:00",
                                                         "to": "2026-03-01T00:00:00+08:00"})
    assert too_long.status_code == 422 and too_long.get_json()["error"]["code"] == "period_too_long"
    backwards = people["owner"].get(TRENDS, query_string={"from": "2026-03-05T00:00:00+08:00",
                                                          "to": "2026-03-01T00:00:00+08:00"})
    assert backwards.status_code == 422
