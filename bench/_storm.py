"""The timer storm's environment: a fresh database and Redis, tasks with chosen
deadlines, and real ``bpm-server worker`` processes (see timer_storm.py)."""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

DB_NAME = "bpm_bench_timers"
DEFAULT_PG_ADMIN = "postgresql+psycopg://postgres@localhost:5432/postgres"
DEFAULT_REDIS = "redis://localhost:6379/14"
DEFAULT_QUEUE = "bpm-bench-timers"
ACCOUNT_ID = "BENCH-STD"
DEPARTMENTS = ("sales", "consulting", "it", "delivery", "finance")
STAFF_PER_DEPARTMENT = 3
ADVISORY_KEY = 0x42504D54  # bpm_server.sla.scheduler.ADVISORY_LOCK_KEY



def utcnow() -> datetime:
    return datetime.now(UTC)


def log(message: str) -> None:
    print(f"[{utcnow():%H:%M:%S}] {message}", flush=True)


# --------------------------------------------------------------------------- statistics


def percentile(values: list[float], p: float) -> float | None:
    """Linear interpolation between closest ranks (p in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "max": None, "min": None, "mean": None}
    return {"n": len(values), "min": round(min(values), 4), "p50": round(percentile(values, 50), 4),
            "p95": round(percentile(values, 95), 4), "max": round(max(values), 4),
            "mean": round(sum(values) / len(values), 4)}


# --------------------------------------------------------------------------- environment


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.admin_url = args.pg_admin_url
        self.db_url = self.admin_url.rsplit("/", 1)[0] + "/" + DB_NAME
        self.redis_url = args.redis_url
        self.queue = args.queue
        self.workers: list[subprocess.Popen] = []
        self.log_dir = Path(tempfile.mkdtemp(prefix="bpm-timer-storm-"))
        self.app = None
        self._worker_logs: list[Path] = []

    # ---- database and redis

    def _admin(self, sql: str) -> None:
        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(sql))
        engine.dispose()

    def _redis(self):
        from redis import Redis

        return Redis.from_url(self.redis_url)

    def reset(self) -> float:
        """Drop, create and migrate the bench database; flush the bench Redis db. Returns seconds."""
        started = time.perf_counter()
        self.dispose_app()
        self._admin(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        self._admin(f'CREATE DATABASE "{DB_NAME}"')
        self._redis().flushdb()
        from flask_migrate import upgrade

        from bpm_server.app import create_app
        from bpm_server.config import Config
        from bpm_server.database import db

        # No redis_url: the set-up app never enqueues; only the workers talk to rq.
        self.app = create_app(Config(database_url=self.db_url, queue_name=self.queue))
        with self.app.app_context():
            upgrade()
            db.session.remove()
        return time.perf_counter() - started

    def dispose_app(self) -> None:
        if self.app is not None:
            from bpm_server.database import db

            with self.app.app_context():
                db.session.remove()
                db.engine.dispose()
            self.app = None

    def drop(self) -> None:
        self.dispose_app()
        try:
            self._admin(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        except Exception as exc:  # cleanup must not hide the real outcome
            log(f"warning: could not drop {DB_NAME}: {exc}")
        try:
            self._redis().flushdb()
        except Exception as exc:
            log(f"warning: could not flush {self.redis_url}: {exc}")

    # ---- data

    def seed(self) -> dict[str, Any]:
        """Users per department (first staff member is the lead), one standard account, models and policies."""
        from bpm_server.accounts.service import upsert_account
        from bpm_server.database import db
        from bpm_server.identity.models import Department
        from bpm_server.identity.service import add_user
        from bpm_server.modeling.service import sync_from_disk
        from bpm_server.sla.policies import sync_file

        with self.app.app_context():
            rt = self.app.extensions["bpm"]
            now = rt.clock.now()
            session = db.session
            sync_from_disk(session, rt.config.models_dir, rt.config.forms_dir, now=now)
            sync_file(session, rt.config.models_dir / "escalation-policies.json", now=now)
            sales_ids = []
            for department in DEPARTMENTS:
                for i in range(1, STAFF_PER_DEPARTMENT + 1):
                    user = add_user(session, f"{department}{i}", department=department, now=now)
                    if i == 1:
                        session.get(Department, department).lead_user_id = user.id
                    elif department == "sales":
                        sales_ids.append(user.id)  # assignees; sales1 is the lead
            add_user(session, "owner", department="pmo", roles=["process_owner"], now=now)
            add_user(session, "auditor", department="audit", roles=["auditor"], now=now)
            add_user(session, "admin", department="it", roles=["admin"], now=now)
            upsert_account(session, ACCOUNT_ID, name="Bench Standard Ltd", tier="standard", owner="sales1", now=now)
            session.commit()
            session.remove()
        return {"assignee_ids": sales_ids}

    def start_instances(self, count: int, commit_every: int = 100) -> float:
        """Start ``count`` account projects through the real service (kickoff task, clock, timers)."""
        from bpm_server.database import db
        from bpm_server.runtime import start_instance

        started = time.perf_counter()
        with self.app.app_context():
            rt = self.app.extensions["bpm"]
            session = db.session
            signed_at = utcnow().isoformat()
            for i in range(count):
                start_instance(session, rt, process_model_id="account-project", account_id=ACCOUNT_ID,
                               data={"contract_no": f"BENCH-{i:06d}", "signed_at": signed_at},
                               now=rt.clock.now(), started_by="bench")
                if (i + 1) % commit_every == 0:
                    session.commit()
                    session.expunge_all()
            session.commit()
            session.remove()
        return time.perf_counter() - started

    def clone_instances(self, extra: int) -> float:
        """Copy the started instances row for row (new ids) until ``extra`` more exist."""
        if extra <= 0:
            return 0.0
        started = time.perf_counter()
        engine = create_engine(self.db_url)
        with engine.begin() as conn:
            sources = conn.scalar(text("SELECT count(*) FROM process_instance"))
            copies = math.ceil(extra / sources)

            def columns(table: str) -> list[str]:
                return list(conn.scalars(text(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = :t "
                    "AND table_schema = 'public' ORDER BY ordinal_position"), {"t": table}))

            def select_list(table: str, alias: str, replaced: dict[str, str]) -> tuple[str, str]:
                cols = columns(table)
                return (", ".join(f'"{c}"' for c in cols),
                        ", ".join(replaced.get(c, f'{alias}."{c}"') for c in cols))

            conn.execute(text(
                "CREATE TEMP TABLE bench_inst_map ON COMMIT DROP AS "
                "SELECT p.id AS src, gen_random_uuid()::text AS dst FROM process_instance p "
                "CROSS JOIN generate_series(1, :copies) g ORDER BY g, p.id LIMIT :extra"),
                {"copies": copies, "extra": extra})
            conn.execute(text(
                "CREATE TEMP TABLE bench_task_map ON COMMIT DROP AS "
                "SELECT t.id AS src, m.dst AS inst_dst, gen_random_uuid()::text AS dst "
                "FROM human_task t JOIN bench_inst_map m ON m.src = t.process_instance_id"))
            names, values = select_list("process_instance", "p", {"id": "m.dst"})
            conn.execute(text(f"INSERT INTO process_instance ({names}) SELECT {values} "
                              "FROM bench_inst_map m JOIN process_instance p ON p.id = m.src"))
            names, values = select_list("human_task", "t", {"id": "m.dst", "process_instance_id": "m.inst_dst"})
            conn.execute(text(f"INSERT INTO human_task ({names}) SELECT {values} "
                              "FROM bench_task_map m JOIN human_task t ON t.id = m.src"))
            names, values = select_list("sla_clock", "c", {"task_id": "m.dst"})
            conn.execute(text(f"INSERT INTO sla_clock ({names}) SELECT {values} "
                              "FROM bench_task_map m JOIN sla_clock c ON c.task_id = m.src"))
            names, values = select_list("timer", "x", {"id": "gen_random_uuid()::text",
                                                       "process_instance_id": "m.inst_dst", "task_id": "m.dst"})
            conn.execute(text(f"INSERT INTO timer ({names}) SELECT {values} "
                              "FROM bench_task_map m JOIN timer x ON x.task_id = m.src"))
            # Instance-level timers (BPMN timer events), if the model armed any.
            names, values = select_list("timer", "x", {"id": "gen_random_uuid()::text",
                                                       "process_instance_id": "m.dst"})
            conn.execute(text(f"INSERT INTO timer ({names}) SELECT {values} "
                              "FROM bench_inst_map m JOIN timer x ON x.process_instance_id = m.src "
                              "AND x.task_id IS NULL"))
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
        engine.dispose()
        return time.perf_counter() - started

    def place_deadlines(self, first: datetime, step: float, assignee_ids: list[str], limit: int | None = None
                        ) -> dict[str, datetime]:
        """Move kickoff breach timers to first + i * step; claim the tasks; cancel their warnings.
        Returns {task_id: due_at}."""
        engine = create_engine(self.db_url)
        now = utcnow()
        with engine.begin() as conn:
            conn.execute(text(
                "CREATE TEMP TABLE bench_deadline ON COMMIT DROP AS "
                "SELECT id AS task_id, (row_number() OVER (ORDER BY id)) - 1 AS rn FROM human_task "
                "WHERE name = 'kickoff' AND state IN ('ready', 'claimed') ORDER BY id LIMIT :limit"),
                {"limit": limit if limit is not None else 2**31 - 1})
            rows = conn.execute(text(
                "UPDATE timer t SET due_at = :first + make_interval(secs => d.rn * :step) "
                "FROM bench_deadline d WHERE t.task_id = d.task_id AND t.kind = 'sla_breach' "
                "AND t.fired_at IS NULL AND t.cancelled_at IS NULL RETURNING t.task_id, t.due_at"),
                {"first": first, "step": step}).all()
            conn.execute(text(
                "UPDATE timer t SET cancelled_at = :now FROM bench_deadline d WHERE t.task_id = d.task_id "
                "AND t.kind = 'sla_warning' AND t.fired_at IS NULL AND t.cancelled_at IS NULL"), {"now": now})
            conn.execute(text(
                "UPDATE human_task h SET due_at = :first + make_interval(secs => d.rn * :step), warn_at = NULL, "
                "state = 'claimed', claimed_at = :now, "
                "assignee_id = (CAST(:assignees AS text[]))[1 + CAST(d.rn % :n AS integer)] "
                "FROM bench_deadline d WHERE h.id = d.task_id"),
                {"first": first, "step": step, "now": now, "assignees": assignee_ids, "n": len(assignee_ids)})
        engine.dispose()
        return dict(rows)

    # ---- workers

    def worker_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BPM_")}
        env.update(BPM_DATABASE_URL=self.db_url, BPM_REDIS_URL=self.redis_url, BPM_QUEUE_NAME=self.queue,
                   BPM_TEST_CLOCK="0", PYTHONUNBUFFERED="1")
        return env

    def start_workers(self, count: int) -> float:
        """Start ``count`` ``bpm-server worker`` processes; return seconds until all are ready."""
        started = time.perf_counter()
        exe = ROOT / ".venv" / "bin" / "bpm-server"
        command = [str(exe), "worker"] if exe.exists() else [sys.executable, "-m", "bpm_server.cli", "worker"]
        for _i in range(count):
            path = self.log_dir / f"worker-{len(self._worker_logs) + 1}.log"
            self._worker_logs.append(path)
            with open(path, "wb") as handle:
                self.workers.append(subprocess.Popen(command, cwd=ROOT, env=self.worker_env(), stdout=handle,
                                                     stderr=subprocess.STDOUT, start_new_session=True))
        from rq import Queue, Worker

        redis = self._redis()
        queue = Queue(self.queue, connection=redis)
        engine = create_engine(self.db_url)
        deadline = time.monotonic() + 120
        try:
            while True:
                dead = [w.pid for w in self.workers if w.poll() is not None]
                if dead:
                    raise RuntimeError(f"worker(s) {dead} exited at start; logs in {self.log_dir}")
                registered = len(Worker.all(queue=queue))
                with engine.connect() as conn:
                    leader = conn.scalar(text(
                        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                        "WHERE l.locktype = 'advisory' AND l.granted AND l.objid = :k AND d.datname = :db"),
                        {"k": ADVISORY_KEY, "db": DB_NAME})
                if registered >= count and leader:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"workers not ready after 120 s (registered={registered}, pump={leader})")
                time.sleep(0.2)
        finally:
            engine.dispose()
        return time.perf_counter() - started

    def worker_cpu_seconds(self) -> float:
        """CPU used by our worker processes and the work horses they have reaped."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for worker in self.workers:
            try:
                fields = Path(f"/proc/{worker.pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += sum(int(f) for f in fields[11:15]) / tick  # utime, stime, cutime, cstime
        return total

    def _children(self, pid: int) -> list[int]:
        found = []
        try:
            for task in Path(f"/proc/{pid}/task").iterdir():
                found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
        return found

    def stop_workers(self) -> None:
        """Terminate our worker processes (and any work horse they forked), then kill what remains."""
        if not self.workers:
            return
        horses = [c for w in self.workers for c in self._children(w.pid)]
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        end = time.monotonic() + 10
        for worker in self.workers:
            try:
                worker.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(timeout=10)
        for pid in horses:  # horses put themselves in their own process group; end them by id
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.workers = []

    def worker_log_problems(self) -> dict[str, Any]:
        tracebacks, failed, excerpt = 0, 0, None
        for path in self._worker_logs:
            try:
                content = path.read_text(errors="replace")
            except OSError:
                continue
            tracebacks += content.count("Traceback (most recent call last)")
            failed += content.count("moving job to FailedJobRegistry") + content.count("failed (")
            if excerpt is None and "Traceback" in content:
                at = content.index("Traceback")
                excerpt = content[at:at + 2500]
        return {"tracebacks": tracebacks, "failed_job_lines": failed, "first_traceback": excerpt}


def build(bench: Bench, count: int, seed_instances: int) -> tuple[dict[str, Any], dict[str, float]]:
    timings = {"reset_and_migrate_s": bench.reset()}
    started = time.perf_counter()
    seeded = bench.seed()
    timings["seed_users_models_policies_s"] = time.perf_counter() - started
    real = min(count, seed_instances)
    timings["start_instances_s"] = bench.start_instances(real)
    timings["start_instances_count"] = real
    timings["clone_instances_s"] = bench.clone_instances(count - real)
    timings["clone_instances_count"] = count - real
    return seeded, {k: round(v, 2) for k, v in timings.items()}
