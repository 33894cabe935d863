"""Apps wired to fakes of the other side on loopback: an ERP, robots, a mail server.

Overrides the root ``config`` fixture, so ``app``, ``synced_app`` and
``people`` from tests/conftest.py give a deployment with an ERP configured.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask

from bpm_server.config import Config
from tests.integrations.fakes import HttpFake

WEBHOOK_SECRET = "test-webhook-secret"
ERP_OUT_SECRET = "erp-outbound-secret"
BACKOFF = timedelta(seconds=30)


@pytest.fixture
def fake_erp() -> Iterator[HttpFake]:
    erp = HttpFake(ok_body=lambda n: {"request_id": f"REQ-{n}", "status": "accepted"}).start()
    yield erp
    erp.stop()


@pytest.fixture
def channels_file() -> Path | None:
    return None  # test modules about channels provide one


def with_fake_erp(config: Config, fake_erp: HttpFake) -> Config:
    """``config`` wired to the fake ERP, with three attempts per call and a short back-off."""
    return config.but(erp_webhook_secret=WEBHOOK_SECRET, erp_base_url=fake_erp.url,
                      erp_outbound_secret=ERP_OUT_SECRET, erp_timeout_seconds=2.0, outbound_max_attempts=3,
                      outbound_backoff_seconds=int(BACKOFF.seconds))


@pytest.fixture
def config(config: Config, fake_erp: HttpFake, channels_file: Path | None) -> Config:
    return with_fake_erp(config, fake_erp).but(channels_file=channels_file)


def pump(app: Flask, timeout: float = 30.0) -> None:
    """What the worker does: hand every due timer to the job queue, then wait until the jobs ran."""
    from bpm_server.sla.scheduler import TimerPump

    with app.app_context():
        TimerPump(app).pump_once()
    jobs = app.extensions["bpm"].jobs
    waiter = threading.Thread(target=jobs.drain, daemon=True)
    waiter.start()
    waiter.join(timeout)
    assert not waiter.is_alive(), f"the job runner did not finish within {timeout}s"
