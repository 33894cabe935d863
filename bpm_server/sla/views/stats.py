"""SLA statistics over HTTP: the dashboard's numbers."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import Response
from marshmallow import Schema, fields, validate

from bpm_server.api_common import Moment
from bpm_server.errors import Forbidden, Invalid
from bpm_server.extensions import db_session, deployment
from bpm_server.identity.auth import current_user, requires
from bpm_server.sla import stats
from bpm_server.sla.definitions import CLOCK_KINDS
from bpm_server.sla.views.blueprint import blp

STATS_DEFAULT_DAYS = 30


class StatsArgs(Schema):
    start = Moment(data_key="from", metadata={"description": "period start (default: 30 days ago)"})
    end = Moment(data_key="to", metadata={"description": "period end, exclusive (default: now)"})
    process_model_id = fields.String()
    format = fields.String(validate=validate.OneOf(["json", "csv"]), load_default="json")


class StageStatsSchema(Schema):
    process_model_id = fields.String()
    stage = fields.String()
    title = fields.String()
    department = fields.String()
    completed = fields.Integer()
    with_sla = fields.Integer()
    on_time = fields.Integer()
    on_time_rate = fields.Float(allow_none=True)
    median_working_hours = fields.Float(allow_none=True)
    p90_working_hours = fields.Float(allow_none=True)


class DepartmentStatsSchema(Schema):
    department = fields.String()
    name = fields.String()
    completed = fields.Integer()
    with_sla = fields.Integer()
    on_time = fields.Integer()
    on_time_rate = fields.Float(allow_none=True)


class OpenWorkSchema(Schema):
    department = fields.String()
    name = fields.String()
    on_time = fields.Integer()
    warning = fields.Integer()
    breached = fields.Integer()
    no_sla = fields.Integer()
    total = fields.Integer()


class OpenBreachSchema(Schema):
    task_id = fields.String()
    process_instance_id = fields.String()
    process_model_id = fields.String()
    account_id = fields.String()
    stage = fields.String()
    title = fields.String()
    department = fields.String()
    assignee = fields.String(allow_none=True)
    due_at = fields.DateTime()
    overdue_working_hours = fields.Float()
    kind = fields.String(metadata={"enum": list(CLOCK_KINDS), "description": "which clock breached"})
    clock = fields.String(allow_none=True, metadata={"description": "a named clock's name; null for the "
                                                                    "stage's own SLA"})


class StatsSchema(Schema):
    start = fields.DateTime(data_key="from")
    end = fields.DateTime(data_key="to")
    now = fields.DateTime()
    process_model_id = fields.String(allow_none=True)
    stages = fields.List(fields.Nested(StageStatsSchema))
    departments = fields.List(fields.Nested(DepartmentStatsSchema))
    open_work = fields.List(fields.Nested(OpenWorkSchema))
    open_breaches = fields.List(fields.Nested(OpenBreachSchema))
    breaches_by_kind = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={
        "description": "breaches logged in the period per clock kind (response, resolution, ola, end_to_end)"})


def stats_period(start: datetime | None, end: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    """The asked period, defaulting to the last 30 days; 422 when it ends before it starts."""
    end = end or now
    start = start or end - timedelta(days=STATS_DEFAULT_DAYS)
    if end <= start:
        raise Invalid("'to' must be after 'from'", details={"to": ["must be after 'from'"]})
    return start, end


@blp.route("/sla/stats")
@requires("process_owner", "staff")
@blp.arguments(StatsArgs, location="query")
@blp.response(200, StatsSchema)
@blp.alt_response(200, schema={"type": "string"}, content_type="text/csv",
                  description="the statistics (JSON; CSV with ?format=csv)")
def sla_statistics(args: dict) -> Response | dict[str, Any]:
    """On-time rate per stage and department, median and 90th-percentile working time per stage (stages
    completed in the period), open work per department and open breaches (now). ``?format=csv`` for CSV.
    Process owners and department leads only."""
    session, rt = db_session(), deployment()
    if not stats.may_view(session, current_user()):
        raise Forbidden("the SLA statistics are for process owners and department leads", code="role_required")
    now = rt.clock.now()
    start, end = stats_period(args.get("start"), args.get("end"), now)
    result = stats.sla_stats(session, rt.calendar, start=start, end=end, now=now,
                             process_model_id=args.get("process_model_id"))
    if args["format"] == "csv":
        return Response(stats.to_csv(result), mimetype="text/csv",
                        headers={"Content-Disposition": "attachment; filename=sla-stats.csv"})
    return stats.as_dict(result)

