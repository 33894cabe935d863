"""The audit trail for auditors."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from bpm_server.api_common import Moment, PageArgs, page_of
from bpm_server.audit import service
from bpm_server.extensions import db_session
from bpm_server.identity.auth import requires

blp = Blueprint("audit", __name__, url_prefix="/api/v1/audit", description="Audit trail of user operations")


class AuditEventSchema(Schema):
    id = fields.Integer()
    at = fields.DateTime()
    actor = fields.String()
    action = fields.String()
    object_type = fields.String()
    object_id = fields.String()
    details = fields.Dict()


class AuditPageSchema(Schema):
    items = fields.List(fields.Nested(AuditEventSchema))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()


class AuditArgs(PageArgs):
    actor = fields.String()
    action = fields.String()
    object_id = fields.String()
    start = Moment(data_key="from")
    end = Moment(data_key="to")


@blp.route("")
@requires("auditor")
@blp.arguments(AuditArgs, location="query")
@blp.response(200, AuditPageSchema)
def list_events(args: dict):
    """Every user operation (claim, complete, reassign, pause, upload, rule change), newest first."""
    rows, total = service.search(db_session(), **args)
    return page_of(rows, total, args["page"], args["per_page"])
