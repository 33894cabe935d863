"""Timer start events: rows of the timer table that belong to a model version, not an instance.

A version's timer start events are armed when it becomes its model's current
version (``arm_model``); the rows of the version it replaced are cancelled in
the same transaction. A firing starts one instance (the runtime does that) and
arms the next firing of a cycle (``rearm``). The rows live in the timer table
like every other timer, so the pump, the reconciler and the test clock treat
them alike; firing claims the row first, so a firing handed out twice starts
one instance.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bpm_server.database import new_id
from bpm_server.engine.adapter import events
from bpm_server.modeling.models import ProcessModel, ProcessModelVersion
from bpm_server.modeling.service import compiled
from bpm_server.sla.models import Timer

KIND = "start_timer"


def arm_model(session: Session, evaluator: Any, model_id: str, now: datetime) -> list[Timer]:
    """Make the model's start timers match its current version: the current version's
    armed (once: a date that fired is not armed again; a version made current again after
    another replaced it starts afresh), every other version's cancelled. An archived
    model has none. Call it wherever a model's current version changes."""
    process_model = session.get(ProcessModel, model_id)
    current_id = process_model.current_version_id if process_model is not None else None
    if process_model is not None and getattr(process_model, "archived_at", None) is not None:
        current_id = None
    version_ids = select(ProcessModelVersion.id).where(ProcessModelVersion.process_model_id == model_id)
    rows = list(session.scalars(select(Timer).where(Timer.kind == KIND, Timer.version_id.in_(version_ids))))
    for row in rows:
        if row.version_id != current_id and row.fired_at is None and row.cancelled_at is None:
            row.cancelled_at = now
    if current_id is None or not _needs_arming([row for row in rows if row.version_id == current_id]):
        return []
    version = session.get_one(ProcessModelVersion, current_id)
    armed = []
    for trigger in events.start_triggers(compiled(version).spec):
        if trigger.kind != "timer":
            continue
        schedule = events.start_schedule(trigger, evaluator, now)
        if schedule is None:
            continue
        armed.append(_add(session, version, trigger.element_id, schedule.first,
                          {**schedule.as_payload(), "element_id": trigger.element_id, "process_model_id": model_id},
                          now))
    session.flush()
    return armed


def _needs_arming(rows: list[Timer]) -> bool:
    """Never armed, or disarmed when another version replaced it (and now current again: a
    republished version starts its schedule afresh). Not when its last firing was its last."""
    if not rows:
        return True
    if any(row.fired_at is None and row.cancelled_at is None for row in rows):
        return False
    return max(rows, key=lambda row: row.created_at).cancelled_at is not None


def arm_all(session: Session, evaluator: Any, now: datetime) -> None:
    for model_id in session.scalars(select(ProcessModel.id)):
        arm_model(session, evaluator, model_id, now)


def is_current(session: Session, timer: Timer) -> bool:
    """Whether the timer's version is still its model's current one (else it must not start anything)."""
    process_model = session.get(ProcessModel, timer.payload.get("process_model_id"))
    return (process_model is not None and process_model.current_version_id == timer.version_id
            and getattr(process_model, "archived_at", None) is None)


def rearm(session: Session, timer: Timer, now: datetime) -> Timer | None:
    """After a firing: the cycle's next firing, if it has one."""
    following = events.next_firing(timer.due_at, float(timer.payload.get("every") or 0),
                                   int(timer.payload.get("repeat") or 0))
    if following is None:
        return None
    due, repeat = following
    version = session.get_one(ProcessModelVersion, timer.version_id)
    return _add(session, version, timer.payload["element_id"], due, {**timer.payload, "repeat": repeat}, now)


def _add(session: Session, version: ProcessModelVersion, element_id: str, due: datetime, payload: dict[str, Any],
         now: datetime) -> Timer:
    timer = Timer(id=new_id(), kind=KIND, process_instance_id=None, task_id=None, version_id=version.id,
                  due_at=due, payload=payload, created_at=now)
    session.add(timer)
    return timer
