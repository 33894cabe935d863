"""The production shape on this machine, for the HTTP benchmarks: a dedicated
PostgreSQL database, a dedicated redis-server, ``bpm-server worker`` processes
(rq + timer pump) and gunicorn serving ``bpm_server.wsgi:app``; plus CPU
accounting over every server-side process with psutil.

Everything started here is a child process of the benchmark and is stopped by
``Cluster.stop()`` (terminate, then kill), by its own pid only.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common
import _flow

VENV_BIN = Path(_common.REPO_ROOT) / ".venv" / "bin"
WEBHOOK_PATH = "/api/v1/hooks/erp/contract-signed"
WEBHOOK_SECRET = "bench-webhook-secret-0123456789abcdef"
QUEUE = "bpm-bench-http"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- data


def drop_pg_database(database: str) -> None:
    """Drop a benchmark database at the end of a run (nothing is kept between runs)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(_common.PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    finally:
        engine.dispose()


@dataclass
class Seeded:
    url: str
    tokens: dict[str, list[str]]  # department -> one token per client
    accounts: list[dict[str, str]]
    webhook: bool  # the signed ERP webhook route exists in this build
    database_server: str = ""


def seed_database(database: str, clients: int, accounts: int = 20) -> Seeded:
    """Fresh database: migrations, models and forms, escalation policies, one staff
    user per department per client (with a token) and ``accounts`` accounts."""
    from bpm_server.accounts.service import upsert_account
    from bpm_server.app import create_app
    from bpm_server.config import PROJECT_ROOT, Config
    from bpm_server.database import db
    from bpm_server.identity.service import add_user, issue_token
    from bpm_server.modeling.service import sync_from_disk
    from bpm_server.sla.policies import sync_file

    url = _common.recreate_pg_database(database)
    _common.migrate(url)
    app = create_app(Config(database_url=url, models_dir=PROJECT_ROOT / "process_models",
                            forms_dir=PROJECT_ROOT / "forms", erp_webhook_secret=WEBHOOK_SECRET))
    tokens: dict[str, list[str]] = {d: [] for d in _flow.DEPARTMENTS}
    account_rows = []
    with app.app_context():
        rt = app.extensions["bpm"]
        now = rt.clock.now()
        sync_from_disk(db.session, rt.config.models_dir, rt.config.forms_dir, now=now)
        sync_file(db.session, rt.config.models_dir / "escalation-policies.json", now=now)
        for department in _flow.DEPARTMENTS:
            for i in range(clients):
                user = add_user(db.session, f"bench-{department}-{i}", department=department, roles=["staff"],
                                now=now)
                tokens[department].append(issue_token(db.session, user, now=now))
        for i in range(accounts):
            row = {"id": f"BENCH-{i:03d}", "name": f"Benchmark Customer {i} Ltd", "tier": "key"}
            upsert_account(db.session, row["id"], name=row["name"], tier=row["tier"], owner="bench-sales-0", now=now)
            account_rows.append(row)
        db.session.commit()
        version = _common.server_version(db.engine)
        webhook = any(rule.rule == WEBHOOK_PATH for rule in app.url_map.iter_rules())
        db.session.remove()
        db.engine.dispose()
    return Seeded(url, tokens, account_rows, webhook, version)


# --------------------------------------------------------------------------- processes


@dataclass
class Cluster:
    database_url: str
    web_workers: int = 3
    web_threads: int = 4
    rq_workers: int = 2
    worker_class: str = "gthread"
    port: int = field(default_factory=free_port)
    redis_port: int = field(default_factory=free_port)
    procs: dict[str, list[subprocess.Popen]] = field(default_factory=dict)
    logdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bpm-bench-http-")))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(BPM_DATABASE_URL=self.database_url, BPM_REDIS_URL=f"redis://127.0.0.1:{self.redis_port}/0",
                   BPM_QUEUE_NAME=QUEUE, BPM_ERP_WEBHOOK_SECRET=WEBHOOK_SECRET, BPM_SECRET_KEY="bench-secret")
        env.pop("BPM_TEST_CLOCK", None)
        return env

    def _spawn(self, group: str, args: list[str]) -> subprocess.Popen:
        n = len(self.procs.get(group, []))
        # cwd: the log directory, so no stray .env is read; process group of its own for a clean stop.
        # The child keeps its own copy of the log's descriptor; ours closes with the block.
        with open(self.logdir / f"{group}-{n}.log", "wb") as log:
            proc = subprocess.Popen(args, cwd=self.logdir, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.procs.setdefault(group, []).append(proc)
        return proc

    def start(self, timeout: float = 60.0) -> None:
        self._spawn("redis", [shutil.which("redis-server") or "redis-server", "--port", str(self.redis_port),
                              "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        self._wait(lambda: self._redis_ping(), timeout, "redis-server")
        for _ in range(self.rq_workers):
            self._spawn("worker", [str(VENV_BIN / "bpm-server"), "worker"])
        args = [str(VENV_BIN / "gunicorn"), "--workers", str(self.web_workers), "--worker-class", self.worker_class,
                "--bind", f"127.0.0.1:{self.port}", "--log-level", "warning", "--backlog", "2048",
                "--keep-alive", "30", "--max-requests", "0"]
        if self.worker_class == "gthread":
            args += ["--threads", str(self.web_threads)]
        self._spawn("gunicorn", [*args, "bpm_server.wsgi:app"])
        self._wait(self._healthy, timeout, "gunicorn")
        self._wait(lambda: self._rq_workers_registered() >= self.rq_workers, timeout, "rq workers")

    def _wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for group, procs in self.procs.items():
                for p in procs:
                    if p.poll() is not None:
                        raise RuntimeError(f"{group} exited with {p.returncode}; see {self.logdir}")
            try:
                if ready():
                    return
            except Exception:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{what} not ready after {timeout} s; logs in {self.logdir}")

    def _redis_ping(self) -> bool:
        from redis import Redis

        return bool(Redis(port=self.redis_port).ping())

    def _rq_workers_registered(self) -> int:
        from redis import Redis
        from rq import Worker

        return len(Worker.all(connection=Redis(port=self.redis_port)))

    def _healthy(self) -> bool:
        with urllib.request.urlopen(self.base_url + "/api/v1/health", timeout=2) as response:
            return response.status == 200

    def web_pids(self) -> list[int]:
        import psutil

        master = psutil.Process(self.procs["gunicorn"][0].pid)
        return [master.pid] + [c.pid for c in master.children(recursive=True)]

    def worker_pids(self) -> list[int]:
        return [p.pid for p in self.procs.get("worker", [])]

    def stop(self) -> None:
        for group in ("gunicorn", "worker", "redis"):
            for p in self.procs.get(group, []):
                if p.poll() is None:
                    p.terminate()
        deadline = time.monotonic() + 15
        for group in ("gunicorn", "worker", "redis"):
            for p in self.procs.get(group, []):
                try:
                    p.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)


# --------------------------------------------------------------------------- CPU accounting


PG_AUX = ("checkpointer", "background writer", "walwriter", "autovacuum", "logical replication", "stats collector")


class CpuMeter:
    """User+system CPU seconds of every server-side process, per group, between
    ``begin()`` and ``end()``. A sampler thread notices processes that appear in
    between (new PostgreSQL backends) and keeps the last reading of any that exit.

    Groups: web (gunicorn master and workers), worker (rq), redis (the dedicated
    redis-server), postgres (backends connected to our database) and
    postgres_shared (postmaster and auxiliary processes, shared with whatever
    else uses this PostgreSQL)."""

    def __init__(self, cluster: Cluster, database: str, interval: float = 0.5) -> None:
        self.cluster = cluster
        self.database = database
        self.interval = interval
        self._start: dict[tuple[int, float], float] = {}
        self._last: dict[tuple[int, float], tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _processes(self) -> list[tuple[str, Any]]:
        import psutil

        found: list[tuple[str, Any]] = []
        for pid in self.cluster.web_pids():
            found.append(("web", psutil.Process(pid)))
        for pid in self.cluster.worker_pids():
            found.append(("worker", psutil.Process(pid)))
        for p in self.cluster.procs.get("redis", []):
            found.append(("redis", psutil.Process(p.pid)))
        for proc in psutil.process_iter(["name", "cmdline"]):
            cmd = " ".join(proc.info["cmdline"] or [])
            if proc.info["name"] != "postgres" and not cmd.startswith("postgres"):
                continue
            if f" {self.database} " in cmd:
                found.append(("postgres", proc))
            elif any(a in cmd for a in PG_AUX) or "-D " in cmd:
                found.append(("postgres_shared", proc))
        return found

    def _read(self) -> dict[tuple[int, float], tuple[str, float]]:
        import psutil

        readings = {}
        for group, proc in self._processes():
            try:
                with proc.oneshot():
                    t = proc.cpu_times()
                    readings[(proc.pid, proc.create_time())] = (group, t.user + t.system)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return readings

    def begin(self) -> None:
        readings = self._read()
        with self._lock:
            self._start = {k: v[1] for k, v in readings.items()}
            self._last = dict(readings)
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True, name="cpu-meter")
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            readings = self._read()
            with self._lock:
                self._last.update(readings)

    def end(self) -> dict[str, float]:
        self._stop.set()
        if self._thread:
            self._thread.join()
        readings = self._read()
        with self._lock:
            self._last.update(readings)
            by_group: dict[str, float] = {}
            for key, (group, seconds) in self._last.items():
                by_group[group] = by_group.get(group, 0.0) + seconds - self._start.get(key, 0.0)
        return {g: round(s, 3) for g, s in sorted(by_group.items())}


def rss_mb(pids: list[int]) -> list[float]:
    import psutil

    out = []
    for pid in pids:
        try:
            out.append(round(psutil.Process(pid).memory_info().rss / 2**20, 1))
        except psutil.NoSuchProcess:
            continue
    return out
