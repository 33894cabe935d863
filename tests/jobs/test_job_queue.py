"""Background jobs on both paths: the embedded in-process runner and rq on a
real Redis with a real ``bpm-server worker`` process.

The job under test is ``bpm_server.instances.jobs.advance``: an instance of
``tests/fixtures/timer_then_task.bpmn`` waits on a one-hour timer with no open
task; once the timer is due, advancing it must open the ``follow_up`` task in
the sales department.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from rq.job import Job
from sqlalchemy import select

from bpm_server.accounts.service import upsert_account
from bpm_server.clock import SettableClock
from bpm_server.database import db
from bpm_server.instances.models import ProcessInstance
from bpm_server.jobs.queue import InProcessJobQueue, RqJobQueue
from bpm_server.jobs.runner import perform_in_app
from bpm_server.modeling.models import ProcessModel
from bpm_server.modeling.service import publish_version
from bpm_server.runtime import start_instance
from bpm_server.tasks.models import HumanTask
from tests.conftest import START
from tests.rq_support import rq_app as shared_rq_app
from tests.rq_support import run_worker

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MODEL_ID = "timer-then-task"
ADVANCE = "bpm_server.instances.jobs.advance"


# --------------------------------------------------------------------------- helpers


def start_waiting_instance(app: Flask) -> str:
    """Publish the timer model, start one instance at the app clock's "now"; return its id."""
    rt = app.extensions["bpm"]
    with app.app_context():
        now = rt.clock.now()
        db.session.add(ProcessModel(id=MODEL_ID, name="Wait an hour, then follow up", description="",
                                    created_at=now))
        db.session.flush()
        publish_version(db.session, MODEL_ID, (FIXTURES / "timer_then_task.bpmn").read_bytes(), source="sync",
                        now=now)
        upsert_account(db.session, "ACME", name="Acme Ltd", tier="key", now=now)
        instance = start_instance(db.session, rt, process_model_id=MODEL_ID, account_id="ACME", data={},
                                  now=now, started_by=None)
        db.session.commit()
        instance_id = instance.id
        db.session.remove()
    state, tasks = instance_state(app, instance_id)
    assert state == "running" and tasks == [], "the instance should wait on the timer with no task"
    return instance_id


def instance_state(app: Flask, instance_id: str) -> tuple[str, list[tuple[str, str, str]]]:
    """(instance state, [(task name, department, state) of every task row]) as stored."""
    with app.app_context():
        try:
            state = db.session.get_one(ProcessInstance, instance_id).state
            rows = db.session.scalars(select(HumanTask).where(HumanTask.process_instance_id == instance_id)
                                      .order_by(HumanTask.created_at, HumanTask.id)).all()
            return state, [(r.name, r.department_id, r.state) for r in rows]
        finally:
            db.session.remove()


def drain(jobs: InProcessJobQueue, timeout: float = 30.0) -> None:
    """``jobs.drain()`` with a deadline, so a hung runner fails the test instead of hanging it."""
    waiter = threading.Thread(target=jobs.drain, daemon=True)
    waiter.start()
    waiter.join(timeout)
    assert not waiter.is_alive(), f"the job runner did not finish its queue within {timeout}s"


# --------------------------------------------------------------------------- embedded path


def test_embedded_runner_fires_due_timer_and_opens_the_task(app: Flask, clock: SettableClock) -> None:
    assert isinstance(app.extensions["bpm"].jobs, InProcessJobQueue), "without Redis, jobs run in-process"
    instance_id = start_waiting_instance(app)

    clock.set(START + timedelta(hours=2))
    jobs = InProcessJobQueue(app, perform_in_app)
    jobs.enqueue(ADVANCE, instance_id)
    drain(jobs)

    assert instance_state(app, instance_id) == ("running", [("follow_up", "sales", "ready")])


def test_embedded_runner_leaves_instance_waiting_before_the_timer_is_due(app: Flask, clock: SettableClock) -> None:
    instance_id = start_waiting_instance(app)

    clock.set(START + timedelta(minutes=59))  # one minute short of PT1H
    jobs = InProcessJobQueue(app, perform_in_app)
    jobs.enqueue(ADVANCE, instance_id)
    drain(jobs)
    assert instance_state(app, instance_id) == ("running", [])

    # The same job once the hour has passed does open the task.
    clock.set(START + timedelta(hours=1, minutes=1))
    jobs.enqueue(ADVANCE, instance_id)
    drain(jobs)
    assert instance_state(app, instance_id) == ("running", [("follow_up", "sales", "ready")])


def test_embedded_runner_survives_a_failing_job(app: Flask, clock: SettableClock,
                                                caplog: pytest.LogCaptureFixture) -> None:
    instance_id = start_waiting_instance(app)
    clock.set(START + timedelta(hours=2))
    jobs = InProcessJobQueue(app, perform_in_app)

    with caplog.at_level(logging.ERROR, logger="bpm_server.jobs.queue"):
        jobs.enqueue(ADVANCE, "no-such-instance")  # raises NotFound inside the runner
        jobs.enqueue("bpm_server.jobs.no_such_module.job")  # cannot even be imported
        jobs.enqueue(ADVANCE, instance_id)
        drain(jobs)

    # The good job after the two bad ones still ran.
    assert instance_state(app, instance_id) == ("running", [("follow_up", "sales", "ready")])
    failures = [r for r in caplog.records if r.name == "bpm_server.jobs.queue" and r.levelno == logging.ERROR]
    assert [r.getMessage() for r in failures] == [f"job {ADVANCE} failed",
                                                  "job bpm_server.jobs.no_such_module.job failed"]
    assert failures[0].exc_info is not None and "no-such-instance" in str(failures[0].exc_info[1])

    # And the runner keeps serving later work.
    jobs.enqueue(ADVANCE, instance_id)
    drain(jobs)
    assert instance_state(app, instance_id) == ("running", [("follow_up", "sales", "ready")]), \
        "advancing again must not duplicate the open task"


# --------------------------------------------------------------------------- rq path


@pytest.fixture
def rq_app(pg_url: str) -> Iterator[Flask]:
    """An app on PostgreSQL whose jobs go to rq on the test Redis, under a queue name of its own.

    A ``bpm-server worker`` subprocess uses the real time, so the app's clock
    stands two hours in the past: the instance's PT1H timer is due by the
    time the worker looks at it.
    """
    with shared_rq_app(pg_url, SettableClock(datetime.now(UTC) - timedelta(hours=2))) as app:
        yield app


def test_rq_worker_process_runs_the_queued_advance(rq_app: Flask, tmp_path: Path) -> None:
    jobs = rq_app.extensions["bpm"].jobs
    assert isinstance(jobs, RqJobQueue), "with BPM_REDIS_URL set, jobs go to rq"
    instance_id = start_waiting_instance(rq_app)

    jobs.enqueue(ADVANCE, "no-such-instance", job_id="advance-missing")
    jobs.enqueue(ADVANCE, instance_id, job_id=f"advance-{instance_id}")
    # Queued, not run: nothing has happened to the instance yet.
    assert jobs.queue.job_ids == ["advance-missing", f"advance-{instance_id}"]
    assert jobs.queue.jobs[1].args == (ADVANCE, instance_id)
    assert instance_state(rq_app, instance_id) == ("running", [])

    run_worker(rq_app, tmp_path, test_clock=True)

    assert jobs.queue.count == 0
    good = Job.fetch(f"advance-{instance_id}", connection=jobs.connection)
    assert good.get_status() == "finished" and good.return_value() == "running"
    # The failing job is kept as failed with its reason; it did not stop the worker.
    bad = Job.fetch("advance-missing", connection=jobs.connection)
    latest = bad.latest_result()
    assert bad.get_status() == "failed" and latest is not None and "no-such-instance" in (latest.exc_string or "")
    assert instance_state(rq_app, instance_id) == ("running", [("follow_up", "sales", "ready")])


def test_rq_enqueue_with_same_job_id_queues_the_work_once(rq_app: Flask, tmp_path: Path) -> None:
    jobs = rq_app.extensions["bpm"].jobs
    instance_id = start_waiting_instance(rq_app)
    job_id = f"advance-{instance_id}"

    jobs.enqueue(ADVANCE, instance_id, job_id=job_id)
    jobs.enqueue(ADVANCE, instance_id, job_id=job_id)
    assert jobs.queue.job_ids == [job_id]

    run_worker(rq_app, tmp_path, test_clock=True)
    assert jobs.queue.count == 0
    assert instance_state(rq_app, instance_id) == ("running", [("follow_up", "sales", "ready")])

    # Once that job has run, the same id queues new work again (a later timer
    # must not be swallowed by the finished job's record).
    jobs.enqueue(ADVANCE, instance_id, job_id=job_id)
    assert jobs.queue.job_ids == [job_id]
    run_worker(rq_app, tmp_path, test_clock=True)
    assert Job.fetch(job_id, connection=jobs.connection).get_status() == "finished"
    assert instance_state(rq_app, instance_id) == ("running", [("follow_up", "sales", "ready")]), \
        "advancing again must not duplicate the open task"
