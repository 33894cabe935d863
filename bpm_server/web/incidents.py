"""Incidents and operations in the browser (admins, process owners): instances
stopped by an error, suspended ones, failed outbound calls; and the verbs an
operator uses on an instance (cancel, suspend, resume, retry), posted from this
page or from the instance view.
"""
from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from bpm_server.database import db
from bpm_server.erp import calls
from bpm_server.errors import AppError, Invalid
from bpm_server.extensions import deployment
from bpm_server.external_tasks import service as external_tasks
from bpm_server.identity.auth import current_user
from bpm_server.instances.models import ProcessInstance
from bpm_server.modeling.models import ProcessModel
from bpm_server.runtime import operations
from bpm_server.web.session import page_blueprint, page_requires

blp = page_blueprint("incident_pages", __name__)

OPERATORS = ("process_owner",)  # admins may do everything
MAX_ROWS = 200
MAX_RETRIES = 1000  # as the API allows


@blp.route("/incidents")
@page_requires(*OPERATORS)
def incident_list() -> str:
    session = db.session
    failed = list(session.scalars(select(ProcessInstance).where(ProcessInstance.state == "error")
                                  .order_by(ProcessInstance.updated_at.desc()).limit(MAX_ROWS)))
    held = list(session.scalars(select(ProcessInstance).where(ProcessInstance.suspended_at.is_not(None))
                                .order_by(ProcessInstance.suspended_at.desc()).limit(MAX_ROWS)))
    failed_calls, _total = calls.incidents(session, open_only=True, per_page=MAX_ROWS)
    # External tasks whose worker gave up (no retries left): the instance waits on them.
    stuck, _total = external_tasks.list_tasks(session, state="incident", per_page=MAX_ROWS)
    model_names = dict(session.execute(select(ProcessModel.id, ProcessModel.name)
                                       .where(ProcessModel.id.in_({t.process_model_id for t in stuck}))).all())
    return render_template("incidents/list.html", failed=failed, held=held, calls=failed_calls,
                           external=stuck, model_names=model_names)


VERBS = {"cancel", "suspend", "resume", "retry"}


@blp.route("/instances/<instance_id>/operate/<verb>", methods=["POST"])
@page_requires(*OPERATORS)
def operate(instance_id: str, verb: str) -> Any:
    """One operation, then back where it was asked from, with what happened."""
    if verb not in VERBS:
        return redirect(url_for("incident_pages.incident_list"))
    rt, session = deployment(), db.session
    reason = (request.form.get("reason") or "").strip() or None
    actor, now = current_user().username, rt.clock.now()
    try:
        if verb == "cancel":
            if not reason:
                raise Invalid(_("Say why the instance is cancelled."), code="reason_required")
            operations.cancel(session, rt, instance_id, reason=reason, actor=actor, now=now)
        elif verb == "suspend":
            operations.suspend(session, rt, instance_id, reason=reason, actor=actor, now=now)
        elif verb == "resume":
            operations.resume(session, rt, instance_id, reason=reason, actor=actor, now=now)
        else:
            instance = operations.retry(session, rt, instance_id, actor=actor, now=now)
            if instance.state == "error":
                session.commit()  # the retry and its new error are on record
                flash(_("The retry stopped again: %(message)s", message=(instance.error or {}).get("message")),
                      "error")
                return redirect(_back(instance_id))
    except AppError as exc:
        session.rollback()
        flash(exc.message, "error")
        return redirect(_back(instance_id))
    flash({"cancel": _("The instance was cancelled."), "suspend": _("The instance is suspended."),
           "resume": _("The instance was resumed."), "retry": _("The instance runs again.")}[verb], "ok")
    return redirect(_back(instance_id))


@blp.route("/instances/<instance_id>/migrate", methods=["POST"])
@page_requires(*OPERATORS)
def migrate(instance_id: str) -> Any:
    """Check (dry run) or carry out a migration to the chosen version."""
    rt, session = deployment(), db.session
    dry_run = request.form.get("dry_run") == "1"
    try:
        number = int(request.form.get("version", ""))
        result = operations.migrate_instance(session, rt, instance_id, number, dry_run=dry_run,
                                             actor=current_user().username, now=rt.clock.now())
    except ValueError:
        flash(_("Choose a version."), "error")
        return redirect(_back(instance_id))
    except AppError as exc:
        session.rollback()
        flash(exc.message, "error")
        return redirect(_back(instance_id))
    if result.migrated:
        flash(_("The instance now runs version %(v)s.", v=result.to_version), "ok")
    elif result.possible:
        flash(_("The instance can move to version %(v)s.", v=result.to_version), "ok")
    else:
        flash(_("The instance cannot move to version %(v)s: %(why)s", v=result.to_version,
                why="; ".join(f"{p['element_id']}: {p['problem']}" for p in result.problems)), "error")
    return redirect(_back(instance_id))


@blp.route("/incidents/calls/<call_id>/retry", methods=["POST"])
@page_requires("admin")
def retry_call(call_id: str) -> Any:
    rt = deployment()
    try:
        calls.retry_incident(db.session, rt, call_id, actor=current_user().username, now=rt.clock.now())
    except AppError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        flash(_("The call will be tried again now."), "ok")
    return redirect(url_for("incident_pages.incident_list"))


@blp.route("/incidents/external-tasks/<task_id>/retries", methods=["POST"])
@page_requires("admin")
def retry_external_task(task_id: str) -> Any:
    """Give an external task new retries: workers fetch it again."""
    rt = deployment()
    try:
        retries = int(request.form.get("retries") or "1")
        if not 1 <= retries <= MAX_RETRIES:
            raise ValueError
        external_tasks.set_retries(db.session, task_id, retries, actor=current_user().username, now=rt.clock.now())
    except ValueError:
        flash(_("Retries must be a whole number from 1 to %(max)s.", max=MAX_RETRIES), "error")
    except AppError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        flash(_("Workers can fetch the task again (%(n)s retries).", n=retries), "ok")
    return redirect(url_for("incident_pages.incident_list"))


def _back(instance_id: str) -> str:
    if request.form.get("back") == "incidents":
        return url_for("incident_pages.incident_list")
    return url_for("instance_pages.instance_view", instance_id=instance_id)
