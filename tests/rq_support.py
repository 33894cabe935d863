"""Shared by the tests that run jobs through rq on the real local Redis: a
dedicated Redis database flushed around each test, an app configured for it,
and a real ``bpm-server worker --burst`` process."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from flask import Flask
from redis import Redis

from bpm_server.config import PROJECT_ROOT, Config
from tests.conftest import REDIS_TEST_URL


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
                  forms_dir=PROJECT_ROOT / "forms")


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
