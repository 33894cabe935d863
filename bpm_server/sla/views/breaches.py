"""The breach log over HTTP (read-only): list, CSV export, chain check."""
from __future__ import annotations

from typing import Any

from flask import Response
from marshmallow import Schema, fields, validate

from bpm_server.api_common import Moment, PageArgs, page_of
from bpm_server.errors import Invalid
from bpm_server.extensions import db_session
from bpm_server.identity import departments
from bpm_server.identity.auth import requires
from bpm_server.sla import breaches
from bpm_server.sla.definitions import CLOCK_KINDS
from bpm_server.sla.views.blueprint import blp


class EscalationSchema(Schema):
    at = fields.DateTime()
    level = fields.Integer()
    event = fields.String()
    actions = fields.List(fields.String())


class BreachSchema(Schema):
    id = fields.String()
    seq = fields.Integer()
    process_instance_id = fields.String()
    process_model_id = fields.String()
    account_id = fields.String()
    task_id = fields.String()
    task_name = fields.String()
    department = fields.String()
    assignee = fields.String(allow_none=True)
    due_at = fields.DateTime()
    breached_at = fields.DateTime()
    recorded_at = fields.DateTime()
    completed_at = fields.String(allow_none=True)
    completed_by = fields.String(allow_none=True)
    late_working_hours = fields.Float(allow_none=True)
    escalations = fields.List(fields.Nested(EscalationSchema))
    kind = fields.String(metadata={"enum": list(CLOCK_KINDS), "description": (
        "which clock breached: response (ready to first action), resolution (ready to completed; a stage's "
        "own SLA), ola (a department's total across the instance), end_to_end (between two named stages)")})
    clock = fields.String(allow_none=True, metadata={"description": "the named clock (slaClock.<name>); "
                                                                    "null for a stage's own SLA"})


class BreachPageSchema(Schema):
    items = fields.List(fields.Nested(BreachSchema))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()


class BreachArgs(PageArgs):
    process_model_id = fields.String()
    task_name = fields.String()
    department = fields.String()
    account_id = fields.String()
    account = fields.String(metadata={"description": "part of the account's id or name, in any letter case"})
    kind = fields.String(validate=validate.OneOf(CLOCK_KINDS))
    start = Moment(data_key="from")
    end = Moment(data_key="to")
    format = fields.String(validate=validate.OneOf(["json", "csv"]), load_default="json")


class ChainSchema(Schema):
    intact = fields.Boolean()
    entries = fields.Integer()
    first_broken_seq = fields.Integer(allow_none=True)
    first_broken_id = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)


@blp.route("/sla/breaches")
@requires("auditor", "process_owner")
@blp.arguments(BreachArgs, location="query")
@blp.response(200, BreachPageSchema)
@blp.alt_response(200, schema={"type": "string"}, content_type="text/csv",
                  description="the breaches (JSON; CSV of all matches with ?format=csv)")
def list_breaches(args: dict) -> Response | dict[str, Any]:
    """The breach log, newest first, with escalations and late completions folded in;
    ``?format=csv`` exports all matches."""
    fmt = args.pop("format")
    filters = breaches.BreachFilter(**args)
    if filters.start and filters.end and filters.end <= filters.start:
        raise Invalid("'to' must be after 'from'", details={"to": ["must be after 'from'"]})
    rows, total = breaches.search(db_session(), filters, paged=fmt == "json")
    if fmt == "csv":
        # Departments named in Chinese, the default language, beside their codes.
        names = departments.names(db_session(), departments.DEFAULT_LOCALE)
        return Response(breaches.to_csv(rows, names), mimetype="text/csv",
                        headers={"Content-Disposition": "attachment; filename=sla-breaches.csv"})
    return page_of(rows, total, filters.page, filters.per_page)


@blp.route("/sla/breaches/verify")
@requires("auditor", "process_owner")
@blp.response(200, ChainSchema)
def verify_chain() -> breaches.ChainStatus:
    """Check the breach log's hash chain; names the first entry that does not fit."""
    return breaches.verify(db_session())

