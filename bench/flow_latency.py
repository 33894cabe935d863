"""End-to-end latency of the six-stage ``account-project`` process through the REST API.

Creates a fresh database (SQLite file in a temporary directory, or the
dedicated PostgreSQL database ``bpm_bench_flow``, dropped and created), runs
the real migrations, syncs process_models/ and forms/, creates one staff user
per department plus an account, then drives instances one after another
through the Flask test client (in-process HTTP):

    POST /api/v1/process-instances                       (as sales)
    for each stage: GET /api/v1/tasks -> POST .../claim -> POST .../complete
                                                         (as the stage's department)

Happy path: kickoff, needs_research, solution_signoff (approved),
resource_preparation, delivery (passed), invoicing. Each instance is read
back afterwards (outside the timed window) to confirm it is ``completed``.

Reports per-instance wall time (start request -> invoicing completed), per-call
latency by endpoint kind, HTTP calls per instance and SQL statements per call.

    .venv/bin/python bench/flow_latency.py --backend sqlite --instances 50
    .venv/bin/python bench/flow_latency.py --backend postgresql --instances 50
"""
from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # also puts the repo root on sys.path

PG_DATABASE = "bpm_bench_flow"
START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # a Monday morning in Asia/Shanghai
MODEL_ID = "account-project"
ACCOUNT_ID = "BENCH-ACCOUNT"
STARTER_DEPARTMENT = "sales"

# (stage, department that works it, form data for the happy path)
STAGES: list[tuple[str, str, dict[str, Any]]] = [
    ("kickoff", "sales", {"kickoff_minutes": "Benchmark kickoff: scope and contacts agreed",
                          "attendees": "bench-sales, customer CIO", "kickoff_date": "2026-03-02"}),
    ("needs_research", "consulting", {"requirements_doc_url": "https://bench.example.org/requirements",
                                      "requirements_confirmed": True}),
    ("solution_signoff", "sales", {"customer_decision": "approved",
                                   "signed_plan_url": "https://bench.example.org/plan",
                                   "planned_go_live": "2026-04-15"}),
    ("resource_preparation", "it", {"environment_report_url": "https://bench.example.org/environment"}),
    ("delivery", "delivery", {"acceptance_result": "passed",
                              "acceptance_report_url": "https://bench.example.org/acceptance"}),
    ("invoicing", "finance", {"invoice_number": "BENCH-0001", "invoice_date": "2026-04-20",
                              "receipt_signed": True}),
]
CALL_KINDS = ("start", "inbox", "claim", "complete")


class FlowError(RuntimeError):
    """The flow could not be driven (unexpected status or missing task); nothing to measure."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--instances", type=int, default=50, help="measured instances (default 50)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up instances, excluded (default 2)")
    parser.add_argument("--per-page", type=int, default=200, help="page size of the inbox lookup (default 200)")
    parser.add_argument("--keep-db", action="store_true", help="keep the SQLite temp directory afterwards")
    parser.add_argument("--log-level", default="WARNING",
                        help="level for the server's logging during the run (default WARNING)")
    return parser.parse_args()


def setup_database(backend: str) -> tuple[str, Path | None]:
    if backend == "sqlite":
        tmp = Path(tempfile.mkdtemp(prefix="bpm-bench-flow-"))
        url = f"sqlite:///{tmp / 'bpm.sqlite3'}"
    else:
        tmp = None
        url = _common.recreate_pg_database(PG_DATABASE)
    _common.migrate(url)
    return url, tmp


def build_app(url: str):
    from bpm_server.app import create_app
    from bpm_server.clock import SettableClock
    from bpm_server.config import PROJECT_ROOT, Config

    config = Config(database_url=url, testing=True, secret_key="bench-secret",
                    models_dir=PROJECT_ROOT / "process_models", forms_dir=PROJECT_ROOT / "forms",
                    queue_name="bpm-bench")
    return create_app(config, clock=SettableClock(START))


def seed(app) -> dict[str, str]:
    """Models, forms, escalation policies, one staff user per department and the account; returns tokens."""
    from bpm_server.accounts.service import upsert_account
    from bpm_server.database import db
    from bpm_server.identity.service import add_user, issue_token
    from bpm_server.modeling.service import sync_from_disk
    from bpm_server.sla.policies import sync_file

    tokens: dict[str, str] = {}
    with app.app_context():
        rt = app.extensions["bpm"]
        now = rt.clock.now()
        sync_from_disk(db.session, rt.config.models_dir, rt.config.forms_dir, now=now)
        sync_file(db.session, rt.config.models_dir / "escalation-policies.json", now=now)
        for department in sorted({d for _, d, _ in STAGES} | {STARTER_DEPARTMENT}):
            user = add_user(db.session, f"bench-{department}", department=department, roles=["staff"], now=now)
            tokens[department] = issue_token(db.session, user, now=now)
        upsert_account(db.session, ACCOUNT_ID, name="Benchmark Account Ltd", tier="key", owner="bench-sales",
                       now=now)
        db.session.commit()
    return tokens


class Driver:
    """Drives instances through the test client, timing every call."""

    def __init__(self, app, tokens: dict[str, str], counter: _common.StatementCounter, per_page: int) -> None:
        self.client = app.test_client()
        self.headers = {d: {"Authorization": f"Bearer {t}"} for d, t in tokens.items()}
        self.counter = counter
        self.per_page = per_page
        self.calls: list[dict[str, Any]] = []  # records of the current instance

    def _call(self, kind: str, department: str, method: str, url: str, expected: int,
              stage: str | None = None, **kw: Any) -> Any:
        before = self.counter.count
        mark = len(self.counter.statements)
        t0 = time.perf_counter()
        response = self.client.open(url, method=method, headers=self.headers[department], **kw)
        elapsed = time.perf_counter() - t0
        record = {"kind": kind, "stage": stage, "seconds": elapsed, "statements": self.counter.count - before}
        if self.counter.keep:
            record["sql"] = [(s, repr(p)) for s, p in self.counter.statements[mark:]]
        self.calls.append(record)
        if response.status_code != expected:
            raise FlowError(f"{method} {url} as {department}: HTTP {response.status_code} "
                            f"(expected {expected}): {response.get_data(as_text=True)[:500]}")
        return response.get_json()

    def run_instance(self, number: int) -> dict[str, Any]:
        self.calls = []
        body = {"process_model_id": MODEL_ID, "account_id": ACCOUNT_ID,
                "data": {"contract_no": f"BENCH-{number:05d}", "signed_at": "2026-03-02T09:00:00+08:00",
                         "amount": 250000, "currency": "CNY"}}
        t_start = time.perf_counter()
        instance = self._call("start", STARTER_DEPARTMENT, "POST", "/api/v1/process-instances", 201, json=body)
        instance_id = instance["id"]
        for stage, department, data in STAGES:
            inbox = self._call("inbox", department, "GET", f"/api/v1/tasks?per_page={self.per_page}", 200,
                               stage=stage)
            task = next((t for t in inbox["items"]
                         if t["process_instance_id"] == instance_id and t["name"] == stage), None)
            if task is None:
                raise FlowError(f"{stage} of {instance_id} is not in {department}'s inbox "
                                f"({inbox['total']} open tasks there)")
            if task["state"] == "ready":
                self._call("claim", department, "POST", f"/api/v1/tasks/{task['id']}/claim", 200, stage=stage)
            self._call("complete", department, "POST", f"/api/v1/tasks/{task['id']}/complete", 200,
                       stage=stage, json={"data": data})
        wall = time.perf_counter() - t_start
        calls = self.calls
        # Read back outside the timed window: the run only counts if the instance completed.
        final = self.client.get(f"/api/v1/process-instances/{instance_id}", headers=self.headers[STARTER_DEPARTMENT])
        state = (final.get_json() or {}).get("state")
        if final.status_code != 200 or state != "completed":
            raise FlowError(f"instance {instance_id} ended in state {state!r} (HTTP {final.status_code})")
        return {"instance_id": instance_id, "wall_seconds": wall, "calls": calls}


def repeated_statements(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Within each call, SQL texts executed more than once (N+1 candidates); ``same_parameters``
    counts how many of those executions repeated an earlier one exactly (text and parameters)."""
    found = []
    for call in calls:
        pairs = call.get("sql", [])
        exact = Counter(pairs)
        for sql, times in Counter(s for s, _ in pairs).items():
            if times > 1:
                same = sum(n - 1 for (s, _), n in exact.items() if s == sql)
                found.append({"kind": call["kind"], "stage": call["stage"], "times": times,
                              "same_parameters": same, "sql": " ".join(sql.split())[:400]})
    return found


def main() -> int:
    args = parse_args()
    url, tmp = setup_database(args.backend)
    app = build_app(url)
    logging.getLogger().setLevel(args.log_level.upper())
    from bpm_server.database import db

    try:
        tokens = seed(app)
        with app.app_context():
            engine = db.engine
            db_version = _common.server_version(engine)
        counter = _common.StatementCounter(engine)
        driver = Driver(app, tokens, counter, args.per_page)

        for i in range(args.warmup):
            driver.run_instance(i)
        results = []
        for i in range(args.instances):
            counter.reset(keep=(i == 0))  # keep the SQL text of the first measured instance
            results.append(driver.run_instance(args.warmup + i))
        counter.close()
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        if tmp is not None and not args.keep_db:
            shutil.rmtree(tmp, ignore_errors=True)

    by_kind: dict[str, list[float]] = defaultdict(list)
    statements_by_kind: dict[str, list[int]] = defaultdict(list)
    complete_by_stage: dict[str, list[float]] = defaultdict(list)
    for result in results:
        for call in result["calls"]:
            by_kind[call["kind"]].append(call["seconds"])
            statements_by_kind[call["kind"]].append(call["statements"])
            if call["kind"] == "complete":
                complete_by_stage[call["stage"]].append(call["seconds"])
    calls_per_instance = sorted({len(r["calls"]) for r in results})
    statements_per_instance = [sum(c["statements"] for c in r["calls"]) for r in results]
    first = results[0]["calls"] if results else []

    figures = {
        "instance_wall_time": _common.summary_ms(r["wall_seconds"] for r in results),
        "per_call": {kind: {**_common.summary_ms(by_kind[kind]),
                            "sql_statements_mean": round(sum(statements_by_kind[kind])
                                                         / len(statements_by_kind[kind]), 2),
                            "sql_statements_max": max(statements_by_kind[kind])}
                     for kind in CALL_KINDS if by_kind[kind]},
        "complete_by_stage": {stage: _common.summary_ms(complete_by_stage[stage]) for stage, _, _ in STAGES},
        "http_calls_per_instance": calls_per_instance[0] if len(calls_per_instance) == 1 else calls_per_instance,
        "http_calls_per_instance_by_kind": dict(Counter(c["kind"] for c in first)),
        "sql_statements_per_instance": {"min": min(statements_per_instance), "max": max(statements_per_instance),
                                        "mean": round(sum(statements_per_instance) / len(statements_per_instance), 1)},
        "completed_instances": len(results),
    }
    payload = {
        "parameters": {"backend": args.backend, "instances": args.instances, "warmup_instances": args.warmup,
                       "inbox_per_page": args.per_page, "database": PG_DATABASE if args.backend == "postgresql"
                       else "sqlite file in a temporary directory", "database_server": db_version,
                       "clock": f"SettableClock fixed at {START.isoformat()}", "account_tier": "key",
                       "stages": [s for s, _, _ in STAGES], "timer": "time.perf_counter",
                       "transport": "Flask test client (in-process WSGI, no sockets)"},
        "figures": figures,
        "first_measured_instance": {
            "calls": [{"kind": c["kind"], "stage": c["stage"], "ms": round(c["seconds"] * 1000, 3),
                       "sql_statements": c["statements"]} for c in first],
            "repeated_sql_within_a_call": repeated_statements(first),
            "sql": [{"kind": c["kind"], "stage": c["stage"],
                     "statements": [" ".join(s.split()) for s, _ in c["sql"]]} for c in first],
        },
        "per_instance_wall_ms": [round(r["wall_seconds"] * 1000, 3) for r in results],
    }
    path = _common.write_result("flow_latency", payload)

    wall = figures["instance_wall_time"]
    print(f"flow_latency  backend={args.backend} ({db_version})  instances={args.instances} "
          f"(+{args.warmup} warm-up, excluded)")
    print(f"per-instance wall time, start -> invoicing completed: p50 {wall['p50_ms']} ms  "
          f"p95 {wall['p95_ms']} ms  max {wall['max_ms']} ms")
    print(f"HTTP calls per instance: {figures['http_calls_per_instance']} "
          f"{figures['http_calls_per_instance_by_kind']}; SQL statements per instance: "
          f"{figures['sql_statements_per_instance']['mean']}")
    print()
    print(_common.table(["call", "n", "p50 ms", "p95 ms", "max ms", "mean ms", "SQL/call"],
                        [(k, v["n"], v["p50_ms"], v["p95_ms"], v["max_ms"], v["mean_ms"], v["sql_statements_mean"])
                         for k, v in figures["per_call"].items()]))
    print()
    print(_common.table(["complete, by stage", "p50 ms", "p95 ms", "max ms"],
                        [(k, v["p50_ms"], v["p95_ms"], v["max_ms"]) for k, v in figures["complete_by_stage"].items()]))
    repeats = payload["first_measured_instance"]["repeated_sql_within_a_call"]
    if repeats:
        grouped: dict[tuple[str, str, int, int], int] = Counter(
            (r["kind"], r["sql"][:70], r["times"], r["same_parameters"]) for r in repeats)
        print("\nSQL text run more than once within one call (first measured instance):")
        print(_common.table(["call", "calls affected", "times/call", "same params", "statement"],
                            [(k, n, t, same, sql) for (k, sql, t, same), n in grouped.items()]))
    print(f"\nresult: {path.relative_to(_common.REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
