"""Data for the fault tests: account projects whose kickoff deadlines fall at a chosen
moment of real time, and what the breach log says happened."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.api.flows import start_project
from tests.conftest import Caller
from tests.faults.stack import Stack


def start_projects(stack: Stack, sales: Caller, count: int) -> list[str]:
    """``count`` account projects signed now, their timers parked a day away (until a test
    moves the deadlines it wants: nothing fires before)."""
    signed = datetime.now(UTC).isoformat()
    ids = [start_project(sales, contract_no=f"HT-F{i:04d}", signed_at=signed)["id"] for i in range(count)]
    stack.sql("UPDATE timer SET due_at = now() + interval '1 day' WHERE fired_at IS NULL AND cancelled_at IS NULL")
    return ids


def breaches_due_at(stack: Stack, moment: datetime) -> list[str]:
    """Every pending kickoff breach deadline moved to ``moment`` (warnings cancelled, so each
    task has exactly one timer to fire); returns the task ids."""
    rows = stack.sql("UPDATE timer SET due_at = :m WHERE kind = 'sla_breach' AND fired_at IS NULL "
                     "AND cancelled_at IS NULL RETURNING task_id", m=moment)
    stack.sql("UPDATE timer SET cancelled_at = now() WHERE kind IN ('sla_warning', 'escalation') "
              "AND fired_at IS NULL AND cancelled_at IS NULL")
    stack.sql("UPDATE human_task SET due_at = :m, warn_at = NULL WHERE id = ANY(:ids)", m=moment,
              ids=[r[0] for r in rows])
    return [r[0] for r in rows]


def breaches_logged(stack: Stack) -> dict[str, int]:
    """task id -> how many breach entries the log holds for it."""
    return dict(stack.sql("SELECT task_id, count(*) FROM sla_breach_log WHERE kind = 'breach' GROUP BY task_id"))


def lateness(stack: Stack) -> dict[str, Any]:
    """How late the breaches were recorded after their deadline, in seconds."""
    rows = stack.sql("SELECT EXTRACT(EPOCH FROM recorded_at - due_at) FROM sla_breach_log WHERE kind = 'breach'")
    late = sorted(float(r[0]) for r in rows)
    if not late:
        return {"n": 0}
    return {"n": len(late), "min": round(late[0], 2), "p50": round(late[len(late) // 2], 2),
            "max": round(late[-1], 2)}


def fired_once(stack: Stack, task_ids: list[str]) -> bool:
    logged = breaches_logged(stack)
    return all(logged.get(t) == 1 for t in task_ids) and len(logged) == len(task_ids)
