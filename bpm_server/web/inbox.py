"""The staff inbox: the "mine" and "my department" tabs with each task's SLA
state at a glance, filters by account and process, and claim."""
from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from bpm_server.database import db
from bpm_server.extensions import deployment
from bpm_server.identity.auth import current_user
from bpm_server.tasks import inbox as inbox_service
from bpm_server.tasks import service as tasks
from bpm_server.web.session import page_blueprint, page_requires

blp = page_blueprint("inbox", __name__)
PER_PAGE = 50


def _int_arg(name: str, default: int) -> int:
    try:
        return max(int(request.args.get(name, default)), 1)
    except ValueError:
        return default


@blp.route("/inbox")
@page_requires("staff")
def inbox() -> Any:
    user = current_user()
    session = db.session
    rt = deployment()
    tab = request.args.get("tab", "mine")
    if tab not in inbox_service.TABS:
        tab = "mine"
    account_id = request.args.get("account") or None
    process_model_id = request.args.get("process") or None
    page = _int_arg("page", 1)
    rows, total = inbox_service.tab_page(session, user, tab, account_id=account_id,
                                         process_model_id=process_model_id, page=page, per_page=PER_PAGE)
    now = rt.clock.now()
    accounts, models = inbox_service.filter_choices(session, user)
    return render_template(
        "inbox/inbox.html", tab=tab, tasks=rows, total=total, page=page, per_page=PER_PAGE,
        glances=inbox_service.glances(session, rows, rt.calendar, now), counts=inbox_service.tab_counts(session, user),
        accounts=accounts, models=models, account_id=account_id, process_model_id=process_model_id, me=user)


@blp.route("/inbox/tasks/<task_id>/claim", methods=["POST"])
@page_requires("staff")
def claim(task_id: str) -> Any:
    task = tasks.claim(db.session, current_user(), task_id, deployment().clock.now())
    flash(_("You claimed “%(title)s”.", title=task.title), "ok")
    return redirect(url_for("task_page.task", task_id=task.id))
