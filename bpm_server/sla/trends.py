"""SLA trends: on-time % and breaches per week, overall, per stage and per department,
over a chosen period.

Weeks run Monday to Sunday in the calendar's time zone. A stage counts in the week it
was completed (on time when completed by its due moment, as the dashboard counts it);
a breach counts in the week it happened, whether or not the stage is done yet.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bpm_server.identity.models import Department
from bpm_server.sla.calendar import BusinessCalendar
from bpm_server.sla.models import BreachEntry
from bpm_server.tasks.models import HumanTask

MAX_WEEKS = 60


@dataclass
class Week:
    completed: int = 0
    with_sla: int = 0
    on_time: int = 0
    breaches: int = 0

    def as_dict(self, start: date) -> dict[str, Any]:
        rate = round(100 * self.on_time / self.with_sla, 1) if self.with_sla else None
        return {"week": start, "completed": self.completed, "with_sla": self.with_sla, "on_time": self.on_time,
                "on_time_percent": rate, "breaches": self.breaches}


@dataclass
class Series:
    weeks: dict[date, Week] = field(default_factory=lambda: defaultdict(Week))

    def as_list(self, starts: list[date]) -> list[dict[str, Any]]:
        return [self.weeks[s].as_dict(s) if s in self.weeks else Week().as_dict(s) for s in starts]


def week_of(moment: datetime, calendar: BusinessCalendar) -> date:
    local = moment.astimezone(calendar.time_zone).date()
    return local - timedelta(days=local.weekday())


def weekly(session: Session, calendar: BusinessCalendar, *, start: datetime, end: datetime,
           process_model_id: str | None = None) -> dict[str, Any]:
    """The period's weeks with, for each, completed stages, on-time % and breaches."""
    first, last = week_of(start, calendar), week_of(end - timedelta(microseconds=1), calendar)
    starts = [first + timedelta(weeks=i) for i in range((last - first).days // 7 + 1)]
    overall = Series()
    stages: defaultdict[tuple[str, str], Series] = defaultdict(Series)
    departments: defaultdict[str, Series] = defaultdict(Series)
    titles: dict[tuple[str, str], tuple[str, str]] = {}
    completed = (select(HumanTask.process_model_id, HumanTask.name, HumanTask.title, HumanTask.department_id,
                        HumanTask.completed_at, HumanTask.due_at)
                 .where(HumanTask.state == "completed", HumanTask.completed_at >= start, HumanTask.completed_at < end)
                 .order_by(HumanTask.completed_at))
    breached = (select(BreachEntry.process_model_id, BreachEntry.task_name, BreachEntry.department,
                       BreachEntry.breached_at, HumanTask.title)
                .join(HumanTask, HumanTask.id == BreachEntry.task_id)
                .where(BreachEntry.kind == "breach", BreachEntry.breached_at >= start, BreachEntry.breached_at < end))
    if process_model_id:
        completed = completed.where(HumanTask.process_model_id == process_model_id)
        breached = breached.where(BreachEntry.process_model_id == process_model_id)
    for row in session.execute(completed):
        week = week_of(row.completed_at, calendar)
        titles[(row.process_model_id, row.name)] = (row.title, row.department_id)  # the newest wins
        for series in (overall, stages[(row.process_model_id, row.name)], departments[row.department_id]):
            counts = series.weeks[week]
            counts.completed += 1
            if row.due_at is not None:
                counts.with_sla += 1
                counts.on_time += row.completed_at <= row.due_at
    for hit in session.execute(breached):
        week = week_of(hit.breached_at, calendar)
        titles.setdefault((hit.process_model_id, hit.task_name), (hit.title, hit.department))
        for series in (overall, stages[(hit.process_model_id, hit.task_name)], departments[hit.department]):
            series.weeks[week].breaches += 1
    names = dict(session.execute(select(Department.id, Department.name)).all())
    return {
        "from": start, "to": end, "weeks": starts, "overall": overall.as_list(starts),
        "stages": [{"process_model_id": model_id, "stage": stage, "title": titles[(model_id, stage)][0],
                    "department": titles[(model_id, stage)][1], "weeks": series.as_list(starts)}
                   for (model_id, stage), series in sorted(stages.items())],
        "departments": [{"department": department, "name": names.get(department, department),
                         "weeks": series.as_list(starts)} for department, series in sorted(departments.items())],
    }


def period_weeks(start: datetime, end: datetime, calendar: BusinessCalendar) -> int:
    first, last = week_of(start, calendar), week_of(end - timedelta(microseconds=1), calendar)
    return (last - first).days // 7 + 1

