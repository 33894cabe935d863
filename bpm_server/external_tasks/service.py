"""External tasks as Camunda 7 workers see them: fetch and lock by topic, complete,
report a failure (with the retries left), extend a lock.

A lock is a moment (``locked_until``) on the row, not a held database lock: when it
passes, the task is fetchable again by any worker, and the worker that held it
can no longer complete it (409). Completing moves the instance on, which is the
runtime's job (``runtime.commands.complete_external_task``); this module only
checks and records. The caller owns the transaction.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from bpm_server.audit.service import record as audit
from bpm_server.database import new_id, rows_changed
from bpm_server.engine.adapter import ServiceCall, topic_of
from bpm_server.errors import Conflict, NotFound
from bpm_server.extensions import Deployment
from bpm_server.external_tasks.models import ExternalTask
from bpm_server.identity.models import User
from bpm_server.instances.models import ProcessInstance
from bpm_server.notifications.service import Message
from bpm_server.notifications.texts import render

log = logging.getLogger(__name__)

MAX_TASKS_PER_FETCH = 100


def is_external(call: ServiceCall) -> bool:
    return topic_of(call.operation) is not None


def apply_step(session: Session, instance: ProcessInstance, *, started: list[ServiceCall],
               closed: Iterable[str], now: datetime) -> None:
    """The external-task side of one step (called by the runtime): a row for every
    external task the step started; open rows whose engine task no longer waits
    (interrupted by a boundary event, say) are cancelled, so no worker gets them."""
    for call in started:
        session.add(ExternalTask(id=new_id(), process_instance_id=instance.id,
                                 process_model_id=instance.process_model_id, engine_task_id=call.engine_task_id,
                                 element_id=call.element_id, topic=topic_of(call.operation) or "",
                                 variables=call.params, state="open", available_at=now, created_at=now,
                                 updated_at=now))
    gone = list(closed)
    if gone:
        session.execute(update(ExternalTask).where(
            ExternalTask.process_instance_id == instance.id, ExternalTask.engine_task_id.in_(gone),
            ExternalTask.state.in_(("open", "incident"))).values(state="cancelled", worker_id=None,
                                                                 locked_until=None, updated_at=now))


def fetch_and_lock(session: Session, *, worker_id: str, topics: Mapping[str, int], max_tasks: int,
                   now: datetime) -> list[ExternalTask]:
    """Lock up to ``max_tasks`` fetchable tasks of the topics (topic -> lock in ms) for the worker.

    Two workers fetching at once never get the same task: on PostgreSQL the rows
    are read with SKIP LOCKED, and the lock is taken by a compare-and-set on the
    row as it was read (SQLite serializes writers anyway)."""
    fetchable = and_(ExternalTask.state == "open", ExternalTask.topic.in_(list(topics)),
                     ExternalTask.available_at <= now,
                     or_(ExternalTask.locked_until.is_(None), ExternalTask.locked_until <= now))
    candidates = session.scalars(select(ExternalTask).where(fetchable).order_by(ExternalTask.created_at,
                                                                                ExternalTask.id)
                                 .limit(max_tasks).with_for_update(skip_locked=True)).all()
    locked = []
    for task in candidates:
        until = now + timedelta(milliseconds=topics[task.topic])
        if rows_changed(session, update(ExternalTask).where(ExternalTask.id == task.id, fetchable)
                        .values(worker_id=worker_id, locked_until=until, updated_at=now)):
            session.refresh(task)
            locked.append(task)
    return locked


def get(session: Session, task_id: str) -> ExternalTask:
    task = session.get(ExternalTask, task_id)
    if task is None:
        raise NotFound(f"external task {task_id!r} does not exist", code="unknown_external_task")
    return task


def check_lock(session: Session, task_id: str, worker_id: str, now: datetime) -> ExternalTask:
    """The task, if ``worker_id`` holds its lock now; 409 naming why otherwise."""
    task = session.get(ExternalTask, task_id, populate_existing=True)
    if task is None:
        raise NotFound(f"external task {task_id!r} does not exist", code="unknown_external_task")
    if task.state != "open":
        raise Conflict(f"external task {task_id} is {task.state}", code="external_task_not_open")
    if task.worker_id != worker_id or task.locked_until is None:
        holder = f"worker {task.worker_id!r}" if task.worker_id and task.locked_until else "no worker"
        raise Conflict(f"external task {task_id} is not locked by worker {worker_id!r} (it is locked by {holder})",
                       code="not_lock_owner")
    if task.locked_until <= now:
        raise Conflict(f"the lock of worker {worker_id!r} on external task {task_id} expired at "
                       f"{task.locked_until.isoformat()}; fetch and lock it again", code="lock_expired")
    return task


def record_completion(session: Session, task: ExternalTask, worker_id: str, now: datetime) -> None:
    task.state, task.completed_at, task.locked_until, task.updated_at = "completed", now, None, now
    audit(session, actor=worker_id, action="external_task.complete", object_type="external_task", object_id=task.id,
          now=now, process_instance_id=task.process_instance_id, element_id=task.element_id, topic=task.topic)


def extend_lock(session: Session, task_id: str, worker_id: str, lock_ms: int, now: datetime) -> ExternalTask:
    task = check_lock(session, task_id, worker_id, now)
    task.locked_until, task.updated_at = now + timedelta(milliseconds=lock_ms), now
    session.flush()
    return task


def report_failure(session: Session, rt: Deployment, task_id: str, *, worker_id: str, error_message: str,
                   retries: int, retry_timeout_ms: int, now: datetime) -> ExternalTask:
    """The worker failed: with retries left the task is fetchable again after the timeout;
    with none, it becomes an incident (admins are told) until someone sets retries again."""
    task = check_lock(session, task_id, worker_id, now)
    task.error_message, task.retries, task.worker_id, task.locked_until = error_message, retries, None, None
    task.updated_at = now
    if retries > 0:
        task.available_at = now + timedelta(milliseconds=retry_timeout_ms)
    else:
        task.state, task.incident_at = "incident", now
        _raise_incident(session, rt, task, worker_id, now)
    session.flush()
    return task


def set_retries(session: Session, task_id: str, retries: int, *, actor: str, now: datetime) -> ExternalTask:
    """Give an incident (or an open task) new retries; an incident becomes fetchable again."""
    task = get(session, task_id)
    if task.state not in ("open", "incident"):
        raise Conflict(f"external task {task_id} is {task.state}", code="external_task_not_open")
    if task.state == "incident" and retries > 0:
        task.state, task.available_at = "open", now
        audit(session, actor=actor, action="incident.retry", object_type="external_task", object_id=task.id,
              now=now, process_instance_id=task.process_instance_id)
    task.retries, task.updated_at = retries, now
    session.flush()
    return task


def _raise_incident(session: Session, rt: Deployment, task: ExternalTask, worker_id: str, now: datetime) -> None:
    log.warning("incident: external task %s (%s) of instance %s failed: %s", task.id, task.topic,
                task.process_instance_id, task.error_message)
    audit(session, actor=worker_id, action="incident.open", object_type="external_task", object_id=task.id,
          now=now, process_instance_id=task.process_instance_id, element_id=task.element_id,
          error=task.error_message)
    params = {"variant": "external_task", "topic": task.topic, "worker": worker_id, "task_id": task.id,
              "element": task.element_id, "instance": task.process_instance_id, "error": task.error_message}
    message = Message("incident", *render("incident", params), params=params)  # worded per recipient
    for person in session.scalars(select(User).where(User.active)):
        if person.has_role("admin"):
            rt.notifier.notify(session, person, message, now)


def withdraw(session: Session, instance_id: str, now: datetime) -> int:
    """The instance was cancelled: its external tasks are not handed out any more."""
    return rows_changed(session, update(ExternalTask).where(
        ExternalTask.process_instance_id == instance_id, ExternalTask.state.in_(("open", "incident")))
        .values(state="cancelled", worker_id=None, locked_until=None, updated_at=now))


def list_tasks(session: Session, *, topic: str | None = None, state: str | None = None,
               process_instance_id: str | None = None, page: int = 1,
               per_page: int = 50) -> tuple[list[ExternalTask], int]:
    query = select(ExternalTask)
    for column, value in ((ExternalTask.topic, topic), (ExternalTask.state, state),
                          (ExternalTask.process_instance_id, process_instance_id)):
        if value:
            query = query.where(column == value)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(ExternalTask.created_at, ExternalTask.id)
                           .limit(per_page).offset((page - 1) * per_page)).all()
    return list(rows), total


def view(task: ExternalTask, now: datetime) -> dict[str, Any]:
    """What a worker and the API see of a task."""
    locked = task.locked_until is not None and task.locked_until > now
    return {"id": task.id, "topic": task.topic, "process_instance_id": task.process_instance_id,
            "process_model_id": task.process_model_id, "element_id": task.element_id, "state": task.state,
            "worker_id": task.worker_id if locked else None, "lock_expires_at": task.locked_until if locked else None,
            "retries": task.retries, "error_message": task.error_message, "variables": task.variables,
            "created_at": task.created_at}
