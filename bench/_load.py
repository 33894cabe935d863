"""Concurrent HTTP clients that drive account-project instances through every
stage, as the right department, over real sockets (http.client, one
keep-alive connection per client thread).

Per instance: start (signed ERP webhook, or POST /api/v1/process-instances),
then for every step of the plan: GET /api/v1/tasks?account_id=... (the department's inbox,
the instance's task looked up in it), POST .../claim if it is ready, POST
.../complete with the stage's form data. Every call is recorded with its
start and end (perf_counter) so a measurement window can be cut afterwards.
"""
from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import _cluster
import _flow

KINDS = ("start", "inbox", "claim", "complete")


class CallFailed(Exception):
    pass


@dataclass
class Call:
    kind: str
    t0: float
    t1: float
    status: int
    stage: str | None = None


@dataclass
class Finished:
    t0: float
    t1: float
    steps: int
    state_bytes: int | None = None


@dataclass
class ClientLog:
    calls: list[Call] = field(default_factory=list)
    instances: list[Finished] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    reconnects: int = 0
    inbox_retries: int = 0


class Client(threading.Thread):
    def __init__(self, index: int, port: int, seeded: _cluster.Seeded, start_via: str,
                 plan: list[tuple[str, str, dict[str, Any]]], stop: threading.Event, per_page: int = 20,
                 max_instances: int | None = None) -> None:
        super().__init__(daemon=True, name=f"client-{index}")
        self.index = index
        self.port = port
        self.seeded = seeded
        self.start_via = start_via
        self.plan = plan
        self.stop_event = stop
        self.per_page = per_page
        self.max_instances = max_instances
        self.headers = {d: {"Authorization": f"Bearer {tokens[index]}", "Content-Type": "application/json"}
                        for d, tokens in seeded.tokens.items()}
        self.log = ClientLog()
        self.conn: http.client.HTTPConnection | None = None
        self.counter = 0

    # ----------------------------------------------------------------- HTTP

    def _request(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, bytes]:
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed an idle keep-alive connection: nothing was processed, send again.
                self.conn.close()
                self.conn = None
                self.log.reconnects += 1
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def call(self, kind: str, method: str, path: str, department: str, expected: tuple[int, ...],
             payload: Any = None, stage: str | None = None, headers: dict[str, str] | None = None,
             raw: bytes | None = None) -> Any:
        body = raw if raw is not None else (json.dumps(payload).encode() if payload is not None else None)
        t0 = time.perf_counter()
        status, data = self._request(method, path, body, headers or self.headers[department])
        t1 = time.perf_counter()
        self.log.calls.append(Call(kind, t0, t1, status, stage))
        if status not in expected:
            raise CallFailed(f"{method} {path}: HTTP {status}: {data[:300]!r}")
        return json.loads(data) if data else None

    # ----------------------------------------------------------------- the flow

    def start_instance(self) -> tuple[str, str]:
        self.counter += 1
        number = self.index * 1_000_000 + self.counter
        account = self.seeded.accounts[number % len(self.seeded.accounts)]
        data = _flow.start_data(number)
        if self.start_via == "webhook":
            body = json.dumps({"event_id": str(uuid.uuid4()), "contract_no": data["contract_no"],
                               "account": account, "signed_at": data["signed_at"], "amount": data["amount"],
                               "currency": data["currency"], "owner": "bench-sales-0"}).encode()
            stamp = str(int(time.time()))
            digest = hmac.new(_cluster.WEBHOOK_SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256)
            headers = {"Content-Type": "application/json", "X-BPM-Timestamp": stamp,
                       "X-BPM-Signature": "sha256=" + digest.hexdigest()}
            answer = self.call("start", "POST", _cluster.WEBHOOK_PATH, "sales", (201,), raw=body, headers=headers)
            return answer["process_instance_id"], account["id"]
        answer = self.call("start", "POST", "/api/v1/process-instances", "sales", (201,),
                           payload={"process_model_id": _flow.MODEL_ID, "account_id": account["id"], "data": data})
        return answer["id"], account["id"]

    def run_instance(self) -> None:
        t0 = time.perf_counter()
        instance_id, account = self.start_instance()
        # Once started, an instance is driven to the end even after the stop
        # signal, so no half-done instance is left in the inboxes.
        for stage, department, data in self.plan:
            task = self.find_task(instance_id, account, stage, department)
            if task["state"] == "ready":
                self.call("claim", "POST", f"/api/v1/tasks/{task['id']}/claim", department, (200,), stage=stage)
            self.call("complete", "POST", f"/api/v1/tasks/{task['id']}/complete", department, (200,),
                      payload={"data": data}, stage=stage)
        self.log.instances.append(Finished(t0, time.perf_counter(), len(self.plan)))

    def find_task(self, instance_id: str, account: str, stage: str, department: str,
                  patience: float = 15.0) -> dict[str, Any]:
        """The stage's task in the department's inbox, filtered to the instance's
        account (first page of 20, as a person narrows a long inbox; without the
        filter every client would page through every other client's open
        tasks, and the benchmark would measure its own crowd). A stage that follows a job
        (a service task the workers run) may show up a moment later: look again."""
        deadline = time.perf_counter() + patience
        while True:
            inbox = self.call("inbox", "GET", f"/api/v1/tasks?per_page={self.per_page}&account_id={account}",
                              department, (200,), stage=stage)
            task = next((t for t in inbox["items"] if t["process_instance_id"] == instance_id and t["name"] == stage),
                        None)
            if task is not None:
                return task
            if time.perf_counter() > deadline:
                raise CallFailed(f"{stage} of {instance_id} is not in the {department} inbox ({inbox['total']} open)")
            self.log.inbox_retries += 1
            time.sleep(0.05)

    def run(self) -> None:
        while not self.stop_event.is_set():
            if self.max_instances is not None and len(self.log.instances) >= self.max_instances:
                return
            try:
                self.run_instance()
            except (CallFailed, OSError, http.client.HTTPException, ValueError, KeyError) as exc:
                self.log.errors.append(f"{type(exc).__name__}: {exc}"[:400])
                if self.conn is not None:
                    self.conn.close()
                    self.conn = None
                time.sleep(0.05)
        if self.conn is not None:
            self.conn.close()


def window(logs: list[ClientLog], t_begin: float, t_end: float) -> tuple[list[Call], list[Finished]]:
    """Calls that started and finished inside the window, and instances whose last call ended inside it."""
    calls = [c for log in logs for c in log.calls if c.t0 >= t_begin and c.t1 <= t_end]
    finished = [f for log in logs for f in log.instances if t_begin <= f.t1 <= t_end]
    return calls, finished
