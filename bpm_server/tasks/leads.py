"""What department leads do: reassign tasks (one or many, with a reason, into
the audit trail), see what will breach within the next N working days grouped
by account. An absent person's work goes to their delegate (``tasks.delegation``),
applied as each reassigned task is written.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bpm_server.accounts.models import Account
from bpm_server.audit.service import record as audit
from bpm_server.errors import Conflict, Forbidden, Invalid, NotFound
from bpm_server.extensions import Deployment
from bpm_server.identity import service as identity
from bpm_server.identity.models import Department, User
from bpm_server.tasks.inbox import SlaGlance, glances
from bpm_server.tasks.models import OPEN_STATES, HumanTask

MAX_BATCH = 200


def led_departments(session: Session, user: User) -> list[str]:
    """Departments the user leads (admins act as lead of every department)."""
    if user.has_role("admin"):
        return list(session.scalars(select(Department.id).order_by(Department.id)))
    return list(session.scalars(select(Department.id).where(Department.lead_user_id == user.id)
                                .order_by(Department.id)))


def _department_for(session: Session, lead: User, department_id: str | None) -> str:
    led = led_departments(session, lead)
    if not led:
        raise Forbidden("only department leads can do this", code="not_department_lead")
    if department_id is None:
        return lead.department_id if lead.department_id in led else led[0]
    if department_id not in led:
        raise Forbidden(f"you do not lead department {department_id!r}", code="not_department_lead")
    return department_id


def reassign(session: Session, lead: User, task_ids: Iterable[str], *, to: str | None, reason: str,
             now: datetime) -> list[HumanTask]:
    """Give the tasks to ``to`` (a username), or back to their department's queue when ``to`` is None.
    All or nothing: one task that cannot move stops the whole batch."""
    ids = list(dict.fromkeys(task_ids))
    if not ids:
        raise Invalid("name at least one task", code="no_tasks", details={"task_ids": ["must not be empty"]})
    if len(ids) > MAX_BATCH:
        raise Invalid(f"at most {MAX_BATCH} tasks at once", code="too_many_tasks",
                      details={"task_ids": [f"at most {MAX_BATCH}"]})
    if not reason or not reason.strip():
        raise Invalid("say why the tasks are reassigned", code="reason_required",
                      details={"reason": ["this field is required"]})
    target = None
    if to:
        target = identity.find_user(session, to)
        if target is None or not target.active:
            raise Invalid(f"no active user {to!r}", code="unknown_user", details={"to": ["no such active user"]})
        if not target.has_role("staff"):
            raise Invalid(f"{to} is not staff and cannot work on tasks", code="not_staff",
                          details={"to": ["must be a staff member"]})
    led = set(led_departments(session, lead))
    if not led:
        raise Forbidden("only department leads can reassign tasks", code="not_department_lead")
    rows = {t.id: t for t in session.scalars(select(HumanTask).where(HumanTask.id.in_(ids)))}
    for task_id in ids:
        task = rows.get(task_id)
        if task is None:
            raise NotFound(f"task {task_id!r} does not exist", code="unknown_task")
        if task.department_id not in led:
            raise Forbidden(f"task {task.id} belongs to department {task.department_id!r}, which you do not lead",
                            code="not_department_lead")
        if task.state not in OPEN_STATES:
            raise Conflict(f"task {task.id} is {task.state}", code="task_closed")
    moved = []
    for task_id in ids:
        task = rows[task_id]
        before = task.assignee.username if task.assignee else None
        if target is None:
            task.assignee, task.state, task.claimed_at = None, "ready", None
        else:
            task.assignee, task.state, task.claimed_at = target, "claimed", now
        session.flush()  # a delegation may redirect the task here (tasks.delegation)
        after = task.assignee.username if task.assignee else None
        audit(session, actor=lead.username, action="task.reassign", object_type="task", object_id=task.id, now=now,
              before=before, after=after, requested=to, reason=reason.strip(),
              process_instance_id=task.process_instance_id, stage=task.name)
        moved.append(task)
    return moved


# --------------------------------------------------------------------------- what will breach


@dataclass
class AccountForecast:
    account_id: str
    account_name: str
    tier: str | None
    items: list[tuple[HumanTask, SlaGlance]] = field(default_factory=list)

    @property
    def breached(self) -> int:
        return sum(1 for _, g in self.items if g.state == "breached")


def forecast(session: Session, rt: Deployment, lead: User, *, days: int, now: datetime,
             department_id: str | None = None) -> tuple[str, datetime, list[AccountForecast]]:
    """The department's open tasks already breached or due within ``days``
    working days, grouped by account (accounts with the most urgent task first)."""
    if days < 0 or days > 60:
        raise Invalid("days must be between 0 and 60", code="invalid_days", details={"days": ["0 to 60"]})
    department = _department_for(session, lead, department_id)
    horizon = rt.calendar.add_working_time(now, days * rt.calendar.minutes_per_day)
    rows = list(session.scalars(select(HumanTask).where(
        HumanTask.department_id == department, HumanTask.state.in_(OPEN_STATES),
        HumanTask.due_at.is_not(None), HumanTask.due_at <= horizon)
        .order_by(HumanTask.due_at, HumanTask.id)))
    states = glances(session, rows, rt.calendar, now)
    accounts = {a.id: a for a in session.scalars(select(Account).where(
        Account.id.in_({t.account_id for t in rows})))} if rows else {}
    groups: dict[str, AccountForecast] = {}
    for task in rows:
        account = accounts.get(task.account_id)
        group = groups.setdefault(task.account_id, AccountForecast(
            task.account_id, account.name if account else task.account_id, account.tier if account else None))
        group.items.append((task, states[task.id]))
    return department, horizon, list(groups.values())


def open_department_tasks(session: Session, department_id: str, limit: int = MAX_BATCH) -> list[HumanTask]:
    return list(session.scalars(select(HumanTask).where(
        HumanTask.department_id == department_id, HumanTask.state.in_(OPEN_STATES))
        .order_by(HumanTask.due_at.asc().nulls_last(), HumanTask.created_at, HumanTask.id).limit(limit)))


def department_people(session: Session, department_id: str) -> list[User]:
    return list(session.scalars(select(User).where(User.department_id == department_id, User.active)
                                .order_by(User.username)))
