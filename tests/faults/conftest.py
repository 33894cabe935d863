"""Fault tests: real worker and web processes on a PostgreSQL cluster and a
redis-server of this run's own, on spare ports, so stopping them disturbs no
other test run.

Overrides the root fixtures: ``database_url`` is the private cluster, ``config``
points at the private Redis (jobs go to rq) and the fake ERP, and ``clock`` is
the system clock, since the worker processes pump timers on real time. ``app``,
``synced_app`` and ``people`` then work as everywhere (in-process callers, used
to set up data); ``stack`` runs the processes under test.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bpm_server.clock import SystemClock
from bpm_server.config import PROJECT_ROOT, Config
from tests.conftest import _migrate
from tests.faults.stack import RedisServer, Stack
from tests.integrations.fakes import HttpFake
from tests.pg_cluster import PrivateCluster

WEBHOOK_SECRET = "test-webhook-secret"


@pytest.fixture(scope="session")
def private_pg() -> Iterator[PrivateCluster]:
    cluster = PrivateCluster().init().start()
    try:
        _migrate(cluster.url)
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def database_url(private_pg: PrivateCluster) -> str:
    if private_pg.log.exists() and not (private_pg.data / "postmaster.pid").exists():
        private_pg.start()  # a previous test left it stopped (it failed mid-outage)
    return private_pg.url


@pytest.fixture
def clock() -> SystemClock:
    return SystemClock()


@pytest.fixture
def fake_erp() -> Iterator[HttpFake]:
    erp = HttpFake(ok_body=lambda n: {"request_id": f"REQ-{n}", "status": "accepted"}).start()
    yield erp
    erp.stop()


@pytest.fixture
def config(database_url: str, private_redis: RedisServer, fake_erp: HttpFake) -> Config:
    return Config(database_url=database_url, redis_url=private_redis.url, queue_name=f"bpm-faults-{uuid.uuid4().hex}",
                  testing=True, secret_key="test-secret", erp_webhook_secret=WEBHOOK_SECRET,
                  erp_base_url=fake_erp.url, erp_outbound_secret="erp-outbound-secret", erp_timeout_seconds=30.0,
                  models_dir=PROJECT_ROOT / "process_models", forms_dir=PROJECT_ROOT / "forms")


@pytest.fixture
def stack(config: Config, tmp_path: Path) -> Iterator[Stack]:
    processes = Stack(config, tmp_path)
    yield processes
    processes.stop()


def soon(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)
