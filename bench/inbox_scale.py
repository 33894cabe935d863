"""Inbox latency at the issue's scale, and how it grows with the table (issue 6, benchmark 3).

Builds the PostgreSQL database ``bpm_bench_inbox_scale`` (dropped and created,
migrated, models synced), with 50 departments x 4 staff members and 2,000
accounts, then grows ``human_task`` through the sizes given by ``--sizes``
(default 10k, 100k, 1M rows). At every size a tenth of the rows are open (one
open task per running instance: ready, or claimed by a member of its
department with ``--claimed-fraction``; due within +-30 days of "now") and
the rest are the instances' completed history (9 per instance). Rows are
streamed with COPY (psycopg ``cursor.copy``), generated deterministically
from ``--seed``; then VACUUM ANALYZE.

At each size it times, for the department member who sees the most open tasks:

  * first page (20) sorted by due date;
  * the same with an account filter (the account with most of their tasks);
  * ``overdue=true``;

each through ``bpm_server.tasks.service.inbox`` (SQL + ORM, fresh session
state per call) and through ``GET /api/v1/tasks`` (Flask test client: auth,
query, serialization), ``--repetitions`` times after ``--warmup``. The largest
size also gets ``EXPLAIN (ANALYZE, BUFFERS)`` of the count and page queries,
as custom and as generic (prepared) plans, with the indexes they use.

Writes bench/results/inbox_scale-<stamp>.json and .png (p50/p95 against table
size) and copies the PNG to docs/img/inbox-scale.png.

    .venv/bin/python bench/inbox_scale.py                                  # 10k, 100k, 1M rows
    .venv/bin/python bench/inbox_scale.py --sizes 1000000 --repetitions 500
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _cluster
import _common
import inbox_query  # data model helpers, EXPLAIN and plan summaries

PG_DATABASE = "bpm_bench_inbox_scale"
NOW = inbox_query.NOW
README_PLOT = _common.REPO_ROOT / "docs" / "img" / "inbox-scale.png"
HISTORY = 9  # completed tasks per instance: open rows are a tenth of the table
TASK_COLUMNS = ("id", "process_instance_id", "engine_task_id", "name", "title", "department_id", "form_name",
                "instructions", "state", "priority", "assignee_id", "account_id", "process_model_id", "data",
                "submitted", "created_at", "due_at", "warn_at", "claimed_at", "completed_at", "history_seq",
                "completed_by_id", "row_version")
INSTANCE_COLUMNS = ("id", "process_model_id", "version_id", "account_id", "state", "engine_state", "data",
                    "steps_completed", "started_by", "created_at", "updated_at", "lock_version")
SCENARIOS = {"first_page_by_due": {}, "account_filter": None, "overdue": {"overdue": True},
             # Issue 15's inbox: the priority sort (its own indexes, migration 0017), a search
             # (ILIKE over the caller's halves), and the account-name sort (a join, then a top-N sort).
             "sort_priority": {"sort": "priority", "order": "desc"}, "search": {"q": "ht-00001"},
             "sort_account": {"sort": "account"}}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000],
                        help="total human_task rows at each measuring point (ascending)")
    parser.add_argument("--departments", type=int, default=50)
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--claimed-fraction", type=float, default=0.3)
    parser.add_argument("--repetitions", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--per-page", type=int, default=20)
    parser.add_argument("--seed", type=int, default=20260302)
    parser.add_argument("--no-readme-plot", action="store_true")
    parser.add_argument("--keep-db", action="store_true")
    return parser.parse_args()


# --------------------------------------------------------------------------- loading with COPY


def _ts(value) -> str:
    return value.isoformat()


class Rows:
    """Streams instances and tasks as COPY text lines; values never contain tabs, newlines or backslashes."""

    def __init__(self, args: argparse.Namespace, data: inbox_query.DataSet, version_id: str) -> None:
        self.args = args
        self.data = data
        self.version_id = version_id

    def _id(self, rng: random.Random) -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    def batch(self, first: int, count: int) -> tuple[list[str], list[str]]:
        rng = random.Random(f"{self.args.seed}-{first}")
        departments, members, accounts = self.data.departments, self.data.members, self.data.accounts
        instances, tasks = [], []
        for n in range(first, first + count):
            instance_id, account = self._id(rng), rng.choice(accounts)
            data = json.dumps({"contract_no": f"HT-{n:07d}", "account_id": account, "account_tier": "key",
                               "amount": rng.randrange(50_000, 5_000_000), "currency": "CNY",
                               "kickoff_minutes": "Kickoff held; scope, contacts and milestones agreed."})
            created = NOW - timedelta(days=rng.uniform(31, 120))
            instances.append("\t".join((instance_id, inbox_query.MODEL_ID, self.version_id, account, "running", "{}",
                                        data, str(HISTORY), "erp", _ts(created), _ts(NOW - timedelta(days=1)), "2")))
            for seq in range(1, HISTORY + 1):
                department = rng.choice(departments)
                member = rng.choice(members[department])
                stage = inbox_query.STAGES[(seq - 1) % len(inbox_query.STAGES)]
                t_created = created + timedelta(days=seq * 3)
                done = t_created + timedelta(hours=rng.uniform(1, 60))
                tasks.append(self._task(rng, instance_id, account, department, stage, "completed", data, t_created,
                                        done + timedelta(days=2), member, t_created + timedelta(minutes=30), done,
                                        member, str(seq), "3"))
            department = rng.choice(departments)
            stage = rng.choice(inbox_query.STAGES)
            due = NOW + timedelta(seconds=rng.uniform(-30 * 86400, 30 * 86400))
            t_created = min(due, NOW) - timedelta(days=rng.uniform(1, 5))
            if rng.random() < self.args.claimed_fraction:
                member = rng.choice(members[department])
                tasks.append(self._task(rng, instance_id, account, department, stage, "claimed", data, t_created,
                                        due, member, t_created + timedelta(hours=2), None, None, "\\N", "2"))
            else:
                tasks.append(self._task(rng, instance_id, account, department, stage, "ready", data, t_created,
                                        due, None, None, None, None, "\\N", "1"))
        return instances, tasks

    def _task(self, rng, instance_id, account, department, stage, state, data, created, due, assignee, claimed,
              completed, completed_by, seq, row_version) -> str:
        null = "\\N"
        submitted = '{"note": "done", "document_url": "https://docs.example.com/x"}' if completed else null
        return "\t".join((
            self._id(rng), instance_id, self._id(rng), stage, inbox_query.STAGE_TITLES[stage], department,
            f"account-project/{stage}.json", "Fill in the form and attach the document links the customer signed off.",
            state, "0", assignee or null, account, inbox_query.MODEL_ID, data, submitted, _ts(created), _ts(due),
            _ts(due - timedelta(hours=8)), _ts(claimed) if claimed else null, _ts(completed) if completed else null,
            seq, completed_by or null, row_version))


def copy_rows(url: str, rows: Rows, first: int, count: int, chunk: int = 5000) -> dict[str, float]:
    import psycopg

    t0 = time.perf_counter()
    generate = 0.0
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        with conn.cursor() as cur:
            for start in range(first, first + count, chunk):
                g0 = time.perf_counter()
                instances, tasks = rows.batch(start, min(chunk, first + count - start))
                generate += time.perf_counter() - g0
                with cur.copy(f"COPY process_instance ({', '.join(INSTANCE_COLUMNS)}) FROM STDIN") as cp:
                    cp.write("\n".join(instances) + "\n")
                with cur.copy(f"COPY human_task ({', '.join(TASK_COLUMNS)}) FROM STDIN") as cp:
                    cp.write("\n".join(tasks) + "\n")
        conn.commit()
        load = time.perf_counter() - t0
        conn.autocommit = True
        v0 = time.perf_counter()
        conn.execute("VACUUM ANALYZE process_instance")
        conn.execute("VACUUM ANALYZE human_task")
        vacuum = time.perf_counter() - v0
    return {"load_seconds": round(load, 2), "of_which_generating_rows": round(generate, 2),
            "vacuum_analyze_seconds": round(vacuum, 2)}


# --------------------------------------------------------------------------- measuring


def subject(engine) -> dict[str, Any]:
    """The staff member who sees the most open tasks, and the account most of them belong to."""
    from sqlalchemy import text

    sql = """
        SELECT u.id, u.username, u.department_id,
               (SELECT count(*) FROM human_task t WHERE (t.department_id = u.department_id AND t.state = 'ready')
                                                      OR (t.assignee_id = u.id AND t.state IN ('ready', 'claimed')))
        FROM user_account u ORDER BY 4 DESC, 2 LIMIT 1"""
    with engine.connect() as conn:
        user_id, username, department, visible = conn.execute(text(sql)).one()
        account = conn.execute(text("""
            SELECT account_id FROM human_task t WHERE (t.department_id = :d AND t.state = 'ready')
                                                   OR (t.assignee_id = :u AND t.state IN ('ready', 'claimed'))
            GROUP BY account_id ORDER BY count(*) DESC, account_id LIMIT 1"""),
        {"d": department, "u": user_id}).scalar()
    return {"user_id": user_id, "username": username, "department": department, "visible_open_tasks": visible,
            "account_filter_account": account}


def measure(app, who: dict[str, Any], args: argparse.Namespace, plans: bool) -> dict[str, Any]:
    from bpm_server.database import db
    from bpm_server.identity.models import User
    from bpm_server.identity.service import issue_token
    from bpm_server.tasks.service import InboxFilter, inbox

    with app.app_context():
        engine = db.engine
        token = issue_token(db.session, db.session.get(User, who["user_id"]), now=NOW)
        db.session.commit()
        db.session.remove()
    counter = _common.StatementCounter(engine)
    out: dict[str, Any] = {}
    try:
        for name, kwargs in SCENARIOS.items():
            kwargs = {"account_id": who["account_filter_account"]} if kwargs is None else kwargs
            filters = InboxFilter(per_page=args.per_page, **kwargs)
            entry: dict[str, Any] = {"filter": kwargs}
            with app.app_context():
                session = db.session
                samples, cpu = [], 0.0
                for rep in range(args.warmup + args.repetitions):
                    session.rollback()
                    session.expunge_all()
                    user = session.get(User, who["user_id"])
                    session.connection()
                    t0, c0 = time.perf_counter(), time.process_time()
                    rows, total = inbox(session, user, filters, NOW)
                    if rep >= args.warmup:
                        samples.append(time.perf_counter() - t0)
                        cpu += time.process_time() - c0
                entry["service"] = {**_common.summary_ms(samples), "total": total, "rows": len(rows),
                                    "python_cpu_ms_mean": round(1000 * cpu / args.repetitions, 3)}
                if plans:
                    session.rollback()
                    session.expunge_all()
                    user = session.get(User, who["user_id"])
                    counter.reset(keep=True)
                    inbox(session, user, filters, NOW)
                    statements = list(counter.statements)
                    counter.reset(keep=False)
                    session.rollback()
                session.remove()
            if plans:
                entry["plans"] = {label: inbox_query.explain(engine, sql, params)
                                  for label, (sql, params) in zip(("count", "page"), statements, strict=False)}
            client = app.test_client()
            query = {"per_page": args.per_page, **{k: ("true" if v is True else v) for k, v in kwargs.items()}}
            url = "/api/v1/tasks?" + urlencode(query)
            samples, cpu = [], 0.0
            for rep in range(args.warmup + args.repetitions):
                t0, c0 = time.perf_counter(), time.process_time()
                response = client.get(url, headers={"Authorization": f"Bearer {token}"})
                if rep >= args.warmup:
                    samples.append(time.perf_counter() - t0)
                    cpu += time.process_time() - c0
                if response.status_code != 200:
                    raise RuntimeError(f"GET {url}: HTTP {response.status_code}")
            entry["http"] = {**_common.summary_ms(samples), "url": url, "total": response.get_json()["total"],
                             "python_cpu_ms_mean": round(1000 * cpu / args.repetitions, 3)}
            out[name] = entry
    finally:
        counter.close()
    return out


def plot(points: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.4), dpi=90)
    x = [p["rows"] for p in points]
    for name, colour in zip(SCENARIOS, ("C0", "C1", "C2", "C3", "C4", "C5"), strict=False):
        ax.plot(x, [p["scenarios"][name]["http"]["p95_ms"] for p in points], "o-", color=colour,
                label=f"{name} p95 (HTTP)")
        ax.plot(x, [p["scenarios"][name]["service"]["p50_ms"] for p in points], "s:", color=colour,
                label=f"{name} p50 (query)")
    ax.axhline(30, color="grey", linestyle="--", linewidth=1, label="target p95 30 ms")
    ax.set_xscale("log")
    ax.set_xlabel("human_task rows (10 % open)")
    ax.set_ylabel("ms")
    top = max(p["scenarios"][n]["http"]["p95_ms"] for p in points for n in SCENARIOS)
    ax.set_ylim(0, max(top, 30) * 1.6)
    ax.legend(fontsize=6, ncol=2, loc="upper left")
    ax.set_title("Inbox latency against table size (PostgreSQL, 50 departments)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> int:
    args = parse_args()
    url = _common.recreate_pg_database(PG_DATABASE)
    _common.migrate(url)
    app = inbox_query.build_app(url)
    from bpm_server.database import db

    version_id = inbox_query.sync_models(app)
    data = inbox_query.DataSet(argparse.Namespace(**{**vars(args), "open_tasks": 0, "completed_factor": 0}),
                               version_id)
    with app.app_context():
        with db.engine.begin() as conn:
            from bpm_server.accounts.models import Account
            from bpm_server.identity.models import Department, User

            conn.execute(Department.__table__.insert(), data.department_rows())
            conn.execute(User.__table__.insert(), data.user_rows())
            conn.execute(Account.__table__.insert(), data.account_rows())
        engine = db.engine
        db_version = _common.server_version(engine)
    rows = Rows(args, data, version_id)
    points = []
    loaded_instances = 0
    try:
        for i, size in enumerate(sorted(args.sizes)):
            instances = size // (HISTORY + 1)
            print(f"... loading to {size:,} task rows ({instances:,} open)", flush=True)
            timing = copy_rows(url, rows, loaded_instances, instances - loaded_instances)
            loaded_instances = instances
            who = subject(engine)
            largest = i == len(args.sizes) - 1
            print(f"... measuring at {size:,} rows", flush=True)
            scenarios = measure(app, who, args, plans=largest)
            points.append({"rows": size, "open_tasks": instances, "load": timing,
                           "subject": {k: v for k, v in who.items() if k != "user_id"},
                           "load_average": [round(x, 2) for x in __import__("os").getloadavg()],
                           "scenarios": scenarios})
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    if not args.keep_db:
        _cluster.drop_pg_database(PG_DATABASE)

    payload = {"parameters": {**dict(vars(args).items()), "database": PG_DATABASE,
                              "database_server": db_version, "history_per_instance": HISTORY, "now": NOW.isoformat(),
                              "service_timing": "inbox() only; session reset and connection checked out first",
                              "http_timing": "GET /api/v1/tasks through the Flask test client (no sockets)"},
               "points": points}
    path = _common.write_result("inbox_scale", payload)
    png = path.with_suffix(".png")
    plot(points, png)
    if not args.no_readme_plot:
        README_PLOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, README_PLOT)

    table = []
    for p in points:
        for name, e in p["scenarios"].items():
            table.append((f"{p['rows']:,}", name, e["service"]["total"], e["service"]["p50_ms"], e["service"]["p95_ms"],
                          e["service"]["python_cpu_ms_mean"], e["http"]["p50_ms"], e["http"]["p95_ms"],
                          e["http"]["python_cpu_ms_mean"], p["load_average"][0]))
    print(_common.table(["rows", "scenario", "total", "query p50", "query p95", "query CPU", "HTTP p50", "HTTP p95",
                         "HTTP CPU", "load"], table))
    last = points[-1]
    print(f"\nsubject at {last['rows']:,} rows: {last['subject']}; load {last['load']}")
    plan_rows = []
    for name, e in last["scenarios"].items():
        for label, plan in e.get("plans", {}).items():
            for kind in ("custom", "generic"):
                s = plan[f"{kind}_plan"]
                plan_rows.append((f"{name} / {label} / {kind}", ",".join(s["indexes_used"]) or "-",
                                  ", ".join(f"{x['relation']}({x['rows_out']})" for x in s["seq_scans"]) or "-",
                                  s["execution_ms"]))
    print(_common.table(["query / plan", "indexes", "seq scans (rows)", "exec ms"], plan_rows))
    for name, e in last["scenarios"].items():
        for label, plan in e.get("plans", {}).items():
            print(f"\n=== {name}: {label} query at {last['rows']:,} rows, custom plan\n{plan['custom_plan_text']}")
    print(f"\nresult: {path.relative_to(_common.REPO_ROOT)}  plot: {png.relative_to(_common.REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
