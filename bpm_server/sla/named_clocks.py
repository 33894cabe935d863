"""Named clocks: several clocks per stage and per instance (``slaClock.<name>.*``).

Each has its own warning, breach entry (``clock_kind`` in the breach log) and
escalation ladder. A response or resolution clock belongs to one stage and starts
when it is ready; an ola clock runs, across the instance, whenever a stage of its
department is open and not paused; an end_to_end clock runs once per instance from
its ``from`` stage becoming ready to its ``to`` stage completing. Timers are the
durable kinds in ``clock_stops.TIMER_KINDS``; a timer whose clock has stopped or
moved (paused, idle) does nothing, and moving a clock cancels its timers.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from bpm_server.database import new_id
from bpm_server.engine.adapter import CompiledModel
from bpm_server.extensions import Deployment
from bpm_server.instances.models import ProcessInstance
from bpm_server.modeling.service import department_of
from bpm_server.sla import breaches, policies
from bpm_server.sla.calendar import BusinessCalendar, WorkingDuration
from bpm_server.sla.clock_stops import BREACH, ESCALATION, TIMER_KINDS, WARNING, cancel_clock_timers, stop
from bpm_server.sla.definitions import CLOCK_PREFIX, STAGE_CLOCK_KINDS, ClockDefinition, parse_clocks
from bpm_server.sla.models import NamedClock, SlaClock, Timer
from bpm_server.sla.timers import add_timer
from bpm_server.tasks.models import OPEN_STATES, HumanTask

FINAL_STATES = ("completed", "cancelled")


def _instance_clocks(model: CompiledModel) -> dict[str, tuple[ClockDefinition, str | None]]:
    """The model's instance-wide clocks by name, each with the declaring stage's department."""
    found: dict[str, tuple[ClockDefinition, str | None]] = {}
    for spec in model.human_tasks.values():
        for clock in parse_clocks(spec.properties):
            if clock.kind not in STAGE_CLOCK_KINDS:
                found.setdefault(clock.name, (clock, department_of(spec)))
    return found


def apply_step(session: Session, rt: Deployment, instance: ProcessInstance, model: CompiledModel, *,
               opened: list[HumanTask], closed: list[HumanTask], now: datetime) -> None:
    """Stop what the closed stages end, start what the opened ones begin, and let each
    ola clock follow whether its department holds an open stage."""
    if not any(key.startswith(CLOCK_PREFIX) for spec in model.human_tasks.values() for key in spec.properties):
        return  # a model without named clocks costs a step nothing (no query)
    everywhere = _instance_clocks(model)
    existing = {c.name: c for c in session.scalars(select(NamedClock).where(
        NamedClock.process_instance_id == instance.id, NamedClock.kind.in_(("ola", "end_to_end"))))}
    for task in closed:
        how = "completed" if task.state == "completed" else task.state
        actor = task.completed_by.username if task.state == "completed" and task.completed_by else None
        for clock in session.scalars(select(NamedClock).where(NamedClock.task_id == task.id,
                                                              NamedClock.kind.in_(STAGE_CLOCK_KINDS),
                                                              NamedClock.state != "stopped")):
            stop(session, clock, task, how, actor, now, late_hours=_late(rt.calendar, clock, now))
        for name, (definition, _dept) in everywhere.items():
            e2e = existing.get(name)
            if (e2e is not None and e2e.state != "stopped" and definition.kind == "end_to_end"
                    and definition.end_stage == task.name and task.state == "completed"):
                stop(session, e2e, task, how, actor, now, late_hours=_late(rt.calendar, e2e, now))
    tier = instance.account.tier if instance.account else None
    for task in opened:
        for definition in parse_clocks(model.human_tasks[task.name].properties):
            if definition.kind in STAGE_CLOCK_KINDS:
                _start(session, rt, instance, definition, tier, task, now)
        for name, (definition, dept) in everywhere.items():
            if name in existing:
                continue
            if definition.kind == "end_to_end" and definition.start_stage == task.name:
                existing[name] = _start(session, rt, instance, definition, tier, task, now)
            elif definition.kind == "ola" and task.department_id == (definition.department or dept):
                existing[name] = _start(session, rt, instance, definition, tier, task, now, idle=True)
    if instance.state in FINAL_STATES:
        for clock in existing.values():
            if clock.state != "stopped":
                stop(session, clock, None, f"instance {instance.state}", None, now)
    sync_ola(session, rt.calendar, instance.id, now)


def _start(session: Session, rt: Deployment, instance: ProcessInstance, definition: ClockDefinition,
           tier: str | None, task: HumanTask, now: datetime, *, idle: bool = False) -> NamedClock:
    total = rt.calendar.minutes_of(definition.length_for(tier)) * 60
    clock = NamedClock(id=new_id(), process_instance_id=instance.id, task_id=task.id, name=definition.name,
                       kind=definition.kind, department=task.department_id if definition.kind == "ola" else None,
                       length=str(definition.length_for(tier)), total_seconds=total,
                       warn_seconds=int(total * definition.warn_fraction) if definition.warn_fraction < 1 else None,
                       policy=policies.resolve(session, tier, definition.policy), consumed_seconds=0,
                       running_since=None if idle else now, state="idle" if idle else "running", started_at=now)
    session.add(clock)
    if definition.kind == "response":
        task.response_clock = True
    if not idle:
        _arm(session, rt.calendar, clock, now)
    return clock


def _arm(session: Session, calendar: BusinessCalendar, clock: NamedClock, now: datetime) -> None:
    """Due and warning moments from the time left, and their timers (none for a breach already logged)."""
    start = cast(datetime, clock.running_since)  # the callers have just set it running
    clock.due_at = calendar.add_working_time(start, timedelta(seconds=max(clock.total_seconds -
                                                                          clock.consumed_seconds, 0)))
    clock.warn_at = None
    # Stage clocks' timers carry the stage (held and restored with it); instance clocks' only the instance.
    task_id = clock.task_id if clock.kind in STAGE_CLOCK_KINDS else None
    payload = {"clock": clock.name, "clock_kind": clock.kind, "clock_id": clock.id}
    if clock.warn_seconds is not None and clock.warn_seconds > clock.consumed_seconds:
        clock.warn_at = calendar.add_working_time(start, timedelta(seconds=clock.warn_seconds -
                                                                   clock.consumed_seconds))
        add_timer(session, WARNING, clock.process_instance_id, task_id, clock.warn_at, payload, now)
    if clock.breached_at is None:
        add_timer(session, BREACH, clock.process_instance_id, task_id, clock.due_at, payload, now)


def _bank(session: Session, calendar: BusinessCalendar, clock: NamedClock, state: str, now: datetime) -> None:
    """Stop counting for now (paused, idle): the working time used so far is kept."""
    since = cast(datetime, clock.running_since)  # only a running clock is banked
    used = calendar.working_time_between(since, now) if now > since else timedelta(0)
    clock.consumed_seconds += int(used.total_seconds())
    clock.state, clock.running_since, clock.due_at, clock.warn_at = state, None, None, None
    cancel_clock_timers(session, clock, now)


def _late(calendar: BusinessCalendar, clock: NamedClock, now: datetime) -> float | None:
    if clock.breached_at is None:
        return None
    return round(calendar.working_time_between(clock.due_at or clock.breached_at, now).total_seconds() / 3600, 2)


def sync_ola(session: Session, calendar: BusinessCalendar, instance_id: str, now: datetime) -> None:
    """Each ola clock runs exactly while its department holds an open stage that is not paused."""
    clocks = list(session.scalars(select(NamedClock).where(NamedClock.process_instance_id == instance_id,
                                                           NamedClock.kind == "ola",
                                                           NamedClock.state.in_(("running", "idle")))))
    if not clocks:
        return
    holding: dict[str, str] = {}  # department -> an open, unpaused stage of it
    rows = session.execute(select(HumanTask.id, HumanTask.department_id, SlaClock.state)
                           .outerjoin(SlaClock, SlaClock.task_id == HumanTask.id)
                           .where(HumanTask.process_instance_id == instance_id, HumanTask.state.in_(OPEN_STATES))
                           .order_by(HumanTask.created_at.desc())).all()
    for task_id, department, sla_state in rows:
        if sla_state != "paused":
            holding.setdefault(department, task_id)
    for clock in clocks:
        held_by = holding.get(clock.department or "")
        if clock.state == "running" and held_by is None:
            _bank(session, calendar, clock, "idle", now)
        elif clock.state == "idle" and held_by is not None:
            clock.state, clock.running_since, clock.task_id = "running", now, held_by
            _arm(session, calendar, clock, now)
        elif held_by is not None:
            clock.task_id = held_by  # the breach log names the stage the department holds now


def pause_for(session: Session, rt: Deployment, task: HumanTask, now: datetime) -> None:
    """The stage's SLA was paused: its own clocks pause too, and its department's ola
    clock if no other stage of the department is still being worked on."""
    for clock in _stage_clocks(session, task, "running"):
        _bank(session, rt.calendar, clock, "paused", now)
    session.flush()  # the SLA clock's new state decides the ola clocks
    sync_ola(session, rt.calendar, task.process_instance_id, now)


def resume_for(session: Session, rt: Deployment, task: HumanTask, now: datetime) -> None:
    for clock in _stage_clocks(session, task, "paused"):
        clock.state, clock.running_since = "running", now
        _arm(session, rt.calendar, clock, now)
    session.flush()
    sync_ola(session, rt.calendar, task.process_instance_id, now)


def _stage_clocks(session: Session, task: HumanTask, state: str) -> list[NamedClock]:
    return list(session.scalars(select(NamedClock).where(NamedClock.task_id == task.id,
                                                         NamedClock.kind.in_(STAGE_CLOCK_KINDS),
                                                         NamedClock.state == state)))


def is_clock_timer(timer: Timer) -> bool:
    return timer.kind in TIMER_KINDS


def fire(session: Session, rt: Deployment, timer: Timer, now: datetime) -> str:
    """Act on a claimed named-clock timer: warning, breach or a later escalation rung."""
    clock = session.get(NamedClock, timer.payload.get("clock_id"))
    if clock is None or clock.state != "running":
        return "clock no longer running"
    task = _stage_to_name(session, clock)
    if task is None:
        return "clock has no stage to name"
    if timer.kind == WARNING:
        applied = policies.apply(session, rt, task, clock, "warning", timer, now)
        return f"{clock.kind} clock {clock.name} warning: " + "; ".join(applied.actions)
    if timer.kind == BREACH:
        return _breach(session, rt, task, clock, timer, now)
    applied = policies.apply(session, rt, task, clock, "breach", timer, now, level=timer.payload["level"])
    breaches.append_all(session, _rung_entries(task, clock, timer.payload.get("breach_id"), applied, now))
    return f"{clock.kind} clock {clock.name} escalation: " + "; ".join(applied.actions)


def _stage_to_name(session: Session, clock: NamedClock) -> HumanTask | None:
    """The stage a breach names: a stage clock's own; for an end_to_end clock the newest
    open stage of the instance (where the work is now), else the stage it started at."""
    if clock.kind == "end_to_end":
        newest = session.scalar(select(HumanTask).where(
            HumanTask.process_instance_id == clock.process_instance_id, HumanTask.state.in_(OPEN_STATES))
            .order_by(HumanTask.created_at.desc()).limit(1))
        if newest is not None:
            return newest
    return session.get(HumanTask, clock.task_id) if clock.task_id else None


def _rung_entries(task: HumanTask, clock: NamedClock, breach_id: str | None, applied: policies.Applied,
                  now: datetime) -> list[breaches.NewEntry]:
    due = clock.due_at or cast(datetime, clock.breached_at)
    return [replace(entry, due_at=due, details={**entry.details, "clock": clock.name})
            for entry in policies.escalation_entries(task, clock, breach_id, applied, now, clock_kind=clock.kind)]


def _breach(session: Session, rt: Deployment, task: HumanTask, clock: NamedClock, timer: Timer,
            now: datetime) -> str:
    if clock.breached_at is not None:  # one breach per clock, ever
        return "already breached"
    clock.breached_at, clock.breach_id = timer.due_at, new_id()
    assignee = task.assignee.username if task.assignee else None
    applied = policies.apply(session, rt, task, clock, "breach", timer, now)
    payload = {"clock": clock.name, "clock_kind": clock.kind, "clock_id": clock.id}
    task_id = clock.task_id if clock.kind in STAGE_CLOCK_KINDS else None
    for rule in policies.later_rungs(session, clock):
        due = rt.calendar.add_working_time(timer.due_at, cast(WorkingDuration, rule.after))  # later rungs have one
        add_timer(session, ESCALATION, clock.process_instance_id, task_id, due,
                  {**payload, "level": rule.level, "breach_id": clock.breach_id}, now)
    entry = breaches.NewEntry(kind="breach", breach_id=None, entry_id=clock.breach_id, task=task,
                              assignee=assignee, due_at=clock.due_at or timer.due_at, breached_at=timer.due_at,
                              now=now, details={"clock": clock.name, "sla": clock.length, "policy": clock.policy,
                                                "department": clock.department},
                              clock_kind=clock.kind)
    breaches.append_all(session, [entry, *_rung_entries(task, clock, clock.breach_id, applied, now)])
    return f"{clock.kind} clock {clock.name} breach logged: " + "; ".join(applied.actions)


def stop_all(session: Session, instance_id: str, how: str, now: datetime) -> None:
    """The instance ended outside a step (cancelled): every clock of it stops."""
    for clock in session.scalars(select(NamedClock).where(NamedClock.process_instance_id == instance_id,
                                                          NamedClock.state != "stopped")):
        stop(session, clock, None, how, None, now)


def clocks_of(session: Session, instance_id: str) -> list[NamedClock]:
    return list(session.scalars(select(NamedClock).where(NamedClock.process_instance_id == instance_id)
                                .order_by(NamedClock.started_at, NamedClock.name)))

