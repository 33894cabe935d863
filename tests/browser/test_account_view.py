"""The account view in the browser: processes, where each stands, what is late, breach history."""
from __future__ import annotations

from tests.api.flows import do_stage, start_project


def test_account_view_shows_processes_what_is_late_and_the_breach_history(page, login, live_server):
    people = live_server.people
    first = start_project(people["sales"], "ACME", signed_at="2026-03-02T09:00:00+08:00")
    do_stage(people, first["id"], "kickoff")
    second = start_project(people["sales"], "ACME", signed_at="2026-03-02T09:00:00+08:00")
    # Wednesday: ACME's kickoff (1 working day, due Monday 18:00) has breached; the timers fire.
    response = people["admin"].post("/api/v1/test/clock", json={"now": "2026-03-04T10:00:00+08:00"})
    assert response.status_code == 200
    login(page, "auditor")
    page.goto("/accounts/ACME")
    assert "ACME Ltd" in page.get_by_test_id("account-name").inner_text()
    rows = page.get_by_test_id("process-row")
    assert rows.count() == 2
    by_id = {rows.nth(i).get_attribute("data-instance-id"): rows.nth(i).inner_text() for i in range(2)}
    assert "Needs research" in by_id[first["id"]]  # where each process stands
    assert "Project kickoff" in by_id[second["id"]]
    [late] = page.get_by_test_id("late-row").all()  # the second kickoff is late...
    assert "Project kickoff" in late.inner_text() and "已超时" in late.inner_text()
    history = page.get_by_test_id("breach-row").all()  # ...and in the breach history, still open
    assert len(history) == 1 and "仍未完成" in history[0].inner_text()
