"""SLA over HTTP: the breach log (read-only), pausing a stage's clock,
escalation policies, and the test clock."""
from __future__ import annotations

from datetime import datetime

from flask import Response, current_app
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from bpm_server.api_common import PageArgs, page_of
from bpm_server.audit.service import record as audit
from bpm_server.errors import Invalid, NotFound
from bpm_server.extensions import db_session, runtime
from bpm_server.identity.auth import READERS, current_user, requires
from bpm_server.sla import breaches, policies, service
from bpm_server.sla.models import EscalationPolicy, EscalationSetting, SlaClock
from bpm_server.tasks import service as tasks

blp = Blueprint("sla", __name__, url_prefix="/api/v1", description="SLA breach log, clocks and escalation policies")


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
    start = fields.AwareDateTime(data_key="from")
    end = fields.AwareDateTime(data_key="to")
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
def list_breaches(args: dict):
    """The breach log, newest first, with escalations and late completions folded in;
    ``?format=csv`` exports all matches."""
    fmt = args.pop("format")
    filters = breaches.BreachFilter(**args)
    if filters.start and filters.end and filters.end <= filters.start:
        raise Invalid("'to' must be after 'from'", details={"to": ["must be after 'from'"]})
    rows, total = breaches.search(db_session(), filters, paged=fmt == "json")
    if fmt == "csv":
        return Response(breaches.to_csv(rows), mimetype="text/csv",
                        headers={"Content-Disposition": "attachment; filename=sla-breaches.csv"})
    return page_of(rows, total, filters.page, filters.per_page)


@blp.route("/sla/breaches/verify")
@requires("auditor", "process_owner")
@blp.response(200, ChainSchema)
def verify_chain():
    """Check the breach log's hash chain; names the first entry that does not fit."""
    return breaches.verify(db_session())


class ClockSchema(Schema):
    task_id = fields.String()
    length = fields.String()
    anchor = fields.String()
    anchor_at = fields.DateTime()
    note = fields.String(allow_none=True)
    policy = fields.String(allow_none=True)
    pausable = fields.Boolean()
    state = fields.String()
    pause_reason = fields.String(allow_none=True)
    consumed_seconds = fields.Integer()
    total_seconds = fields.Integer()
    breached_at = fields.DateTime(allow_none=True)
    events = fields.List(fields.Dict())


class PauseSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=3, max=500))


class ResumeSchema(Schema):
    reason = fields.String(load_default=None, validate=validate.Length(max=500))


def _clock_view(task_id: str) -> dict:
    session = db_session()
    clock = session.get(SlaClock, task_id)
    if clock is None:
        raise NotFound(f"task {task_id} has no SLA clock", code="no_sla")
    events = [{"kind": e.kind, "at": e.at.isoformat(), "actor": e.actor, "reason": e.reason,
               "due_at_after": e.due_at_after.isoformat() if e.due_at_after else None}
              for e in service.clock_events(session, task_id)]
    view = {c: getattr(clock, c) for c in ClockSchema._declared_fields if c != "events"}
    return {**view, "events": events}


@blp.route("/tasks/<task_id>/sla")
@requires(*READERS)
@blp.response(200, ClockSchema)
def get_clock(task_id: str):
    """A task's SLA clock: length, anchor, pauses (who, when, why)."""
    tasks.authorize_view(current_user(), tasks.get_task(db_session(), task_id))
    return _clock_view(task_id)


@blp.route("/tasks/<task_id>/sla/pause", methods=["POST"])
@requires("staff")
@blp.arguments(PauseSchema)
@blp.response(200, ClockSchema)
def pause_clock(body: dict, task_id: str):
    """Stop the SLA clock while the stage waits on the customer (stage must be slaPausable)."""
    rt = runtime()
    service.pause(db_session(), rt, current_user(), tasks.get_task(db_session(), task_id), body["reason"],
                  rt.clock.now())
    db_session().flush()
    return _clock_view(task_id)


@blp.route("/tasks/<task_id>/sla/resume", methods=["POST"])
@requires("staff")
@blp.arguments(ResumeSchema)
@blp.response(200, ClockSchema)
def resume_clock(body: dict, task_id: str):
    """Restart the clock; the due moment moves by the paused working time."""
    rt = runtime()
    service.resume(db_session(), rt, current_user(), tasks.get_task(db_session(), task_id), body["reason"],
                   rt.clock.now())
    db_session().flush()
    return _clock_view(task_id)


class PolicySchema(Schema):
    name = fields.String(dump_only=True)
    rules = fields.List(fields.Dict(), required=True)
    updated_at = fields.DateTime(dump_only=True)
    updated_by = fields.String(dump_only=True, allow_none=True)


class PolicyListSchema(Schema):
    policies = fields.List(fields.Nested(PolicySchema))
    settings = fields.Dict(keys=fields.String(), values=fields.String())


@blp.route("/sla/policies")
@requires(*READERS)
@blp.response(200, PolicyListSchema)
def list_policies():
    """Escalation ladders, and which one is the default and which each tier uses."""
    session = db_session()
    return {"policies": session.query(EscalationPolicy).order_by(EscalationPolicy.name).all(),
            "settings": {s.key: s.policy for s in session.query(EscalationSetting)}}


@blp.route("/sla/policies/<name>", methods=["PUT"])
@requires("process_owner")
@blp.arguments(PolicySchema)
@blp.response(200, PolicySchema)
def put_policy(body: dict, name: str):
    """Create or replace a ladder; validated (actions, targets, departments, users) before it is saved."""
    if not 1 <= len(name) <= 100:
        raise Invalid("policy name must be 1 to 100 characters")
    return policies.put_policy(db_session(), name, body["rules"], actor=current_user().username,
                               now=runtime().clock.now())


class ClockSetSchema(Schema):
    now = fields.AwareDateTime(required=True, metadata={"description": "ISO 8601 with offset"})


class ClockStateSchema(Schema):
    now = fields.DateTime()
    fired = fields.Integer()


test_clock_blp = Blueprint("test_clock", __name__, url_prefix="/api/v1/test",
                           description="Test clock (only with BPM_TEST_CLOCK=1)")


@test_clock_blp.route("/clock", methods=["POST"])
@requires("admin", "staff", "process_owner", "auditor", "integration")
@test_clock_blp.arguments(ClockSetSchema)
@test_clock_blp.response(200, ClockStateSchema)
def set_test_clock(body: dict):
    """Move the deployment's clock forward, firing everything that becomes due, in order."""
    from bpm_server.sla.scheduler import advance_test_clock

    rt = runtime()
    target: datetime = body["now"]
    if target < rt.clock.now():
        raise Invalid(f"the clock only moves forward: it is {rt.clock.now().isoformat()}",
                      code="clock_backwards", details={"now": ["must not be earlier than the current clock"]})
    # current_app is a werkzeug LocalProxy; Flask types it as the Flask object itself.
    fired = advance_test_clock(current_app._get_current_object(), target)  # type: ignore[attr-defined]
    audit(db_session(), actor=current_user().username, action="test_clock.set", object_type="clock",
          object_id="deployment", now=rt.clock.now(), fired=fired)
    return {"now": rt.clock.now(), "fired": fired}


@test_clock_blp.route("/clock")
@requires("admin", "staff", "process_owner", "auditor", "integration")
@test_clock_blp.response(200, ClockStateSchema)
def get_test_clock():
    """The test clock's current time."""
    return {"now": runtime().clock.now(), "fired": 0}


# --------------------------------------------------------------------------- SLA statistics (the dashboard's numbers)

from datetime import timedelta  # noqa: E402  (this section was appended; its imports stay with it)

from bpm_server.errors import Forbidden  # noqa: E402
from bpm_server.sla import stats  # noqa: E402

STATS_DEFAULT_DAYS = 30


class StatsArgs(Schema):
    start = fields.AwareDateTime(data_key="from", metadata={"description": "period start (default: 30 days ago)"})
    end = fields.AwareDateTime(data_key="to", metadata={"description": "period end, exclusive (default: now)"})
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


class StatsSchema(Schema):
    start = fields.DateTime(data_key="from")
    end = fields.DateTime(data_key="to")
    now = fields.DateTime()
    process_model_id = fields.String(allow_none=True)
    stages = fields.List(fields.Nested(StageStatsSchema))
    departments = fields.List(fields.Nested(DepartmentStatsSchema))
    open_work = fields.List(fields.Nested(OpenWorkSchema))
    open_breaches = fields.List(fields.Nested(OpenBreachSchema))


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
def sla_statistics(args: dict):
    """On-time rate per stage and department, median and 90th-percentile working time per stage (stages
    completed in the period), open work per department and open breaches (now). ``?format=csv`` for CSV.
    Process owners and department leads only."""
    session, rt = db_session(), runtime()
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
