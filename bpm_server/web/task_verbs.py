"""The task verbs on the task page (退回, 转交, release, 催办, 撤回, comments) and the
notification centre (unread count in the header, list, mark read, link to the task)."""
from __future__ import annotations

import mimetypes
import re
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from bpm_server.database import db
from bpm_server.errors import AppError, Invalid
from bpm_server.extensions import deployment
from bpm_server.identity import departments
from bpm_server.identity.auth import current_user
from bpm_server.notifications import service as notifications
from bpm_server.notifications.models import Notification
from bpm_server.notifications.texts import knows, render
from bpm_server.runtime import verbs as rt_verbs
from bpm_server.tasks import comments, verbs
from bpm_server.tasks.models import HumanTask
from bpm_server.web.i18n import current_language
from bpm_server.web.session import page_blueprint, page_requires, page_user

blp = page_blueprint("task_verbs_pages", __name__)


def verb_context(task: HumanTask) -> dict[str, Any]:
    """What the task page shows of the verbs: earlier stages to send back to, the
    actions with their reasons, comments, attachments and copies."""
    session = db.session
    history = list(session.query(HumanTask).filter(
        HumanTask.process_instance_id == task.process_instance_id, HumanTask.state == "completed",
        HumanTask.kind == "stage").order_by(HumanTask.history_seq))
    stages: dict[str, str] = {}
    for row in history:
        stages.setdefault(row.name, row.title)
    return {"earlier_stages": stages, "actions": verbs.actions_of(session, task.process_instance_id),
            "comments": comments.comments_of(session, task.process_instance_id, task.id),
            "attachments": comments.attachments_of(session, task.process_instance_id, task.id),
            "copies": verbs.copies_of(session, task)}


def _back(task_id: str) -> Any:
    return redirect(url_for("task_page.task", task_id=task_id))


@blp.route("/tasks/<task_id>/send-back", methods=["POST"])
@page_requires("staff")
def send_back(task_id: str) -> Any:
    rt = deployment()
    reopened = rt_verbs.send_back(db.session, rt, current_user(), task_id, request.form.get("to_stage"),
                                  request.form.get("reason"), rt.clock.now())
    flash(_("Sent back to “%(title)s”.", title=reopened.title), "ok")
    return redirect(url_for("inbox.inbox"))


@blp.route("/tasks/<task_id>/transfer", methods=["POST"])
@page_requires("staff")
def transfer(task_id: str) -> Any:
    rt = deployment()
    task = rt_verbs.transfer(db.session, rt, current_user(), task_id, request.form.get("to"),
                             request.form.get("reason"), rt.clock.now())
    flash(_("Transferred to %(who)s.", who=task.assignee.display_name if task.assignee else "?"), "ok")
    return redirect(url_for("inbox.inbox"))


def _usernames(text: str | None) -> list[str]:
    """User names as a person types them: separated by commas (also Chinese ones), 、 or spaces."""
    return [name for name in re.split("[,\uff0c\u3001;\uff1b\\s]+", text or "") if name]


@blp.route("/tasks/<task_id>/add-signer", methods=["POST"])
@page_requires("staff")
def add_signer(task_id: str) -> Any:
    """加签: one signer, or several who all sign (会签) or of whom the first decides (或签)."""
    rt = deployment()
    names = _usernames(request.form.get("users"))
    position = "after" if request.form.get("position") == "after" else "before"
    mode = "any" if request.form.get("mode") == "any" else "all"
    if len(names) == 1:
        rt_verbs.add_signer(db.session, rt, current_user(), task_id, names[0], position, request.form.get("reason"),
                            rt.clock.now())
    else:  # none at all is refused by the group form, naming the field
        rt_verbs.add_signer(db.session, rt, current_user(), task_id, None, position, request.form.get("reason"),
                            rt.clock.now(), users=names, mode=mode)
    flash(_("Signers added: %(who)s.", who="、".join(names)), "ok")
    return _back(task_id)


@blp.route("/tasks/<task_id>/cc", methods=["POST"])
@page_requires("staff")
def copy_to(task_id: str) -> Any:
    """抄送: read-only copies with read receipts."""
    rt = deployment()
    names = _usernames(request.form.get("users"))
    rt_verbs.copy_to(db.session, rt, current_user(), task_id, names, rt.clock.now())
    flash(_("Copied to %(who)s.", who="、".join(names)), "ok")
    return _back(task_id)


@blp.route("/tasks/<task_id>/release", methods=["POST"])
@page_requires("staff")
def release(task_id: str) -> Any:
    rt = deployment()
    rt_verbs.release(db.session, rt, current_user(), task_id, rt.clock.now())
    flash(_("The task is back in the department's queue."), "ok")
    return redirect(url_for("inbox.inbox"))


@blp.route("/tasks/<task_id>/urge", methods=["POST"])
@page_requires("staff")
def urge(task_id: str) -> Any:
    rt = deployment()
    rt_verbs.urge(db.session, rt, current_user(), task_id, request.form.get("reason"), rt.clock.now())
    flash(_("Reminder sent."), "ok")
    return _back(task_id)


@blp.route("/tasks/<task_id>/withdraw", methods=["POST"])
@page_requires("staff")
def withdraw(task_id: str) -> Any:
    rt = deployment()
    reopened = rt_verbs.withdraw(db.session, rt, current_user(), task_id, request.form.get("reason"),
                                 rt.clock.now())
    flash(_("Withdrawn: “%(title)s” is back with you.", title=reopened.title), "ok")
    return _back(reopened.id)


@blp.route("/tasks/<task_id>/comment", methods=["POST"])
@page_requires()
def comment(task_id: str) -> Any:
    session = db.session
    task = verbs.visible_task(session, current_user(), task_id)
    comments.add_comment(session, current_user(), task.process_instance_id, task.id, request.form.get("body"),
                         deployment().clock.now())
    flash(_("Comment added."), "ok")
    return _back(task_id)


@blp.route("/tasks/<task_id>/attach", methods=["POST"])
@page_requires()
def attach(task_id: str) -> Any:
    """The task page's file field: the file is kept with the stage (size and type limits as the API's)."""
    session = db.session
    task = verbs.visible_task(session, current_user(), task_id)
    upload = request.files.get("file")
    try:
        if upload is None or not upload.filename:
            raise Invalid(_("Choose a file to attach."), code="invalid", details={"file": ["missing"]})
        attached = comments.add_attachment(session, deployment(), current_user(), task.process_instance_id, task.id,
                                           upload.filename, upload.mimetype, upload.read(), deployment().clock.now())
    except AppError as exc:
        session.rollback()
        flash(_attachment_refusal(exc), "error")
        return _back(task_id)
    flash(_("Attached %(name)s.", name=attached.filename), "ok")
    return _back(task_id)


def _attachment_refusal(exc: AppError) -> str:
    """The API's refusals, said on the page in its language."""
    if exc.status == 413:
        return _("The file is larger than the limit of %(mb)s MB.",
                 mb=round(deployment().config.attachment_max_bytes / (1024 * 1024), 1))
    if exc.status == 415:
        kinds = sorted({mimetypes.guess_extension(t) or t for t in deployment().config.attachment_types})
        return _("This type of file is not accepted here (accepted: %(types)s).", types=" ".join(kinds))
    return exc.message


def _text(note: Notification) -> tuple[str, str]:
    if note.params and knows(note.kind):
        language = current_language()
        model_texts = notifications.model_texts_of(db.session, note.task_id, language)
        names = departments.names(db.session, language) if "department_id" in note.params else None
        return render(note.kind, note.params, language, model_texts, names)
    return note.title, note.body


@blp.route("/notifications")
@page_requires()
def notification_list() -> Any:
    rows, total = notifications.notifications_for(db.session, current_user(), unread_only=False, page=1,
                                                  per_page=100)
    items = [{"note": row, "text": _text(row)} for row in rows]
    return render_template("notifications/list.html", items=items, total=total)


@blp.route("/notifications/<notification_id>/read", methods=["POST"])
@page_requires()
def mark_read(notification_id: str) -> Any:
    notifications.mark_read(db.session, current_user(), notification_id, deployment().clock.now())
    return redirect(request.form.get("next") or url_for("task_verbs_pages.notification_list"))


@blp.route("/notifications/read-all", methods=["POST"])
@page_requires()
def mark_all_read() -> Any:
    notifications.mark_read(db.session, current_user(), None, deployment().clock.now())
    return redirect(url_for("task_verbs_pages.notification_list"))


def unread_notifications() -> int:
    """The header's badge (0 when nobody is signed in)."""
    user = page_user()
    return notifications.unread_count(db.session, user) if user is not None else 0
