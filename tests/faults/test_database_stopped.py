"""PostgreSQL stopped under load, against gunicorn and two workers: every request
answers 503 with Retry-After (never 500), no acknowledged write is lost, and service
resumes once PostgreSQL is back, with no web or worker process restarted."""
from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tests.faults.stack import Stack, wait_for
from tests.pg_cluster import PrivateCluster

CLIENTS = 4
OUTAGE = 5.0  # seconds


@dataclass
class Answer:
    at: float  # monotonic
    kind: str  # read, write
    status: int  # 0: no HTTP answer at all
    retry_after: str | None
    instance_id: str | None
    body: bytes = b""


def _load(stack: Stack, token: str, stop: threading.Event, answers: list[Answer], number: int) -> None:
    """One client: alternately an inbox read and a start (a write), as fast as answered."""
    port = stack.web_port
    sent = 0
    while not stop.is_set():
        sent += 1
        write = sent % 2 == 0
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        try:
            if write:
                body = {"process_model_id": "account-project", "account_id": "ACME",
                        "data": {"contract_no": f"HT-L{number}-{sent}", "signed_at": "2026-03-02T09:00:00+08:00"}}
                connection.request("POST", "/api/v1/process-instances", json.dumps(body), headers)
            else:
                connection.request("GET", "/api/v1/tasks?per_page=5", headers=headers)
            response = connection.getresponse()
            payload = response.read()
            instance = json.loads(payload).get("id") if write and response.status == 201 else None
            answers.append(Answer(time.monotonic(), "write" if write else "read", response.status,
                                  response.getheader("Retry-After"), instance,
                                  payload if response.status not in (200, 201, 503) else b""))
        except (OSError, http.client.HTTPException):
            answers.append(Answer(time.monotonic(), "write" if write else "read", 0, None, None))
        finally:
            connection.close()


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def _processes(stack: Stack) -> set[int]:
    """The gunicorn master, its workers and the bpm-server workers (a restarted one has a new pid)."""
    assert stack.web is not None and stack.web.poll() is None
    return {stack.web.pid, *_children(stack.web.pid), *(w.pid for w in stack.live_workers())}


def test_postgresql_stopped_under_load_gives_503_with_retry_after_and_service_resumes(
        people, stack: Stack, private_pg: PrivateCluster):
    stack.start_workers(2)
    stack.start_web()
    before = _processes(stack)
    answers: list[Answer] = []
    stop = threading.Event()
    clients = [threading.Thread(target=_load, args=(stack, people["sales"].token, stop, answers, n), daemon=True)
               for n in range(CLIENTS)]
    for client in clients:
        client.start()
    try:
        wait_for(lambda: sum(a.status == 201 for a in answers) >= 10, 60, "load flowing")
        stopped_at = time.monotonic()
        private_pg.stop()
        down_for = time.monotonic()
        # Down for OUTAGE seconds, and long enough that many requests met it.
        wait_for(lambda: time.monotonic() - down_for > OUTAGE
                 and sum(a.status == 503 and a.at > down_for for a in answers) >= 20, 60, "503s while down")
        private_pg.start()
        back_at = time.monotonic()
        # Full service: 20 answers in a row, all 2xx, every client included.
        wait_for(lambda: len(answers) > 20 and all(a.status in (200, 201) for a in answers[-20:])
                 and answers[-20].at > back_at, 60, "full service after PostgreSQL is back")
    finally:
        stop.set()
        for client in clients:
            client.join(40)

    during = [a for a in answers if stopped_at <= a.at]
    statuses = Counter(a.status for a in answers)
    # Never a 500, never a dropped connection.
    assert set(statuses) <= {200, 201, 503}, [(a.kind, a.status, a.body[:300]) for a in answers
                                              if a.status not in (200, 201, 503)]
    assert all(a.retry_after for a in answers if a.status == 503)
    after = [a for a in answers if a.at > back_at]
    first_ok = min(a.at for a in after if a.status in (200, 201)) - back_at
    last_error = max((a.at for a in answers if a.status == 503), default=back_at) - back_at
    # No acknowledged write was lost: every 201 names an instance that exists.
    acknowledged = [a.instance_id for a in answers if a.status == 201]
    stored = {r[0] for r in stack.sql("SELECT id FROM process_instance")}
    assert set(acknowledged) <= stored, set(acknowledged) - stored
    assert _processes(stack) == before, "no web or worker process restarted"
    wait_for(lambda: len(stack.pump_leaders()) == 1, 10, "one pump leading again")
    stack.assert_consistent()
    print(f"\nFIGURES PostgreSQL stopped {back_at - stopped_at:.1f} s under {CLIENTS} clients: "
          f"{len(answers)} requests, statuses {dict(statuses)}; from the stop on: "
          f"{dict(Counter((a.kind, a.status) for a in during))}; first 2xx {first_ok:.2f} s and last 503 "
          f"{last_error:.2f} s after PostgreSQL was back; {len(acknowledged)} acknowledged starts, all stored")
