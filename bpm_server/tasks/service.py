"""The inbox and the three things staff do with a task: look, claim, complete."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, union_all
from sqlalchemy.orm import Session, defer
from sqlalchemy.orm.exc import StaleDataError

from bpm_server.audit.service import record as audit
from bpm_server.errors import Conflict, Forbidden, Invalid, NotFound
from bpm_server.extensions import Runtime
from bpm_server.identity.models import User
from bpm_server.instances import service as instances
from bpm_server.instances.models import ProcessInstance
from bpm_server.modeling.forms import EMPTY_FORM, field_errors, validator_for
from bpm_server.modeling.service import form_of, forms_of_version
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
    halves = _inbox_halves(user, filters, now)
    if not halves:
        return [], 0
    order = (HumanTask.due_at.asc().nulls_last(), HumanTask.created_at, HumanTask.id)
    # The page is taken from each half of the inbox separately, each read in
    # due-date order from its own index and cut at the end of the page, then
    # merged: a page then costs the same with 100 or 100,000 open tasks in the
    # department, instead of fetching and sorting all of them (and PostgreSQL's
    # generic plan for the OR form went parallel, ~30 ms at 1M rows; see
    # bench/inbox_scale.py). A task in both halves appears once (IN).
    window = filters.page * filters.per_page
    cut = [select(HumanTask.id).where(half).order_by(*order).limit(window).subquery() for half in halves]
    page_ids = union_all(*(select(half.c.id) for half in cut))
    # An inbox row shows neither the process data a task starts from nor what was
    # submitted: leave those JSON documents in the database.
    rows = list(session.scalars(select(HumanTask).where(HumanTask.id.in_(page_ids)).order_by(*order)
                                .options(defer(HumanTask.data), defer(HumanTask.submitted),
                                         defer(HumanTask.instructions))
                                .limit(filters.per_page).offset((filters.page - 1) * filters.per_page)))
    if filters.page == 1 and len(rows) < filters.per_page:
        return rows, len(rows)  # the whole inbox fits on the first page: no need to count
    total = session.scalar(select(func.count()).select_from(
        select(HumanTask.id).where(or_(*halves)).subquery())) or 0
    return rows, total


def _inbox_halves(user: User, filters: InboxFilter, now: datetime) -> list[Any]:
    """The two halves of an inbox as WHERE clauses: the user's own tasks, and
    the department's unclaimed ones; each states its task states exactly once,
    so PostgreSQL estimates its size right and reads it in index order."""
    common = []
    if filters.account_id:
        common.append(HumanTask.account_id == filters.account_id)
    if filters.process_model_id:
        common.append(HumanTask.process_model_id == filters.process_model_id)
    if filters.overdue is True:
        common.append(HumanTask.due_at < now)
    elif filters.overdue is False:
        common.append(or_(HumanTask.due_at.is_(None), HumanTask.due_at >= now))
    states = [filters.state] if filters.state else list(OPEN_STATES)
    if filters.overdue is True:  # only open work can be overdue
        states = [s for s in states if s in OPEN_STATES]
    halves = []
    if states:
        in_states = HumanTask.state == states[0] if len(states) == 1 else HumanTask.state.in_(states)
        halves.append(and_(HumanTask.assignee_id == user.id, in_states, *common))
    if "ready" in states:
        halves.append(and_(HumanTask.department_id == user.department_id, HumanTask.state == "ready", *common))
    return halves


def get_task(session: Session, task_id: str, *, fresh: bool = False) -> HumanTask:
    """The task; ``fresh`` reads the row again even if this session holds it already."""
    task = session.get(HumanTask, task_id, populate_existing=fresh)
    if task is None:
        raise NotFound(f"task {task_id!r} does not exist", code="unknown_task")
    return task


def get_task_and_version(session: Session, task_id: str) -> HumanTask:
    """The task, noting its instance's version for ``form_for`` in the same statement."""
    row = session.execute(select(HumanTask, ProcessInstance.version_id)
                          .join(ProcessInstance, ProcessInstance.id == HumanTask.process_instance_id)
                          .where(HumanTask.id == task_id)).first()
    if row is None:
        raise NotFound(f"task {task_id!r} does not exist", code="unknown_task")
    task, version_id = row
    _versions_seen(session)[task.process_instance_id] = version_id
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
    task = get_task_and_version(session, task_id)
    _authorize_act(user, task)
    if task.state == "claimed" and task.assignee_id == user.id:
        raise Conflict(f"you have already claimed task {task.id}", code="already_claimed")
    _ensure_open(task, user)
    task.state, task.assignee, task.claimed_at = "claimed", user, now
    audit(session, actor=user.username, action="task.claim", object_type="task", object_id=task.id, now=now)
    try:
        session.flush()  # here, not at commit, so a lost race becomes a 409 (the audit row goes with it)
    except StaleDataError:
        raise Conflict(f"task {task_id} was changed by someone else at the same moment",
                       code="concurrent_change") from None
    return task


def complete(session: Session, rt: Runtime, user: User, task_id: str,
             data: Any, now: datetime) -> HumanTask:
    # Lock the task's instance first, then read the task: read under the lock,
    # it cannot be one a competing request completed while we waited.
    instance = instances.lock_instance_of_task(session, task_id)
    task = get_task(session, task_id, fresh=True)
    _authorize_act(user, task)
    _ensure_open(task, user)
    if not isinstance(data, dict):
        raise Invalid("data must be a JSON object with the form's fields", code="invalid_form_data",
                      details={"data": ["must be an object"]})
    if instance is None:  # the foreign key makes this unreachable short of a damaged database
        raise NotFound(f"the process instance of task {task_id!r} does not exist", code="unknown_instance")
    _versions_seen(session)[instance.id] = instance.version_id  # for form_for, after the instance is released
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



def _versions_seen(session: Session) -> dict[str, str]:
    """Instance id -> version id for instances this session has locked (lives as long as the session)."""
    return session.info.setdefault("bpm_instance_versions", {})


def form_for(session: Session, task: HumanTask) -> dict[str, Any]:
    """The JSON Schema of the task's form, as published with the instance's version."""
    if not task.form_name:
        return EMPTY_FORM
    # Only the version id is needed: known when this session locked the
    # instance (complete), else read that one column (claim, view), instead
    # of loading the instance with its version's BPMN text.
    version_id = _versions_seen(session).get(task.process_instance_id) or session.scalar(
        select(ProcessInstance.version_id).where(ProcessInstance.id == task.process_instance_id))
    if version_id is None:
        raise NotFound(f"process instance {task.process_instance_id!r} does not exist", code="unknown_instance")
    return forms_of_version(session, version_id).get(task.form_name, EMPTY_FORM)
