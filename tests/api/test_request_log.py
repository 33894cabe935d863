"""What the server writes to its log: one line per request and one per job, and
none of the engine's step-by-step chatter unless the deployment asks for DEBUG
(SpiffWorkflow logs each task state change at INFO: dozens of lines per completion)."""
from __future__ import annotations

import logging

import pytest
from flask import Flask
from sqlalchemy import event, select

from bpm_server.app import create_app
from bpm_server.config import Config
from bpm_server.database import db
from bpm_server.identity.models import User
from bpm_server.jobs.runner import perform_in_app
from bpm_server.sla.models import Timer
from tests.api.flows import STAGE_DATA, open_task, start_project
from tests.conftest import Caller
from tests.support import page_client


def user_id(app: Flask, username: str) -> str:
    with app.app_context():
        return db.session.scalars(select(User.id).where(User.username == username)).one()


def lines(caplog: pytest.LogCaptureFixture, logger: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == logger]


def engine_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "spiff" or r.name.startswith("spiff.")]


def claimed_kickoff(people: dict[str, Caller]) -> tuple[str, dict]:
    sales = people["sales"]
    instance = start_project(sales)
    task = open_task(sales, instance["id"], "kickoff")
    assert sales.post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    return instance["id"], task


def test_a_completion_logs_one_request_line_and_no_engine_chatter(people, synced_app: Flask,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    _, task = claimed_kickoff(people)
    caplog.clear()
    with synced_app.app_context():
        pool = db.engine.pool
    checkouts: list[object] = []

    def checked_out(dbapi_connection: object, *_: object) -> None:
        checkouts.append(dbapi_connection)

    event.listen(pool, "checkout", checked_out)
    try:
        with caplog.at_level(logging.INFO):  # the deployment's default level
            response = people["sales"].post(f"/api/v1/tasks/{task['id']}/complete",
                                            json={"data": STAGE_DATA["kickoff"]})
    finally:
        event.remove(pool, "checkout", checked_out)
    assert response.status_code == 200, response.get_json()
    # One connection for the whole request: neither the calendar-notice check nor the log
    # line (the user's id, read after the commit expired the row) takes one of its own.
    assert len(checkouts) == 1, checkouts
    [line] = lines(caplog, "bpm_server.request")
    message = line.getMessage()
    assert line.levelno == logging.INFO
    assert message.startswith(f"POST /api/v1/tasks/{task['id']}/complete 200 "), message
    assert " ms " in message and message.endswith(f"user={user_id(synced_app, 'sales')}"), message
    assert engine_records(caplog) == []


def test_a_refused_request_logs_its_status_and_an_anonymous_one_no_user(people, synced_app: Flask,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        assert people["auditor"].post("/api/v1/tasks/no-such-task/claim").status_code in (403, 404)
        assert synced_app.test_client().get("/api/v1/tasks").status_code == 401
    refused, anonymous = (r.getMessage() for r in lines(caplog, "bpm_server.request"))
    assert refused.startswith("POST /api/v1/tasks/no-such-task/claim 40")
    assert refused.endswith(f"user={user_id(synced_app, 'auditor')}"), refused
    assert anonymous.startswith("GET /api/v1/tasks 401 ") and anonymous.endswith("user=-"), anonymous


def test_a_page_request_names_the_signed_in_user(people, synced_app: Flask,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    browser = page_client(synced_app, "sales")
    with caplog.at_level(logging.INFO):
        assert browser.get("/inbox").status_code == 200
    [line] = lines(caplog, "bpm_server.request")
    assert line.getMessage().startswith("GET /inbox 200 ")
    assert line.getMessage().endswith(f"user={user_id(synced_app, 'sales')}")


def test_a_job_logs_one_line_with_its_ids_outcome_and_duration(people, synced_app: Flask,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    instance_id, _ = claimed_kickoff(people)
    with synced_app.app_context():
        timer_id = db.session.scalars(select(Timer.id).where(Timer.process_instance_id == instance_id)
                                      .order_by(Timer.due_at).limit(1)).one()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        perform_in_app(synced_app, "bpm_server.sla.jobs.fire_timer", timer_id)
        with pytest.raises(TypeError):  # a batch job handed no list: refused, and logged as failed
            perform_in_app(synced_app, "bpm_server.sla.jobs.fire_timers", None)
    fired, failed = (r.getMessage() for r in lines(caplog, "bpm_server.job"))
    assert fired.startswith(f"bpm_server.sla.jobs.fire_timer('{timer_id}') ok") and fired.endswith(" ms"), fired
    assert failed.startswith("bpm_server.sla.jobs.fire_timers(None) failed: TypeError "), failed
    assert engine_records(caplog) == []


def test_debug_lets_the_engine_chatter_through(config: Config, clock) -> None:
    for level, engine_says in (("DEBUG", True), ("INFO", False)):  # INFO last: the default for later tests
        app = create_app(config.but(log_level=level), clock=clock)
        with app.app_context():
            db.engine.dispose()
        assert logging.getLogger("spiff.task").isEnabledFor(logging.DEBUG) is engine_says, level
        assert logging.getLogger("bpm_server.request").isEnabledFor(logging.INFO)


def test_an_unknown_log_level_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="BPM_LOG_LEVEL"):
        Config.from_env({"BPM_LOG_LEVEL": "verbose"}, env_file=None)
    assert Config.from_env({"BPM_LOG_LEVEL": "debug"}, env_file=None).log_level == "DEBUG"
