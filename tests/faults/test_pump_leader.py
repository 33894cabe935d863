"""The timer pump's leader loses its lock connection (pg_terminate_backend, as a
PostgreSQL restart or a network cut does): it stops pumping, exactly one pump leads
within a few seconds, and every due timer fires once."""
from __future__ import annotations

import time

from flask import Flask
from sqlalchemy import text

from bpm_server.database import db
from bpm_server.sla.scheduler import TimerPump
from tests.faults.conftest import soon
from tests.faults.data import breaches_due_at, breaches_logged, fired_once, lateness, start_projects
from tests.faults.stack import Stack, wait_for


def _terminate(app: Flask, backend_pid: int) -> None:
    with app.app_context():
        db.session.execute(text("SELECT pg_terminate_backend(:p)"), {"p": backend_pid})
        db.session.commit()
        wait_for(lambda: not _backend_alive(backend_pid), 10, "the backend gone")
        db.session.remove()


def _backend_alive(backend_pid: int) -> bool:
    # pg_stat_activity is read once per transaction and kept until it ends: a poll that
    # stays in one transaction would see a terminated backend alive for ever (seen under load,
    # when the first look came before the backend had exited).
    try:
        return bool(db.session.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"),
                                      {"p": backend_pid}))
    finally:
        db.session.rollback()


def test_a_pump_whose_lock_connection_was_terminated_stops_leading_and_another_takes_over(app):
    first, second = TimerPump(app), TimerPump(app)
    with app.app_context():
        assert first.lead() and not second.lead()
        assert first._leader_connection is not None
        backend = first._leader_connection.scalar(text("SELECT pg_backend_pid()"))
    _terminate(app, backend)
    with app.app_context():
        assert second.lead(), "the lock was released with the connection: the other pump takes it"
        assert not first.lead(), "the old leader must notice it lost the lock and stop pumping"
        assert not first.lead() and second.lead()  # and it stays that way
    first._release()
    second._release()


def test_killing_the_leaders_connection_leaves_one_pump_and_fires_each_due_timer_once(people, stack: Stack):
    start_projects(stack, people["sales"], 30)
    stack.start_workers(2)
    (leader,) = stack.pump_leaders()
    due = soon(4)
    tasks = breaches_due_at(stack, due)
    assert len(tasks) == 30

    killed_at = time.monotonic()
    stack.sql("SELECT pg_terminate_backend(:p)", p=leader)
    # Exactly one pump leads again within a few seconds (the old leader's lock is gone;
    # whichever worker takes it next leads alone).
    new_leader = wait_for(lambda: [p for p in stack.pump_leaders() if p != leader], 10, "a new pump leader")
    took_over = time.monotonic() - killed_at
    assert len(new_leader) == 1 and took_over < 5, (new_leader, took_over)
    def one_leader() -> None:  # and it stays one, pass after pass, while the old leader's process runs on
        assert len(stack.pump_leaders()) == 1
    stack.pump_passes(3, during=one_leader)
    assert len(stack.live_workers()) == 2

    wait_for(lambda: fired_once(stack, tasks), 30, "every breach logged")
    late = lateness(stack)
    assert late["max"] < 5, late
    stack.settled()  # more pump passes after the last breach, and their jobs run: nothing fires twice
    assert set(breaches_logged(stack).values()) == {1}
    assert "lost its lock" in stack.worker_logs()
    stack.assert_consistent()
    print(f"\nFIGURES pump leader killed: new leader after {took_over:.2f} s; breaches late {late}")
