"""The department lead's page: what will breach within the next N working days
(grouped by account), reassigning one or many tasks with a reason, and
delegating an absent person's work (``web.settings`` holds the delegation forms)."""
from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from bpm_server.database import db
from bpm_server.errors import AppError
from bpm_server.extensions import deployment
from bpm_server.identity.auth import current_user
from bpm_server.tasks import delegation, leads
from bpm_server.tasks import inbox as inbox_service
from bpm_server.tasks import service as tasks
from bpm_server.web import settings
from bpm_server.web.i18n import current_language
from bpm_server.web.session import LEAD, page_blueprint, page_requires

blp = page_blueprint("leads", __name__)
DEFAULT_DAYS = 3

_MESSAGES = {
    "reason_required": lambda: _("Say why the tasks are reassigned."),
    "no_tasks": lambda: _("Tick at least one task."),
    "unknown_user": lambda: _("There is no such active person."),
    "not_staff": lambda: _("That person is not staff and cannot work on tasks."),
    "task_closed": lambda: _("A ticked task is already closed; nothing was moved."),
}


def _say(exc: AppError) -> str:
    known = _MESSAGES.get(exc.code)
    return known() if known else exc.message


def _days() -> int:
    try:
        return min(max(int(request.args.get("days", DEFAULT_DAYS)), 0), 60)
    except ValueError:
        return DEFAULT_DAYS


@blp.route("/leads")
@page_requires(LEAD)
def lead_inbox() -> Any:
    session = db.session
    rt = deployment()
    user = current_user()
    now = rt.clock.now()
    days = _days()
    department, horizon, groups = leads.forecast(session, rt, user, days=days, now=now,
                                                 department_id=request.args.get("department") or None)
    open_tasks = leads.open_department_tasks(session, department)
    staff = settings.staff_people()
    # Stage titles in the reader's language (each instance's version's messages file).
    shown = [t for group in groups for t, _glance in group.items] + open_tasks
    return render_template(
        "leads/leads.html", titles=tasks.titles_in(session, shown, current_language()), department=department,
        departments=leads.led_departments(session, user), days=days,
        horizon=horizon, groups=groups, open_tasks=open_tasks,
        glances=inbox_service.glances(session, open_tasks, rt.calendar, now),
        people=leads.department_people(session, department), staff=staff,
        delegations=delegation.listed(session, user, now=now, department_id=department),
        models=settings.process_models(), model_names=settings.model_names(), starts=settings.local_input(now))


def _back() -> Any:
    return redirect(url_for("leads.lead_inbox", department=request.form.get("department") or None,
                            days=request.form.get("days") or None))


@blp.route("/leads/reassign", methods=["POST"])
@page_requires(LEAD)
def reassign() -> Any:
    task_ids = request.form.getlist("task_id")
    target = request.form.get("to") or None
    try:
        moved = leads.reassign(db.session, current_user(), task_ids, to=target, reason=request.form.get("reason", ""),
                               now=deployment().clock.now())
    except AppError as exc:
        db.session.rollback()
        flash(_say(exc), "error")
        return _back()
    names = sorted({t.assignee.display_name for t in moved if t.assignee})
    flash(_("%(n)d task(s) reassigned to %(who)s.", n=len(moved),
            who=", ".join(names) if names else _("the department queue")), "ok")
    return _back()
