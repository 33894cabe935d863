"""The inbox API."""
from __future__ import annotations

from typing import Any

from flask import request
from flask_smorest import Blueprint

from bpm_server import runtime
from bpm_server.api_common import page_of
from bpm_server.extensions import db_session, deployment
from bpm_server.identity.auth import READERS, WORKERS, current_user, requires
from bpm_server.modeling import texts
from bpm_server.tasks import leads, saved_views, service, verbs
from bpm_server.tasks.schemas import (
    BulkClaimResultSchema,
    BulkClaimSchema,
    CompleteSchema,
    ForecastArgs,
    ForecastSchema,
    InboxArgs,
    ReassignResultSchema,
    ReassignSchema,
    TaskDetailSchema,
    TaskPageSchema,
)

blp = Blueprint("tasks", __name__, url_prefix="/api/v1/tasks", description="Task inbox: claim and complete stages")


@blp.route("")
@requires(*WORKERS)
@blp.arguments(InboxArgs, location="query")
@blp.response(200, TaskPageSchema)
def inbox(args: dict):
    """The caller's inbox: own tasks and the department's unclaimed ones, soonest due first
    (or by `sort` and `order`); `q` searches stage titles, account names and contract numbers."""
    filters = service.InboxFilter(**args)
    rows, total = service.inbox(db_session(), current_user(), filters, deployment().clock.now())
    return page_of(rows, total, filters.page, filters.per_page)


@blp.route("/<task_id>")
@requires(*WORKERS, *READERS)
@blp.response(200, TaskDetailSchema)
def get_task(task_id: str):
    """One task with its form (JSON Schema), the process data it starts from, and due dates."""
    session = db_session()
    task = service.get_task_and_version(session, task_id)
    if not verbs.can_view(session, current_user(), task):
        service.authorize_view(current_user(), task)  # the same 403 as before for other departments
    verbs.note_read(session, current_user(), task, deployment().clock.now())
    _attach_form(session, task)
    return task


@blp.route("/<task_id>/claim", methods=["POST"])
@requires(*WORKERS)
@blp.response(200, TaskDetailSchema)
@blp.alt_response(409, description="already claimed, completed or cancelled")
def claim(task_id: str):
    """Take a department task; it leaves colleagues' inboxes."""
    session = db_session()
    task = service.claim(session, current_user(), task_id, deployment().clock.now())
    _attach_form(session, task)
    return task


@blp.route("/bulk-claim", methods=["POST"])
@requires(*WORKERS)
@blp.arguments(BulkClaimSchema)
@blp.response(200, BulkClaimResultSchema)
def bulk_claim(body: dict):
    """Claim several tasks at once. Each gets its own result; one that was claimed
    meanwhile (409), is unknown (404) or not yours to claim (403) fails alone."""
    results = saved_views.claim_many(db_session(), current_user(), body["task_ids"], deployment().clock.now())
    claimed = sum(1 for r in results if r.status == 200)
    return {"items": results, "claimed": claimed, "failed": len(results) - claimed}


@blp.route("/<task_id>/complete", methods=["POST"])
@requires(*WORKERS)
@blp.arguments(CompleteSchema)
@blp.response(200, TaskDetailSchema)
@blp.alt_response(409, description="already completed, claimed by someone else, or changed concurrently")
@blp.alt_response(422, description="the data fails the form; details lists messages per field")
def complete(body: dict, task_id: str):
    """Complete a stage with its form data; the next stage lands in its department's inbox."""
    session = db_session()
    rt = deployment()
    task = runtime.finish_task(session, rt, current_user(), task_id, body["data"], rt.clock.now())
    _attach_form(session, task)
    return task


def _attach_form(session: Any, task: Any) -> None:
    """The task's form; with ``?lang=`` its texts (title, instructions, form) in that language."""
    lang = request.args.get("lang")
    if lang in texts.LOCALES:
        task.shown = service.shown_in(session, task, lang)
        task.form = task.shown.form
    else:
        task.form = service.form_for(session, task)


# --------------------------------------------------------------------------- department leads


@blp.route("/reassign", methods=["POST"])
@requires(*WORKERS)
@blp.arguments(ReassignSchema)
@blp.response(200, ReassignResultSchema)
@blp.alt_response(403, description="the caller does not lead the tasks' department")
@blp.alt_response(409, description="a task is already completed or cancelled; nothing was moved")
def reassign(body: dict):
    """Department leads: give one or many tasks to a person (or back to the queue with `to: null`).
    The reason goes into the audit trail; an absent person's tasks go to their delegate (委托)."""
    rt = deployment()
    moved = leads.reassign(db_session(), current_user(), body["task_ids"], to=body["to"], reason=body["reason"],
                           now=rt.clock.now())
    return {"items": moved}


@blp.route("/breach-forecast")
@requires(*WORKERS)
@blp.arguments(ForecastArgs, location="query")
@blp.response(200, ForecastSchema)
def breach_forecast(args: dict):
    """Department leads: open tasks already breached or due within `days` working days, grouped by account."""
    rt = deployment()
    department, horizon, groups = leads.forecast(db_session(), rt, current_user(), days=args["days"],
                                                 now=rt.clock.now(), department_id=args.get("department"))
    return {"department": department, "days": args["days"], "horizon": horizon, "accounts": [
        {"account_id": g.account_id, "account_name": g.account_name, "tier": g.tier, "breached": g.breached,
         "items": [_forecast_item(task, glance) for task, glance in g.items]} for g in groups]}


def _forecast_item(task, glance):
    # Attached for serialization only, like ``task.form`` above.
    task.sla_state = glance.state
    task.working_seconds_left = int(glance.left.total_seconds()) if glance.left is not None else None
    task.working_seconds_overdue = int(glance.overdue.total_seconds()) if glance.overdue is not None else None
    return task
