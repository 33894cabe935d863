"""SLA response schemas that more than one API module serializes (the timeline: a stage's
and an instance's)."""
from __future__ import annotations

from marshmallow import Schema, fields

from bpm_server.sla import timeline


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
    clock = fields.String(allow_none=True, metadata={"description": "a named clock's name (slaClock.<name>); "
                                                                    "null for the stage's own SLA"})
    clock_kind = fields.String(allow_none=True, metadata={"description": "the named clock's kind: response, "
                                                                         "resolution, ola or end_to_end"})


class TimelineSchema(Schema):
    events = fields.List(fields.Nested(ClockEventSchema))
