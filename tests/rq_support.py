"""Shared by the tests that run jobs through rq on the real local Redis: a
dedicated Redis database flushed around each test, an app configured for it,
and a real ``bpm-server worker --burst`` process."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask
from redis import Redis

from bpm_server.app import create_app
from bpm_server.clock import SettableClock
from bpm_server.config import PROJECT_ROOT, Config
from bpm_server.database import db
from tests.conftest import REDIS_TEST_URL, empty_tables


def flush_redis() -> None:
    connection = Redis.from_url(REDIS_TEST_URL)
    try:
        connection.flushdb()
    finally:
        connection.close()


def rq_config(pg_url: str) -> Config:
    """PostgreSQL plus rq on the test Redis, under a queue name of this test's own."""
    return Config(database_url=pg_url, redis_url=REDIS_TEST_URL, queue_name=f"bpm-test-{uuid.uuid4().hex}",
                  testing=True, secret_key="test-secret", models_dir=PROJECT_ROOT / "process_models",
                  forms_dir=PROJECT_ROOT / "forms",
                  # As in tests/conftest.py's config: the accounts' daily timer would be handed out with
                  # every test's timers once a test's clock passes the next 06:00 in Shanghai.
                  accounts_daily_at=None)


@contextmanager
def rq_app(pg_url: str, clock: SettableClock, prepare: Callable[[Flask], None] | None = None) -> Iterator[Flask]:
    """An app on PostgreSQL whose jobs go to rq on a flushed test Redis: the schema at
    the newest revision and empty, then ``prepare(app)`` (inside an app context,
    committed). Redis is flushed again and connections closed afterwards."""
    from flask_migrate import upgrade

    flush_redis()
    app = create_app(rq_config(pg_url), clock=clock)
    with app.app_context():
        upgrade()
    empty_tables(app)
    if prepare is not None:
        with app.app_context():
            prepare(app)
            db.session.commit()
            db.session.remove()
    try:
        yield app
    finally:
        app.extensions["bpm"].jobs.connection.close()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        flush_redis()


def run_worker(app: Flask, cwd: Path, *, test_clock: bool = False) -> subprocess.CompletedProcess[str]:
    """``bpm-server worker --burst`` as its own process, configured by environment only."""
    config = app.extensions["bpm"].config
    env = {k: v for k, v in os.environ.items() if not k.startswith("BPM_")}
    env.update(BPM_DATABASE_URL=config.database_url, BPM_REDIS_URL=config.redis_url,
               BPM_QUEUE_NAME=config.queue_name,
               PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")])))
    if test_clock:
        env["BPM_TEST_CLOCK"] = "1"
    result = subprocess.run([sys.executable, "-m", "bpm_server.cli", "worker", "--burst"], env=env, cwd=cwd,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"worker exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result
