"""SLA dashboard statistics: how long ``bpm_server.sla.stats.sla_stats`` takes on
a month of history, on PostgreSQL.

Builds the dedicated database ``bpm_bench_stats`` (dropped and created), runs
the real migrations, syncs the models, then bulk-inserts one running instance
and, referencing it, ``--completed`` stages completed within 30 days before
"now" (random stage, working time, on time or late) and ``--open`` open stages
(random due moment around "now"). Times the service call for the whole month
(``--runs`` times, reports median and max) and the CSV rendering of the result.
The cost is one indexed scan plus one business-calendar ``working_time_between``
per completed stage and per open breach.

    .venv/bin/python bench/sla_stats.py --completed 20000 --open 5000
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # also puts the repo root on sys.path

PG_DATABASE = "bpm_bench_stats"
NOW = datetime(2026, 3, 31, 8, 0, tzinfo=UTC)
STAGES = {"kickoff": "sales", "needs_research": "consulting", "solution_signoff": "sales",
          "resource_preparation": "it", "delivery": "delivery", "invoicing": "finance"}


def populate(app, completed: int, open_count: int, seed: int = 7) -> None:
    from sqlalchemy import insert

    from bpm_server.accounts.models import Account
    from bpm_server.database import db
    from bpm_server.instances.models import ProcessInstance
    from bpm_server.modeling.service import current_version, sync_from_disk
    from bpm_server.tasks.models import HumanTask

    rng = random.Random(seed)
    with app.app_context():
        rt = app.extensions["bpm"]
        sync_from_disk(db.session, rt.config.models_dir, rt.config.forms_dir, now=NOW)
        version = current_version(db.session, "account-project")
        db.session.add(Account(id="BENCH", name="Bench Ltd", tier="standard", created_at=NOW, updated_at=NOW))
        instance_id = str(uuid.uuid4())
        db.session.add(ProcessInstance(id=instance_id, process_model_id="account-project", version_id=version.id,
                                       account_id="BENCH", state="running", engine_state="{}", data={},
                                       steps_completed=0, created_at=NOW, updated_at=NOW, lock_version=1))
        db.session.flush()
        rows = []
        for i in range(completed + open_count):
            name = rng.choice(list(STAGES))
            created = NOW - timedelta(days=rng.uniform(1, 30))
            row = {"id": str(uuid.uuid4()), "process_instance_id": instance_id, "engine_task_id": str(uuid.uuid4()),
                   "name": name, "title": name.replace("_", " ").title(), "department_id": STAGES[name],
                   "account_id": "BENCH", "process_model_id": "account-project", "data": {}, "priority": 0,
                   "created_at": created, "row_version": 1}
            if i < completed:
                done = min(created + timedelta(hours=rng.uniform(1, 120)), NOW - timedelta(minutes=1))
                row.update(state="completed", completed_at=done,
                           due_at=created + timedelta(hours=rng.uniform(8, 80)), warn_at=None)
            else:
                due = NOW + timedelta(hours=rng.uniform(-72, 72))
                row.update(state="ready", completed_at=None, due_at=due, warn_at=due - timedelta(hours=6))
            rows.append(row)
        for start in range(0, len(rows), 5000):
            db.session.execute(insert(HumanTask), rows[start:start + 5000])
        db.session.commit()
        with db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE human_task")


def measure(app, runs: int) -> dict:
    from bpm_server.database import db
    from bpm_server.sla import stats

    with app.app_context():
        calendar = app.extensions["bpm"].calendar
        times, csv_times = [], []
        result = None
        for _ in range(runs):
            began = time.perf_counter()
            result = stats.sla_stats(db.session, calendar, start=NOW - timedelta(days=30), end=NOW, now=NOW)
            times.append(time.perf_counter() - began)
            began = time.perf_counter()
            stats.to_csv(result)
            csv_times.append(time.perf_counter() - began)
            db.session.rollback()
        return {"stats_ms_median": round(statistics.median(times) * 1000, 1),
                "stats_ms_max": round(max(times) * 1000, 1),
                "csv_ms_median": round(statistics.median(csv_times) * 1000, 1),
                "stages": len(result.stages), "open_breaches": len(result.open_breaches),
                "completed_counted": sum(s.completed for s in result.stages)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--completed", type=int, default=20000)
    parser.add_argument("--open", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from bpm_server.app import create_app
    from bpm_server.clock import SettableClock
    from bpm_server.config import Config

    url = _common.recreate_pg_database(PG_DATABASE)
    _common.migrate(url)
    app = create_app(Config(database_url=url, testing=True), clock=SettableClock(NOW))
    populate(app, args.completed, args.open)
    result = {"completed": args.completed, "open": args.open, **measure(app, args.runs)}
    print(result)


if __name__ == "__main__":
    main()
