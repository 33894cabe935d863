"""The account-project stages as the benchmarks drive them: who works each stage
and what they enter, for the happy path and for paths with rejection and
rework loops (same data as tests/api/flows.py STAGE_DATA, which cannot be
imported here because it pulls in the test fixtures).

Dates are relative to the moment of the run so that no SLA falls due while a
benchmark runs against the real clock (a breach would add timer jobs to what
is measured): the contract is signed "now" and go-live is a year ahead.
"""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL_DIR = REPO_ROOT / "process_models" / "account-project"
MODEL_ID = "account-project"
ENTRY_PROCESS = "account_project"

STAGE_DEPARTMENT = {"kickoff": "sales", "needs_research": "consulting", "solution_signoff": "sales",
                    "resource_preparation": "it", "delivery": "delivery", "invoicing": "finance"}
DEPARTMENTS = sorted(set(STAGE_DEPARTMENT.values()))
HAPPY_STAGES = ["kickoff", "needs_research", "solution_signoff", "resource_preparation", "delivery", "invoicing"]


def _local_today() -> date:
    return datetime.now().astimezone().date()


def go_live() -> str:
    return (_local_today() + timedelta(days=365)).isoformat()


def start_data(number: int) -> dict[str, Any]:
    signed = datetime.now(UTC).replace(microsecond=0).isoformat()
    return {"contract_no": f"BENCH-{number:06d}", "signed_at": signed, "amount": 250000, "currency": "CNY"}


def stage_data(stage: str, *, rejected: bool = False, failed: bool = False) -> dict[str, Any]:
    """The form data a person enters for ``stage``; ``rejected``/``failed`` take the loop back."""
    today = _local_today().isoformat()
    if stage == "kickoff":
        return {"kickoff_minutes": "Kickoff held with the customer's IT director", "attendees": "Li, Wang",
                "kickoff_date": today}
    if stage == "needs_research":
        return {"requirements_doc_url": "https://docs.example.com/req/1", "requirements_confirmed": True}
    if stage == "solution_signoff":
        if rejected:
            return {"customer_decision": "rejected",
                    "rejection_reason": "The customer wants the reporting module in phase one."}
        return {"customer_decision": "approved", "signed_plan_url": "https://docs.example.com/plan/1",
                "planned_go_live": go_live()}
    if stage == "resource_preparation":
        return {"environment_report_url": "https://docs.example.com/env/1"}
    if stage == "delivery":
        if failed:
            return {"acceptance_result": "failed",
                    "failure_notes": "Single sign-on fails for the customer's branch offices."}
        return {"acceptance_result": "passed", "acceptance_report_url": "https://docs.example.com/acc/1"}
    if stage == "invoicing":
        return {"invoice_number": "INV-2026-0001", "invoice_date": today, "receipt_signed": True}
    raise KeyError(stage)


def plan(rejections: int = 0, reworks: int = 0) -> list[tuple[str, str, dict[str, Any]]]:
    """(stage, department, data) for every human step of one instance:
    6 + 2 * rejections + reworks steps."""
    steps = [("kickoff", {})]
    for _ in range(rejections):
        steps += [("needs_research", {}), ("solution_signoff", {"rejected": True})]
    steps += [("needs_research", {}), ("solution_signoff", {}), ("resource_preparation", {})]
    steps += [("delivery", {"failed": True})] * reworks
    steps += [("delivery", {}), ("invoicing", {})]
    return [(stage, STAGE_DEPARTMENT[stage], stage_data(stage, **flags)) for stage, flags in steps]


def plan_of_length(steps: int) -> list[tuple[str, str, dict[str, Any]]]:
    """A plan with exactly ``steps`` human steps (at least 6), loops split between rejection and rework."""
    extra = max(0, steps - 6)
    rejections = extra // 4  # each rejection round adds 2 steps; half the extra steps go there
    return plan(rejections=rejections, reworks=extra - 2 * rejections)


def bpmn_xml() -> bytes:
    return (MODEL_DIR / "account-project.bpmn").read_bytes()
