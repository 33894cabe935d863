"""The timeline of a stage's SLA clock, and of an instance: every clock event in order,
with who and why.

Nothing here is stored twice: the events are read from where each is already
recorded (the task row, the clock and its pause/resume/due-moved events, fired
warning timers, the breach log), so the timeline can never disagree with them.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bpm_server.instances.models import ProcessInstance
from bpm_server.sla.calendar import BusinessCalendar
from bpm_server.sla.models import BreachEntry, SlaClock, SlaClockEvent, Timer
from bpm_server.tasks.models import HumanTask

# In this order when two events of a stage share a moment: a stage is ready before its
# clock runs, warned before it breaches, breached before the ladder acts on it.
KINDS = ("started", "ready", "clock_started", "claimed", "pause", "resume", "due_moved", "warning", "breach",
         "escalation", "completed", "cancelled", "finished")
_RANK = {kind: rank for rank, kind in enumerate(KINDS)}


@dataclass(frozen=True)
class ClockEvent:
    at: datetime
    kind: str  # one of KINDS
    actor: str | None = None
    task_id: str | None = None
    stage: str | None = None  # the stage's title
    reason: str | None = None  # why: a pause reason, the calendar revision that moved a due date
    due_at: datetime | None = None  # the due moment from this event on (clock started, paused, moved)
    length: str | None = None  # the SLA as written ("2 working days"), when the clock started
    working_seconds: int | None = None  # the same length in working seconds of the calendar
    level: int | None = None  # an escalation's rung
    actions: tuple[str, ...] = ()  # what an escalation rung did
    clock: str | None = None  # a named clock's name (slaClock.<name>); None for the stage's own SLA
    clock_kind: str | None = None  # its kind: response, resolution, ola, end_to_end

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at, "kind": self.kind, "actor": self.actor, "task_id": self.task_id, "stage": self.stage,
                "reason": self.reason, "due_at": self.due_at, "length": self.length,
                "working_seconds": self.working_seconds, "level": self.level,
                "actions": list(self.actions), "clock": self.clock, "clock_kind": self.clock_kind}


def task_timeline(session: Session, task: HumanTask, calendar: BusinessCalendar) -> list[ClockEvent]:
    """One stage: ready, its clock, claims, pauses, moves, warning, breach, each rung, the end."""
    return _ordered(_events(session, [task], {task.process_instance_id}, calendar), [task])


def instance_timeline(session: Session, instance: ProcessInstance, calendar: BusinessCalendar,
                      tasks: Iterable[HumanTask] | None = None) -> list[ClockEvent]:
    """Every stage of the instance, between its start and its end."""
    rows = list(tasks) if tasks is not None else list(session.scalars(
        select(HumanTask).where(HumanTask.process_instance_id == instance.id)
        .order_by(HumanTask.created_at, HumanTask.id)))
    events = [ClockEvent(instance.created_at, "started", instance.started_by)]
    events += _events(session, rows, {instance.id}, calendar)
    # Warnings of the instance's own clocks (ola, end_to_end): their timers belong to no one stage.
    for timer in session.scalars(select(Timer).where(Timer.process_instance_id == instance.id,
                                                     Timer.task_id.is_(None), Timer.kind == "clock_warning",
                                                     Timer.fired_at.is_not(None))):
        events.append(ClockEvent(timer.due_at, "warning", clock=timer.payload.get("clock"),
                                 clock_kind=timer.payload.get("clock_kind")))
    if instance.completed_at:
        events.append(ClockEvent(instance.completed_at, "finished"))
    return _ordered(events, rows)


def _events(session: Session, tasks: list[HumanTask], instance_ids: set[str],
            calendar: BusinessCalendar) -> list[ClockEvent]:
    by_id = {t.id: t for t in tasks}
    if not by_id:
        return []
    ids = list(by_id)
    events: list[ClockEvent] = []
    for task in tasks:
        events.append(ClockEvent(task.created_at, "ready", None, task.id, task.title))
        if task.claimed_at:
            events.append(ClockEvent(task.claimed_at, "claimed", task.assignee.username if task.assignee else None,
                                     task.id, task.title))
        if task.state == "completed" and task.completed_at:
            events.append(ClockEvent(task.completed_at, "completed",
                                     task.completed_by.username if task.completed_by else None, task.id, task.title))
        elif task.state == "cancelled":
            events.append(ClockEvent(task.completed_at or task.created_at, "cancelled", None, task.id, task.title))
    for clock in session.scalars(select(SlaClock).where(SlaClock.task_id.in_(ids))):
        task = by_id[clock.task_id]
        events.append(ClockEvent(task.created_at, "clock_started", None, task.id, task.title, reason=clock.note,
                                 due_at=_first_due(session, clock, task, calendar), length=clock.length,
                                 working_seconds=clock.total_seconds))
    for event in session.scalars(select(SlaClockEvent).where(SlaClockEvent.task_id.in_(ids))
                                 .order_by(SlaClockEvent.id)):
        task = by_id[event.task_id]
        events.append(ClockEvent(event.at, event.kind, event.actor, task.id, task.title, event.reason,
                                 due_at=event.due_at_after))
    for timer in session.scalars(select(Timer).where(Timer.task_id.in_(ids),
                                                     Timer.kind.in_(("sla_warning", "clock_warning")),
                                                     Timer.fired_at.is_not(None))):
        task = by_id[timer.task_id or ""]
        if timer.kind == "sla_warning":
            events.append(ClockEvent(timer.due_at, "warning", None, task.id, task.title, due_at=task.due_at))
        else:  # a named clock's warning (its own due moment is on the clock, not the task)
            events.append(ClockEvent(timer.due_at, "warning", None, task.id, task.title,
                                     clock=timer.payload.get("clock"), clock_kind=timer.payload.get("clock_kind")))
    for entry in session.scalars(select(BreachEntry).where(BreachEntry.process_instance_id.in_(instance_ids),
                                                           BreachEntry.task_id.in_(ids))
                                 .order_by(BreachEntry.seq)):
        task = by_id[entry.task_id]
        named = entry.details.get("clock") if entry.clock_kind else None
        if entry.kind == "breach":
            events.append(ClockEvent(entry.breached_at, "breach", entry.assignee, task.id, task.title,
                                     due_at=entry.due_at, clock=named, clock_kind=entry.clock_kind))
        elif entry.kind == "escalation":
            level = entry.details.get("level")
            events.append(ClockEvent(entry.recorded_at, "escalation", None, task.id, task.title,
                                     level=level if isinstance(level, int) else None,
                                     actions=tuple(str(a) for a in entry.details.get("actions", [])),
                                     clock=named, clock_kind=entry.clock_kind))
    return events


def _first_due(session: Session, clock: SlaClock, task: HumanTask, calendar: BusinessCalendar) -> datetime | None:
    """The due moment the clock started with. Not stored: while nothing moved it, the task's own;
    after a pause, the clock's length from its anchor on today's calendar; after a calendar
    change moved it, unknown here (the due-moved event carries the new one)."""
    kinds = set(session.scalars(select(SlaClockEvent.kind).where(SlaClockEvent.task_id == task.id)))
    if not kinds:
        return task.due_at
    if "due_moved" in kinds:
        return None
    return calendar.add_working_time(clock.anchor_at, timedelta(seconds=clock.total_seconds)).astimezone(UTC)


def _ordered(events: list[ClockEvent], tasks: list[HumanTask]) -> list[ClockEvent]:
    """By moment; at one moment (the test clock, or one step ending a stage and opening the
    next), the instance's start first, then stage by stage in creation order, each in KINDS order."""
    # Stages born at one moment: the one that also ended first came first (a stage completed and
    # the next one opened in the same step, on a frozen test clock).
    latest = datetime.max.replace(tzinfo=UTC)
    in_order = sorted(tasks, key=lambda t: (t.created_at, t.completed_at or latest))
    position = {t.id: i for i, t in enumerate(in_order)}

    def key(event: ClockEvent) -> tuple[datetime, int, int]:
        if event.kind == "started":
            return event.at, -1, 0
        if event.kind == "finished":
            return event.at, len(position), 0
        return event.at, position.get(event.task_id or "", len(position)), _RANK.get(event.kind, len(KINDS))

    return sorted(events, key=key)
