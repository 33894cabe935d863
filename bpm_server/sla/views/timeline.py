"""The timeline of a stage's SLA clock, and of an instance, over HTTP."""
from __future__ import annotations

from marshmallow import Schema, fields

from bpm_server.extensions import db_session, deployment
from bpm_server.identity.auth import READERS, WORKERS, current_user, requires
from bpm_server.sla import timeline
from bpm_server.sla.views.blueprint import blp
from bpm_server.tasks import service as tasks
from bpm_server.tasks import verbs


class ClockEventSchema(Schema):
    at = fields.DateTime()
    kind = fields.String(metadata={"enum": list(timeline.KINDS)})
    actor = fields.String(allow_none=True, metadata={"description": "who did it (username), when someone did"})
    task_id = fields.String(allow_none=True)
    stage = fields.String(allow_none=True, metadata={"description": "the stage's title"})
    reason = fields.String(allow_none=True, metadata={"description": "why: a pause reason, a calendar revision"})
    due_at = fields.DateTime(allow_none=True, metadata={"description": "the due moment from this event on"})
    length = fields.String(allow_none=True, metadata={"description": "the SLA as written, when the clock started"})
    working_seconds = fields.Integer(allow_none=True)
    level = fields.Integer(allow_none=True, metadata={"description": "an escalation's rung"})
    actions = fields.List(fields.String(), metadata={"description": "what an escalation rung did"})


class TimelineSchema(Schema):
    events = fields.List(fields.Nested(ClockEventSchema))


@blp.route("/tasks/<task_id>/timeline")
@requires(*WORKERS, *READERS)
@blp.response(200, TimelineSchema)
def task_timeline(task_id: str) -> dict:
    """Every event of a stage's SLA clock in order, with who and why: ready, clock started (length,
    due), claimed, paused, resumed, due moved, warning, breach, each escalation rung, completed."""
    session = db_session()
    task = tasks.get_task(session, task_id)
    if not verbs.can_view(session, current_user(), task):
        tasks.authorize_view(current_user(), task)
    return {"events": [e.as_dict() for e in timeline.task_timeline(session, task, deployment().calendar)]}
