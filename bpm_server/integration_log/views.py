"""The integration log over HTTP (admins and auditors)."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from bpm_server.api_common import Moment, PageArgs, page_of
from bpm_server.extensions import db_session
from bpm_server.identity.auth import requires
from bpm_server.integration_log import service

blp = Blueprint("integration_log", __name__, url_prefix="/api/v1/integration-log",
                description="Every inbound and outbound integration call (admins and auditors)")


class LogEntrySchema(Schema):
    id = fields.Integer()
    at = fields.DateTime()
    direction = fields.String()
    system = fields.String()
    endpoint = fields.String()
    operation = fields.String()
    status = fields.String()
    outcome = fields.String()
    duration_ms = fields.Float()
    payload = fields.Raw(allow_none=True, metadata={"description": "redacted: credentials replaced by ***"})
    error = fields.String(allow_none=True)
    reference = fields.String(allow_none=True)
    process_instance_id = fields.String(allow_none=True)


class LogPageSchema(Schema):
    items = fields.List(fields.Nested(LogEntrySchema))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()


class LogArgs(PageArgs):
    direction = fields.String(validate=validate.OneOf(("inbound", "outbound")))
    system = fields.String()
    outcome = fields.String()
    process_instance_id = fields.String()
    reference = fields.String()
    start = Moment(data_key="from")
    end = Moment(data_key="to")


@blp.route("")
@requires("auditor")
@blp.arguments(LogArgs, location="query")
@blp.response(200, LogPageSchema)
def list_entries(args: dict):
    """Calls newest first: time, endpoint, status, duration and the redacted payload."""
    rows, total = service.search(db_session(), **args)
    return page_of(rows, total, args["page"], args["per_page"])
