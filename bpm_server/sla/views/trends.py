"""SLA trends over HTTP: on-time % and breaches per week (bpm_server.sla.trends)."""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from bpm_server.api_common import Moment
from bpm_server.errors import Forbidden, Invalid
from bpm_server.extensions import db_session, deployment
from bpm_server.identity.auth import current_user, requires
from bpm_server.sla import stats, trends
from bpm_server.sla.views.blueprint import blp
from bpm_server.sla.views.stats import stats_period


class TrendArgs(Schema):
    start = Moment(data_key="from", metadata={"description": "period start (default: 30 days ago)"})
    end = Moment(data_key="to", metadata={"description": "period end, exclusive (default: now)"})
    process_model_id = fields.String()


class WeekSchema(Schema):
    week = fields.Date(metadata={"description": "the Monday the week starts on (calendar time zone)"})
    completed = fields.Integer()
    with_sla = fields.Integer()
    on_time = fields.Integer()
    on_time_percent = fields.Float(allow_none=True)
    breaches = fields.Integer()


class StageTrendSchema(Schema):
    process_model_id = fields.String()
    stage = fields.String()
    title = fields.String()
    department = fields.String()
    weeks = fields.List(fields.Nested(WeekSchema))


class DepartmentTrendSchema(Schema):
    department = fields.String()
    name = fields.String()
    weeks = fields.List(fields.Nested(WeekSchema))


class TrendsSchema(Schema):
    start = fields.DateTime(data_key="from")
    end = fields.DateTime(data_key="to")
    weeks = fields.List(fields.Date())
    overall = fields.List(fields.Nested(WeekSchema))
    stages = fields.List(fields.Nested(StageTrendSchema))
    departments = fields.List(fields.Nested(DepartmentTrendSchema))


@blp.route("/sla/trends")
@requires("process_owner", "staff")
@blp.arguments(TrendArgs, location="query")
@blp.response(200, TrendsSchema)
def sla_trends(args: dict) -> dict[str, Any]:
    """On-time % and breaches per week over the period, overall, per stage and per department.
    Process owners and department leads only."""
    session, rt = db_session(), deployment()
    if not stats.may_view(session, current_user()):
        raise Forbidden("the SLA trends are for process owners and department leads", code="role_required")
    start, end = stats_period(args.get("start"), args.get("end"), rt.clock.now())
    if trends.period_weeks(start, end, rt.calendar) > trends.MAX_WEEKS:
        raise Invalid(f"the period spans more than {trends.MAX_WEEKS} weeks", code="period_too_long",
                      details={"from": [f"at most {trends.MAX_WEEKS} weeks before 'to'"]})
    result = trends.weekly(session, rt.calendar, start=start, end=end, process_model_id=args.get("process_model_id"))
    return {**result, "start": result.pop("from"), "end": result.pop("to")}
