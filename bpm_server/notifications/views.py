"""The caller's notifications."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from bpm_server.api_common import PageArgs, page_of
from bpm_server.extensions import db_session, deployment
from bpm_server.identity.auth import READERS, current_user, requires
from bpm_server.notifications import service

blp = Blueprint("notifications", __name__, url_prefix="/api/v1/notifications", description="In-app notifications")


class NotificationSchema(Schema):
    id = fields.String()
    kind = fields.String()
    title = fields.String()
    body = fields.String()
    task_id = fields.String(allow_none=True)
    created_at = fields.DateTime()
    read_at = fields.DateTime(allow_none=True)


class NotificationPageSchema(Schema):
    items = fields.List(fields.Nested(NotificationSchema))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()


class NotificationArgs(PageArgs):
    unread = fields.Boolean(load_default=False)


@blp.route("")
@requires(*READERS)
@blp.arguments(NotificationArgs, location="query")
@blp.response(200, NotificationPageSchema)
def list_notifications(args: dict):
    """The caller's notifications, newest first (SLA warnings, breaches, escalations)."""
    rows, total = service.notifications_for(db_session(), current_user(), unread_only=args["unread"],
                                            page=args["page"], per_page=args["per_page"])
    return page_of(rows, total, args["page"], args["per_page"])


class CountSchema(Schema):
    unread = fields.Integer()


@blp.route("/unread-count")
@requires(*READERS)
@blp.response(200, CountSchema)
def unread_count():
    """How many of the caller's notifications are unread (the header's badge)."""
    return {"unread": service.unread_count(db_session(), current_user())}


@blp.route("/<notification_id>/read", methods=["POST"])
@requires(*READERS)
@blp.response(200, CountSchema)
def mark_read(notification_id: str):
    """Mark one notification read; answers the unread count left."""
    session = db_session()
    service.mark_read(session, current_user(), notification_id, deployment().clock.now())
    return {"unread": service.unread_count(session, current_user())}


@blp.route("/read-all", methods=["POST"])
@requires(*READERS)
@blp.response(200, CountSchema)
def mark_all_read():
    """Mark every notification of the caller read."""
    session = db_session()
    service.mark_read(session, current_user(), None, deployment().clock.now())
    return {"unread": 0}


class LanguageSchema(Schema):
    locale = fields.String(required=True, metadata={"description": "zh_CN (the default) or en"})


@blp.route("/language")
@requires(*READERS)
@blp.response(200, LanguageSchema)
def get_language():
    """The language the caller's notifications (in-app, e-mail, robots) are written in."""
    return {"locale": service.language_of(db_session(), current_user())}


@blp.route("/language", methods=["PUT"])
@requires(*READERS)
@blp.arguments(LanguageSchema)
@blp.response(200, LanguageSchema)
def set_language(body: dict):
    """Choose the language of the caller's notifications from now on: zh_CN (the default) or en."""
    return {"locale": service.set_language(db_session(), current_user(), body["locale"], deployment().clock.now())}
