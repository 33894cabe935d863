"""How tasks look on the wire (API.md "task object")."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from bpm_server.api_common import PageArgs
from bpm_server.tasks.models import TASK_STATES


class TaskSchema(Schema):
    id = fields.String()
    name = fields.String(metadata={"description": "the BPMN element id of the stage"})
    title = fields.String()
    department = fields.String(attribute="department_id")
    assignee = fields.Function(lambda t: t.assignee.username if t.assignee else None)
    state = fields.String()
    created_at = fields.DateTime()
    due_at = fields.DateTime(allow_none=True)
    warn_at = fields.DateTime(allow_none=True)
    claimed_at = fields.DateTime(allow_none=True)
    completed_at = fields.DateTime(allow_none=True)
    completed_by = fields.Function(lambda t: t.completed_by.username if t.completed_by else None)
    account_id = fields.String()
    process_instance_id = fields.String()
    process_model_id = fields.String()


class TaskDetailSchema(TaskSchema):
    form = fields.Dict()
    data = fields.Dict()
    submitted = fields.Dict(allow_none=True)
    instructions = fields.String(allow_none=True)


class TaskPageSchema(Schema):
    items = fields.List(fields.Nested(TaskSchema))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()


class InboxArgs(PageArgs):
    state = fields.String(validate=validate.OneOf(TASK_STATES))
    account_id = fields.String()
    process_model_id = fields.String()
    overdue = fields.Boolean()


class CompleteSchema(Schema):
    data = fields.Dict(required=True, metadata={"description": "the form's fields, validated against its JSON Schema"})
