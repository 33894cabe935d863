"""One task: the account, the earlier stages' deliverables, the stage's form
rendered from its JSON Schema, and complete. Invalid data comes back with the
server's messages next to the fields, and nothing is saved."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from bpm_server import runtime
from bpm_server.accounts.models import Account
from bpm_server.database import db
from bpm_server.errors import Invalid
from bpm_server.extensions import deployment
from bpm_server.identity.auth import current_user
from bpm_server.instances import service as instances
from bpm_server.modeling import texts
from bpm_server.modeling.service import form_of
from bpm_server.tasks import inbox as inbox_service
from bpm_server.tasks import service as tasks
from bpm_server.tasks import verbs
from bpm_server.tasks.models import HumanTask
from bpm_server.web import forms
from bpm_server.web.i18n import current_language
from bpm_server.web.session import page_blueprint, page_requires
from bpm_server.web.task_context import context_of
from bpm_server.web.task_verbs import verb_context

blp = page_blueprint("task_page", __name__)


def _deliverables(task: HumanTask, messages: Mapping[str, str]) -> list[dict[str, Any]]:
    """Each earlier stage with its submitted fields, labelled from that stage's form (in the page's language)."""
    session = db.session
    version = instances.get_instance(session, task.process_instance_id).version
    result = []
    for stage in inbox_service.earlier_stages(session, task):
        labels = forms.labels_of(texts.schema(form_of(version, stage.form_name), messages))
        items = [(labels.get(k, k), v) for k, v in (stage.submitted or {}).items()]
        result.append({"stage": stage, "title": texts.text(stage.title, messages), "fields": items})
    return result


def _render(task: HumanTask, values: dict[str, Any] | None = None, errors: dict[str, list[str]] | None = None,
            status: int = 200) -> Any:
    session = db.session
    rt = deployment()
    shown = tasks.shown_in(session, task, current_language())
    schema = shown.form
    user = current_user()
    glance = inbox_service.glances(session, [task], rt.calendar, rt.clock.now())[task.id]
    can_act = task.state == "claimed" and task.assignee_id == user.id
    form_errors = [m for k, v in (errors or {}).items() if k not in (schema.get("properties") or {}) for m in v]
    return render_template(
        "tasks/task.html", task=task, schema=schema, fields=forms.fields_of(schema, values, errors),
        form_errors=form_errors, account=session.get(Account, task.account_id),
        deliverables=_deliverables(task, shown.messages), title=shown.title, instructions=shown.instructions,
        context=context_of(session, task, shown.messages),
        glance=glance, can_act=can_act, can_claim=task.state == "ready",
        can_withdraw=task.state == "completed" and task.completed_by_id == user.id, **verb_context(task)), status


@blp.route("/tasks/<task_id>")
@page_requires("staff")
def task(task_id: str) -> Any:
    found = tasks.get_task(db.session, task_id)
    if not verbs.can_view(db.session, current_user(), found):
        tasks.authorize_view(current_user(), found)
    verbs.note_read(db.session, current_user(), found, deployment().clock.now())
    return _render(found, values=found.submitted if found.state == "completed" else None)


@blp.route("/tasks/<task_id>/complete", methods=["POST"])
@page_requires("staff")
def complete(task_id: str) -> Any:
    session = db.session
    rt = deployment()
    found = tasks.get_task(session, task_id)
    tasks.authorize_view(current_user(), found)
    schema = tasks.form_for(session, found)
    data = forms.data_from_form(schema, request.form)
    try:
        done = runtime.finish_task(session, rt, current_user(), task_id, data, rt.clock.now())
    except Invalid as exc:
        # Nothing is saved (the request rolls back on 422); the form comes back with the messages.
        session.rollback()
        found = tasks.get_task(session, task_id)
        details = exc.details if isinstance(exc.details, dict) else {"data": [exc.message]}
        return _render(found, values=data, errors=details, status=422)
    flash(_("“%(title)s” is done; it went on to the next stage.", title=done.title), "ok")
    return redirect(url_for("inbox.inbox"))
