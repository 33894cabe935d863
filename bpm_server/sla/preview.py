"""What-if before publishing: the last N days of a model's completed stages measured
against a draft's SLAs, beside what actually happened.

Computed from history, never by re-running instances: for each completed stage
the working time its clock ran (from its anchor to its completion, less the
paused working time) is held against the draft's length for the account's
tier, on today's calendar. "Before" is what the breach log recorded.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bpm_server.accounts.models import Account
from bpm_server.engine.adapter import BpmnInvalid
from bpm_server.errors import Invalid, NotFound
from bpm_server.modeling.models import ProcessModel, ProcessModelVersion
from bpm_server.modeling.service import check_version, compiled
from bpm_server.sla import definitions
from bpm_server.sla.calendar import BusinessCalendar, parse_working_duration
from bpm_server.sla.definitions import SlaDefinition
from bpm_server.sla.models import SlaClock, SlaClockEvent
from bpm_server.tasks.models import HumanTask

MAX_STAGES = 20_000  # the newest ones; a preview answers while the owner waits


@dataclass(frozen=True)
class PastStage:
    task_id: str
    process_instance_id: str
    account_id: str
    account_name: str
    stage: str  # the BPMN element id
    title: str
    completed_at: datetime
    used_seconds: int  # working seconds the clock ran
    length_before: int | None  # the stage's SLA then, in working seconds (None: it had none)
    late_before: bool
    length_after: int | None = None
    late_after: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "process_instance_id": self.process_instance_id,
                "account_id": self.account_id, "account_name": self.account_name, "stage": self.stage,
                "title": self.title,
                "completed_at": self.completed_at, "used_working_seconds": self.used_seconds,
                "length_before_working_seconds": self.length_before,
                "length_after_working_seconds": self.length_after}


def preview(session: Session, calendar: BusinessCalendar, model_id: str,
            draft: Mapping[str, SlaDefinition | None], *, days: int, now: datetime) -> dict[str, Any]:
    """Per stage: completed stages, on-time % before and after; the stages that would newly
    breach or stop breaching. An empty answer with a note when nothing completed in the period."""
    since = now - timedelta(days=days)
    rows = session.execute(
        select(HumanTask, SlaClock, Account.tier, Account.name)
        .outerjoin(SlaClock, SlaClock.task_id == HumanTask.id)
        .outerjoin(Account, Account.id == HumanTask.account_id)
        .where(HumanTask.process_model_id == model_id, HumanTask.state == "completed",
               HumanTask.completed_at >= since)
        .order_by(HumanTask.completed_at.desc()).limit(MAX_STAGES)).all()
    paused = _paused_seconds(session, calendar, [task.id for task, clock, _tier, _name in rows if clock is not None])
    past = []
    for task, clock, tier, account_name in rows:
        completed = task.completed_at or now
        if clock is not None:
            ran = calendar.working_time_between(clock.anchor_at, completed).total_seconds()
            used = max(int(ran) - paused.get(task.id, 0), 0)
            before, late_before = clock.total_seconds, clock.breached_at is not None
        else:
            used = int(calendar.working_time_between(task.created_at, completed).total_seconds())
            before, late_before = None, False
        definition = draft.get(task.name)
        after = calendar.minutes_of(definition.length_for(tier)) * 60 if definition else None
        past.append(PastStage(task.id, task.process_instance_id, task.account_id, account_name or task.account_id,
                              task.name, task.title, completed,
                              used, before, late_before, after, after is not None and used > after))
    return _summary(model_id, days, since, past, draft)


def _paused_seconds(session: Session, calendar: BusinessCalendar, task_ids: list[str]) -> dict[str, int]:
    """Working seconds each clock spent paused (pause -> resume, in order)."""
    totals: dict[str, int] = {}
    started: dict[str, datetime] = {}
    for chunk in (task_ids[i:i + 500] for i in range(0, len(task_ids), 500)):
        for event in session.scalars(select(SlaClockEvent).where(SlaClockEvent.task_id.in_(chunk),
                                                                 SlaClockEvent.kind.in_(("pause", "resume")))
                                     .order_by(SlaClockEvent.task_id, SlaClockEvent.id)):
            if event.kind == "pause":
                started[event.task_id] = event.at
            elif event.task_id in started:
                gap = calendar.working_time_between(started.pop(event.task_id), event.at).total_seconds()
                totals[event.task_id] = totals.get(event.task_id, 0) + int(gap)
    return totals


def _written(definition: SlaDefinition) -> str:
    """"2 working days; strategic: 2 working hours": the length and each tier's own."""
    tiers = "; ".join(f"{tier}: {length}" for tier, length in sorted(definition.tier_lengths.items()))
    return f"{definition.length}; {tiers}" if tiers else str(definition.length)


def _percent(on_time: int, total: int) -> float | None:
    return round(100 * on_time / total, 1) if total else None


def _summary(model_id: str, days: int, since: datetime, past: list[PastStage],
             draft: Mapping[str, SlaDefinition | None]) -> dict[str, Any]:
    stages: dict[str, list[PastStage]] = {}
    for stage in past:
        stages.setdefault(stage.stage, []).append(stage)
    per_stage = []
    for name in sorted(stages, key=lambda n: min(s.completed_at for s in stages[n])):
        group = stages[name]
        with_before = [s for s in group if s.length_before is not None]
        with_after = [s for s in group if s.length_after is not None]
        per_stage.append({
            "stage": name, "title": group[0].title, "completed": len(group),
            "sla_after": _written(definition) if (definition := draft.get(name)) else None,
            "on_time_before_percent": _percent(sum(not s.late_before for s in with_before), len(with_before)),
            "on_time_after_percent": _percent(sum(not s.late_after for s in with_after), len(with_after)),
        })
    newly = [s.as_dict() for s in past if s.late_after and not s.late_before]
    cleared = [s.as_dict() for s in past if s.late_before and s.length_after is not None and not s.late_after]
    note = None if past else f"no stage of {model_id!r} was completed in the last {days} days: nothing to compare"
    return {"process_model_id": model_id, "days": days, "since": since, "stages_compared": len(past),
            "stages": per_stage, "newly_breaching": newly, "no_longer_breaching": cleared, "note": note}


def draft_from_diagram(session: Session, model_id: str, content: bytes | Mapping[str, bytes],
                       local_forms: Mapping[str, Any]) -> dict[str, SlaDefinition | None]:
    """Each user task's SLA in a draft diagram (checked as an upload would be; 422 per element)."""
    current = _current_or_none(session, model_id)
    try:
        model, _forms = check_version(session, content, current.entry_process if current else None, local_forms,
                                      model_id)
    except BpmnInvalid as exc:
        raise Invalid(f"the draft has {len(exc.problems)} problem(s): {exc}", code="invalid_bpmn",
                      details={"problems": [p.as_dict() for p in exc.problems]}) from None
    return {name: definitions.parse(task.properties) for name, task in model.human_tasks.items()}


def draft_from_table(session: Session, model_id: str, table: Mapping[str, Any]) -> dict[str, SlaDefinition | None]:
    """The current version's SLAs with some stages' lengths changed: ``{"stage": "3 working days"}``
    (every tier), or ``null`` for no SLA. A stage the model does not have is refused, named."""
    current = _current_or_none(session, model_id)
    if current is None:
        raise Invalid(f"process model {model_id!r} has no published version to change", code="no_version")
    tasks = compiled(current).human_tasks
    draft = {name: definitions.parse(task.properties) for name, task in tasks.items()}
    errors: dict[str, list[str]] = {}
    for stage, length in table.items():
        if stage not in tasks:
            errors[stage] = [f"not a user task of {model_id!r}; its stages are: {', '.join(sorted(tasks))}"]
        elif length is None:
            draft[stage] = None
        elif not isinstance(length, str):
            errors[stage] = ["a length such as '2 working days', or null for no SLA"]
        else:
            try:
                duration = parse_working_duration(length)
            except ValueError as exc:
                errors[stage] = [str(exc)]
                continue
            old = draft.get(stage)
            draft[stage] = replace(old, length=duration, tier_lengths={}) if old else SlaDefinition(length=duration)
    if errors:
        raise Invalid("the SLA table has errors in: " + ", ".join(sorted(errors)), code="validation_error",
                      details={"sla": errors})
    return draft


def _current_or_none(session: Session, model_id: str) -> ProcessModelVersion | None:
    process_model = session.get(ProcessModel, model_id)
    if process_model is None:
        raise NotFound(f"process model {model_id!r} does not exist", code="unknown_process_model")
    return session.get(ProcessModelVersion, process_model.current_version_id) \
        if process_model.current_version_id else None
