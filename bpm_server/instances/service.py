"""Process instances as records: creating the row, locking it, writing what a step
left, and reading instances back.

Nothing here moves an instance: every command that does (start, complete,
deliver, fire, ...) is in ``bpm_server.runtime``, which calls ``record_step``
with the step's outcome. The caller owns the transaction; nothing here commits.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from bpm_server.accounts.models import Account
from bpm_server.database import new_id
from bpm_server.engine.adapter import CompiledModel, EngineError
from bpm_server.errors import Invalid, NotFound, TooLarge
from bpm_server.instances.models import ProcessInstance
from bpm_server.modeling.forms import field_errors, validator_for
from bpm_server.modeling.models import ProcessModelVersion
from bpm_server.modeling.service import form_of, start_form_name
from bpm_server.tasks.models import OPEN_STATES, HumanTask

log = logging.getLogger(__name__)


def new_instance(session: Session, version: ProcessModelVersion, account: Account, *, now: datetime,
                 started_by: str | None) -> ProcessInstance:
    """The row of an instance about to run its first step (the runtime fills in its state)."""
    instance = ProcessInstance(id=new_id(), process_model_id=version.process_model_id, version_id=version.id,
                               account_id=account.id, account=account, version=version, state="running",
                               engine_state="", data={}, steps_completed=0, started_by=started_by, created_at=now,
                               updated_at=now)
    session.add(instance)
    return instance


def start_data(account: Account, data: Mapping[str, Any]) -> dict[str, Any]:
    """What the first step sees: the caller's data plus the account's id, tier and name."""
    return {**data, "account_id": account.id, "account_tier": account.tier, "account_name": account.name}


def check_start_data(version: ProcessModelVersion, model: CompiledModel, data: Mapping[str, Any]) -> None:
    """The start data against the start event's form, if the model has one (422 per field)."""
    form_name = start_form_name(model)
    if not form_name:
        return
    errors = field_errors(validator_for((version.id, form_name), form_of(version, form_name)), dict(data))
    if errors:
        raise Invalid(f"the start data has errors in: {', '.join(sorted(errors))}", code="invalid_start_data",
                      details=errors)


def record_step(instance: ProcessInstance, *, engine_state: str, data: Mapping[str, Any], completed: bool,
                now: datetime, max_data_bytes: int) -> None:
    """Write what a step of the engine left: its state, its data, and the end if it ended."""
    instance.engine_state = engine_state
    instance.data = json_safe(data)
    check_data_size(instance.data, max_data_bytes)
    instance.updated_at = now
    if completed:
        instance.state, instance.completed_at = "completed", now


def record_error(instance: ProcessInstance, exc: EngineError, now: datetime, *, engine_state: str | None) -> None:
    """The instance stopped at an element: keep it, in error, with the element and the message."""
    log.warning("instance %s stopped at %s: %s", instance.id, exc.element_id, exc.message)
    instance.state = "error"
    instance.error = {"element_id": exc.element_id, "message": exc.message, "line": exc.line, "at": now.isoformat(),
                      "budget": exc.budget}
    instance.updated_at = now
    if engine_state is not None:
        instance.engine_state = engine_state


def check_data_size(data: dict[str, Any], limit: int) -> None:
    # Everything an instance carries is copied into each step's state and task
    # row: one oversized field would be stored again at every stage.
    size = len(json.dumps(data, default=str).encode("utf-8"))
    if size > limit:
        raise TooLarge(f"the instance's process data would be {size} bytes, over the limit "
                       f"max_process_data_bytes ({limit} bytes)", code="process_data_too_large",
                       details={"limit": "max_process_data_bytes", "max": limit, "size": size})


def json_safe(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if isinstance(v, (str, int, float, bool, list, dict, type(None)))}


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
                   state: str | None = None, page: int = 1, per_page: int = 20,
                   only: Any = None) -> tuple[list[ProcessInstance], int]:
    """``only``: a condition the caller may see (None: every instance)."""
    query = select(ProcessInstance)
    if only is not None:
        query = query.where(only)
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
