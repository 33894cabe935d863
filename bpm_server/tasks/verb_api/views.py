"""The task verbs, comments and attachments over the API (names fixed by API.md)."""
from __future__ import annotations

from io import BytesIO
from typing import Any

from flask import request, send_file
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from bpm_server.errors import Invalid
from bpm_server.extensions import db_session, deployment
from bpm_server.identity.auth import READERS, WORKERS, current_user, requires
from bpm_server.runtime import verbs as rt_verbs
from bpm_server.tasks import comments, verbs
from bpm_server.tasks.schemas import TaskDetailSchema, TaskSchema

blp = Blueprint("task_verbs", __name__, url_prefix="/api/v1",
                description="Task verbs: send back, transfer, add a signer, copy, urge, withdraw, release; "
                            "comments and attachments")

class SendBackSchema(Schema):
    to_stage = fields.String(required=True, metadata={"description": "a stage the instance passed, or 'initiator'"})
    reason = fields.String(required=True)


class TransferSchema(Schema):
    to = fields.String(required=True)
    reason = fields.String(required=True)


class AddSignerSchema(Schema):
    user = fields.String(metadata={"description": "one signer (username)"})
    users = fields.List(fields.String(), metadata={"description": "several signers (usernames), with `mode`"})
    mode = fields.String(load_default="all", validate=validate.OneOf(["all", "any"]), metadata={
        "description": "with `users`: all (会签, every one signs) or any (或签, the first signature decides; the "
                       "others' steps are cancelled and they are told)"})
    position = fields.String(required=True, validate=validate.OneOf(["before", "after"]))
    reason = fields.String(load_default=None)

    @validates_schema
    def _one_form(self, data: dict, **_: Any) -> None:
        if ("user" in data) == ("users" in data):
            raise ValidationError("name either `user` (one signer) or `users` (several)", field_name="users")


class AddSignerResultSchema(TaskSchema):
    signer_steps = fields.List(fields.Nested(TaskSchema), allow_none=True, metadata={
        "description": "with `users` and `before`: each signer's step"})


class ReasonSchema(Schema):
    reason = fields.String(load_default=None)


class CcSchema(Schema):
    users = fields.List(fields.String(), required=True)


class CommentBody(Schema):
    body = fields.String(required=True)


class CopySchema(Schema):
    user = fields.Function(lambda c: c.user.username)
    by = fields.Function(lambda c: c.by.username)
    created_at = fields.DateTime()
    read_at = fields.DateTime(allow_none=True)


class CommentSchema(Schema):
    id = fields.String()
    task_id = fields.String(allow_none=True)
    author = fields.Function(lambda c: c.author.username)
    author_name = fields.Function(lambda c: c.author.display_name)
    body = fields.String()
    created_at = fields.DateTime()


class AttachmentSchema(Schema):
    id = fields.String()
    task_id = fields.String(allow_none=True)
    filename = fields.String()
    content_type = fields.String()
    size_bytes = fields.Integer()
    sha256 = fields.String()
    uploaded_by = fields.Function(lambda a: a.uploaded_by.username)
    created_at = fields.DateTime()
    url = fields.Function(lambda a: f"/api/v1/attachments/{a.id}")


class ActionSchema(Schema):
    id = fields.String()
    task_id = fields.String()
    verb = fields.String()
    actor = fields.Function(lambda a: a.actor.username)
    target = fields.Function(lambda a: a.target_user.username if a.target_user else None)
    to_stage = fields.String(allow_none=True)
    new_task_id = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    created_at = fields.DateTime()


class ListOf(Schema):
    total = fields.Integer()


def _items(schema: type[Schema]) -> type[Schema]:
    return type(f"{schema.__name__}List", (ListOf,), {"items": fields.List(fields.Nested(schema))})


CopyList, CommentList, AttachmentList, ActionList = (_items(s) for s in (CopySchema, CommentSchema,
                                                                           AttachmentSchema, ActionSchema))


def _listed(rows: list) -> dict[str, Any]:
    return {"items": rows, "total": len(rows)}


def _now() -> Any:
    return deployment().clock.now()


@blp.route("/tasks/<task_id>/send-back", methods=["POST"])
@requires(*WORKERS)
@blp.arguments(SendBackSchema)
@blp.response(200, TaskDetailSchema)
@blp.alt_response(422, description="the instance never passed that stage, or no reason")
@blp.alt_response(409, description="the task is closed or held by someone else, the instance is not running, or "
                                   "the process can no longer go back there")
def send_back(body: dict, task_id: str) -> Any:
    """退回: back to an earlier stage (or `initiator`), with a reason the earlier stage sees.
    Answers the reopened task (held by whoever completed it before)."""
    return rt_verbs.send_back(db_session(), deployment(), current_user(), task_id, body["to_stage"],
                              body["reason"], _now())


@blp.route("/tasks/<task_id>/transfer", methods=["POST"])
@requires(*WORKERS)
@blp.arguments(TransferSchema)
@blp.response(200, TaskSchema)
@blp.alt_response(422, description="unknown or deactivated person")
@blp.alt_response(409, description="the task is closed or held by someone else")
def transfer(body: dict, task_id: str) -> Any:
    """转交: hand the task to a named colleague, with a reason."""
    return rt_verbs.transfer(db_session(), deployment(), current_user(), task_id, body["to"], body["reason"], _now())


@blp.route("/tasks/<task_id>/add-signer", methods=["POST"])
@requires(*WORKERS)
@blp.arguments(AddSignerSchema)
@blp.response(200, AddSignerResultSchema)
@blp.alt_response(422, description="unknown person, or yourself; both or neither of `user` and `users`")
@blp.alt_response(409, description="the task is closed or held by someone else, or the instance is not running")
def add_signer(body: dict, task_id: str) -> Any:
    """加签: `before` gives the signer a step now and the task returns to you once signed;
    `after` adds a signature step after your completion. Answers the signer's step (before)
    or your task (after). With `users` and `mode` (会签 `all` / 或签 `any`) several sign
    together; the answer is then your task, the signers' steps in `signer_steps` (before)."""
    return rt_verbs.add_signer(db_session(), deployment(), current_user(), task_id, body.get("user"),
                               body["position"], body.get("reason"), _now(), users=body.get("users"),
                               mode=body["mode"])


@blp.route("/tasks/<task_id>/release", methods=["POST"])
@requires(*WORKERS)
@blp.response(200, TaskSchema)
@blp.alt_response(409, description="the task is not claimed by you (not_claimed_by_you)")
def release(task_id: str) -> Any:
    """Give a claimed task back to its department."""
    return rt_verbs.release(db_session(), deployment(), current_user(), task_id, _now())


@blp.route("/tasks/<task_id>/withdraw", methods=["POST"])
@requires(*WORKERS)
@blp.arguments(ReasonSchema)
@blp.response(200, TaskDetailSchema)
@blp.alt_response(409, description="the next stage was already claimed or completed")
def withdraw(body: dict, task_id: str) -> Any:
    """撤回: the completer of a stage takes it back while the next stage is unclaimed."""
    return rt_verbs.withdraw(db_session(), deployment(), current_user(), task_id, body.get("reason"), _now())


@blp.route("/tasks/<task_id>/urge", methods=["POST"])
@requires(*WORKERS, *READERS)
@blp.arguments(ReasonSchema)
@blp.response(200, ListOf)
@blp.alt_response(429, description="urged too often")
@blp.alt_response(409, description="the task is closed: there is nobody to urge (task_closed)")
def urge(body: dict, task_id: str) -> Any:
    """催办: remind the holder (or the department while unclaimed) through the notification channels."""
    return {"total": rt_verbs.urge(db_session(), deployment(), current_user(), task_id, body.get("reason"), _now())}


@blp.route("/tasks/<task_id>/cc", methods=["POST"])
@requires(*WORKERS)
@blp.arguments(CcSchema)
@blp.response(200, CopyList)
def copy_to(body: dict, task_id: str) -> Any:
    """抄送: read-only sight of the task for others; each gets a notification."""
    session = db_session()
    rt_verbs.copy_to(session, deployment(), current_user(), task_id, body["users"], _now())
    return _listed(verbs.copies_of(session, verbs.visible_task(session, current_user(), task_id)))


@blp.route("/tasks/<task_id>/cc", methods=["GET"])
@requires(*WORKERS, *READERS)
@blp.response(200, CopyList)
def copies(task_id: str) -> Any:
    """Who the task was copied to, with read receipts."""
    session = db_session()
    return _listed(verbs.copies_of(session, verbs.visible_task(session, current_user(), task_id)))


@blp.route("/tasks/<task_id>/comments", methods=["GET"])
@requires(*WORKERS, *READERS)
@blp.response(200, CommentList)
def task_comments(task_id: str) -> Any:
    session = db_session()
    task = verbs.visible_task(session, current_user(), task_id)
    return _listed(comments.comments_of(session, task.process_instance_id, task.id))


@blp.route("/tasks/<task_id>/comments", methods=["POST"])
@requires(*WORKERS, *READERS)
@blp.arguments(CommentBody)
@blp.response(201, CommentSchema)
@blp.alt_response(404, description="no such task, or one the caller cannot see")
def comment_task(body: dict, task_id: str) -> Any:
    session = db_session()
    task = verbs.visible_task(session, current_user(), task_id)
    return comments.add_comment(session, current_user(), task.process_instance_id, task.id, body["body"], _now())


@blp.route("/tasks/<task_id>/attachments", methods=["GET"])
@requires(*WORKERS, *READERS)
@blp.response(200, AttachmentList)
def task_attachments(task_id: str) -> Any:
    session = db_session()
    task = verbs.visible_task(session, current_user(), task_id)
    return _listed(comments.attachments_of(session, task.process_instance_id, task.id))


def _upload(instance_id: str, task_id: str | None) -> Any:
    upload = request.files.get("file")
    if upload is None:
        raise Invalid("file: send one file as multipart field 'file'", code="invalid", details={"file": ["missing"]})
    return comments.add_attachment(db_session(), deployment(), current_user(), instance_id, task_id,
                                   upload.filename, upload.mimetype, upload.read(), _now())


@blp.route("/tasks/<task_id>/attachments", methods=["POST"])
@requires(*WORKERS, *READERS)
@blp.response(201, AttachmentSchema)
@blp.alt_response(413, description="over the size limit")
@blp.alt_response(415, description="a refused file type")
def attach_task(task_id: str) -> Any:
    """Attach a file (multipart field `file`) to a task."""
    task = verbs.visible_task(db_session(), current_user(), task_id)
    return _upload(task.process_instance_id, task.id)


@blp.route("/process-instances/<instance_id>/comments", methods=["GET"])
@requires(*WORKERS, *READERS)
@blp.response(200, CommentList)
def instance_comments(instance_id: str) -> Any:
    """Every comment of the instance, on its tasks or on the instance itself."""
    session = db_session()
    comments.visible_instance(session, current_user(), instance_id)
    return _listed(comments.comments_of(session, instance_id))


@blp.route("/process-instances/<instance_id>/comments", methods=["POST"])
@requires(*WORKERS, *READERS)
@blp.arguments(CommentBody)
@blp.response(201, CommentSchema)
def comment_instance(body: dict, instance_id: str) -> Any:
    session = db_session()
    comments.visible_instance(session, current_user(), instance_id)
    return comments.add_comment(session, current_user(), instance_id, None, body["body"], _now())


@blp.route("/process-instances/<instance_id>/attachments", methods=["GET"])
@requires(*WORKERS, *READERS)
@blp.response(200, AttachmentList)
def instance_attachments(instance_id: str) -> Any:
    session = db_session()
    comments.visible_instance(session, current_user(), instance_id)
    return _listed(comments.attachments_of(session, instance_id))


@blp.route("/process-instances/<instance_id>/attachments", methods=["POST"])
@requires(*WORKERS, *READERS)
@blp.response(201, AttachmentSchema)
@blp.alt_response(413, description="over the size limit")
@blp.alt_response(415, description="a refused file type")
def attach_instance(instance_id: str) -> Any:
    comments.visible_instance(db_session(), current_user(), instance_id)
    return _upload(instance_id, None)


@blp.route("/process-instances/<instance_id>/actions", methods=["GET"])
@requires(*WORKERS, *READERS)
@blp.response(200, ActionList)
def instance_actions(instance_id: str) -> Any:
    """The verbs used on the instance's tasks, oldest first (with reasons)."""
    session = db_session()
    comments.visible_instance(session, current_user(), instance_id)
    return _listed(verbs.actions_of(session, instance_id))


@blp.route("/attachments/<attachment_id>", methods=["GET"])
@requires(*WORKERS, *READERS)
@blp.response(200, description="the file")
def download(attachment_id: str) -> Any:
    """Download an attachment (only for those who may see its task or instance)."""
    found = comments.download(db_session(), current_user(), attachment_id)
    return send_file(BytesIO(found.content), mimetype=found.content_type, as_attachment=True,
                     download_name=found.filename)

