"""How tasks look on the wire (API.md "task object")."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from bpm_server.api_common import PageArgs
from bpm_server.extensions import deployment
from bpm_server.tasks.inbox_query import MAX_SEARCH_CHARS, ORDERS, SORTS
from bpm_server.tasks.models import TASK_STATES


class TaskSchema(Schema):
    id = fields.String()
    name = fields.String(metadata={"description": "the BPMN element id of the stage"})
    # A task detail asked for with ?lang=zh_CN or ?lang=en carries its texts through the model's
    # messages file of that language (``shown``); otherwise the title is as modelled.
    title = fields.Function(lambda t: t.shown.title if getattr(t, "shown", None) else t.title)
    department = fields.String(attribute="department_id")
    assignee = fields.Function(lambda t: t.assignee.username if t.assignee else None)
    state = fields.String()
    created_at = fields.DateTime()
    due_at = fields.DateTime(allow_none=True)
    warn_at = fields.DateTime(allow_none=True)
    due_provisional = fields.Function(
        lambda t: deployment().calendar.is_provisional(t.due_at), metadata={
            "description": "true when the due moment lies in a year whose official holiday notice is not known "
                           "(statutory holidays only, make-up working days unknown): it may still move"})
    claimed_at = fields.DateTime(allow_none=True)
    completed_at = fields.DateTime(allow_none=True)
    completed_by = fields.Function(lambda t: t.completed_by.username if t.completed_by else None)
    on_behalf_of = fields.Function(lambda t: t.on_behalf_of.username if t.on_behalf_of else None, metadata={
        "description": "委托: whom the assignee (or completer) holds the task for, through a delegation"})
    account_id = fields.String()
    process_instance_id = fields.String()
    process_model_id = fields.String()
    priority = fields.Integer(metadata={"description": "0 normal; raised by escalation rules (higher is more urgent)"})


class TaskDetailSchema(TaskSchema):
    form = fields.Dict()
    data = fields.Dict()
    submitted = fields.Dict(allow_none=True)
    instructions = fields.Function(lambda t: t.shown.instructions if getattr(t, "shown", None) else t.instructions,
                                   allow_none=True)


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
    q = fields.String(validate=validate.Length(max=MAX_SEARCH_CHARS), metadata={
        "description": "search: part of the stage title, the account's name or id, or the contract number "
                       "(case-insensitive)"})
    sort = fields.String(load_default="due", validate=validate.OneOf(SORTS), metadata={
        "description": "column to sort by: " + ", ".join(SORTS)})
    order = fields.String(load_default="asc", validate=validate.OneOf(ORDERS))


class BulkClaimSchema(Schema):
    task_ids = fields.List(fields.String(), required=True, validate=validate.Length(min=1, max=200))


class ClaimResultSchema(Schema):
    task_id = fields.String()
    status = fields.Integer(metadata={"description": "200 claimed; otherwise what a single claim would answer "
                                                     "(404 unknown, 403 not your department, 409 taken)"})
    code = fields.String()
    message = fields.String()
    task = fields.Nested(TaskSchema, allow_none=True)


class BulkClaimResultSchema(Schema):
    items = fields.List(fields.Nested(ClaimResultSchema))
    claimed = fields.Integer()
    failed = fields.Integer()


class CompleteSchema(Schema):
    data = fields.Dict(required=True, metadata={"description": "the form's fields, validated against its JSON Schema"})


class ReassignSchema(Schema):
    task_ids = fields.List(fields.String(), required=True, validate=validate.Length(min=1, max=200))
    to = fields.String(allow_none=True, load_default=None,
                       metadata={"description": "username to give the tasks to; null = back to the department queue"})
    reason = fields.String(required=True, validate=validate.Length(min=1, max=1000))


class ReassignResultSchema(Schema):
    items = fields.List(fields.Nested(TaskSchema))


class ForecastArgs(Schema):
    days = fields.Integer(load_default=3, validate=validate.Range(min=0, max=60),
                          metadata={"description": "working days ahead on the business calendar"})
    department = fields.String(metadata={"description": "a department you lead (default: your own)"})


class ForecastTaskSchema(TaskSchema):
    sla_state = fields.String(metadata={"description": "on_time, warning, breached or paused"})
    working_seconds_left = fields.Integer(allow_none=True)
    working_seconds_overdue = fields.Integer(allow_none=True)


class ForecastAccountSchema(Schema):
    account_id = fields.String()
    account_name = fields.String()
    tier = fields.String(allow_none=True)
    breached = fields.Integer()
    items = fields.List(fields.Nested(ForecastTaskSchema))


class ForecastSchema(Schema):
    department = fields.String()
    days = fields.Integer()
    horizon = fields.DateTime(metadata={"description": "tasks due up to this moment are listed"})
    accounts = fields.List(fields.Nested(ForecastAccountSchema))
