"""Stopping named clocks (bpm_server.sla.named_clocks) where the work happens.

A response clock stops at a stage's first action: claim, transfer, a comment on
the stage (the task domain calls ``first_action``). Kept apart from the clock
arithmetic so the task domain can call it without importing escalation ladders.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bpm_server.sla import breaches
from bpm_server.sla.models import NamedClock, Timer
from bpm_server.tasks.models import HumanTask

#: Timer kinds of named clocks; payload {"clock": name, "clock_kind": kind, "clock_id": row id}.
WARNING, BREACH, ESCALATION = "clock_warning", "clock_breach", "clock_escalation"
TIMER_KINDS = (WARNING, BREACH, ESCALATION)


def cancel_clock_timers(session: Session, clock: NamedClock, now: datetime) -> None:
    pending = session.scalars(select(Timer).where(
        Timer.process_instance_id == clock.process_instance_id, Timer.kind.in_(TIMER_KINDS),
        Timer.fired_at.is_(None), Timer.cancelled_at.is_(None)))
    for timer in pending:  # an instance has a handful; the payload names the clock
        if timer.payload.get("clock_id") == clock.id:
            timer.cancelled_at = now


def stop(session: Session, clock: NamedClock, task: HumanTask | None, how: str, actor: str | None,
         now: datetime, *, late_hours: float | None = None) -> None:
    """The clock has met its goal (or its stage or instance ended): no more timers; a clock
    that had breached gets a follow-up entry in the breach log saying when it stopped."""
    clock.state, clock.running_since, clock.stopped_at, clock.stopped_by = "stopped", None, now, how
    cancel_clock_timers(session, clock, now)
    if clock.breached_at is None or task is None or how not in ("claim", "transfer", "comment", "completed"):
        return
    details: dict[str, object] = {"clock": clock.name, "completed_at": now.isoformat(), "completed_by": actor,
                                  "stopped_by": how}
    if late_hours is not None:
        details["late_working_hours"] = late_hours
    breaches.append(session, kind="completion", breach_id=clock.breach_id, task=task, assignee=actor,
                    due_at=clock.due_at or clock.breached_at, breached_at=clock.breached_at, now=now,
                    details=details, clock_kind=clock.kind)


def first_action(session: Session, task: HumanTask, how: str, actor: str, now: datetime) -> None:
    """Someone acted on the stage (claim, transfer, comment): its response clocks stop."""
    if not task.response_clock:  # most stages have none: no query
        return
    task.response_clock = False
    for clock in session.scalars(select(NamedClock).where(NamedClock.task_id == task.id,
                                                          NamedClock.kind == "response",
                                                          NamedClock.state != "stopped")):
        stop(session, clock, task, how, actor, now)
