"""The test clock refuses dates the business calendar cannot compute, and the SLA
reports answer whatever the stored clock says."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.api.flows import start_project

SIGNED = "2026-03-02T09:00:00+08:00"


def test_a_clock_past_the_calendar_is_refused_naming_the_limit(leads):
    people = leads
    response = people["admin"].post("/api/v1/test/clock", json={"now": "9999-12-31T00:00:00+00:00"})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "clock_out_of_range" and "2100" in error["message"] and "now" in error["details"]
    assert people["admin"].get("/api/v1/test/clock").get_json()["now"].startswith("2026-03-02")  # unmoved
    assert people["admin"].post("/api/v1/test/clock", json={"now": "2100-06-30T00:00:00+08:00"}).status_code == 200


@pytest.mark.parametrize("stored", [datetime(2100, 12, 31, 23, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, tzinfo=UTC)])
def test_stats_and_forecast_answer_for_any_stored_clock(leads, clock, stored):
    # A clock stored before the limit existed (or set by an operator's script) must not
    # turn the lead's pages into 500s.
    people = leads
    start_project(people["sales"], account_id="ACME", signed_at=SIGNED)
    clock.set(stored)
    stats = people["sales2"].get("/api/v1/sla/stats")
    assert stats.status_code == 200, stats.get_json()
    assert [b["account_id"] for b in stats.get_json()["open_breaches"]] == ["ACME"]
    assert people["sales2"].get("/api/v1/sla/stats", query_string={"format": "csv"}).status_code == 200
    forecast = people["sales2"].get("/api/v1/tasks/breach-forecast")
    assert forecast.status_code == 200, forecast.get_json()
    assert [a["account_id"] for a in forecast.get_json()["accounts"]] == ["ACME"]
