"""Timers are rows in the database; queues only carry wake-ups.

* Firing is idempotent: a timer fired twice (two deliveries of one wake-up,
  two workers) acts once.
* BPMN timer events use the same rows and fire when the (test) clock passes them.
* With rq on a real Redis: losing Redis' contents, or a worker dying with a job,
  loses nothing; a restarted pump (its first pass is the reconciler) or a
  later pass re-hands what is still unfired, and a real ``bpm-server worker``
  logs the breach exactly once.
* On PostgreSQL only one pump leads at a time (advisory lock).
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from rq.job import Job
from rq.registry import FinishedJobRegistry
from sqlalchemy import func, select, update

from bpm_server.accounts.service import upsert_account
from bpm_server.clock import SettableClock
from bpm_server.database import db
from bpm_server.jobs.queue import RqJobQueue
from bpm_server.modeling.models import ProcessModel
from bpm_server.modeling.service import sync_from_disk
from bpm_server.runtime import fire_timer, start_instance
from bpm_server.sla import timers
from bpm_server.sla.models import BreachEntry, Timer
from bpm_server.sla.policies import sync_file
from bpm_server.sla.scheduler import TimerPump
from tests.api.flows import start_project
from tests.conftest import START
from tests.rq_support import rq_app as shared_rq_app
from tests.rq_support import run_worker
from tests.support import at, at_once, move_clock

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SIGNED = "2026-03-02T09:00:00+08:00"
FIRE = "bpm_server.sla.jobs.fire_timer"
FIRE_BATCH = "bpm_server.sla.jobs.fire_timers"


def timers_of(app: Flask, instance_id: str) -> list[Timer]:
    with app.app_context():
        try:
            rows = db.session.scalars(select(Timer).where(Timer.process_instance_id == instance_id)
                                      .order_by(Timer.due_at, Timer.kind)).all()
            db.session.expunge_all()
            return list(rows)
        finally:
            db.session.remove()


def breach_count(app: Flask) -> int:
    with app.app_context():
        try:
            return db.session.execute(select(func.count()).select_from(BreachEntry)
                                      .where(BreachEntry.kind == "breach")).scalar_one()
        finally:
            db.session.remove()


def fire_in_own_session(app: Flask, timer_id: str, now: datetime) -> str:
    rt = app.extensions["bpm"]
    with app.app_context():
        try:
            result = fire_timer(db.session, rt, timer_id, now)
            db.session.commit()
            return result
        except Exception:
            db.session.rollback()
            raise
        finally:
            db.session.remove()


# --------------------------------------------------------------------------- idempotent firing


def test_firing_a_breach_timer_twice_logs_one_breach(people, synced_app: Flask) -> None:
    rt = synced_app.extensions["bpm"]
    iid = start_project(people["sales"], account_id="GAMMA", signed_at=SIGNED)["id"]
    [breach_timer] = [t for t in timers_of(synced_app, iid) if t.kind == "sla_breach"]
    assert breach_timer.due_at == at("2026-03-03T18:00:00+08:00") and breach_timer.fired_at is None

    rt.clock.set(breach_timer.due_at + timedelta(minutes=5))
    first = fire_in_own_session(synced_app, breach_timer.id, rt.clock.now())
    second = fire_in_own_session(synced_app, breach_timer.id, rt.clock.now())

    assert first.startswith("breach logged"), first
    assert second == "already fired or cancelled"
    assert breach_count(synced_app) == 1
    [logged] = people["auditor"].get("/api/v1/sla/breaches").get_json()["items"]
    assert logged["process_instance_id"] == iid and at(logged["breached_at"]) == breach_timer.due_at

    # Time moving on fires what is left (warning, escalations) but never a second breach.
    move_clock(people["admin"], "2026-03-10T09:00:00+08:00")
    [logged] = people["auditor"].get("/api/v1/sla/breaches").get_json()["items"]
    assert [e["level"] for e in logged["escalations"]] == [2, 3]
    assert people["auditor"].get("/api/v1/sla/breaches/verify").get_json()["intact"] is True


def test_firing_twice_in_one_transaction_acts_once(people, synced_app: Flask) -> None:
    rt = synced_app.extensions["bpm"]
    iid = start_project(people["sales"], account_id="GAMMA", signed_at=SIGNED)["id"]
    [breach_timer] = [t for t in timers_of(synced_app, iid) if t.kind == "sla_breach"]
    rt.clock.set(breach_timer.due_at + timedelta(hours=2))
    with synced_app.app_context():
        first = fire_timer(db.session, rt, breach_timer.id, rt.clock.now())
        second = fire_timer(db.session, rt, breach_timer.id, rt.clock.now())
        db.session.commit()
        db.session.remove()
    assert first.startswith("breach logged") and second == "already fired or cancelled"
    [logged] = people["auditor"].get("/api/v1/sla/breaches").get_json()["items"]
    assert at(logged["breached_at"]) == breach_timer.due_at, "breached at the deadline, not when it was noticed"
    assert breach_count(synced_app) == 1


def test_two_workers_firing_the_same_timer_at_once_act_once(people, synced_app: Flask) -> None:
    rt = synced_app.extensions["bpm"]
    iid = start_project(people["sales"], account_id="GAMMA", signed_at=SIGNED)["id"]
    [breach_timer] = [t for t in timers_of(synced_app, iid) if t.kind == "sla_breach"]
    rt.clock.set(breach_timer.due_at + timedelta(minutes=1))
    now = rt.clock.now()

    results = at_once(*(lambda: fire_in_own_session(synced_app, breach_timer.id, now) for _ in range(2)))
    assert sorted(r.split(":")[0] for r in results) == ["already fired or cancelled", "breach logged"]
    assert breach_count(synced_app) == 1


def test_a_cancelled_timer_does_nothing(people, synced_app: Flask) -> None:
    """The task closed before its deadline: a late wake-up for it acts on nothing."""
    from tests.api.flows import do_stage

    rt = synced_app.extensions["bpm"]
    iid = start_project(people["sales"], account_id="GAMMA", signed_at=SIGNED)["id"]
    [breach_timer] = [t for t in timers_of(synced_app, iid) if t.kind == "sla_breach"]
    do_stage(people, iid, "kickoff")
    rt.clock.set(breach_timer.due_at + timedelta(hours=1))
    assert fire_in_own_session(synced_app, breach_timer.id, rt.clock.now()) == "already fired or cancelled"
    assert breach_count(synced_app) == 0


# --------------------------------------------------------------------------- BPMN timers use the same rows


def test_bpmn_timer_event_is_a_timer_row_fired_by_the_clock(people, synced_app: Flask) -> None:
    model_id = "timer-then-task"
    with synced_app.app_context():
        db.session.add(ProcessModel(id=model_id, name="Wait an hour, then follow up", description="",
                                    created_at=START))
        db.session.commit()
        db.session.remove()
    response = people["owner"].post(f"/api/v1/process-models/{model_id}/versions",
                                    data=(FIXTURES / "timer_then_task.bpmn").read_bytes(),
                                    content_type="application/xml")
    assert response.status_code == 201, response.get_json()

    response = people["sales"].post("/api/v1/process-instances",
                                    json={"process_model_id": model_id, "account_id": "GAMMA", "data": {}})
    assert response.status_code == 201, response.get_json()
    instance = response.get_json()
    assert instance["state"] == "running" and instance["tasks"] == []

    [timer] = timers_of(synced_app, instance["id"])
    assert timer.kind == "bpmn" and timer.task_id is None
    assert timer.due_at == START + timedelta(hours=1)
    assert timer.fired_at is None and timer.cancelled_at is None

    move_clock(people["admin"], START + timedelta(minutes=59))
    assert people["sales"].get(f"/api/v1/process-instances/{instance['id']}").get_json()["tasks"] == []

    fired = move_clock(people["admin"], START + timedelta(hours=1, minutes=1))
    assert fired["fired"] == 1
    detail = people["sales"].get(f"/api/v1/process-instances/{instance['id']}").get_json()
    assert [(t["name"], t["department"], t["state"]) for t in detail["tasks"]] == [("follow_up", "sales", "ready")]
    inbox = people["sales"].get("/api/v1/tasks").get_json()["items"]
    assert [t["name"] for t in inbox if t["process_instance_id"] == instance["id"]] == ["follow_up"]
    [timer] = timers_of(synced_app, instance["id"])
    assert timer.fired_at is not None
    assert START + timedelta(hours=1) <= timer.fired_at < START + timedelta(hours=1, seconds=1), \
        "fired at its own moment, not when the clock stopped"

    # Moving on does not open the task a second time.
    move_clock(people["admin"], START + timedelta(days=1))
    detail = people["sales"].get(f"/api/v1/process-instances/{instance['id']}").get_json()
    assert [t["name"] for t in detail["tasks"]] == ["follow_up"]


def test_moving_the_clock_exactly_onto_a_bpmn_timer_fires_it_and_returns(people, synced_app: Flask) -> None:
    """Regression: at exactly the due moment the engine did not fire and re-armed the
    same timer, so POST /api/v1/test/clock spun forever."""
    model_id = "timer-then-task"
    with synced_app.app_context():
        db.session.add(ProcessModel(id=model_id, name="Wait an hour", description="", created_at=START))
        db.session.commit()
        db.session.remove()
    assert people["owner"].post(f"/api/v1/process-models/{model_id}/versions",
                                data=(FIXTURES / "timer_then_task.bpmn").read_bytes(),
                                content_type="application/xml").status_code == 201
    instance = people["sales"].post("/api/v1/process-instances",
                                    json={"process_model_id": model_id, "account_id": "GAMMA",
                                          "data": {}}).get_json()

    outcome: list = []
    mover = threading.Thread(target=lambda: outcome.append(
        people["admin"].post("/api/v1/test/clock", json={"now": (START + timedelta(hours=1)).isoformat()})),
        daemon=True)
    mover.start()
    mover.join(30)
    assert not mover.is_alive(), "moving the clock onto the timer's moment never returned"
    assert outcome[0].status_code == 200, outcome[0].get_json()
    assert at(outcome[0].get_json()["now"]) == START + timedelta(hours=1)
    detail = people["sales"].get(f"/api/v1/process-instances/{instance['id']}").get_json()
    assert [t["name"] for t in detail["tasks"]] == ["follow_up"]
    assert len(timers_of(synced_app, instance["id"])) == 1, "one BPMN timer, one row"


# --------------------------------------------------------------------------- rq on a real Redis (PostgreSQL)


@pytest.fixture
def rq_app(pg_url: str) -> Iterator[Flask]:
    """PostgreSQL plus rq on the test Redis (db 15) under a queue name of its own; models and policies synced."""
    def prepare(app: Flask) -> None:
        config, now = app.extensions["bpm"].config, app.extensions["bpm"].clock.now()
        sync_from_disk(db.session, config.models_dir, config.forms_dir, now=now)
        sync_file(db.session, config.models_dir / "escalation-policies.json", now=now)
        upsert_account(db.session, "GAMMA", name="Gamma Ltd", tier="standard", owner=None, now=now)

    with shared_rq_app(pg_url, SettableClock(datetime.now(UTC).replace(microsecond=0)), prepare) as app:
        yield app


def start_overdue_project(app: Flask) -> tuple[str, list[str]]:
    """A project signed 30 days ago: kickoff's warning and breach are already due. (instance id, due timer ids)"""
    rt = app.extensions["bpm"]
    now = rt.clock.now()
    with app.app_context():
        instance = start_instance(db.session, rt, process_model_id="account-project", account_id="GAMMA",
                                  data={"contract_no": "HT-9", "signed_at": (now - timedelta(days=30)).isoformat()},
                                  now=now, started_by=None)
        db.session.commit()
        instance_id = instance.id
        db.session.remove()
    due = [t for t in timers_of(app, instance_id) if t.due_at <= now]
    assert sorted(t.kind for t in due) == ["sla_breach", "sla_warning"]
    assert all(t.fired_at is None and t.enqueued_at is None for t in due)
    return instance_id, [t.id for t in due]


def pump(app: Flask, timer_pump: TimerPump) -> None:
    with app.app_context():
        timer_pump.pump_once()


def queued(app: Flask) -> set[str]:
    """The timers whose wake-ups wait in the queue (the pump hands them out in batches)."""
    waiting: set[str] = set()
    for job in app.extensions["bpm"].jobs.queue.jobs:
        if job.args[0] == FIRE_BATCH:
            waiting.update(job.args[1])
    return waiting


def outcome(app: Flask, timer_id: str) -> str:
    """What the batch job that carried ``timer_id`` reported for it."""
    connection = app.extensions["bpm"].jobs.connection
    registry = FinishedJobRegistry(queue=app.extensions["bpm"].jobs.queue)
    for job_id in registry.get_job_ids():
        result = Job.fetch(job_id, connection=connection).return_value()
        if isinstance(result, dict) and timer_id in result:
            return result[timer_id]
    raise AssertionError(f"no finished job reported on timer {timer_id}")


def test_timers_survive_redis_losing_its_data_and_fire_once(rq_app: Flask, tmp_path: Path) -> None:
    jobs = rq_app.extensions["bpm"].jobs
    assert isinstance(jobs, RqJobQueue)
    instance_id, due_ids = start_overdue_project(rq_app)
    expected_jobs = set(due_ids)

    pump(rq_app, TimerPump(rq_app))
    assert queued(rq_app) == expected_jobs
    assert all(t.enqueued_at is not None and t.fired_at is None
               for t in timers_of(rq_app, instance_id) if t.id in due_ids)

    # Redis loses everything (restart without persistence, failover, FLUSHALL).
    jobs.connection.flushdb()
    assert jobs.queue.count == 0
    assert all(t.fired_at is None for t in timers_of(rq_app, instance_id) if t.id in due_ids), \
        "the database still knows the timers are pending"
    assert breach_count(rq_app) == 0

    # The server restarts (a moment later): a new pump's first pass re-arms everything due.
    rt = rq_app.extensions["bpm"]
    rt.clock.set(rt.clock.now() + timedelta(seconds=5))
    pump(rq_app, TimerPump(rq_app))
    assert queued(rq_app) == expected_jobs

    run_worker(rq_app, tmp_path)
    assert jobs.queue.count == 0
    assert breach_count(rq_app) == 1
    fired = {t.id: t for t in timers_of(rq_app, instance_id)}
    assert all(fired[t].fired_at is not None for t in due_ids)
    [breach_timer] = [t for t in due_ids if fired[t].kind == "sla_breach"]
    assert outcome(rq_app, breach_timer).startswith("breach logged")

    # A duplicate wake-up (say, a pump that had not seen the firing) acts on nothing.
    jobs.enqueue(FIRE, breach_timer, job_id=f"timer-{breach_timer}")
    run_worker(rq_app, tmp_path)
    assert Job.fetch(f"timer-{breach_timer}", connection=jobs.connection).return_value() == \
        "already fired or cancelled"
    assert breach_count(rq_app) == 1


def test_a_job_lost_with_a_killed_worker_is_handed_out_again(rq_app: Flask, tmp_path: Path) -> None:
    jobs = rq_app.extensions["bpm"].jobs
    rt = rq_app.extensions["bpm"]
    instance_id, due_ids = start_overdue_project(rq_app)
    timer_pump = TimerPump(rq_app)
    pump(rq_app, timer_pump)
    assert queued(rq_app) == set(due_ids)

    # A worker took the jobs and was killed before firing: Redis holds no job, the rows are unfired.
    jobs.queue.empty()
    assert jobs.queue.count == 0
    pump(rq_app, timer_pump)  # handed out a moment ago: not yet given up on
    assert jobs.queue.count == 0

    with rq_app.app_context():
        db.session.execute(update(Timer).where(Timer.id.in_(due_ids))
                           .values(enqueued_at=rt.clock.now() - timedelta(hours=1)))
        db.session.commit()
        db.session.remove()
    pump(rq_app, timer_pump)  # the same, long-running pump: retry_after has passed
    assert queued(rq_app) == set(due_ids)

    run_worker(rq_app, tmp_path)
    assert breach_count(rq_app) == 1
    assert all(t.fired_at is not None for t in timers_of(rq_app, instance_id) if t.id in due_ids)


def test_retry_after_is_measured_on_the_clock(rq_app: Flask, tmp_path: Path) -> None:
    jobs = rq_app.extensions["bpm"].jobs
    rt = rq_app.extensions["bpm"]
    _instance_id, due_ids = start_overdue_project(rq_app)
    timer_pump = TimerPump(rq_app, retry_after=timedelta(minutes=5))
    pump(rq_app, timer_pump)
    jobs.queue.empty()

    rt.clock.set(rt.clock.now() + timedelta(minutes=4))
    pump(rq_app, timer_pump)
    assert jobs.queue.count == 0
    rt.clock.set(rt.clock.now() + timedelta(minutes=2))
    pump(rq_app, timer_pump)
    assert queued(rq_app) == set(due_ids)
    run_worker(rq_app, tmp_path)
    assert breach_count(rq_app) == 1


def test_one_pump_leads_at_a_time_and_a_new_leader_reconciles(rq_app: Flask) -> None:
    jobs = rq_app.extensions["bpm"].jobs
    first, second = TimerPump(rq_app), TimerPump(rq_app)
    try:
        with rq_app.app_context():
            assert first.lead() is True
            assert second.lead() is False
            assert second.lead() is False, "still not while the first holds the lock"
            assert first.lead() is True, "the leader stays leader"
        _, due_ids = start_overdue_project(rq_app)
        pump(rq_app, first)
        assert queued(rq_app) == set(due_ids)
        jobs.connection.flushdb()  # the leader's wake-ups are lost with it

        first._release()
        rt = rq_app.extensions["bpm"]
        rt.clock.set(rt.clock.now() + timedelta(seconds=5))
        with rq_app.app_context():
            assert second.lead() is True, "the lock is free once the first pump lets go"
            assert first.lead() is False, "and now the first one waits"
        pump(rq_app, second)  # a new leader's first pass is the reconciler
        assert queued(rq_app) == set(due_ids)
    finally:
        first._release()
        second._release()


def test_handed_out_timers_wait_while_the_queue_has_a_backlog(rq_app: Flask, tmp_path: Path) -> None:
    """A storm's tail is still queued after retry_after: handing it out again would only
    double the work. The pump re-hands once the queue has drained."""
    jobs = rq_app.extensions["bpm"].jobs
    rt = rq_app.extensions["bpm"]
    _, due_ids = start_overdue_project(rq_app)
    timer_pump = TimerPump(rq_app)
    pump(rq_app, timer_pump)
    assert queued(rq_app) == set(due_ids)
    jobs.enqueue("bpm_server.sla.jobs.fire_timer", "no-such-timer")  # other work waiting in the queue
    next(job for job in jobs.queue.jobs if job.args[0] == FIRE_BATCH).delete()  # the wake-up is lost

    rt.clock.set(rt.clock.now() + timedelta(hours=1))
    pump(rq_app, timer_pump)
    assert queued(rq_app) == set(), "nothing re-handed while a backlog waits"

    run_worker(rq_app, tmp_path)  # drains the queue
    assert breach_count(rq_app) == 0
    pump(rq_app, timer_pump)
    assert queued(rq_app) == set(due_ids)
    run_worker(rq_app, tmp_path)
    assert breach_count(rq_app) == 1


def test_a_failing_timer_does_not_hold_up_the_others_in_its_batch(rq_app: Flask, tmp_path: Path) -> None:
    instance_id, due_ids = start_overdue_project(rq_app)
    rt = rq_app.extensions["bpm"]
    kickoff = next(t.task_id for t in timers_of(rq_app, instance_id) if t.id in due_ids)
    with rq_app.app_context():
        # An escalation rung whose payload lost its level: firing it raises.
        broken = timers.add_timer(db.session, "escalation", instance_id, kickoff,
                                   rt.clock.now() - timedelta(days=40), {}, rt.clock.now())
        db.session.commit()
        broken_id = broken.id
        db.session.remove()
    pump(rq_app, TimerPump(rq_app))
    assert queued(rq_app) == {broken_id, *due_ids}, "one batch carries all three"

    run_worker(rq_app, tmp_path)
    assert breach_count(rq_app) == 1
    by_id = {t.id: t for t in timers_of(rq_app, instance_id)}
    assert all(by_id[t].fired_at is not None for t in due_ids)
    assert by_id[broken_id].fired_at is None, "rolled back alone, left for the pump to hand out again"
    assert outcome(rq_app, broken_id).startswith("failed: KeyError")
