"""Timer rows: the durable record of every moment the server must act on.

SLA warnings and breaches, escalation rungs, BPMN timers, outbound retries and
escalation-started processes are all rows here (what, for which instance and
task, due when, fired when). The database is the truth; the queue only
carries wake-ups. Firing first *claims* the row (``claim``), so a timer handed
out twice acts once. What a claimed timer then does is decided by its kind, in
``bpm_server.runtime.commands.fire_timer``.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bpm_server.database import new_id, rows_changed
from bpm_server.sla.models import Timer


def add_timer(session: Session, kind: str, instance_id: str | None, task_id: str | None, due_at: datetime,
              payload: dict[str, Any], now: datetime) -> Timer:
    timer = Timer(id=new_id(), kind=kind, process_instance_id=instance_id, task_id=task_id, due_at=due_at,
                  payload=payload, created_at=now)
    session.add(timer)
    return timer


def cancel_timers(session: Session, *, now: datetime, task_id: str | None = None, instance_id: str | None = None,
                  kind: str | None = None) -> None:
    query = update(Timer).where(Timer.fired_at.is_(None), Timer.cancelled_at.is_(None))
    if task_id:
        query = query.where(Timer.task_id == task_id)
    if instance_id:
        query = query.where(Timer.process_instance_id == instance_id)
    if kind:
        query = query.where(Timer.kind == kind)
    session.execute(query.values(cancelled_at=now))


def arm_engine_timer(session: Session, instance_id: str, due: datetime | None, now: datetime) -> None:
    """Keep one pending row for the instance's earliest BPMN timer (boundary, catch, cycle)."""
    pending = session.scalar(select(Timer).where(Timer.process_instance_id == instance_id, Timer.kind == "bpmn",
                                                 Timer.fired_at.is_(None), Timer.cancelled_at.is_(None)))
    if pending is not None and due is not None and pending.due_at == due:
        return
    if pending is not None:
        pending.cancelled_at = now
    if due is not None:
        add_timer(session, "bpmn", instance_id, None, due, {}, now)


def overdue_engine_timer(session: Session, instance_id: str, now: datetime) -> Timer | None:
    """The instance's pending BPMN timer if its moment has passed but it has not fired yet
    (the pump is a moment behind): it came first, so it fires before anything else."""
    return session.scalar(select(Timer).where(Timer.process_instance_id == instance_id, Timer.kind == "bpmn",
                                              Timer.fired_at.is_(None), Timer.cancelled_at.is_(None),
                                              Timer.due_at < now))


def claim(session: Session, timer_id: str, now: datetime) -> Timer | None:
    """Mark the timer fired, atomically; None when it already fired or was cancelled."""
    claimed = rows_changed(session, update(Timer).where(Timer.id == timer_id, Timer.fired_at.is_(None),
                                                        Timer.cancelled_at.is_(None)).values(fired_at=now))
    if not claimed:
        return None
    return session.get(Timer, timer_id)


def due_timers(session: Session, now: datetime, limit: int = 500, *, enqueued_before: datetime | None = None,
               only_fresh: bool = False) -> list[Timer]:
    """Unfired timers due by ``now``, oldest first: all of them; or those never handed
    to the queue (``only_fresh``) or handed out before ``enqueued_before`` as well."""
    query = select(Timer).where(Timer.fired_at.is_(None), Timer.cancelled_at.is_(None), Timer.due_at <= now)
    if only_fresh:
        query = query.where(Timer.enqueued_at.is_(None))
    elif enqueued_before is not None:
        query = query.where((Timer.enqueued_at.is_(None)) | (Timer.enqueued_at < enqueued_before))
    return list(session.scalars(query.order_by(Timer.due_at, Timer.created_at).limit(limit)))


def mark_enqueued(session: Session, timer_ids: list[str], now: datetime) -> None:
    """Note that these timers were handed to the queue (the pump re-hands them after retry_after)."""
    if timer_ids:
        session.execute(update(Timer).where(Timer.id.in_(timer_ids)).values(enqueued_at=now)
                        .execution_options(synchronize_session=False))


def next_due(session: Session, retry_after: timedelta | None = None) -> datetime | None:
    """When the pump has something to do next: the earliest timer not yet handed
    to the queue, or (with ``retry_after``) the moment a handed-out one that
    has still not fired is to be handed out again."""
    pending = (Timer.fired_at.is_(None), Timer.cancelled_at.is_(None))
    if retry_after is None:
        return session.scalar(select(Timer.due_at).where(*pending).order_by(Timer.due_at).limit(1))
    fresh = session.scalar(select(Timer.due_at).where(*pending, Timer.enqueued_at.is_(None))
                           .order_by(Timer.due_at).limit(1))
    handed = session.scalar(select(func.min(Timer.enqueued_at)).where(*pending, Timer.enqueued_at.is_not(None)))
    moments = [m for m in (fresh, handed + retry_after if handed else None) if m is not None]
    return min(moments) if moments else None


def hold(session: Session, instance_id: str, now: datetime) -> list[dict[str, Any]]:
    """Take an instance's pending timers off the schedule (it is suspended) and return
    them, to be put back by ``restore`` with their own due moments."""
    pending = list(session.scalars(select(Timer).where(
        Timer.process_instance_id == instance_id, Timer.fired_at.is_(None), Timer.cancelled_at.is_(None))
        .order_by(Timer.due_at)))
    for timer in pending:
        timer.cancelled_at = now
    return [{"kind": t.kind, "task_id": t.task_id, "due_at": t.due_at.isoformat(), "payload": t.payload}
            for t in pending]


def restore(session: Session, instance_id: str, held: list[dict[str, Any]], now: datetime) -> None:
    """Put held timers back; those that fell due meanwhile fire at once, in due order."""
    for timer in held:
        add_timer(session, timer["kind"], instance_id, timer["task_id"], datetime.fromisoformat(timer["due_at"]),
                  timer["payload"], now)
