"""A stage's SLA clock over HTTP: read it, pause it, resume it."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from bpm_server.errors import NotFound
from bpm_server.extensions import db_session, deployment
from bpm_server.identity.auth import READERS, current_user, requires
from bpm_server.sla import service
from bpm_server.sla.models import SlaClock
from bpm_server.sla.views.blueprint import blp
from bpm_server.tasks import service as tasks


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
def get_clock(task_id: str) -> dict:
    """A task's SLA clock: length, anchor, pauses (who, when, why)."""
    tasks.authorize_view(current_user(), tasks.get_task(db_session(), task_id))
    return _clock_view(task_id)


@blp.route("/tasks/<task_id>/sla/pause", methods=["POST"])
@requires("staff")
@blp.arguments(PauseSchema)
@blp.response(200, ClockSchema)
@blp.alt_response(409, description="the task is closed or has no SLA, the stage may not pause, or the clock "
                                   "is already paused or breached")
def pause_clock(body: dict, task_id: str) -> dict:
    """Stop the SLA clock while the stage waits on the customer (stage must be slaPausable)."""
    rt = deployment()
    service.pause(db_session(), rt, current_user(), tasks.get_task(db_session(), task_id), body["reason"],
                  rt.clock.now())
    db_session().flush()
    return _clock_view(task_id)


@blp.route("/tasks/<task_id>/sla/resume", methods=["POST"])
@requires("staff")
@blp.arguments(ResumeSchema)
@blp.response(200, ClockSchema)
@blp.alt_response(409, description="the task is closed or has no SLA, or the clock is not paused")
def resume_clock(body: dict, task_id: str) -> dict:
    """Restart the clock; the due moment moves by the paused working time."""
    rt = deployment()
    service.resume(db_session(), rt, current_user(), tasks.get_task(db_session(), task_id), body["reason"],
                   rt.clock.now())
    db_session().flush()
    return _clock_view(task_id)
