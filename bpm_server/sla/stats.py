"""SLA statistics for the dashboard: how punctual each stage and department is.

Definitions (the dashboard and its CSV say the same):

* A stage *counts* in a period when it was completed inside ``[start, end)``.
  It is *on time* when it was completed at or before its due moment (the due
  moment after any pauses); stages without an SLA count as completed but stay
  out of the on-time rate.
* *Working time* of a stage is the business-calendar working time from the
  moment it became ready to its completion (``calendar.working_time_between``),
  in working hours; the median and the 90th percentile interpolate linearly
  between ranks, so one sample is its own median and 90th percentile.
* *Open work* and *open breaches* are about the moment ``now`` (the injected
  clock), not the period: an open stage is breached once ``now`` is at or past
  its due moment, in warning from its warning moment. Open breaches also list
  named clocks (``slaClock.*``) that breached and have not stopped, each with its kind.
* *Breaches by clock kind* count the breach log's breaches inside the period, a
  stage's own SLA counting as ``resolution``.
"""
from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bpm_server.identity.models import Department, User
from bpm_server.sla.calendar import BusinessCalendar
from bpm_server.sla.definitions import CLOCK_KINDS
from bpm_server.sla.models import BreachEntry, NamedClock
from bpm_server.tasks.models import OPEN_STATES, HumanTask

CSV_COLUMNS = ["section", "process_model_id", "stage", "department", "measure", "value"]


@dataclass(frozen=True)
class StageStats:
    process_model_id: str
    stage: str  # the BPMN element id
    title: str
    department: str
    completed: int
    with_sla: int
    on_time: int
    median_hours: float | None
    p90_hours: float | None

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.with_sla if self.with_sla else None


@dataclass(frozen=True)
class DepartmentStats:
    department: str
    name: str
    completed: int
    with_sla: int
    on_time: int

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.with_sla if self.with_sla else None


@dataclass(frozen=True)
class OpenWork:
    department: str
    name: str
    on_time: int = 0
    warning: int = 0
    breached: int = 0
    no_sla: int = 0

    @property
    def total(self) -> int:
        return self.on_time + self.warning + self.breached + self.no_sla


@dataclass(frozen=True)
class OpenBreach:
    task_id: str
    process_instance_id: str
    process_model_id: str
    account_id: str
    stage: str
    title: str
    department: str
    assignee: str | None
    due_at: datetime
    overdue_hours: float  # working hours past the due moment, at ``now``
    kind: str = "resolution"  # which clock: a stage's own SLA is a resolution clock
    clock: str | None = None  # a named clock's name


@dataclass(frozen=True)
class SlaStats:
    start: datetime
    end: datetime
    now: datetime
    process_model_id: str | None
    stages: list[StageStats] = field(default_factory=list)
    departments: list[DepartmentStats] = field(default_factory=list)
    open_work: list[OpenWork] = field(default_factory=list)
    open_breaches: list[OpenBreach] = field(default_factory=list)
    breaches_by_kind: dict[str, int] = field(default_factory=dict)


def percentile(values: Iterable[float], fraction: float) -> float | None:
    """The ``fraction`` quantile (0..1) with linear interpolation between ranks; None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def sla_stats(session: Session, calendar: BusinessCalendar, *, start: datetime, end: datetime, now: datetime,
              process_model_id: str | None = None) -> SlaStats:
    """On-time rates and working times for stages completed in ``[start, end)``, open work at ``now``."""
    names = dict(session.execute(select(Department.id, Department.name)).all())
    stats = SlaStats(start=start, end=end, now=now, process_model_id=process_model_id)
    stats.stages.extend(_stage_stats(session, calendar, start, end, process_model_id))
    stats.departments.extend(_department_stats(stats.stages, names))
    open_rows = _open_tasks(session, process_model_id)
    stats.open_work.extend(_open_work(open_rows, now, names))
    stats.open_breaches.extend(_open_breaches(open_rows, calendar, now))
    stats.open_breaches.extend(_open_clock_breaches(session, calendar, now, process_model_id))
    stats.breaches_by_kind.update(_breaches_by_kind(session, start, end, process_model_id))
    return stats


def _open_clock_breaches(session: Session, calendar: BusinessCalendar, now: datetime,
                         process_model_id: str | None) -> list[OpenBreach]:
    """Named clocks that breached and are still counting (or waiting to count again)."""
    query = (select(NamedClock, HumanTask.process_model_id, HumanTask.account_id, HumanTask.name, HumanTask.title,
                    HumanTask.department_id, User.username)
             .join(HumanTask, HumanTask.id == NamedClock.task_id)
             .outerjoin(User, User.id == HumanTask.assignee_id)
             .where(NamedClock.breached_at.is_not(None), NamedClock.state != "stopped")
             .order_by(NamedClock.breached_at))
    if process_model_id:
        query = query.where(HumanTask.process_model_id == process_model_id)
    result = []
    for clock, model_id, account_id, stage, title, department, assignee in session.execute(query):
        due = cast(datetime, clock.due_at or clock.breached_at)  # the query keeps breached clocks only
        result.append(OpenBreach(task_id=cast(str, clock.task_id), process_instance_id=clock.process_instance_id,
                                 process_model_id=model_id, account_id=account_id, stage=stage, title=title,
                                 department=clock.department or department, assignee=assignee, due_at=due,
                                 overdue_hours=round(calendar.working_time_between(due, now).total_seconds()
                                                     / 3600, 2), kind=clock.kind, clock=clock.name))
    return result


def _breaches_by_kind(session: Session, start: datetime, end: datetime,
                      process_model_id: str | None) -> dict[str, int]:
    kind = func.coalesce(BreachEntry.clock_kind, "resolution")
    query = (select(kind, func.count()).where(BreachEntry.kind == "breach", BreachEntry.breached_at >= start,
                                              BreachEntry.breached_at < end).group_by(kind))
    if process_model_id:
        query = query.where(BreachEntry.process_model_id == process_model_id)
    counts: dict[str, int] = {row[0]: int(row[1]) for row in session.execute(query)}
    return {k: counts.get(k, 0) for k in CLOCK_KINDS}


def _stage_stats(session: Session, calendar: BusinessCalendar, start: datetime, end: datetime,
                 process_model_id: str | None) -> list[StageStats]:
    query = (select(HumanTask.process_model_id, HumanTask.name, HumanTask.title, HumanTask.department_id,
                    HumanTask.created_at, HumanTask.completed_at, HumanTask.due_at)
             .where(HumanTask.state == "completed", HumanTask.completed_at >= start, HumanTask.completed_at < end)
             .order_by(HumanTask.completed_at))
    if process_model_id:
        query = query.where(HumanTask.process_model_id == process_model_id)
    groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for row in session.execute(query):
        groups[(row.process_model_id, row.name)].append(row)
    result = []
    for (model_id, stage), rows in sorted(groups.items()):
        latest = rows[-1]  # a stage's title or department may change between versions: show the newest
        hours = [calendar.working_time_between(r.created_at, r.completed_at).total_seconds() / 3600 for r in rows]
        timed = [r for r in rows if r.due_at is not None]
        result.append(StageStats(process_model_id=model_id, stage=stage, title=latest.title,
                                 department=latest.department_id, completed=len(rows), with_sla=len(timed),
                                 on_time=sum(1 for r in timed if r.completed_at <= r.due_at),
                                 median_hours=percentile(hours, 0.5), p90_hours=percentile(hours, 0.9)))
    return result


def _department_stats(stages: list[StageStats], names: dict[str, str]) -> list[DepartmentStats]:
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for stage in stages:
        total = totals[stage.department]
        total[0] += stage.completed
        total[1] += stage.with_sla
        total[2] += stage.on_time
    return [DepartmentStats(department, names.get(department, department), *counts)
            for department, counts in sorted(totals.items())]


def _open_tasks(session: Session, process_model_id: str | None) -> list[Any]:
    """Every open stage as a plain row of what the dashboard shows (not ORM objects
    with their process data and joined users: there can be 100,000 of them)."""
    query = (select(HumanTask.id, HumanTask.process_instance_id, HumanTask.process_model_id, HumanTask.account_id,
                    HumanTask.name, HumanTask.title, HumanTask.department_id, HumanTask.due_at, HumanTask.warn_at,
                    User.username.label("assignee"))
             .outerjoin(User, User.id == HumanTask.assignee_id)
             .where(HumanTask.state.in_(OPEN_STATES)).order_by(HumanTask.due_at, HumanTask.id))
    if process_model_id:
        query = query.where(HumanTask.process_model_id == process_model_id)
    return list(session.execute(query))


def _open_work(rows: list[Any], now: datetime, names: dict[str, str]) -> list[OpenWork]:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"on_time": 0, "warning": 0, "breached": 0, "no_sla": 0})
    for task in rows:
        counts[task.department_id][sla_state(task, now)] += 1
    return [OpenWork(department, names.get(department, department), **by_state)
            for department, by_state in sorted(counts.items())]


def sla_state(task: Any, now: datetime) -> str:
    """``on_time``, ``warning``, ``breached`` or ``no_sla`` for an open stage at ``now``."""
    if task.due_at is None:
        return "no_sla"
    if now >= task.due_at:
        return "breached"
    if task.warn_at is not None and now >= task.warn_at:
        return "warning"
    return "on_time"


def _open_breaches(rows: list[Any], calendar: BusinessCalendar, now: datetime) -> list[OpenBreach]:
    return [OpenBreach(task_id=t.id, process_instance_id=t.process_instance_id, process_model_id=t.process_model_id,
                       account_id=t.account_id, stage=t.name, title=t.title, department=t.department_id,
                       assignee=t.assignee, due_at=t.due_at,
                       overdue_hours=round(calendar.working_time_between(t.due_at, now).total_seconds() / 3600, 2))
            for t in rows if sla_state(t, now) == "breached"]


# --------------------------------------------------------------------------- who may see them, and their shapes


def may_view(session: Session, user: User) -> bool:
    """Process owners, admins and department leads (the managers of the product brief)."""
    if user.has_role("process_owner", "admin"):
        return True
    return session.scalar(select(Department.id).where(Department.lead_user_id == user.id).limit(1)) is not None


def _rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def as_dict(stats: SlaStats) -> dict[str, Any]:
    return {
        "start": stats.start, "end": stats.end, "now": stats.now, "process_model_id": stats.process_model_id,
        "stages": [{"process_model_id": s.process_model_id, "stage": s.stage, "title": s.title,
                    "department": s.department, "completed": s.completed, "with_sla": s.with_sla,
                    "on_time": s.on_time, "on_time_rate": _rounded(s.on_time_rate, 4),
                    "median_working_hours": _rounded(s.median_hours), "p90_working_hours": _rounded(s.p90_hours)}
                   for s in stats.stages],
        "departments": [{"department": d.department, "name": d.name, "completed": d.completed,
                         "with_sla": d.with_sla, "on_time": d.on_time, "on_time_rate": _rounded(d.on_time_rate, 4)}
                        for d in stats.departments],
        "open_work": [{"department": w.department, "name": w.name, "on_time": w.on_time, "warning": w.warning,
                       "breached": w.breached, "no_sla": w.no_sla, "total": w.total} for w in stats.open_work],
        "open_breaches": [{"task_id": b.task_id, "process_instance_id": b.process_instance_id,
                           "process_model_id": b.process_model_id, "account_id": b.account_id, "stage": b.stage,
                           "title": b.title, "department": b.department, "assignee": b.assignee, "due_at": b.due_at,
                           "overdue_working_hours": b.overdue_hours, "kind": b.kind, "clock": b.clock}
                          for b in stats.open_breaches],
        "breaches_by_kind": dict(stats.breaches_by_kind),
    }


def to_csv(stats: SlaStats) -> str:
    """Every number of the dashboard, one per line (section, model, stage, department, measure, value)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    row = lambda *values: writer.writerow([_cell(v) for v in values])  # noqa: E731
    for s in stats.stages:
        for measure, value in (("completed", s.completed), ("with_sla", s.with_sla), ("on_time", s.on_time),
                               ("on_time_rate", _rounded(s.on_time_rate, 4)),
                               ("median_working_hours", _rounded(s.median_hours)),
                               ("p90_working_hours", _rounded(s.p90_hours))):
            row("stage", s.process_model_id, s.stage, s.department, measure, value)
    for d in stats.departments:
        for measure, value in (("completed", d.completed), ("with_sla", d.with_sla), ("on_time", d.on_time),
                               ("on_time_rate", _rounded(d.on_time_rate, 4))):
            row("department", "", "", d.department, measure, value)
    for w in stats.open_work:
        for measure in ("on_time", "warning", "breached", "no_sla", "total"):
            row("open_work", "", "", w.department, measure, getattr(w, measure))
    for b in stats.open_breaches:
        row("open_breach", b.process_model_id, b.stage, b.department, "overdue_working_hours", b.overdue_hours)
    for kind, count in stats.breaches_by_kind.items():
        row("breaches_by_kind", "", "", "", kind, count)
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    # Stage ids come from diagrams; a cell starting with = + - @ would run as a spreadsheet formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
