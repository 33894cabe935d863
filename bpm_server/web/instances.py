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
from bpm_server.sla.calendar import BusinessCalendar
from bpm_server.sla.models import BreachEntry, SlaClock, SlaClockEvent
from bpm_server.tasks.models import HumanTask
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


def stage_rows(tasks: list[HumanTask], clocks: dict[str, SlaClock], calendar: BusinessCalendar,
               now: datetime) -> list[StageRow]:
    """Each stage with its SLA status at ``now`` (completed ones: on time or late)."""
    rows = []
    for task in tasks:
        clock = clocks.get(task.id)
        if task.state == "completed":
            who = task.completed_by.username if task.completed_by else None
            completed_at = cast(datetime, task.completed_at)  # set on every completed task
            if task.due_at is None:
                rows.append(StageRow(task, "none", who))
            elif completed_at <= task.due_at:
                rows.append(StageRow(task, "on_time", who))
            else:
                rows.append(StageRow(task, "late", who, working_late=calendar.working_time_between(
                    task.due_at, completed_at)))
            continue
        who = task.assignee.username if task.assignee else None
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
    """Who did what and when: start, stages ready/claimed/completed, pauses, breaches, escalations, the end."""
    events = [Event(instance.created_at, "started", instance.started_by, _("Process started"))]
    for task in tasks:
        events.append(Event(task.created_at, "ready", None, _("%(stage)s is waiting for %(department)s",
                                                               stage=task.title, department=task.department_id)))
        if task.claimed_at:
            events.append(Event(task.claimed_at, "claimed", task.assignee.username if task.assignee else None,
                                _("%(stage)s claimed", stage=task.title)))
        if task.state == "completed" and task.completed_at:
            events.append(Event(task.completed_at, "completed",
                                task.completed_by.username if task.completed_by else None,
                                _("%(stage)s completed", stage=task.title)))
        if task.state == "cancelled":
            events.append(Event(task.created_at, "cancelled", None, _("%(stage)s cancelled", stage=task.title)))
    titles = {t.id: t.title for t in tasks}
    for event in session.scalars(select(SlaClockEvent).where(SlaClockEvent.task_id.in_(list(titles)))):
        if event.kind == "due_moved":  # a calendar revision moved the deadline; the reason names it
            what = _("Due date of %(stage)s moved by a calendar change", stage=titles[event.task_id])
        elif event.kind == "pause":
            what = _("SLA clock of %(stage)s paused", stage=titles[event.task_id])
        else:
            what = _("SLA clock of %(stage)s resumed", stage=titles[event.task_id])
        events.append(Event(event.at, event.kind, event.actor, what, event.reason))
    for entry in session.scalars(select(BreachEntry).where(BreachEntry.process_instance_id == instance.id)
                                 .order_by(BreachEntry.seq)):
        if entry.kind == "breach":
            events.append(Event(entry.breached_at, "breach", entry.assignee,
                                _("SLA of %(stage)s breached", stage=titles.get(entry.task_id, entry.task_name))))
        elif entry.kind == "escalation":
            actions = ", ".join(str(a) for a in entry.details.get("actions", []))
            events.append(Event(entry.recorded_at, "escalation", None,
                                _("Escalation level %(level)s for %(stage)s", level=entry.details.get("level"),
                                  stage=titles.get(entry.task_id, entry.task_name)), actions or None))
    if instance.completed_at:
        events.append(Event(instance.completed_at, "finished", None, _("Process completed")))
    # Ties (a stage completed the moment the previous one started) keep the order
    # they were added in: per stage ready, claimed, completed, stages in creation order.
    rank = {"started": 0, "finished": 2}
    return sorted(events, key=lambda e: (e.at, rank.get(e.kind, 1)))


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
