"""Inbox query latency on a large PostgreSQL data set, plus its query plans.

Builds the dedicated database ``bpm_bench_inbox`` (dropped and created), runs
the real migrations and syncs the ``account-project`` model normally, then
bulk-inserts rows with SQLAlchemy Core executemany: departments, users (a few
staff members per department), accounts, one running process instance per open
task, the requested number of OPEN human tasks (ready or claimed, due within
+-30 days of "now", random department and account) and 5x as many completed
ones. Runs ANALYZE, then times, for the member of a department who sees the
most tasks:

  * the service function ``bpm_server.tasks.service.inbox`` in an app context;
  * ``GET /api/v1/tasks`` through the Flask test client (auth, serialization, commit);

for three scenarios: the first page by due date, an account filter, overdue=true.
It captures the SQL the inbox emits (``before_cursor_execute``) and records
``EXPLAIN (ANALYZE, BUFFERS)`` for it, both as a custom plan (literal values)
and as the generic plan a prepared statement may switch to (psycopg prepares
a statement after 5 executions on a connection), and whether the plans use
``ix_human_task_department_inbox`` / ``ix_human_task_assignee_inbox``.

    .venv/bin/python bench/inbox_query.py --open-tasks 10000 --departments 50 --accounts 2000
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import re
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # also puts the repo root on sys.path

PG_DATABASE = "bpm_bench_inbox"
NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
MODEL_ID = "account-project"
INDEXES = ("ix_human_task_department_inbox", "ix_human_task_assignee_inbox")
STAGE_TITLES = {"kickoff": "Project kickoff", "needs_research": "Needs research",
                "solution_signoff": "Solution sign-off", "resource_preparation": "Resource preparation",
                "delivery": "Project delivery", "invoicing": "Invoicing"}
STAGES = list(STAGE_TITLES)
TIERS = (("strategic", 0.05), ("key", 0.25), ("standard", 0.70))
BATCH = 5000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--open-tasks", type=int, default=10000, help="open (ready + claimed) tasks (default 10000)")
    parser.add_argument("--departments", type=int, default=50, help="departments (default 50)")
    parser.add_argument("--accounts", type=int, default=2000, help="accounts (default 2000)")
    parser.add_argument("--members", type=int, default=4, help="staff members per department (default 4)")
    parser.add_argument("--claimed-fraction", type=float, default=0.3,
                        help="share of open tasks that are claimed (default 0.3)")
    parser.add_argument("--completed-factor", type=int, default=5,
                        help="completed tasks per open task (default 5)")
    parser.add_argument("--repetitions", type=int, default=200, help="timed repetitions per scenario (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed repetitions first (default 20)")
    parser.add_argument("--per-page", type=int, default=20, help="inbox page size (default 20, the API default)")
    parser.add_argument("--seed", type=int, default=20260302)
    parser.add_argument("--quiet", action="store_true", help="do not print the plans")
    return parser.parse_args()


# --------------------------------------------------------------------------- data set


def build_app(url: str):
    from bpm_server.app import create_app
    from bpm_server.clock import SettableClock
    from bpm_server.config import PROJECT_ROOT, Config

    config = Config(database_url=url, testing=True, secret_key="bench-secret",
                    models_dir=PROJECT_ROOT / "process_models", forms_dir=PROJECT_ROOT / "forms",
                    queue_name="bpm-bench")
    return create_app(config, clock=SettableClock(NOW))


def sync_models(app) -> str:
    """Sync process_models/ and forms/ the normal way; returns the model's current version id."""
    from bpm_server.database import db
    from bpm_server.modeling.models import ProcessModel
    from bpm_server.modeling.service import sync_from_disk
    from bpm_server.sla.policies import sync_file

    with app.app_context():
        rt = app.extensions["bpm"]
        sync_from_disk(db.session, rt.config.models_dir, rt.config.forms_dir, now=NOW)
        sync_file(db.session, rt.config.models_dir / "escalation-policies.json", now=NOW)
        db.session.commit()
        version_id = db.session.get(ProcessModel, MODEL_ID).current_version_id
    return version_id


class DataSet:
    """Generates the rows (deterministically from the seed) and remembers what the subject can see."""

    def __init__(self, args: argparse.Namespace, version_id: str) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.version_id = version_id
        self.departments = [f"dept-{i:03d}" for i in range(args.departments)]
        self.members: dict[str, list[str]] = {}
        self.usernames: dict[str, str] = {}
        self.accounts: list[str] = [f"ACC-{i:05d}" for i in range(args.accounts)]
        self.open_tasks: list[dict[str, Any]] = []  # light copies for choosing the subject
        self.counts: dict[str, int] = {}

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def department_rows(self) -> list[dict[str, Any]]:
        return [{"id": d, "name": f"Department {d[5:]}", "lead_user_id": None} for d in self.departments]

    def user_rows(self) -> list[dict[str, Any]]:
        rows = []
        for department in self.departments:
            self.members[department] = []
            for j in range(self.args.members):
                user_id = self._uuid()
                username = f"{department}-m{j}"
                self.members[department].append(user_id)
                self.usernames[user_id] = username
                rows.append({"id": user_id, "username": username, "display_name": f"Member {j} of {department}",
                             "department_id": department, "roles": ["staff"], "password_hash": None,
                             "active": True, "created_at": NOW - timedelta(days=400)})
        return rows

    def account_rows(self) -> list[dict[str, Any]]:
        tiers, weights = zip(*TIERS, strict=False)
        rows = []
        for account in self.accounts:
            owner_department = self.rng.choice(self.departments)
            rows.append({"id": account, "name": f"Customer {account[4:]} Co., Ltd.",
                         "tier": self.rng.choices(tiers, weights)[0],
                         "owner": self.usernames[self.members[owner_department][0]], "executive_sponsor": None,
                         "created_at": NOW - timedelta(days=300), "updated_at": NOW - timedelta(days=30)})
        return rows

    def _data(self, instance_no: int, account: str) -> dict[str, Any]:
        return {"contract_no": f"HT-{instance_no:06d}", "signed_at": "2026-01-15T09:00:00+08:00",
                "amount": self.rng.randrange(50_000, 5_000_000), "currency": "CNY", "account_id": account,
                "account_tier": "key", "account_name": f"Customer {account[4:]} Co., Ltd.",
                "kickoff_minutes": "Kickoff held; scope, contacts and milestones agreed with the customer."}

    def instances_and_tasks(self) -> Iterable[tuple[str, list[dict[str, Any]]]]:
        """Yields ("process_instance" | "human_task", batch of rows); instances come first."""
        args = self.args
        n_open = args.open_tasks
        n_completed = args.open_tasks * args.completed_factor
        instance_accounts = [self.rng.choice(self.accounts) for _ in range(n_open)]
        instance_ids = [self._uuid() for _ in range(n_open)]
        completed_per_instance = Counter(self.rng.randrange(n_open) for _ in range(n_completed))

        batch: list[dict[str, Any]] = []
        for i, (instance_id, account) in enumerate(zip(instance_ids, instance_accounts, strict=False)):
            created = NOW - timedelta(days=self.rng.uniform(31, 120))
            batch.append({"id": instance_id, "process_model_id": MODEL_ID, "version_id": self.version_id,
                          "account_id": account, "state": "running", "engine_state": "{}",
                          "data": self._data(i, account), "error": None,
                          "steps_completed": completed_per_instance[i], "started_by": "erp", "created_at": created,
                          "updated_at": NOW - timedelta(days=1), "completed_at": None, "lock_version": 1})
            if len(batch) >= BATCH:
                yield "process_instance", batch
                batch = []
        if batch:
            yield "process_instance", batch
            batch = []

        states = Counter()
        for i, (instance_id, account) in enumerate(zip(instance_ids, instance_accounts, strict=False)):
            data = self._data(i, account)
            # The instance's history: completed stages, in the past.
            for seq in range(1, completed_per_instance[i] + 1):
                department = self.rng.choice(self.departments)
                member = self.rng.choice(self.members[department])
                stage = STAGES[(seq - 1) % len(STAGES)]
                created = NOW - timedelta(days=self.rng.uniform(10, 90))
                completed = created + timedelta(hours=self.rng.uniform(1, 200))
                batch.append(self._task(instance_id, account, department, stage, "completed", data, created,
                                        due=created + timedelta(days=self.rng.uniform(1, 10)), assignee=member,
                                        claimed=created + timedelta(minutes=30), completed=completed,
                                        completed_by=member, seq=seq, row_version=3))
                states["completed"] += 1
            # The one open task, ready or claimed by a member of its department.
            department = self.rng.choice(self.departments)
            stage = self.rng.choice(STAGES)
            due = NOW + timedelta(seconds=self.rng.uniform(-30 * 86400, 30 * 86400))
            created = min(due, NOW) - timedelta(days=self.rng.uniform(1, 5))
            if self.rng.random() < args.claimed_fraction:
                member = self.rng.choice(self.members[department])
                row = self._task(instance_id, account, department, stage, "claimed", data, created, due=due,
                                 assignee=member, claimed=created + timedelta(hours=2), row_version=2)
            else:
                row = self._task(instance_id, account, department, stage, "ready", data, created, due=due)
            states[row["state"]] += 1
            batch.append(row)
            self.open_tasks.append({"department_id": department, "state": row["state"],
                                    "assignee_id": row["assignee_id"], "account_id": account, "due_at": due})
            if len(batch) >= BATCH:
                yield "human_task", batch
                batch = []
        if batch:
            yield "human_task", batch
        self.counts = dict(states)

    def _task(self, instance_id: str, account: str, department: str, stage: str, state: str,
              data: dict[str, Any], created: datetime, *, due: datetime, assignee: str | None = None,
              claimed: datetime | None = None, completed: datetime | None = None,
              completed_by: str | None = None, seq: int | None = None, row_version: int = 1) -> dict[str, Any]:
        return {"id": self._uuid(), "process_instance_id": instance_id, "engine_task_id": self._uuid(),
                "name": stage, "title": STAGE_TITLES[stage], "department_id": department, "lane": None,
                "form_name": f"account-project/{stage}.json",
                "instructions": "Fill in the form and attach the document links the customer signed off.",
                "state": state, "priority": 0, "assignee_id": assignee, "account_id": account,
                "process_model_id": MODEL_ID, "data": data,
                "submitted": {"note": "done", "document_url": "https://docs.example.com/x"} if completed else None,
                "created_at": created, "due_at": due, "warn_at": due - timedelta(hours=8), "claimed_at": claimed,
                "completed_at": completed, "history_seq": seq, "completed_by_id": completed_by,
                "row_version": row_version}

    def visible_to(self, user_id: str, department: str) -> list[dict[str, Any]]:
        return [t for t in self.open_tasks
                if t["assignee_id"] == user_id or (t["department_id"] == department and t["state"] == "ready")]

    def subject(self) -> tuple[str, str]:
        """The department member who sees the most open tasks (ties broken by name)."""
        visible = Counter()
        for t in self.open_tasks:
            if t["state"] == "ready":
                for member in self.members[t["department_id"]]:
                    visible[member] += 1
            elif t["assignee_id"]:
                visible[t["assignee_id"]] += 1
        user_id = max(visible, key=lambda u: (visible[u], self.usernames[u]))
        department = next(d for d, ms in self.members.items() if user_id in ms)
        return user_id, department


def load(app, data: DataSet) -> dict[str, Any]:
    from bpm_server.accounts.models import Account
    from bpm_server.database import db
    from bpm_server.identity.models import Department, User
    from bpm_server.instances.models import ProcessInstance
    from bpm_server.tasks.models import HumanTask

    tables = {"process_instance": ProcessInstance.__table__, "human_task": HumanTask.__table__}
    timings: dict[str, float] = defaultdict(float)
    rows_inserted: Counter = Counter()
    with app.app_context():
        engine = db.engine
        t0 = time.perf_counter()
        with engine.begin() as conn:
            for name, table, rows in (("department", Department.__table__, data.department_rows()),
                                      ("user_account", User.__table__, data.user_rows()),
                                      ("account", Account.__table__, data.account_rows())):
                start = time.perf_counter()
                conn.execute(table.insert(), rows)
                timings[name] += time.perf_counter() - start
                rows_inserted[name] += len(rows)
            conn.execute(Department.__table__.update().values(
                lead_user_id=User.__table__.c.id).where(
                User.__table__.c.department_id == Department.__table__.c.id,
                User.__table__.c.username == Department.__table__.c.id + "-m0"))
            for name, rows in data.instances_and_tasks():
                start = time.perf_counter()
                conn.execute(tables[name].insert(), rows)
                timings[name] += time.perf_counter() - start
                rows_inserted[name] += len(rows)
        insert_seconds = time.perf_counter() - t0
        start = time.perf_counter()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
        analyze_seconds = time.perf_counter() - start
    return {"rows": dict(rows_inserted), "insert_seconds": round(insert_seconds, 2),
            "insert_seconds_by_table": {k: round(v, 2) for k, v in timings.items()},
            "analyze_seconds": round(analyze_seconds, 2), "open_task_states": data.counts}


# --------------------------------------------------------------------------- plans


def _walk(node: dict[str, Any]) -> Iterable[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _walk(child)


def plan_summary(plan_json: list[dict[str, Any]]) -> dict[str, Any]:
    root = plan_json[0]["Plan"]
    nodes = list(_walk(root))
    indexes = sorted({n["Index Name"] for n in nodes if n.get("Index Name")})
    seq_scans = [{"relation": n.get("Relation Name"),
                  "rows_out": n.get("Actual Rows", 0) * n.get("Actual Loops", 1),
                  "rows_removed_by_filter": n.get("Rows Removed by Filter", 0) * n.get("Actual Loops", 1)}
                 for n in nodes if n["Node Type"] == "Seq Scan"]
    sorts = []
    for n in nodes:
        if n["Node Type"] in ("Sort", "Incremental Sort"):
            child = (n.get("Plans") or [{}])[0]
            sorts.append({"node": n["Node Type"], "key": n.get("Sort Key"), "method": n.get("Sort Method"),
                          "rows_in": child.get("Actual Rows", 0) * child.get("Actual Loops", 1),
                          "space_kb": n.get("Sort Space Used")})
    return {
        "execution_ms": plan_json[0].get("Execution Time"),
        "planning_ms": plan_json[0].get("Planning Time"),
        "node_types": [n["Node Type"] for n in nodes],
        "indexes_used": indexes,
        "uses_department_inbox_index": INDEXES[0] in indexes,
        "uses_assignee_inbox_index": INDEXES[1] in indexes,
        "seq_scans": seq_scans,
        "sorts": sorts,
        "shared_hit_blocks": root.get("Shared Hit Blocks"),
        "shared_read_blocks": root.get("Shared Read Blocks"),
    }


def explain(engine, statement: str, parameters: Any) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) of a captured statement: the custom plan for these values,
    and the generic plan (what a prepared statement may use once PostgreSQL switches to it)."""
    import psycopg

    raw = engine.raw_connection()
    try:
        dbapi = raw.driver_connection
        literal = psycopg.ClientCursor(dbapi).mogrify(statement, parameters)
        out: dict[str, Any] = {"sql": literal}
        with dbapi.cursor() as cur:
            cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + literal)
            out["custom_plan_text"] = "\n".join(r[0] for r in cur.fetchall())
            cur.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + literal)
            out["custom_plan"] = plan_summary(_json(cur.fetchone()[0]))

            # Generic plan: PREPARE with $n placeholders, force the generic plan, EXECUTE with the values.
            names: list[str] = []

            def number(match: re.Match) -> str:
                if match.group(1) not in names:
                    names.append(match.group(1))
                return f"${names.index(match.group(1)) + 1}"

            if isinstance(parameters, dict):
                numbered = re.sub(r"%\((\w+)\)s", number, statement)
                values = [parameters[n] for n in names]
            else:
                counter = iter(range(1, 10_000))
                numbered = re.sub(r"%s", lambda m: f"${next(counter)}", statement)
                values = list(parameters or [])
            client = psycopg.ClientCursor(dbapi)
            args = ", ".join(client.mogrify("%s", [v]) for v in values)
            cur.execute("SET plan_cache_mode = force_generic_plan")
            cur.execute(f"PREPARE bench_inbox AS {numbered}")
            execute = f"EXECUTE bench_inbox({args})" if values else "EXECUTE bench_inbox"
            cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + execute)
            out["generic_plan_text"] = "\n".join(r[0] for r in cur.fetchall())
            cur.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + execute)
            out["generic_plan"] = plan_summary(_json(cur.fetchone()[0]))
            cur.execute("DEALLOCATE bench_inbox")
            cur.execute("RESET plan_cache_mode")
        dbapi.rollback()
    finally:
        raw.close()
    return out


def _access(summary: dict[str, Any]) -> tuple:
    """How a plan reaches human_task: its indexes, seq scans and the sorts (joins to users ignored)."""
    return ([i for i in summary["indexes_used"] if i.startswith(("ix_human_task", "pk_human_task"))],
            [x["relation"] for x in summary["seq_scans"] if x["relation"] == "human_task"],
            [(x["node"], x["method"]) for x in summary["sorts"]])


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


# --------------------------------------------------------------------------- measuring


def measure(args: argparse.Namespace, app, data: DataSet) -> dict[str, Any]:
    from bpm_server.database import db
    from bpm_server.identity.models import User
    from bpm_server.identity.service import issue_token
    from bpm_server.tasks.service import InboxFilter, inbox

    user_id, department = data.subject()
    visible = data.visible_to(user_id, department)
    account_counts = Counter(t["account_id"] for t in visible)
    account = max(account_counts, key=lambda a: (account_counts[a], a))
    expected = {"first_page_by_due": len(visible), "account_filter": account_counts[account],
                "overdue": sum(1 for t in visible if t["due_at"] < NOW)}
    scenarios = {
        "first_page_by_due": ({}, {}),
        "account_filter": ({"account_id": account}, {"account_id": account}),
        "overdue": ({"overdue": True}, {"overdue": "true"}),
    }
    results: dict[str, Any] = {"subject": {
        "username": data.usernames[user_id], "department": department,
        "visible_open_tasks": len(visible), "of_which_claimed_by_subject": sum(1 for t in visible
                                                                               if t["assignee_id"] == user_id),
        "department_ready_tasks": sum(1 for t in data.open_tasks
                                      if t["department_id"] == department and t["state"] == "ready"),
        "account_filter_account": account}, "scenarios": {}}

    with app.app_context():
        engine = db.engine
        token = issue_token(db.session, db.session.get(User, user_id), now=NOW)
        db.session.commit()
        db.session.remove()
    counter = _common.StatementCounter(engine)
    try:
        for name, (filter_kwargs, query) in scenarios.items():
            filters = InboxFilter(per_page=args.per_page, **filter_kwargs)
            entry: dict[str, Any] = {"filter": filter_kwargs, "expected_total": expected[name]}

            with app.app_context():
                session = db.session
                # Service function: fresh session state per repetition, connection already checked out.
                samples = []
                for rep in range(args.warmup + args.repetitions):
                    session.rollback()
                    session.expunge_all()
                    user = session.get(User, user_id)
                    session.connection()
                    t0 = time.perf_counter()
                    rows, total = inbox(session, user, filters, NOW)
                    elapsed = time.perf_counter() - t0
                    if rep >= args.warmup:
                        samples.append(elapsed)
                entry["service"] = {**_common.summary_ms(samples), "total": total, "rows_returned": len(rows)}

                # The SQL it emits (one more call, recorded).
                session.rollback()
                session.expunge_all()
                user = session.get(User, user_id)
                counter.reset(keep=True)
                inbox(session, user, filters, NOW)
                statements = list(counter.statements)
                counter.reset(keep=False)
                session.rollback()
                session.remove()
            entry["service_sql_statements"] = len(statements)
            entry["plans"] = {label: explain(engine, sql, params)
                              for label, (sql, params) in zip(("count", "page"), statements, strict=False)}

            # Through HTTP, outside any app context, so each request gets its own (as in production).
            client = app.test_client()
            headers = {"Authorization": f"Bearer {token}"}
            url = "/api/v1/tasks?" + urlencode({"per_page": args.per_page, **query})
            samples = []
            for rep in range(args.warmup + args.repetitions):
                before = counter.count
                t0 = time.perf_counter()
                response = client.get(url, headers=headers)
                elapsed = time.perf_counter() - t0
                statements_per_call = counter.count - before
                if response.status_code != 200:
                    raise RuntimeError(f"GET {url}: HTTP {response.status_code}: "
                                       f"{response.get_data(as_text=True)[:300]}")
                if rep >= args.warmup:
                    samples.append(elapsed)
            body = response.get_json()
            entry["http"] = {**_common.summary_ms(samples), "url": url, "total": body["total"],
                             "rows_returned": len(body["items"]), "sql_statements_per_call": statements_per_call}
            results["scenarios"][name] = entry
    finally:
        counter.close()
    return results


def main() -> int:
    args = parse_args()
    url = _common.recreate_pg_database(PG_DATABASE)
    _common.migrate(url)
    app = build_app(url)
    logging.getLogger().setLevel(logging.WARNING)
    from bpm_server.database import db

    try:
        version_id = sync_models(app)
        data = DataSet(args, version_id)
        loaded = load(app, data)
        with app.app_context():
            db_version = _common.server_version(db.engine)
        results = measure(args, app, data)
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()

    payload = {
        "parameters": {"database": PG_DATABASE, "database_server": db_version, "open_tasks": args.open_tasks,
                       "completed_tasks": args.open_tasks * args.completed_factor, "departments": args.departments,
                       "members_per_department": args.members, "accounts": args.accounts,
                       "claimed_fraction": args.claimed_fraction, "repetitions": args.repetitions,
                       "warmup": args.warmup, "per_page": args.per_page, "seed": args.seed,
                       "now": NOW.isoformat(), "timer": "time.perf_counter",
                       "service_timing": "inbox() only; session reset and connection checked out before each call",
                       "http_timing": "whole GET /api/v1/tasks through the Flask test client"},
        "load": loaded,
        **results,
    }
    path = _common.write_result("inbox_query", payload)

    subject = results["subject"]
    print(f"inbox_query  PostgreSQL {db_version}  open tasks {args.open_tasks} "
          f"(+{args.open_tasks * args.completed_factor} completed), "
          f"{args.departments} departments, {args.accounts} accounts")
    print(f"load: {loaded['rows']}  insert {loaded['insert_seconds']} s, ANALYZE {loaded['analyze_seconds']} s")
    print(f"subject: {subject['username']} sees {subject['visible_open_tasks']} open tasks "
          f"({subject['of_which_claimed_by_subject']} claimed by them); "
          f"account filter {subject['account_filter_account']}")
    print(f"{args.repetitions} repetitions after {args.warmup} warm-up, page size {args.per_page}\n")
    rows = []
    for name, entry in results["scenarios"].items():
        for path_name in ("service", "http"):
            e = entry[path_name]
            rows.append((f"{name} / {path_name}", e["total"], e["rows_returned"],
                         e["p50_ms"], e["p95_ms"], e["max_ms"]))
    print(_common.table(["scenario / path", "total", "rows", "p50 ms", "p95 ms", "max ms"], rows))
    print()
    rows = []
    for name, entry in results["scenarios"].items():
        for label, plan in entry["plans"].items():
            for kind in ("custom", "generic"):
                s = plan[f"{kind}_plan"]
                rows.append((f"{name} / {label} / {kind}", "yes" if s["uses_department_inbox_index"] else "no",
                              "yes" if s["uses_assignee_inbox_index"] else "no",
                              ",".join(i for i in s["indexes_used"] if i not in INDEXES) or "-",
                              ", ".join(f"{x['relation']}({x['rows_out']})" for x in s["seq_scans"]) or "-",
                              "; ".join(f"{x['method'] or x['node']} of {x['rows_in']}" for x in s["sorts"]) or "-",
                              s["execution_ms"]))
    print(_common.table(["query / plan", "dept idx", "assignee idx", "other indexes", "seq scans (rows)", "sort",
                         "exec ms"], rows))
    if not args.quiet:
        for name, entry in results["scenarios"].items():
            for label, plan in entry["plans"].items():
                print(f"\n=== {name}: {label} query, custom plan (EXPLAIN ANALYZE, BUFFERS)")
                print(plan["custom_plan_text"])
                if _access(plan["generic_plan"]) != _access(plan["custom_plan"]):
                    print(f"--- generic plan differs:\n{plan['generic_plan_text']}")
    print(f"\nresult: {path.relative_to(_common.REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
