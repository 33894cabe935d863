"""SLA clocks, timers and what happens when they fire.

A task with an SLA gets an ``SlaClock`` when it becomes ready and two timer
rows (warning, breach). Firing claims the timer row atomically, so a timer
fired twice acts once. A breach is logged once; escalation rules then act,
and later rungs are new timers that do nothing if the task closed meanwhile.
"""
from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from typing import Any, cast

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bpm_server.audit.service import record as audit
from bpm_server.database import new_id
from bpm_server.engine.adapter import CompiledModel
from bpm_server.errors import Conflict, Forbidden
from bpm_server.extensions import Deployment
from bpm_server.identity.models import Department, User
from bpm_server.instances.models import ProcessInstance
from bpm_server.modeling.service import compiled
from bpm_server.sla import breaches, definitions, named_clocks, policies, timers
from bpm_server.sla.calendar import BusinessCalendar, WorkingDuration
from bpm_server.sla.models import SlaClock, SlaClockEvent, Timer
from bpm_server.sla.timers import add_timer, cancel_timers
from bpm_server.tasks.models import OPEN_STATES, HumanTask

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- a step's outcome


def apply_step(session: Session, rt: Deployment, instance: ProcessInstance, model: CompiledModel, *,
               opened: list[HumanTask], closed: list[HumanTask], next_timer: datetime | None,
               arm_engine_timer: bool, now: datetime) -> None:
    """The SLA side of one step of an instance (called by the runtime, after the task rows):
    clocks stop for the stages that closed and start for those that opened, and the
    instance's earliest BPMN timer is kept armed."""
    for task in closed:
        stop_clock(session, rt, task, now)
    for task in opened:
        start_clock(session, rt, task, instance, now, model=model)
    named_clocks.apply_step(session, rt, instance, model, opened=opened, closed=closed, now=now)
    if arm_engine_timer and model.has_timer_events:  # no timer element, so no row to look for
        timers.arm_engine_timer(session, instance.id, next_timer if instance.state == "running" else None, now)


# --------------------------------------------------------------------------- clocks


def start_clock(session: Session, rt: Deployment, task: HumanTask, instance: ProcessInstance, now: datetime, *,
                model: CompiledModel | None = None) -> None:
    """Give a newly ready task its due moments and timers (no-op without an SLA)."""
    spec = (model or compiled(instance.version)).human_tasks[task.name]
    definition = definitions.parse(spec.properties)
    if definition is None:
        return
    # The reads below must not flush the new task row before its due moments
    # are set, or it is written twice (INSERT, then UPDATE). The caller has
    # flushed what they need to see (the completion that may be the anchor).
    with session.no_autoflush:
        account = instance.account
        tier = account.tier if account else None
        length = definition.length_for(tier)
        calendar = rt.calendar
        total = calendar.minutes_of(length) * 60
        anchor_at, note = _anchor(session, calendar, definition, task, instance, now)
        clock = SlaClock(task_id=task.id, task=task, length=str(length), total_seconds=total,
                         warn_seconds=int(total * definition.warn_fraction) if definition.warn_fraction < 1 else None,
                         anchor=definition.anchor, anchor_at=anchor_at, note=note,
                         policy=policies.resolve(session, tier, definition.policy), consumed_seconds=0,
                         running_since=anchor_at, state="running", pausable=definition.pausable)
        session.add(clock)
        _schedule(session, calendar, task, clock, now)


def _anchor(session: Session, calendar: BusinessCalendar, definition: definitions.SlaDefinition, task: HumanTask,
            instance: ProcessInstance, now: datetime) -> tuple[datetime, str | None]:
    kind, ref = definition.anchor_kind, definition.anchor_ref
    if kind == "stage":
        done = session.execute(select(HumanTask.name, HumanTask.completed_at).where(
            HumanTask.process_instance_id == instance.id, HumanTask.state == "completed")
            .order_by(HumanTask.history_seq.desc())).all()
        names = [name for name, _ in done]
        if ref not in names:
            return now, f"stage {ref!r} has not completed; counted from task creation"
        latest = names.index(ref)  # newest first
        # Back in a loop (this stage already ran since the anchor stage): count from the reopening.
        if task.name in names[:latest]:
            return now, "stage reopened by a loop; counted from the reopening"
        return cast(datetime, done[latest][1]), None  # a completed task has its completed_at
    if kind == "data":
        moment = _moment(calendar, task.data.get(ref))
        if moment is None:
            log.warning("task %s: SLA anchor field %r missing or not a date; counting from creation", task.id, ref)
            return now, f"data field {ref!r} is missing or not a date; counted from task creation"
        return moment, None
    return now, None


def _moment(calendar: BusinessCalendar, value: Any) -> datetime | None:
    """A date-time from process data; a bare date means the end of that working day."""
    if not isinstance(value, str):
        return None
    try:
        if len(value) == 10:
            end = calendar.working_hours[-1][1]
            hour, minute = (int(p) for p in end.split(":"))
            day_end = time(23, 59, 59) if (hour, minute) == (24, 0) else time(hour, minute)
            return datetime.combine(date.fromisoformat(value), day_end, calendar.time_zone)
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=calendar.time_zone)


def _schedule(session: Session, calendar: BusinessCalendar, task: HumanTask, clock: SlaClock, now: datetime) -> None:
    """Set due/warn from the clock's remaining time and create their timers."""
    start = cast(datetime, clock.running_since)  # both callers have just set the clock running
    remaining = timedelta(seconds=max(clock.total_seconds - clock.consumed_seconds, 0))
    task.due_at = calendar.add_working_time(start, remaining)
    task.warn_at = None
    if clock.warn_seconds is not None and clock.warn_seconds > clock.consumed_seconds:
        task.warn_at = calendar.add_working_time(start, timedelta(seconds=clock.warn_seconds - clock.consumed_seconds))
        add_timer(session, "sla_warning", task.process_instance_id, task.id, task.warn_at, {}, now)
    add_timer(session, "sla_breach", task.process_instance_id, task.id, task.due_at, {}, now)


def stop_clock(session: Session, rt: Deployment, task: HumanTask, now: datetime) -> None:
    """The task closed: no more timers; a late completion is logged as a follow-up to its breach."""
    if any(isinstance(obj, (SlaClock, Timer)) for obj in session.new):
        session.flush()  # a clock or timer made in this transaction must be in the table for the UPDATEs
    # Two UPDATEs and no SELECT, without flushing the caller's pending changes
    # to the task and instance (they go out once, together, later).
    with session.no_autoflush:
        cancel_timers(session, task_id=task.id, now=now)
        breached_at = session.execute(
            update(SlaClock).where(SlaClock.task_id == task.id, SlaClock.state != "stopped")
            .values(state="stopped", running_since=None).returning(SlaClock.breached_at)
            .execution_options(synchronize_session="fetch")).scalar_one_or_none()
    if breached_at is not None and task.state == "completed":
        breach_id = session.scalar(select(breaches.BreachEntry.id).where(
            breaches.BreachEntry.task_id == task.id, breaches.BreachEntry.kind == "breach"))
        late = rt.calendar.working_time_between(task.due_at or breached_at, now)
        breaches.append(session, kind="completion", breach_id=breach_id, task=task,
                        assignee=_username(session, task.completed_by_id), due_at=task.due_at or breached_at,
                        breached_at=breached_at, now=now,
                        details={"completed_at": now.isoformat(),
                                 "completed_by": _username(session, task.completed_by_id),
                                 "late_working_hours": round(late.total_seconds() / 3600, 2)})


def stop_named_clocks(session: Session, instance_id: str, now: datetime) -> None:
    """The instance was cancelled: its named clocks (named_clocks) stop with it."""
    named_clocks.stop_all(session, instance_id, "instance cancelled", now)


def pause(session: Session, rt: Deployment, user: User, task: HumanTask, reason: str, now: datetime) -> SlaClock:
    clock = _clock_for_change(session, user, task)
    if not clock.pausable:
        raise Conflict(f"stage {task.name!r} does not allow pausing its SLA (slaPausable is not set)",
                       code="not_pausable")
    if clock.state == "paused":
        raise Conflict("the SLA clock is already paused", code="already_paused")
    if clock.breached_at is not None:
        raise Conflict("the SLA is already breached; pausing cannot undo a breach", code="already_breached")
    running_since = cast(datetime, clock.running_since)  # not paused and the task is open: running
    used = rt.calendar.working_time_between(running_since, now) if now > running_since else timedelta(0)
    clock.consumed_seconds += int(used.total_seconds())
    clock.state, clock.running_since, clock.pause_reason = "paused", None, reason
    task.due_at = task.warn_at = None
    cancel_timers(session, task_id=task.id, now=now)
    named_clocks.pause_for(session, rt, task, now)
    session.add(SlaClockEvent(task_id=task.id, kind="pause", at=now, actor=user.username, reason=reason))
    audit(session, actor=user.username, action="sla.pause", object_type="task", object_id=task.id, now=now,
          reason=reason)
    return clock


def resume(session: Session, rt: Deployment, user: User, task: HumanTask, reason: str | None,
           now: datetime) -> SlaClock:
    clock = _clock_for_change(session, user, task)
    if clock.state != "paused":
        raise Conflict("the SLA clock is not paused", code="not_paused")
    clock.state, clock.running_since, clock.pause_reason = "running", now, None
    _schedule(session, rt.calendar, task, clock, now)
    named_clocks.resume_for(session, rt, task, now)
    session.add(SlaClockEvent(task_id=task.id, kind="resume", at=now, actor=user.username, reason=reason,
                              due_at_after=task.due_at))
    audit(session, actor=user.username, action="sla.resume", object_type="task", object_id=task.id, now=now,
          reason=reason, due_at=cast(datetime, task.due_at).isoformat())  # _schedule has just set it
    return clock


def _clock_for_change(session: Session, user: User, task: HumanTask) -> SlaClock:
    if task.state not in OPEN_STATES:
        raise Conflict(f"task {task.id} is {task.state}", code="task_closed")
    lead = session.get(Department, task.department_id)
    if not (user.has_role("admin") or task.assignee_id == user.id or (lead and lead.lead_user_id == user.id)):
        raise Forbidden("only the assignee, the department lead or an admin can pause or resume the SLA",
                        code="not_assignee")
    clock = session.get(SlaClock, task.id)
    if clock is None:
        raise Conflict(f"stage {task.name!r} has no SLA", code="no_sla")
    return clock


def clock_events(session: Session, task_id: str) -> list[SlaClockEvent]:
    return list(session.scalars(select(SlaClockEvent).where(SlaClockEvent.task_id == task_id)
                                .order_by(SlaClockEvent.id)))


def fire(session: Session, rt: Deployment, timer: Timer, now: datetime, *,
         chain: list[dict[str, Any]] | None = None) -> str:
    """Act on a claimed SLA timer (warning, breach, escalation rung). Returns what happened.
    With ``chain``, the breach-log entries are collected there (``breaches.snapshot``) for the
    caller to chain with a whole batch's (``batch.fire_batch``) instead of appended now."""
    if named_clocks.is_clock_timer(timer):
        return named_clocks.fire(session, rt, timer, now)
    task = session.get(HumanTask, timer.task_id)
    clock = session.get(SlaClock, timer.task_id)
    if task is None or clock is None or task.state not in OPEN_STATES or clock.state != "running":
        return "task no longer open"
    if timer.kind == "sla_warning":
        applied = policies.apply(session, rt, task, clock, "warning", timer, now)
        return "warning: " + "; ".join(applied.actions)
    if timer.kind == "sla_breach":
        return _breach(session, rt, task, clock, timer, now, chain)
    if timer.kind == "escalation":
        applied = policies.apply(session, rt, task, clock, "breach", timer, now, level=timer.payload["level"])
        _log(session, policies.escalation_entries(task, clock, timer.payload.get("breach_id"), applied, now), chain)
        return "escalation: " + "; ".join(applied.actions)
    raise ValueError(f"timer kind {timer.kind!r} is not an SLA timer")


def _breach(session: Session, rt: Deployment, task: HumanTask, clock: SlaClock, timer: Timer, now: datetime,
            chain: list[dict[str, Any]] | None) -> str:
    if clock.breached_at is not None:  # one breach per task, ever
        return "already breached"
    clock.breached_at = timer.due_at
    breach_id = new_id()
    assignee = _username(session, task.assignee_id)  # who held it at the deadline, before any reassignment
    applied = policies.apply(session, rt, task, clock, "breach", timer, now)
    for rule in policies.later_rungs(session, clock):
        due = rt.calendar.add_working_time(timer.due_at, cast(WorkingDuration, rule.after))  # later rungs have one
        add_timer(session, "escalation", task.process_instance_id, task.id, due,
                  {"level": rule.level, "breach_id": breach_id}, now)
    # The log last: appending locks its head row until commit (see policies.escalation_entries).
    breach = breaches.NewEntry(kind="breach", breach_id=None, entry_id=breach_id, task=task, assignee=assignee,
                               due_at=task.due_at or timer.due_at, breached_at=timer.due_at, now=now,
                               details={"sla": clock.length, "anchor": clock.anchor, "policy": clock.policy})
    _log(session, [breach, *policies.escalation_entries(task, clock, breach_id, applied, now)], chain)
    return "breach logged: " + "; ".join(applied.actions)


def _log(session: Session, entries: list[breaches.NewEntry], chain: list[dict[str, Any]] | None) -> None:
    if chain is None:
        breaches.append_all(session, entries)
    else:
        chain.extend(breaches.snapshot(entry) for entry in entries)


def _username(session: Session, user_id: str | None) -> str | None:
    user = session.get(User, user_id) if user_id else None
    return user.username if user else None
