"""The production shape for fault tests, all of it this test's own: a redis-server on a
spare port, ``bpm-server worker`` processes (rq + timer pump) and gunicorn serving
``bpm_server.wsgi:app``, configured by environment only, on the private PostgreSQL
cluster of tests/pg_cluster.py. Every process is a child of the test, in a process
group of its own, and is stopped by its own id."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis import Redis
from rq import Queue, Worker
from sqlalchemy import create_engine, text

from bpm_server.config import PROJECT_ROOT, Config
from bpm_server.jobs.queue import PUMP_PASSES
from bpm_server.sla.scheduler import ADVISORY_LOCK_KEY
from tests.pg_cluster import spare_port

VENV_BIN = Path(sys.executable).parent


def wait_for(ready: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    """Poll ``ready`` until it returns something truthy (exceptions count as not yet)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = ready()
            if value:
                return value
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(every)
    raise AssertionError(f"{what} not within {timeout} s (last error: {last!r})")


class RedisServer:
    """A redis-server of the test's own (no persistence), stopped and started at will."""

    def __init__(self, logdir: Path) -> None:
        self.port = spare_port()
        self.logdir = logdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> Redis:
        return Redis(port=self.port, socket_timeout=2)

    def start(self) -> RedisServer:
        with open(self.logdir / "redis.log", "ab") as log:
            self.process = subprocess.Popen(
                [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: self.client().ping(), 20, "redis-server")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


class Stack:
    """Workers and web processes on one database and one Redis."""

    def __init__(self, config: Config, logdir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.config = config
        self.logdir = logdir
        self.extra_env = extra_env or {}
        self.workers: list[subprocess.Popen[bytes]] = []
        self.web: subprocess.Popen[bytes] | None = None
        self.web_port = spare_port()
        self._logs = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BPM_")}
        c = self.config
        env.update(BPM_DATABASE_URL=c.database_url, BPM_REDIS_URL=c.redis_url or "", BPM_QUEUE_NAME=c.queue_name,
                   BPM_SECRET_KEY=c.secret_key, BPM_ERP_WEBHOOK_SECRET=c.erp_webhook_secret or "",
                   BPM_ERP_BASE_URL=c.erp_base_url or "", BPM_ERP_OUTBOUND_SECRET=c.erp_outbound_secret or "",
                   BPM_ERP_TIMEOUT_SECONDS=str(c.erp_timeout_seconds), PYTHONUNBUFFERED="1",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")])))
        env.update(self.extra_env)
        return env

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        self._logs += 1
        # cwd: the log directory, so no stray .env is read.
        with open(self.logdir / f"{name}-{self._logs}.log", "wb") as log:
            return subprocess.Popen(args, cwd=self.logdir, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)

    def start_worker(self) -> subprocess.Popen[bytes]:
        worker = self._spawn("worker", [sys.executable, "-m", "bpm_server.cli", "worker"])
        self.workers.append(worker)
        return worker

    def start_workers(self, count: int) -> None:
        for _ in range(count):
            self.start_worker()
        wait_for(lambda: self.registered_workers() >= len(self.live_workers()) and self.pump_leaders(), 90,
                 "workers registered and one pump leading")

    def live_workers(self) -> list[subprocess.Popen[bytes]]:
        return [w for w in self.workers if w.poll() is None]

    def start_web(self, workers: int = 2, threads: int = 4) -> None:
        self.web = self._spawn("gunicorn", [str(VENV_BIN / "gunicorn"), "--workers", str(workers), "--worker-class",
                                            "gthread", "--threads", str(threads), "--bind",
                                            f"127.0.0.1:{self.web_port}", "--log-level", "warning",
                                            "--timeout", "60", "bpm_server.wsgi:app"])
        wait_for(self._healthy, 90, "gunicorn answering /api/v1/health")

    def _healthy(self) -> bool:
        with urllib.request.urlopen(self.base_url + "/api/v1/health", timeout=2) as response:
            return response.status == 200

    # ---- what the processes are doing

    def redis(self) -> Redis:
        assert self.config.redis_url
        return Redis.from_url(self.config.redis_url, socket_timeout=2)

    def registered_workers(self) -> int:
        return len(Worker.all(connection=self.redis()))

    def current_jobs(self) -> dict[int, str]:
        """pid of each registered worker that is running a job -> that job's id."""
        found = {}
        for worker in Worker.all(connection=self.redis()):
            job_id = worker.get_current_job_id()
            if job_id and worker.pid:
                found[worker.pid] = job_id
        return found

    def sql(self, statement: str, **params: Any) -> Any:
        engine = create_engine(self.config.database_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                result = conn.execute(text(statement), params)
                return result.all() if result.returns_rows else None
        finally:
            engine.dispose()

    def pump_leaders(self) -> list[int]:
        """Backend pids holding the pump's advisory lock in this database."""
        rows = self.sql("SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                        "WHERE l.locktype = 'advisory' AND l.granted AND l.objid = :k "
                        "AND d.datname = current_database()", k=ADVISORY_LOCK_KEY)
        return [r[0] for r in rows]

    def pump_passes(self, count: int, timeout: float = 30, during: Callable[[], None] | None = None) -> None:
        """Block until the leading pump has finished ``count`` more passes (it announces each
        on a Redis channel), calling ``during`` after each. Two passes, not one: the pass
        under way when this starts may have read the timers before the moment of interest."""
        pubsub = self.redis().pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(PUMP_PASSES)
        try:
            deadline = time.monotonic() + timeout
            seen = 0
            while seen < count:
                left = deadline - time.monotonic()
                assert left > 0, f"the timer pump finished {seen} of {count} passes within {timeout} s"
                if pubsub.get_message(timeout=left) is not None:  # blocks until a pass is announced
                    seen += 1
                    if during is not None:
                        during()
        finally:
            pubsub.close()

    def settled(self) -> None:
        """Two more pump passes, then the queue empty: whatever those passes handed out has run."""
        self.pump_passes(2)
        live = {w.pid for w in self.live_workers()}  # a killed worker's registration outlives it

        def idle() -> bool:
            running = set(self.current_jobs()) & live
            return not running and not Queue(self.config.queue_name, connection=self.redis()).count
        wait_for(idle, 30, "the job queue empty and no job running on a live worker")

    def worker_logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.logdir.glob("worker-*.log")))

    # ---- faults and checks

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bpm_server.cli", *args], env=self.env(), cwd=self.logdir,
                              capture_output=True, text=True, timeout=120)

    def assert_consistent(self) -> None:
        """``bpm-server doctor`` and ``bpm-server audit verify`` both pass."""
        for command in (("doctor",), ("audit", "verify")):
            result = self.cli(*command)
            assert result.returncode == 0, f"{' '.join(command)}: {result.stdout}\n{result.stderr}"

    def stop(self) -> None:
        processes = [p for p in [*self.workers, self.web] if p is not None and p.poll() is None]
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
