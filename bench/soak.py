"""Soak: steady load against the production shape while a random worker or web
process is SIGKILLed every minute; at the end the database must hold exactly what
the clients were told (not part of the test suite; bounded by --minutes).

```sh
.venv/bin/python bench/soak.py --minutes 10 --clients 4 --kill-every 60
```

Each client drives account projects through every stage over real sockets. A start
goes through the signed ERP webhook with an ``event_id`` of its own, so a start whose
answer was lost to a kill is sent again and gives the same instance; a completion
whose answer was lost is confirmed by reading the task. Every ``--breach-every``
seconds a batch of projects is started and left at kickoff with its deadline a few
seconds ahead. The killer picks a ``bpm-server worker`` (started again at once, as
a supervisor would) or a gunicorn worker (gunicorn starts a new one).

At the end: instances, completions, breaches and ERP calls (service-call rows; the
ERP is not configured here, so each is answered "skipped" at once) are counted in
the database and compared with what the clients were told; then ``bpm-server doctor``
and ``bpm-server audit verify``. Exit status 1 when any count differs.
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

import _cluster
import _common
import _flow

DATABASE = "bpm_bench_soak"
RETRYABLE = (OSError, http.client.HTTPException)


class Told:
    """What the server acknowledged, across all clients."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.instances: set[str] = set()
        self.completions = 0
        self.deliveries_passed = 0  # each one leads to one ERP call
        self.breach_tasks: set[str] = set()
        self.statuses: Counter[int] = Counter()
        self.unanswered = 0


class Client(threading.Thread):
    def __init__(self, index: int, port: int, seeded: _cluster.Seeded, told: Told, stop: threading.Event) -> None:
        super().__init__(daemon=True, name=f"soak-client-{index}")
        self.index, self.port, self.seeded, self.told, self.stop = index, port, seeded, told, stop
        self.tokens = {d: tokens[index] for d, tokens in seeded.tokens.items()}
        self.counter = 0
        self.errors: list[str] = []

    def send(self, method: str, path: str, department: str | None, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """One request, sent again while it gets no answer or a 503 (bounded)."""
        for _ in range(600):
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            all_headers = {"Content-Type": "application/json", **(headers or {})}
            if department:
                all_headers["Authorization"] = f"Bearer {self.tokens[department]}"
            try:
                connection.request(method, path, body=body, headers=all_headers)
                response = connection.getresponse()
                data = response.read()
            except RETRYABLE:
                with self.told.lock:
                    self.told.unanswered += 1
                time.sleep(0.1)
                continue
            finally:
                connection.close()
            with self.told.lock:
                self.told.statuses[response.status] += 1
            if response.status == 503:
                time.sleep(0.1)
                continue
            return response.status, json.loads(data) if data else None
        raise RuntimeError(f"{method} {path}: no answer after 600 tries")

    def start_instance(self) -> str:
        self.counter += 1
        number = self.index * 1_000_000 + self.counter
        account = self.seeded.accounts[number % len(self.seeded.accounts)]
        data = _flow.start_data(number)
        body = json.dumps({"event_id": str(uuid.uuid4()), "contract_no": data["contract_no"], "account": account,
                           "signed_at": data["signed_at"], "amount": data["amount"], "currency": data["currency"],
                           "owner": "bench-sales-0"}).encode()
        while True:
            stamp = str(int(time.time()))
            digest = hmac.new(_cluster.WEBHOOK_SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256)
            status, answer = self.send("POST", _cluster.WEBHOOK_PATH, None, body,
                                       {"X-BPM-Timestamp": stamp, "X-BPM-Signature": "sha256=" + digest.hexdigest()})
            if status in (200, 201):  # 200: the same event again (its first answer was lost)
                with self.told.lock:
                    self.told.instances.add(answer["process_instance_id"])
                return answer["process_instance_id"]
            raise RuntimeError(f"start answered {status}: {answer}")

    def find_task(self, instance_id: str, stage: str, department: str) -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            _, detail = self.send("GET", f"/api/v1/process-instances/{instance_id}", department)
            task = next((t for t in detail.get("tasks", [])
                         if t["name"] == stage and t["state"] in ("ready", "claimed")), None)
            if task is not None:
                return task
            time.sleep(0.1)
        raise RuntimeError(f"{stage} of {instance_id} did not open")

    def complete(self, task: dict[str, Any], department: str, data: dict[str, Any]) -> None:
        if task["state"] == "ready":
            self.send("POST", f"/api/v1/tasks/{task['id']}/claim", department)
        status, answer = self.send("POST", f"/api/v1/tasks/{task['id']}/complete", department,
                                   json.dumps({"data": data}).encode())
        if status != 200:  # a lost answer of an earlier try: what does the task say now?
            _, now = self.send("GET", f"/api/v1/tasks/{task['id']}", department)
            if now.get("state") != "completed":
                raise RuntimeError(f"complete {task['id']} answered {status}: {answer}")
        with self.told.lock:
            self.told.completions += 1

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                instance_id = self.start_instance()
                for stage, department, data in _flow.plan():
                    self.complete(self.find_task(instance_id, stage, department), department, data)
                    if stage == "delivery":
                        with self.told.lock:
                            self.told.deliveries_passed += 1
            except Exception as exc:  # reported at the end; the counts then show what it cost
                self.errors.append(f"{type(exc).__name__}: {exc}"[:300])


def arm_breaches(url: str, client: Client, count: int, told: Told) -> None:
    """Start ``count`` projects and move their kickoff deadlines a few seconds ahead."""
    ids = [client.start_instance() for _ in range(count)]
    engine = create_engine(url)
    with engine.begin() as conn:
        rows = conn.execute(text(
            "UPDATE timer SET due_at = :due WHERE kind = 'sla_breach' AND fired_at IS NULL AND cancelled_at IS NULL "
            "AND process_instance_id = ANY(:ids) RETURNING task_id"),
            {"due": datetime.now(UTC) + timedelta(seconds=5), "ids": ids}).all()
    engine.dispose()
    with told.lock:
        told.breach_tasks |= {r[0] for r in rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--kill-every", type=float, default=60.0, help="seconds between kills")
    parser.add_argument("--breach-every", type=float, default=30.0)
    parser.add_argument("--breach-batch", type=int, default=20)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    seeded = _cluster.seed_database(DATABASE, args.clients + 1)
    cluster = _cluster.Cluster(seeded.url, web_workers=2, rq_workers=2)
    told, stop = Told(), threading.Event()
    kills: list[dict[str, Any]] = []
    try:
        cluster.start()
        clients = [Client(i, cluster.port, seeded, told, stop) for i in range(args.clients)]
        breacher = Client(args.clients, cluster.port, seeded, told, stop)
        for client in clients:
            client.start()
        began = time.monotonic()
        end = began + args.minutes * 60
        next_kill, next_breach = began + args.kill_every, began
        while time.monotonic() < end:
            now = time.monotonic()
            if now >= next_breach:
                arm_breaches(seeded.url, breacher, args.breach_batch, told)
                next_breach = now + args.breach_every
            if now >= next_kill:
                kills.append(kill_one(cluster, rng, round(now - began, 1)))
                next_kill = now + args.kill_every
            time.sleep(0.2)
        stop.set()
        for client in clients:
            client.join(120)
        settled = wait_for_breaches(seeded.url, told, 120)
        figures = compare(seeded.url, told)
        figures.update(kills=kills, breaches_settled_s=settled, minutes=args.minutes, clients=args.clients,
                       statuses=dict(told.statuses), unanswered_requests=told.unanswered,
                       client_errors=[e for c in clients for e in c.errors][:20],
                       checks={name: run_cli(cluster, *command) for name, command in
                               (("doctor", ("doctor",)), ("audit_verify", ("audit", "verify")))})
    finally:
        cluster.stop()
        _cluster.drop_pg_database(DATABASE)
    path = _common.write_result("soak", {"machine": _common.machine_info(), "figures": figures})
    print(json.dumps(figures, indent=2, default=str))
    print(f"written to {path}")
    ok = all(row["told"] == row["stored"] for row in figures["counts"].values()) and all(
        check["rc"] == 0 for check in figures["checks"].values())
    return 0 if ok else 1


def kill_one(cluster: _cluster.Cluster, rng: random.Random, at: float) -> dict[str, Any]:
    workers = [p for p in cluster.procs.get("worker", []) if p.poll() is None]
    master = cluster.procs["gunicorn"][0].pid
    web_children = [int(c) for task in Path(f"/proc/{master}/task").iterdir()
                    for c in (task / "children").read_text().split()]
    if web_children and (not workers or rng.random() < 0.5):
        pid = rng.choice(web_children)
        os.kill(pid, signal.SIGKILL)
        return {"at_s": at, "what": "gunicorn worker", "pid": pid}
    victim = rng.choice(workers)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    cluster._spawn("worker", [str(_cluster.VENV_BIN / "bpm-server"), "worker"])  # as a supervisor would
    return {"at_s": at, "what": "bpm-server worker", "pid": victim.pid}


def wait_for_breaches(url: str, told: Told, timeout: float) -> float | None:
    engine = create_engine(url)
    started = time.monotonic()
    try:
        while time.monotonic() - started < timeout:
            with engine.connect() as conn:
                logged = conn.scalar(text("SELECT count(DISTINCT task_id) FROM sla_breach_log WHERE kind = 'breach'"))
            if logged >= len(told.breach_tasks):
                return round(time.monotonic() - started, 1)
            time.sleep(0.5)
        return None
    finally:
        engine.dispose()


def compare(url: str, told: Told) -> dict[str, Any]:
    engine = create_engine(url)
    with engine.connect() as conn:
        def one(sql: str) -> int:
            return int(conn.scalar(text(sql)) or 0)

        stored = {
            # Instances an escalation started are the server's own, not a client's.
            "instances": one("SELECT count(*) FROM process_instance WHERE started_by <> 'escalation'"),
            "completions": one("SELECT count(*) FROM human_task WHERE state = 'completed'"),
            "breaches": one("SELECT count(*) FROM sla_breach_log WHERE kind = 'breach'"),
            "erp_calls": one("SELECT count(*) FROM outbound_call WHERE system = 'erp'"),
        }
        twice = one("SELECT count(*) FROM (SELECT task_id FROM sla_breach_log WHERE kind = 'breach' "
                    "GROUP BY task_id HAVING count(*) > 1) x")
    engine.dispose()
    expected = {"instances": len(told.instances), "completions": told.completions,
                "breaches": len(told.breach_tasks), "erp_calls": told.deliveries_passed}
    return {"counts": {k: {"told": expected[k], "stored": stored[k]} for k in expected},
            "breaches_logged_twice": twice}


def run_cli(cluster: _cluster.Cluster, *args: str) -> dict[str, Any]:
    result = subprocess.run([str(_cluster.VENV_BIN / "bpm-server"), *args], env=cluster.env(), cwd=cluster.logdir,
                            capture_output=True, text=True, timeout=300)
    return {"rc": result.returncode, "out": (result.stdout + result.stderr)[-500:]}


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
