"""Walking an account project through its stages as the right people (shared by API tests)."""
from __future__ import annotations

import json
from typing import Any

from tests.conftest import Caller
from tests.support import sign

STAGE_DATA: dict[str, dict[str, Any]] = {
    "kickoff": {"kickoff_minutes": "Kickoff held with the customer's IT director", "attendees": "Li, Wang",
                "kickoff_date": "2026-03-02"},
    "needs_research": {"requirements_doc_url": "https://docs.example.com/req/1", "requirements_confirmed": True},
    "solution_signoff": {"customer_decision": "approved", "signed_plan_url": "https://docs.example.com/plan/1",
                         "planned_go_live": "2026-04-30"},
    "resource_preparation": {"environment_report_url": "https://docs.example.com/env/1"},
    "delivery": {"acceptance_result": "passed", "acceptance_report_url": "https://docs.example.com/acc/1"},
    "invoicing": {"invoice_number": "INV-2026-0001", "invoice_date": "2026-05-06", "receipt_signed": True},
}
STAGE_PERSON = {"kickoff": "sales", "needs_research": "consulting", "solution_signoff": "sales",
                "resource_preparation": "it", "delivery": "delivery", "invoicing": "finance"}


def start_project(caller: Caller, account_id: str = "ACME", **data: Any) -> dict:
    body = {"process_model_id": "account-project", "account_id": account_id,
            "data": {"contract_no": "HT-1", "signed_at": "2026-03-02T09:00:00+08:00", **data}}
    response = caller.post("/api/v1/process-instances", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def open_task(caller: Caller, instance_id: str, name: str) -> dict:
    """The caller's inbox entry for that stage of that instance."""
    items = caller.get("/api/v1/tasks?per_page=200").get_json()["items"]
    matches = [t for t in items if t["process_instance_id"] == instance_id and t["name"] == name]
    assert matches, f"{caller.username} does not see {name} of {instance_id} in their inbox: {items}"
    return matches[0]


def do_stage(people: dict[str, Caller], instance_id: str, name: str, data: dict | None = None) -> dict:
    caller = people[STAGE_PERSON[name]]
    task = open_task(caller, instance_id, name)
    if task["state"] == "ready":
        assert caller.post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    response = caller.post(f"/api/v1/tasks/{task['id']}/complete", json={"data": data or STAGE_DATA[name]})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


# --------------------------------------------------------------------------- the ERP's side

DELIVERY_STAGES = ("kickoff", "needs_research", "solution_signoff", "resource_preparation", "delivery")


def walk_to_acceptance(people: dict[str, Caller], instance_id: str) -> None:
    """Every stage up to and including a passed delivery (invoicing then talks to the ERP)."""
    for name in DELIVERY_STAGES:
        do_stage(people, instance_id, name)


def contract_signed(event_id: str = "EV-1", contract_no: str = "HT-1", account_id: str = "DELTA",
                    tier: str = "key", **changes: Any) -> dict[str, Any]:
    """A contract-signed event as the ERP sends it."""
    body = {"event_id": event_id, "contract_no": contract_no,
            "account": {"id": account_id, "name": f"{account_id} Ltd", "tier": tier},
            "signed_at": "2026-03-02T09:00:00+08:00", "amount": 120000.5, "currency": "CNY", "owner": "sales"}
    body.update(changes)
    return body


def post_contract_signed(client: Any, body: Any, *, secret: str, timestamp: int, signature: str | None = None,
                         headers: dict[str, str] | None = None):
    """POST the webhook signed as the ERP signs it (``signature`` overrides; ``body`` may be raw bytes)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"Content-Type": "application/json", "X-BPM-Timestamp": str(timestamp),
            "X-BPM-Signature": signature if signature is not None else sign(secret, str(timestamp), raw)}
    sent.update(headers or {})
    return client.post("/api/v1/hooks/erp/contract-signed", data=raw, headers={k: v for k, v in sent.items() if v})


def invoice_issued(caller: Caller, contract_no: str, message_id: str = "MSG-1", **payload: Any):
    """The ERP's callback once the invoice exists."""
    body = {"name": "invoice_issued", "correlation": {"contract_no": contract_no}, "message_id": message_id,
            "payload": payload or {"invoice_number": "INV-2026-0001", "invoice_date": "2026-05-06"}}
    return caller.post("/api/v1/messages", json=body)
