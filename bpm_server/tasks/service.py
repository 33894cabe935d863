"""The inbox and the three things staff do with a task: look, claim, complete."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from bpm_server.audit.service import record as audit
from bpm_server.extensions import Runtime
from bpm_server.errors import Conflict, Forbidden, Invalid, NotFound
from bpm_server.identity.models import User
from bpm_server.instances import service as instances
from bpm_server.modeling.forms import field_errors, validator_for
from bpm_server.modeling.service import form_of
from bpm_server.tasks.models import OPEN_STATES, HumanTask


@dataclass(frozen=True)
class InboxFilter:
    state: str | None = None
    account_id: str | None = None
    process_model_id: str | None = None
    overdue: bool | None = None
    page: int = 1
    per_page: int = 20


def inbox(session: Session, user: User, filters: InboxFilter, now: datetime) -> tuple[list[HumanTask], int]:
    """Tasks assigned to the user, plus unclaimed tasks of the user's department; soonest due first."""
    mine = HumanTask.assignee_id == user.id
    claimable = and_(HumanTask.department_id == user.department_id, HumanTask.state == "ready")
    query = select(HumanTask).where(or_(mine, claimable))
    if filters.state:
        query = query.where(HumanTask.state == filters.state)
    else:
        query = query.where(HumanTask.state.in_(OPEN_STATES))
    if filters.account_id:
        query = query.where(HumanTask.account_id == filters.account_id)
    if filters.process_model_id:
        query = query.where(HumanTask.process_model_id == filters.process_model_id)
    if filters.overdue is True:
        query = query.where(HumanTask.due_at < now, HumanTask.state.in_(OPEN_STATES))
    elif filters.overdue is False:
        query = query.where(or_(HumanTask.due_at.is_(None), HumanTask.due_at >= now))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(HumanTask.due_at.asc().nulls_last(), HumanTask.created_at, HumanTask.id)
                           .limit(filters.per_page).offset((filters.page - 1) * filters.per_page)).all()
    return list(rows), total


def get_task(session: Session, task_id: str) -> HumanTask:
    task = session.get(HumanTask, task_id)
    if task is None:
        raise NotFound(f"task {task_id!r} does not exist", code="unknown_task")
    return task


def authorize_view(user: User, task: HumanTask) -> None:
    if user.has_role("admin", "auditor", "process_owner"):
        return
    if task.department_id != user.department_id and task.assignee_id != user.id:
        raise Forbidden(f"task {task.id} belongs to department {task.department_id!r}", code="not_your_department")


def _authorize_act(user: User, task: HumanTask) -> None:
    if user.has_role("admin"):
        return
    if not user.has_role("staff"):
        raise Forbidden("only staff act on tasks", code="role_required")
    if task.department_id != user.department_id and task.assignee_id != user.id:
        raise Forbidden(f"task {task.id} belongs to department {task.department_id!r}, "
                        f"not yours ({user.department_id!r})", code="not_your_department")


def _ensure_open(task: HumanTask, user: User) -> None:
    if task.state == "completed":
        raise Conflict(f"task {task.id} is already completed", code="already_completed")
    if task.state == "cancelled":
        raise Conflict(f"task {task.id} was cancelled", code="task_cancelled")
    if task.state == "claimed" and task.assignee_id != user.id:
        holder = task.assignee.username if task.assignee else "someone else"
        raise Conflict(f"task {task.id} is claimed by {holder}", code="claimed_by_other")


def claim(session: Session, user: User, task_id: str, now: datetime) -> HumanTask:
    task = get_task(session, task_id)
    _authorize_act(user, task)
    if task.state == "claimed" and task.assignee_id == user.id:
        raise Conflict(f"you have already claimed task {task.id}", code="already_claimed")
    _ensure_open(task, user)
    task.state, task.assignee, task.claimed_at = "claimed", user, now
    try:
        session.flush()
    except StaleDataError:
        raise Conflict(f"task {task_id} was changed by someone else at the same moment", code="concurrent_change") from None
    audit(session, actor=user.username, action="task.claim", object_type="task", object_id=task.id, now=now)
    return task


def complete(session: Session, rt: Runtime, user: User, task_id: str,
             data: Any, now: datetime) -> HumanTask:
    task = get_task(session, task_id)
    _authorize_act(user, task)
    _ensure_open(task, user)
    if not isinstance(data, dict):
        raise Invalid("data must be a JSON object with the form's fields", code="invalid_form_data",
                      details={"data": ["must be an object"]})
    instance = instances.lock_instance(session, task.process_instance_id)
    # Re-read the task now that we hold the instance: a competing request may
    # have completed it while we waited for the lock.
    session.refresh(task)
    _ensure_open(task, user)
    _validate_form(instance.version, task, data)
    try:
        instances.complete_human_task(session, rt, instance, task, data, user_id=user.id, now=now)
    except StaleDataError:
        raise Conflict(f"task {task_id} was completed by someone else at the same moment",
                       code="concurrent_change") from None
    task.assignee = task.completed_by = user
    audit(session, actor=user.username, action="task.complete", object_type="task", object_id=task.id, now=now,
          process_instance_id=task.process_instance_id, stage=task.name)
    return task


def _validate_form(version: Any, task: HumanTask, data: Mapping[str, Any]) -> None:
    schema = form_of(version, task.form_name)
    errors = field_errors(validator_for((version.id, task.form_name or ""), schema), data)
    if errors:
        fields = ", ".join(sorted(errors))
        raise Invalid(f"the form has errors in: {fields}", code="invalid_form_data", details=errors)



def form_for(session: Session, task: HumanTask) -> dict[str, Any]:
    """The JSON Schema of the task's form, as published with the instance's version."""
    return form_of(instances.get_instance(session, task.process_instance_id).version, task.form_name)
