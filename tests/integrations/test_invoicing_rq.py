"""The full invoicing path once more with real rq: the ERP call, its retries and the
completion run in a separate ``bpm-server worker --burst`` process on Redis."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask

from bpm_server.clock import SettableClock
from bpm_server.config import PROJECT_ROOT, Config
from bpm_server.jobs.queue import RqJobQueue
from tests.api.flows import contract_signed, do_stage, invoice_issued, post_contract_signed, walk_to_acceptance
from tests.integrations.conftest import WEBHOOK_SECRET, with_fake_erp
from tests.integrations.fakes import HttpFake
from tests.rq_support import flush_redis, rq_config


@pytest.fixture(params=["postgresql"])
def backend(request: pytest.FixtureRequest) -> str:  # a worker process needs a shared database
    return request.param


@pytest.fixture
def clock() -> SettableClock:
    # The worker runs on real time; this app's clock starts there too.
    return SettableClock(datetime.now(UTC))


@pytest.fixture
def config(database_url: str, fake_erp: HttpFake) -> Iterator[Config]:
    flush_redis()
    yield with_fake_erp(rq_config(database_url), fake_erp)
    flush_redis()


def pump_and_work(app: Flask, cwd: Path) -> str:
    """This process pumps due timers onto rq; a worker process runs everything queued."""
    from bpm_server.sla.scheduler import TimerPump

    with app.app_context():
        TimerPump(app).pump_once()
    return work(app, cwd)


def work(app: Flask, cwd: Path) -> str:
    """A ``bpm-server worker --burst`` process, wired to the fake ERP, runs everything queued."""
    config = app.extensions["bpm"].config
    env = {k: v for k, v in os.environ.items() if not k.startswith("BPM_")}
    env.update(BPM_DATABASE_URL=config.database_url, BPM_REDIS_URL=config.redis_url,
               BPM_QUEUE_NAME=config.queue_name, BPM_TEST_CLOCK="1", BPM_ERP_BASE_URL=config.erp_base_url,
               BPM_ERP_OUTBOUND_SECRET=config.erp_outbound_secret, BPM_OUTBOUND_MAX_ATTEMPTS="3",
               BPM_OUTBOUND_BACKOFF_SECONDS="30",
               PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, "-m", "bpm_server.cli", "worker", "--burst"], env=env, cwd=cwd,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"worker exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def test_invoice_request_retries_on_a_real_rq_worker(people, synced_app, fake_erp, clock, tmp_path):
    assert isinstance(synced_app.extensions["bpm"].jobs, RqJobQueue)
    response = post_contract_signed(people["erp"].client, contract_signed(contract_no="HT-RQ"),
                                    secret=WEBHOOK_SECRET, timestamp=int(clock.now().timestamp()))
    assert response.status_code == 201, response.get_json()
    iid = response.get_json()["process_instance_id"]
    walk_to_acceptance(people, iid)

    fake_erp.fail(2)
    pump_and_work(synced_app, tmp_path)  # attempt 1 fails; the worker schedules the retry
    assert len(fake_erp.requests) == 1
    for minutes in (10, 20):  # the retries' back-off is measured on the worker's (real) clock
        clock.set(datetime.now(UTC) + timedelta(minutes=minutes))
        pump_and_work(synced_app, tmp_path)
    assert len(fake_erp.requests) == 3
    assert len({r.headers["Idempotency-Key"] for r in fake_erp.requests}) == 1

    instance = people["admin"].get(f"/api/v1/process-instances/{iid}").get_json()
    assert [(w["kind"], w["name"]) for w in instance["waiting_for"]] == [("message", "invoice_issued")]
    assert invoice_issued(people["erp"], "HT-RQ").status_code == 200
    do_stage(people, iid, "invoicing")
    final = people["admin"].get(f"/api/v1/process-instances/{iid}").get_json()
    assert final["state"] == "completed"
    log = people["auditor"].get("/api/v1/integration-log?direction=outbound").get_json()["items"]
    assert [e["outcome"] for e in reversed(log)] == ["failed", "failed", "ok"]


def test_a_job_lost_with_a_flushed_redis_is_handed_out_again(people, synced_app, fake_erp, clock, tmp_path):
    """Redis flushed (or the worker killed) after the pump handed a timer out: the rows still know."""
    from bpm_server.sla.scheduler import TimerPump

    response = post_contract_signed(people["erp"].client, contract_signed(contract_no="HT-LOST"),
                                    secret=WEBHOOK_SECRET, timestamp=int(clock.now().timestamp()))
    iid = response.get_json()["process_instance_id"]
    walk_to_acceptance(people, iid)
    jobs = synced_app.extensions["bpm"].jobs
    timer_pump = TimerPump(synced_app)  # one pump for the whole test, as in a running worker

    with synced_app.app_context():
        timer_pump.pump_once()  # the request's attempt is now a job on Redis
    assert jobs.backlog() == 1
    flush_redis()
    assert jobs.backlog() == 0
    work(synced_app, tmp_path)
    assert fake_erp.requests == []

    with synced_app.app_context():
        timer_pump.pump_once()
    assert jobs.backlog() == 0, "a timer handed out moments ago is left alone: its job may still be on its way"

    clock.set(clock.now() + timedelta(minutes=5))
    with synced_app.app_context():
        timer_pump.pump_once()
    assert jobs.backlog() == 1
    work(synced_app, tmp_path)
    assert len(fake_erp.requests) == 1
    waiting = people["admin"].get(f"/api/v1/process-instances/{iid}").get_json()["waiting_for"]
    assert [(w["kind"], w["name"]) for w in waiting] == [("message", "invoice_issued")]

    clock.set(clock.now() + timedelta(minutes=10))
    with synced_app.app_context():
        timer_pump.pump_once()  # the attempt that did happen is not made again
    work(synced_app, tmp_path)
    assert len(fake_erp.requests) == 1
