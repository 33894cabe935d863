"""Comments and attachments on tasks and instances, kept with the history.

Attachments are stored in the database (see ``models.Attachment``): the size
limit (413) and the content-type allow-list (415) come from the config; a
download is authorized like a view of its task or instance (404 otherwise)."""
from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from bpm_server.database import new_id
from bpm_server.errors import AppError, Invalid, NotFound, TooLarge
from bpm_server.extensions import Deployment
from bpm_server.identity.models import User
from bpm_server.instances.models import ProcessInstance
from bpm_server.sla.clock_stops import first_action
from bpm_server.tasks.models import Attachment, Comment, HumanTask
from bpm_server.tasks.verbs import can_view

MAX_COMMENT_CHARS = 4000


class UnsupportedType(AppError):
    status, code = 415, "unsupported_media_type"


def can_see_instance(session: Session, user: User, instance_id: str) -> bool:
    """Back-office roles, and anyone who may see one of the instance's tasks."""
    if user.has_role("admin", "auditor", "process_owner"):
        return True
    rows = session.scalars(select(HumanTask).where(HumanTask.process_instance_id == instance_id))
    return any(can_view(session, user, row) for row in rows)


def visible_instance(session: Session, user: User, instance_id: str) -> ProcessInstance:
    instance = session.get(ProcessInstance, instance_id)
    if instance is None or not can_see_instance(session, user, instance_id):
        raise NotFound(f"process instance {instance_id!r} does not exist", code="unknown_instance")
    return instance


def add_comment(session: Session, user: User, instance_id: str, task_id: str | None, body: object,
                now: datetime) -> Comment:
    text = body.strip() if isinstance(body, str) else ""
    if not text:
        raise Invalid("body: write something", code="invalid", details={"body": ["is empty"]})
    if len(text) > MAX_COMMENT_CHARS:
        raise Invalid(f"body: at most {MAX_COMMENT_CHARS} characters", code="invalid",
                      details={"body": [f"longer than {MAX_COMMENT_CHARS} characters"]})
    comment = Comment(id=new_id(), process_instance_id=instance_id, task_id=task_id, author_id=user.id, author=user,
                      body=text, created_at=now)
    session.add(comment)
    stage = session.get(HumanTask, task_id) if task_id else None
    if stage is not None:  # a comment on the stage is a response to it
        first_action(session, stage, "comment", user.username, now)
    return comment


def _kept_with(session: Session, kind: type[Comment] | type[Attachment], instance_id: str,
               task_id: str | None) -> list:
    """An instance's comments or attachments (only one task's, given ``task_id``), oldest first."""
    query = select(kind).where(kind.process_instance_id == instance_id)
    if task_id is not None:
        query = query.where(kind.task_id == task_id)
    return list(session.scalars(query.order_by(kind.created_at, kind.id)))


def comments_of(session: Session, instance_id: str, task_id: str | None = None) -> list[Comment]:
    return _kept_with(session, Comment, instance_id, task_id)


def add_attachment(session: Session, rt: Deployment, user: User, instance_id: str, task_id: str | None,
                   filename: str | None, content_type: str | None, content: bytes, now: datetime) -> Attachment:
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()[:255]
    if not name:
        raise Invalid("file: send one file as multipart field 'file'", code="invalid", details={"file": ["missing"]})
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind not in rt.config.attachment_types:
        raise UnsupportedType(f"file: type {kind or 'unknown'!r} is not accepted (accepted: "
                              f"{', '.join(rt.config.attachment_types)})", details={"file": ["type refused"]})
    if len(content) > rt.config.attachment_max_bytes:
        raise TooLarge(f"file: {len(content)} bytes, more than the limit of {rt.config.attachment_max_bytes}",
                       details={"file": ["too large"]})
    attachment = Attachment(id=new_id(), process_instance_id=instance_id, task_id=task_id, uploaded_by_id=user.id,
                            uploaded_by=user, filename=name, content_type=kind, size_bytes=len(content),
                            sha256=hashlib.sha256(content).hexdigest(), content=content, created_at=now)
    session.add(attachment)
    return attachment


def attachments_of(session: Session, instance_id: str, task_id: str | None = None) -> list[Attachment]:
    return _kept_with(session, Attachment, instance_id, task_id)


def download(session: Session, user: User, attachment_id: str) -> Attachment:
    found = session.scalar(select(Attachment).where(Attachment.id == attachment_id)
                           .options(undefer(Attachment.content)))
    if found is None:
        raise NotFound(f"attachment {attachment_id!r} does not exist", code="unknown_attachment")
    task = session.get(HumanTask, found.task_id) if found.task_id else None
    allowed = can_view(session, user, task) if task is not None else \
        can_see_instance(session, user, found.process_instance_id)
    if not allowed:
        raise NotFound(f"attachment {attachment_id!r} does not exist", code="unknown_attachment")
    return found
