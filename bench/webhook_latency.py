"""Webhook-to-instance latency: signed contract-signed deliveries, some of them duplicates.

Sends ``--deliveries`` signed ``POST /api/v1/hooks/erp/contract-signed`` over real
HTTP (waitress on loopback, as ``bpm-server run`` serves) from ``--concurrency``
client threads. ``--duplicates`` of them (a fraction) repeat an earlier event:
half right behind their original (so both are usually in flight at the same
moment), half later. The answer carries the new instance's id, so the request
time is the webhook-to-instance time. Afterwards the script checks that exactly
one instance per distinct event exists and every duplicate got its original's id.

    .venv/bin/python bench/webhook_latency.py --backend sqlite
    .venv/bin/python bench/webhook_latency.py --backend postgresql

Measures only; never decides pass or fail (the checks are printed and stored).
"""
from __future__ import annotations

import argparse
import json
import logging
import queue
import random
import shutil
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # also puts the repo root on sys.path

SECRET = "bench-webhook-secret"
PG_DATABASE = "bpm_bench_webhook"


def build_plan(deliveries: int, duplicate_share: float, seed: int) -> list[dict[str, Any]]:
    """The send order: unique events, with duplicates adjacent to (or later than) their original."""
    rng = random.Random(seed)
    duplicates = round(deliveries * duplicate_share)
    unique = deliveries - duplicates
    events = [{"event_id": f"EV-{i:06d}", "contract_no": f"HT-{i:06d}",
               "account": {"id": f"ACC-{i % 200:04d}", "name": f"Account {i % 200}",
                           "tier": ("strategic", "key", "standard")[i % 3]},
               "signed_at": "2026-03-02T09:00:00+08:00", "amount": 1000 + i, "currency": "CNY", "owner": "sales.li"}
              for i in range(unique)]
    plan = [dict(e, _duplicate=False) for e in events]
    originals = rng.sample(range(unique), duplicates)
    adjacent, later = originals[: duplicates // 2], originals[duplicates // 2:]
    for index in sorted(adjacent, reverse=True):  # right behind the original
        position = next(i for i, p in enumerate(plan) if p["event_id"] == events[index]["event_id"] and
                        not p["_duplicate"])
        plan.insert(position + 1, dict(events[index], _duplicate=True))
    for index in later:  # somewhere after the original
        position = next(i for i, p in enumerate(plan) if p["event_id"] == events[index]["event_id"])
        plan.insert(rng.randint(position + 1, len(plan)), dict(events[index], _duplicate=True))
    return plan


def sign(body: bytes) -> dict[str, str]:
    from integrations.signing import signature

    timestamp = str(int(time.time()))
    return {"Content-Type": "application/json", "X-BPM-Timestamp": timestamp,
            "X-BPM-Signature": signature(SECRET, timestamp, body)}


def send_all(base_url: str, plan: list[dict[str, Any]], concurrency: int) -> list[dict[str, Any]]:
    work: queue.Queue[int | None] = queue.Queue()
    for index in range(len(plan)):
        work.put(index)
    results: list[dict[str, Any]] = [{} for _ in plan]

    def client() -> None:
        while True:
            index = work.get()
            if index is None:
                return
            event = {k: v for k, v in plan[index].items() if not k.startswith("_")}
            body = json.dumps(event).encode()
            request = urllib.request.Request(f"{base_url}/api/v1/hooks/erp/contract-signed", data=body,
                                             headers=sign(body), method="POST")
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(request, timeout=60) as answer:
                    status, payload = answer.status, json.loads(answer.read())
            except urllib.error.HTTPError as exc:
                status, payload = exc.code, json.loads(exc.read() or b"{}")
            results[index] = {"seconds": time.perf_counter() - started, "status": status, "answer": payload,
                              "event_id": event["event_id"], "duplicate": plan[index]["_duplicate"]}

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for _ in threads:
        work.put(None)
    for thread in threads:
        thread.join()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--duplicates", type=float, default=0.10, help="share of deliveries that repeat an event")
    parser.add_argument("--concurrency", type=int, default=4, help="client threads sending at once")
    parser.add_argument("--server-threads", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    from sqlalchemy import func, select
    from waitress.server import create_server

    from bpm_server.app import create_app
    from bpm_server.config import PROJECT_ROOT, Config
    from bpm_server.database import db
    from bpm_server.erp.models import ContractSignedEvent
    from bpm_server.instances.models import ProcessInstance
    from bpm_server.modeling.service import sync_from_disk
    from bpm_server.sla.policies import sync_file

    tmp = None
    if args.backend == "sqlite":
        tmp = Path(tempfile.mkdtemp(prefix="bpm-bench-webhook-"))
        url = f"sqlite:///{tmp / 'bpm.sqlite3'}"
    else:
        url = _common.recreate_pg_database(PG_DATABASE)
    _common.migrate(url)
    app = create_app(Config(database_url=url, erp_webhook_secret=SECRET, models_dir=PROJECT_ROOT / "process_models",
                            forms_dir=PROJECT_ROOT / "forms"))
    logging.getLogger().setLevel(logging.WARNING)
    with app.app_context():
        now = app.extensions["bpm"].clock.now()
        sync_from_disk(db.session, PROJECT_ROOT / "process_models", PROJECT_ROOT / "forms", now=now)
        sync_file(db.session, PROJECT_ROOT / "process_models" / "escalation-policies.json", now=now)
        db.session.commit()

    server = create_server(app, host="127.0.0.1", port=0, threads=args.server_threads)
    threading.Thread(target=server.run, daemon=True).start()
    base_url = f"http://127.0.0.1:{server.effective_port}"
    plan = build_plan(args.deliveries, args.duplicates, args.seed)

    started = time.perf_counter()
    results = send_all(base_url, plan, args.concurrency)
    wall = time.perf_counter() - started
    # The server thread is a daemon: left running, it ends with the process (closing it while
    # waitress finishes a keep-alive channel only prints a spurious traceback).

    with app.app_context():
        instances = db.session.scalar(select(func.count()).select_from(ProcessInstance))
        events = db.session.scalar(select(func.count()).select_from(ContractSignedEvent))
        db.session.remove()
        db.engine.dispose()
    first_id: dict[str, str] = {}
    for r in results:
        if r["status"] == 201:
            first_id[r["event_id"]] = r["answer"]["process_instance_id"]
    distinct = len({p["event_id"] for p in plan})
    checks = {
        "distinct_events": distinct,
        "instances_created": instances,
        "erp_event_rows": events,
        "answers_201": sum(r["status"] == 201 for r in results),
        "answers_200": sum(r["status"] == 200 for r in results),
        "other_answers": sorted({r["status"] for r in results} - {200, 201}),
        "duplicates_answered_with_the_original_instance": sum(
            r["status"] == 200 and first_id.get(r["event_id"]) == r["answer"].get("process_instance_id")
            for r in results),
        "exactly_one_instance_per_event": instances == distinct and events == distinct,
    }
    figures = {
        "all": _common.summary_ms(r["seconds"] for r in results),
        "first_delivery_201": _common.summary_ms(r["seconds"] for r in results if r["status"] == 201),
        "duplicate_200": _common.summary_ms(r["seconds"] for r in results if r["status"] == 200),
        "wall_seconds": round(wall, 3),
        "deliveries_per_second": round(len(results) / wall, 1),
    }
    path = _common.write_result(f"webhook_latency-{args.backend}", {
        "parameters": vars(args), "database": args.backend, "figures": figures, "checks": checks})
    rows = [(name, s["n"], s["p50_ms"], s["p95_ms"], s["max_ms"]) for name, s in figures.items() if isinstance(s, dict)]
    print(_common.table(("deliveries", "n", "p50 ms", "p95 ms", "max ms"), rows))
    print(f"wall {figures['wall_seconds']} s, {figures['deliveries_per_second']} deliveries/s, "
          f"concurrency {args.concurrency}, backend {args.backend}")
    print(json.dumps(checks, indent=2))
    print(f"result: {path}")
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
