"""The instance view: the diagram with completed, current and late stages
marked, the SLA status of every stage, the timeline of who did what and when,
and incidents.

The diagram itself is drawn in the browser by bpmn-js's viewer from the REST
API's BPMN of the instance's version; the marks come from here. Incidents are
the instance's engine error plus whatever the instance API reports under
``incidents`` (fetched by instances.js, so integrations add to it without
touching this page).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from flask import render_template, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from bpm_server.database import db
from bpm_server.extensions import deployment
from bpm_server.instances import service as instances
from bpm_server.instances.models import ProcessInstance
from bpm_server.modeling.models import ProcessModelVersion
from bpm_server.sla import timeline as sla_timeline
from bpm_server.sla.calendar import BusinessCalendar
from bpm_server.sla.models import SlaClock
from bpm_server.tasks import service as task_service
from bpm_server.tasks.models import HumanTask
from bpm_server.web.breaches import KIND_LABELS
from bpm_server.web.escalation_texts import actions_text
from bpm_server.web.i18n import current_language, datetime_filter, working_duration_filter
from bpm_server.web.labels import department_name, person_name
from bpm_server.web.session import page_blueprint, page_requires

blp = page_blueprint("instance_pages", __name__)


@dataclass
class StageRow:
    task: HumanTask
    status: str  # on_time, warning, breached, late, paused, none
    who: str | None
    working_late: timedelta | None = None  # past the due moment (completed late, or open and breached)
    working_left: timedelta | None = None  # until the due moment (open, not breached)


@dataclass
class Event:
    at: datetime
    kind: str
    who: str | None
    what: str
    detail: str | None = None


def on_behalf(who: str | None, task: HumanTask) -> str | None:
    """委托: "X 代 Y" when ``who`` holds (or held) the task for someone else."""
    if who is None or task.on_behalf_of is None:
        return who
    return _("%(who)s on behalf of %(whom)s", who=who, whom=task.on_behalf_of.display_name)


def stage_rows(tasks: list[HumanTask], clocks: dict[str, SlaClock], calendar: BusinessCalendar,
               now: datetime) -> list[StageRow]:
    """Each stage with its SLA status at ``now`` (completed ones: on time or late)."""
    rows = []
    for task in tasks:
        clock = clocks.get(task.id)
        if task.state == "completed":
            who = on_behalf(task.completed_by.display_name if task.completed_by else None, task)
            completed_at = cast(datetime, task.completed_at)  # set on every completed task
            if task.due_at is None:
                rows.append(StageRow(task, "none", who))
            elif completed_at <= task.due_at:
                rows.append(StageRow(task, "on_time", who))
            else:
                rows.append(StageRow(task, "late", who, working_late=calendar.working_time_between(
                    task.due_at, completed_at)))
            continue
        who = on_behalf(task.assignee.display_name if task.assignee else None, task)
        if clock is not None and clock.state == "paused":
            rows.append(StageRow(task, "paused", who))
        elif task.due_at is None:
            rows.append(StageRow(task, "none", who))
        elif now >= task.due_at:
            rows.append(StageRow(task, "breached", who, working_late=calendar.working_time_between(task.due_at, now)))
        else:
            status = "warning" if task.warn_at is not None and now >= task.warn_at else "on_time"
            rows.append(StageRow(task, status, who, working_left=calendar.working_time_between(now, task.due_at)))
    return rows


def diagram_marks(rows: list[StageRow]) -> dict[str, list[str]]:
    """BPMN element id -> marks for the viewer: done, current, late (a stage run twice keeps every mark)."""
    marks: dict[str, set[str]] = {}
    for row in rows:
        element = marks.setdefault(row.task.name, set())
        element.add("done" if row.task.state == "completed" else "current")
        if row.status in ("late", "breached"):
            element.add("late")
    return {name: sorted(kinds) for name, kinds in marks.items()}


def timeline(session: Any, instance: ProcessInstance, tasks: list[HumanTask]) -> list[Event]:
    """Who did what and when: start, stages ready/claimed/completed, their SLA clocks (started,
    paused, resumed, moved, warned, breached, each escalation rung), the end."""
    by_id = {t.id: t for t in tasks}
    titles = task_service.titles_in(session, tasks, current_language())  # the stage as its reader calls it
    shown = []
    for event in sla_timeline.instance_timeline(session, instance, deployment().calendar, tasks):
        task = by_id.get(event.task_id or "")
        where = department_name(task.department_id) if task else ""
        stage = titles.get(event.task_id or "", event.stage or "")
        shown.append(Event(event.at, event.kind, person_name(event.actor) or None, _describe(event, where, stage),
                           _detail(event)))
    return shown


def _describe(event: sla_timeline.ClockEvent, department: str, stage: str) -> str:
    texts = {
        "started": lambda: _("Process started"),
        "ready": lambda: _("%(stage)s is waiting for %(department)s", stage=stage, department=department),
        "clock_started": lambda: _("SLA clock of %(stage)s started: %(length)s", stage=stage,
                                   length=working_duration_filter(event.working_seconds)),
        "claimed": lambda: _("%(stage)s claimed", stage=stage),
        "pause": lambda: _("SLA clock of %(stage)s paused", stage=stage),
        "resume": lambda: _("SLA clock of %(stage)s resumed", stage=stage),
        # a calendar revision moved the deadline; the reason names it
        "due_moved": lambda: _("Due date of %(stage)s moved by a calendar change", stage=stage),
        "warning": lambda: _("SLA warning for %(stage)s", stage=stage),
        "breach": lambda: _("SLA of %(stage)s breached", stage=stage),
        "escalation": lambda: _("Escalation level %(level)s for %(stage)s", level=event.level, stage=stage),
        "completed": lambda: _("%(stage)s completed", stage=stage),
        "cancelled": lambda: _("%(stage)s cancelled", stage=stage),
        "finished": lambda: _("Process completed"),
    }
    return texts.get(event.kind, lambda: event.kind)()


def _detail(event: sla_timeline.ClockEvent) -> str | None:
    parts = [event.reason] if event.reason else []
    if event.clock:  # a named clock's warning, breach or rung, not the stage's own SLA
        label = KIND_LABELS.get(event.clock_kind or "")
        parts.append(_("%(kind)s clock %(name)s", kind=label or event.clock_kind, name=event.clock))
    if event.actions:
        parts.append(actions_text(list(event.actions)))
    if event.due_at and event.kind in ("clock_started", "resume", "due_moved"):
        parts.append(_("due %(when)s", when=datetime_filter(event.due_at)))
    return " · ".join(parts) or None


@blp.route("/instances/<instance_id>")
@page_requires("staff", "process_owner", "auditor")
def instance_view(instance_id: str) -> str:
    session, rt = db.session, deployment()
    now = rt.clock.now()
    instance = instances.get_instance(session, instance_id)  # unknown id: the 404 page
    tasks = list(session.scalars(select(HumanTask).where(HumanTask.process_instance_id == instance.id)
                                 .order_by(HumanTask.created_at, HumanTask.id)))
    shown = [t for t in tasks if t.state != "cancelled"]
    clocks = {c.task_id: c for c in session.scalars(select(SlaClock).where(
        SlaClock.task_id.in_([t.id for t in shown])))} if shown else {}
    rows = stage_rows(shown, clocks, rt.calendar, now)
    config = {
        "bpmn": url_for("process_models.get_version_bpmn", model_id=instance.process_model_id,
                        number=instance.version.version),
        "api": url_for("process_instances.get_instance", instance_id=instance.id),
        "marks": diagram_marks(rows),
        "strings": {"load_failed": _("The diagram could not be loaded."), "incident": _("Incident")},
    }
    other_versions = list(session.scalars(select(ProcessModelVersion.version).where(
        ProcessModelVersion.process_model_id == instance.process_model_id,
        ProcessModelVersion.id != instance.version_id).order_by(ProcessModelVersion.version.desc())))
    return render_template("instances/view.html", instance=instance, rows=rows, now=now,
                           events=timeline(session, instance, tasks), config=config, other_versions=other_versions)
