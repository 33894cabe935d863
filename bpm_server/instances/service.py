"""Starting instances and moving them forward.

Every change to an instance goes through ``_step``: load the engine state,
apply one action, run the engine, then write the new state and the task rows
in the caller's transaction, so the two never disagree. The caller owns the
transaction; nothing here commits.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from bpm_server.accounts.service import get_account
from bpm_server.database import new_id
from bpm_server.engine.adapter import EngineError, Run
from bpm_server.errors import Conflict, Invalid, NotFound
from bpm_server.extensions import Runtime
from bpm_server.instances.models import ProcessInstance
from bpm_server.modeling.forms import field_errors, validator_for
from bpm_server.modeling.service import compiled, current_version, department_of, form_name_of, form_of, start_form_name
from bpm_server.sla import service as sla
from bpm_server.tasks.models import OPEN_STATES, HumanTask

log = logging.getLogger(__name__)

def start_instance(session: Session, rt: Runtime, *, process_model_id: str, account_id: str,
                   data: Mapping[str, Any], now: datetime, started_by: str | None) -> ProcessInstance:
    version = current_version(session, process_model_id)
    account = get_account(session, account_id)
    model = compiled(version)
    _validate_start_data(version, model, data)
    start_data = {**data, "account_id": account.id, "account_tier": account.tier, "account_name": account.name}
    instance = ProcessInstance(id=new_id(), process_model_id=process_model_id, version_id=version.id,
                               account_id=account.id, account=account, state="running", engine_state="", data={},
                               steps_completed=0,
                               started_by=started_by, created_at=now, updated_at=now)
    session.add(instance)
    try:
        run = Run.start(model, rt.evaluator, start_data)
    except EngineError as exc:
        # The diagram failed before its first human step: keep the instance,
        # in error, so the incident is visible instead of a lost start.
        _record_error(instance, exc, now)
        instance.engine_state = "{}"
        session.flush()
        return instance
    _save(session, rt, instance, run, now)
    return instance


def _validate_start_data(version: Any, model: Any, data: Mapping[str, Any]) -> None:
    form_name = start_form_name(model)
    if not form_name:
        return
    errors = field_errors(validator_for((version.id, form_name), form_of(version, form_name)), dict(data))
    if errors:
        raise Invalid(f"the start data has errors in: {', '.join(sorted(errors))}", code="invalid_start_data",
                      details=errors)


def lock_instance(session: Session, instance_id: str) -> ProcessInstance:
    """The instance row under SELECT ... FOR UPDATE (PostgreSQL; SQLite relies on lock_version)."""
    instance = session.scalar(_locking_select().where(ProcessInstance.id == instance_id))
    if instance is None:
        raise NotFound(f"process instance {instance_id!r} does not exist", code="unknown_instance")
    return instance


def lock_instance_of_task(session: Session, task_id: str) -> ProcessInstance | None:
    """The instance a task belongs to, locked as ``lock_instance`` does; None for an unknown task."""
    owner = select(HumanTask.process_instance_id).where(HumanTask.id == task_id).scalar_subquery()
    return session.scalar(_locking_select().where(ProcessInstance.id == owner))


def _locking_select() -> Any:
    # The account comes along: a step that opens a stage needs its tier, and
    # this saves a query on every completion.
    return (select(ProcessInstance).options(joinedload(ProcessInstance.account, innerjoin=True))
            .with_for_update(of=ProcessInstance).execution_options(populate_existing=True))


def complete_human_task(session: Session, rt: Runtime, instance: ProcessInstance,
                        task: HumanTask, data: Mapping[str, Any], *, user_id: str, now: datetime) -> None:
    """Record the completion and move the instance on (the caller holds the instance lock)."""
    if instance.state != "running":
        raise Conflict(f"the process instance is {instance.state}; its tasks cannot be completed",
                       code="instance_not_running")
    run = Run.load(compiled(instance.version), instance.engine_state, rt.evaluator)
    task.state, task.submitted, task.completed_at = "completed", dict(data), now
    task.completed_by_id = task.assignee_id = user_id
    instance.steps_completed += 1
    task.history_seq = instance.steps_completed
    sla.stop_clock(session, rt, task, now)
    try:
        run.complete(task.engine_task_id, data)
    except EngineError as exc:
        _record_error(instance, exc, now)
        instance.engine_state = run.dump()
        instance.updated_at = now
        session.flush()
        return
    _save(session, rt, instance, run, now)


def advance_instance(session: Session, rt: Runtime, instance: ProcessInstance, now: datetime) -> None:
    """Run whatever became runnable without a person: due timers, waiting scripts."""
    if instance.state != "running":
        return
    run = Run.load(compiled(instance.version), instance.engine_state, rt.evaluator)
    try:
        run.advance()
    except EngineError as exc:
        _record_error(instance, exc, now)
        instance.engine_state = run.dump()
        session.flush()
        return
    _save(session, rt, instance, run, now)


def complete_service_call(session: Session, rt: Runtime, instance: ProcessInstance, engine_task_id: str,
                          result: Any, now: datetime) -> bool:
    """Finish a waiting service task with the external system's answer (the caller holds the
    instance lock). False when the instance no longer waits for it (ended, or interrupted)."""
    if instance.state != "running":
        return False
    run = Run.load(compiled(instance.version), instance.engine_state, rt.evaluator)
    if engine_task_id not in run.started_service_task_ids():
        return False
    try:
        run.complete_service_call(engine_task_id, result)
    except EngineError as exc:
        _record_error(instance, exc, now)
        instance.engine_state = run.dump()
        session.flush()
        return True
    _save(session, rt, instance, run, now)
    return True


def deliver_message(session: Session, rt: Runtime, instance: ProcessInstance, *, name: str,
                    payload: Mapping[str, Any], correlation: Mapping[str, Any], now: datetime) -> None:
    """Hand a correlated message to the instance (the caller holds the lock and matched it)."""
    if instance.state != "running":
        raise Conflict(f"the process instance is {instance.state}", code="instance_not_running")
    run = Run.load(compiled(instance.version), instance.engine_state, rt.evaluator)
    try:
        run.deliver_message(name, payload, correlation)
    except EngineError as exc:
        _record_error(instance, exc, now)
        instance.engine_state = run.dump()
        session.flush()
        return
    _save(session, rt, instance, run, now)


def _record_error(instance: ProcessInstance, exc: EngineError, now: datetime) -> None:
    log.warning("instance %s stopped at %s: %s", instance.id, exc.element_id, exc.message)
    instance.state = "error"
    instance.error = {"element_id": exc.element_id, "message": exc.message, "line": exc.line, "at": now.isoformat()}
    instance.updated_at = now


def _save(session: Session, rt: Runtime, instance: ProcessInstance, run: Run, now: datetime) -> None:
    from bpm_server.erp.calls import sync_calls
    from bpm_server.messages.service import sync_subscriptions

    try:
        sync_calls(session, rt, instance, run, now)  # may move the run on (systems not configured)
    except EngineError as exc:
        _record_error(instance, exc, now)
    instance.engine_state = run.dump()
    instance.data = _json_safe(run.data)
    instance.updated_at = now
    if run.is_completed:
        instance.state, instance.completed_at = "completed", now
    _sync_tasks(session, rt, instance, run, now)
    sync_subscriptions(session, instance, run, now)
    sla.arm_engine_timer(session, instance, None if run.is_completed else run.next_timer_due(), now,
                         model_has_timers=run.model.has_timer_events)
    session.flush()


def _sync_tasks(session: Session, rt: Runtime, instance: ProcessInstance, run: Run, now: datetime) -> None:
    open_rows = {row.engine_task_id: row for row in session.scalars(
        select(HumanTask).where(HumanTask.process_instance_id == instance.id, HumanTask.state.in_(OPEN_STATES)))}
    ready = {t.engine_task_id: t for t in run.ready_tasks()}
    for engine_id, row in open_rows.items():
        if engine_id not in ready:  # interrupted by an event or the instance ended
            row.state = "cancelled"
            sla.stop_clock(session, rt, row, now)
    model = compiled(instance.version)
    for engine_id, ready_task in ready.items():
        if engine_id in open_rows:
            continue
        spec = model.human_tasks[ready_task.name]
        row = HumanTask(id=new_id(), process_instance_id=instance.id, engine_task_id=engine_id,
                        name=spec.name, title=spec.title, department_id=department_of(spec), lane=spec.lane,
                        form_name=form_name_of(spec), instructions=spec.instructions, state="ready",
                        account_id=instance.account_id, process_model_id=instance.process_model_id,
                        data=_json_safe(ready_task.data), created_at=now)
        session.add(row)
        sla.start_clock(session, rt, row, instance, now)


def _json_safe(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if isinstance(v, (str, int, float, bool, list, dict, type(None)))}


def get_instance(session: Session, instance_id: str) -> ProcessInstance:
    instance = session.get(ProcessInstance, instance_id)
    if instance is None:
        raise NotFound(f"process instance {instance_id!r} does not exist", code="unknown_instance")
    return instance


def instance_tasks(session: Session, instance_id: str) -> tuple[list[HumanTask], list[HumanTask]]:
    """(open tasks by due date, completed tasks in completion order)."""
    rows = session.scalars(select(HumanTask).where(HumanTask.process_instance_id == instance_id)
                           .order_by(HumanTask.created_at, HumanTask.id)).all()
    return ([r for r in rows if r.state in OPEN_STATES],
            sorted((r for r in rows if r.state == "completed"), key=lambda r: r.history_seq or 0))


def list_instances(session: Session, *, account_id: str | None = None, process_model_id: str | None = None,
                   state: str | None = None, page: int = 1, per_page: int = 20) -> tuple[list[ProcessInstance], int]:
    query = select(ProcessInstance)
    if account_id:
        query = query.where(ProcessInstance.account_id == account_id)
    if process_model_id:
        query = query.where(ProcessInstance.process_model_id == process_model_id)
    if state:
        query = query.where(ProcessInstance.state == state)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(query.order_by(ProcessInstance.created_at.desc(), ProcessInstance.id)
                           .limit(per_page).offset((page - 1) * per_page)).all()
    return list(rows), total or 0


def validate_start_data(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise Invalid("data must be a JSON object", details={"data": ["must be an object"]})
    return data
