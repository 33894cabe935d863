"""The audit trail for auditors."""
from __future__ import annotations

from typing import Any

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

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
    format = fields.String(validate=validate.OneOf(["json", "csv"]), load_default="json",
                           metadata={"description": "csv: every matching event (no paging), for a spreadsheet"})


@blp.route("")
@requires("auditor")
@blp.arguments(AuditArgs, location="query")
@blp.response(200, AuditPageSchema)
def list_events(args: dict) -> Response | dict[str, Any]:
    """Every user operation (claim, complete, reassign, pause, upload, rule change, sign-in), newest
    first; ``?format=csv`` exports all matches."""
    fmt = args.pop("format")
    rows, total = service.search(db_session(), **args, paged=fmt == "json")
    if fmt == "csv":
        return Response(service.to_csv(rows), mimetype="text/csv",
                        headers={"Content-Disposition": "attachment; filename=audit.csv"})
    return page_of(rows, total, args["page"], args["per_page"])
