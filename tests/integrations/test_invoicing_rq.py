"""The full invoicing path once more with real rq: the ERP call, its retries and the
completion run in a separate ``bpm-server worker --burst`` process on Redis."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from redis import Redis

from bpm_server.clock import SettableClock
from bpm_server.config import PROJECT_ROOT, Config
from bpm_server.jobs.queue import RqJobQueue
from tests.api.flows import contract_signed, do_stage, invoice_issued, post_contract_signed, walk_to_acceptance
from tests.conftest import REDIS_TEST_URL
from tests.integrations.conftest import ERP_OUT_SECRET, WEBHOOK_SECRET
from tests.integrations.fakes import HttpFake


def _flush_redis() -> None:
    connection = Redis.from_url(REDIS_TEST_URL)
    try:
        connection.flushdb()
    finally:
        connection.close()


@pytest.fixture(params=["postgresql"])
def backend(request: pytest.FixtureRequest) -> str:  # a worker process needs a shared database
    return request.param


@pytest.fixture
def clock() -> SettableClock:
    # The worker runs on real time; this app's clock starts there too.
    return SettableClock(datetime.now(UTC))


@pytest.fixture
def config(database_url: str, fake_erp: HttpFake) -> Iterator[Config]:
    _flush_redis()
    yield Config(database_url=database_url, redis_url=REDIS_TEST_URL, queue_name=f"bpm-test-{uuid.uuid4().hex}",
                 testing=True, secret_key="test-secret", erp_webhook_secret=WEBHOOK_SECRET,
                 erp_base_url=fake_erp.url, erp_outbound_secret=ERP_OUT_SECRET, outbound_max_attempts=3,
                 outbound_backoff_seconds=30, models_dir=PROJECT_ROOT / "process_models",
                 forms_dir=PROJECT_ROOT / "forms")
    _flush_redis()


def pump_and_work(app: Flask, cwd: Path) -> str:
    """This process pumps due timers onto rq; a worker process runs everything queued."""
    from bpm_server.sla.scheduler import TimerPump

    with app.app_context():
        TimerPump(app).pump_once()
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
