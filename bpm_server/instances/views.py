"""Starting and reading process instances."""
from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import or_, select

from bpm_server import runtime
from bpm_server.accounts.models import Account
from bpm_server.api_common import STORED_NUMBER, PageArgs, page_of
from bpm_server.engine.adapter import events
from bpm_server.erp.calls import calls_of
from bpm_server.errors import Forbidden
from bpm_server.extensions import db_session, deployment
from bpm_server.identity.auth import READERS, current_user, requires
from bpm_server.identity.models import User
from bpm_server.instances import service
from bpm_server.instances.models import INSTANCE_STATES, ProcessInstance
from bpm_server.messages.service import waiting_for
from bpm_server.runtime import operations
from bpm_server.sla import timeline
from bpm_server.sla.schemas import TimelineSchema
from bpm_server.tasks.models import HumanTask
from bpm_server.tasks.schemas import TaskSchema

blp = Blueprint("process_instances", __name__, url_prefix="/api/v1/process-instances",
                description="Process instances: start one, see where it stands")


class StartSchema(Schema):
    process_model_id = fields.String(required=True, validate=validate.Length(min=1))
    account_id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    data = fields.Dict(load_default=dict)


class HistorySchema(Schema):
    task_id = fields.String(attribute="id")
    name = fields.String()
    title = fields.String()
    department = fields.String(attribute="department_id")
    completed_by = fields.Function(lambda t: t.completed_by.username if t.completed_by else None)
    on_behalf_of = fields.Function(lambda t: t.on_behalf_of.username if t.on_behalf_of else None,
                                   metadata={"description": "委托: `completed_by` completed it on their behalf"})
    completed_at = fields.DateTime()
    due_at = fields.DateTime(allow_none=True)
    data = fields.Dict(attribute="submitted")


class InstanceSummarySchema(Schema):
    id = fields.String()
    process_model_id = fields.String()
    version = fields.Function(lambda i: i.version.version)
    account_id = fields.String()
    state = fields.String()
    error = fields.Dict(allow_none=True)
    started_by = fields.String(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    completed_at = fields.DateTime(allow_none=True)
    suspended = fields.Function(lambda i: i.suspended_at is not None, metadata={
        "description": "held by an operator: nothing completes and no timer fires until it is resumed"})
    suspended_at = fields.DateTime(allow_none=True)
    suspended_by = fields.String(allow_none=True)
    cancelled_by = fields.String(allow_none=True)
    cancel_reason = fields.String(allow_none=True)


class IncidentSummarySchema(Schema):
    id = fields.String()
    element_id = fields.String()
    system = fields.String()
    operation = fields.String()
    attempts = fields.Integer()
    error = fields.String(attribute="last_error", allow_none=True)
    incident_at = fields.DateTime(allow_none=True)


class WaitingSchema(Schema):
    kind = fields.String(metadata={"description": "message, signal or service_call"})
    element_id = fields.String()
    name = fields.String(metadata={"description": "message name, or <system>.<operation>"})
    correlation = fields.Dict(allow_none=True)
    attempts = fields.Integer(allow_none=True)
    next_attempt_at = fields.DateTime(allow_none=True)
    last_error = fields.String(allow_none=True)


class InstanceSchema(InstanceSummarySchema):
    data = fields.Dict()
    tasks = fields.List(fields.Nested(TaskSchema))
    history = fields.List(fields.Nested(HistorySchema))
    incidents = fields.List(fields.Nested(IncidentSummarySchema),
                            metadata={"description": "service calls that failed after their last retry"})
    waiting_for = fields.List(fields.Nested(WaitingSchema),
                              metadata={"description": "messages and service calls the instance waits on"})


class InstancePageSchema(Schema):
    items = fields.List(fields.Nested(InstanceSummarySchema))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()


class InstanceListArgs(PageArgs):
    account_id = fields.String()
    process_model_id = fields.String()
    state = fields.String(validate=validate.OneOf(INSTANCE_STATES))


# Roles that oversee every instance; staff see the instances they work on.
OVERSEERS = ("admin", "auditor", "process_owner")


def _involving(user: User) -> Any:
    """Instances the user works on: started them, manages the account, or their department (or they) hold a task."""
    holds_a_task = select(HumanTask.process_instance_id).where(
        or_(HumanTask.department_id == user.department_id, HumanTask.assignee_id == user.id))
    manages = select(Account.id).where(or_(Account.owner == user.username, Account.executive_sponsor == user.username))
    return or_(ProcessInstance.started_by == user.username, ProcessInstance.account_id.in_(manages),
               ProcessInstance.id.in_(holds_a_task))


def _runs_it(user: User, instance: ProcessInstance) -> bool:
    """Starter, account manager and executive sponsor see the whole instance, like the overseers."""
    return (user.has_role(*OVERSEERS) or instance.started_by == user.username
            or (instance.account is not None
                and user.username in (instance.account.owner, instance.account.executive_sponsor)))


def _check_may_read(user: User, instance: ProcessInstance) -> None:
    if _runs_it(user, instance):
        return
    involved = select(ProcessInstance.id).where(ProcessInstance.id == instance.id, _involving(user))
    if db_session().scalar(involved) is None:
        raise Forbidden(f"process instance {instance.id} involves neither you nor your department",
                        code="not_involved")


def _scoped(user: User, instance: Any) -> Any:
    """What a staff member may read of an instance (as ``_full`` returns it, history attached):
    other departments' submissions and the process data left out."""
    if _runs_it(user, instance):
        return instance
    history = [row if row.department_id == user.department_id or row.completed_by_id == user.id
               else _Hiding(row, submitted=None) for row in instance.history]
    return _Hiding(instance, data={}, history=history)


class _Hiding:
    """An object read as another, except for the attributes given (nothing is written to the row)."""

    def __init__(self, target: Any, **replaced: Any) -> None:
        self._target = target
        self.__dict__.update(replaced)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


def _waiting_event(subscription) -> dict:
    name = subscription.message_name
    if name.startswith(events.SIGNAL_PREFIX):  # signal waits are kept among the message subscriptions
        return {"kind": "signal", "element_id": subscription.element_id, "name": name[len(events.SIGNAL_PREFIX):]}
    return {"kind": "message", "element_id": subscription.element_id, "name": name,
            "correlation": subscription.correlation}


def _full(instance):
    session = db_session()
    instance.tasks, instance.history = service.instance_tasks(session, instance.id)
    calls = calls_of(session, instance.id)
    instance.incidents = [c for c in calls if c.state == "incident"]
    instance.waiting_for = (
        [_waiting_event(s) for s in waiting_for(session, instance.id)]
        + [{"kind": "service_call", "element_id": c.element_id, "name": f"{c.system}.{c.operation}",
            "attempts": c.attempts, "next_attempt_at": c.next_attempt_at, "last_error": c.last_error}
           for c in calls if c.state in ("pending", "incident")])
    return instance


@blp.route("", methods=["POST"])
@requires("staff", "process_owner")
@blp.arguments(StartSchema)
@blp.response(201, InstanceSchema)
def start(body: dict):
    """Start the current version of a model for an account."""
    rt = deployment()
    instance = runtime.start_instance(db_session(), rt, now=rt.clock.now(),
                                      started_by=current_user().username, **body)
    return _full(instance)


@blp.route("")
@requires(*READERS)
@blp.arguments(InstanceListArgs, location="query")
@blp.response(200, InstancePageSchema)
def list_instances(args: dict):
    """Instances, newest first; filter by account, model or state."""
    user = current_user()
    rows, total = service.list_instances(db_session(), **args,
                                         only=None if user.has_role(*OVERSEERS) else _involving(user))
    return page_of(rows, total, args["page"], args["per_page"])


@blp.route("/<instance_id>")
@requires(*READERS)
@blp.response(200, InstanceSchema)
def get_instance(instance_id: str):
    """State, open tasks with due dates, and the history of completed stages."""
    user = current_user()
    instance = service.get_instance(db_session(), instance_id)
    _check_may_read(user, instance)
    return _scoped(user, _full(instance))


# --------------------------------------------------------------------------- operations (admins, process owners)

OPERATORS = ("admin", "process_owner")


class CancelSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=1000))


class HoldSchema(Schema):
    reason = fields.String(load_default=None, validate=validate.Length(max=1000))


class DataEditSchema(Schema):
    data = fields.Dict(required=True, metadata={"description": "fields to set in the process data"})


class VersionField(fields.Field):
    """A version number of the instance's model, or a version id."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, str)) or value == "":
            raise ValidationError("a version number or a version id")
        if isinstance(value, int):
            STORED_NUMBER(value)  # no version has a number past the column
        return value


class MigrateSchema(Schema):
    version = VersionField(required=True, metadata={"type": "integer",
                                                    "description": "the target version number (or version id)"})
    dry_run = fields.Boolean(load_default=False)


class MigrationProblemSchema(Schema):
    element_id = fields.String()
    problem = fields.String()


class MigrationResultSchema(Schema):
    process_instance_id = fields.String()
    from_version = fields.Integer()
    to_version = fields.Integer()
    possible = fields.Boolean(metadata={"description": "whether the instance can move to the target"})
    migrated = fields.Boolean()
    problems = fields.List(fields.Nested(MigrationProblemSchema))
    changed = fields.List(fields.String(), metadata={"description": "open elements whose definition changed"})


def _operate(command, instance_id: str, **kw):
    rt = deployment()
    instance = command(db_session(), rt, instance_id, actor=current_user().username, now=rt.clock.now(), **kw)
    return _full(instance)


@blp.route("/<instance_id>/cancel", methods=["POST"])
@requires(*OPERATORS)
@blp.arguments(CancelSchema)
@blp.response(200, InstanceSchema)
@blp.alt_response(409, description="the instance already ended (instance_ended)")
def cancel(body: dict, instance_id: str):
    """Cancel the instance: open tasks cancelled, timers and SLA clocks stopped, waits withdrawn."""
    return _operate(operations.cancel, instance_id, reason=body["reason"])


@blp.route("/<instance_id>/suspend", methods=["POST"])
@requires(*OPERATORS)
@blp.arguments(HoldSchema)
@blp.response(200, InstanceSchema)
@blp.alt_response(409, description="not running, or already suspended")
def suspend(body: dict, instance_id: str):
    """Hold the instance: nothing completes and no timer fires until it is resumed."""
    return _operate(operations.suspend, instance_id, reason=body["reason"])


@blp.route("/<instance_id>/resume", methods=["POST"])
@requires(*OPERATORS)
@blp.arguments(HoldSchema)
@blp.response(200, InstanceSchema)
@blp.alt_response(409, description="the instance is not suspended (not_suspended)")
def resume(body: dict, instance_id: str):
    """Release a suspended instance; whatever became due meanwhile fires, in order."""
    return _operate(operations.resume, instance_id, reason=body["reason"])


@blp.route("/<instance_id>/retry", methods=["POST"])
@requires(*OPERATORS)
@blp.response(200, InstanceSchema)
@blp.alt_response(409, description="the instance is not in error (instance_not_in_error)")
def retry(instance_id: str):
    """Run an instance in error again from the element that failed."""
    return _operate(operations.retry, instance_id)


@blp.route("/<instance_id>/data", methods=["PATCH"])
@requires("admin")
@blp.arguments(DataEditSchema)
@blp.response(200, InstanceSchema)
@blp.alt_response(422, description="the data would fail the model's start form")
@blp.alt_response(409, description="the instance has ended: its data is final (instance_ended)")
@blp.alt_response(413, description="the data would be over the limit max_process_data_bytes")
def edit_data(body: dict, instance_id: str):
    """Change process data (admins; audited with before and after)."""
    return _operate(operations.edit_data, instance_id, changes=body["data"])


@blp.route("/<instance_id>/migrate", methods=["POST"])
@requires(*OPERATORS)
@blp.arguments(MigrateSchema)
@blp.response(200, MigrationResultSchema)
@blp.alt_response(422, description="the version belongs to another model (other_model)")
def migrate(body: dict, instance_id: str):
    """Move the instance to another version of its model; ``dry_run`` says whether it can, and why not."""
    rt = deployment()
    return operations.migrate_instance(db_session(), rt, instance_id, body["version"], dry_run=body["dry_run"],
                                       actor=current_user().username, now=rt.clock.now())


# --------------------------------------------------------------------------- timeline


@blp.route("/<instance_id>/timeline")
@requires(*READERS)
@blp.response(200, TimelineSchema)
def get_timeline(instance_id: str):
    """Every stage's clock events between the instance's start and its end, in order, with who and why."""
    user = current_user()
    instance = service.get_instance(db_session(), instance_id)
    _check_may_read(user, instance)
    return {"events": [e.as_dict() for e in timeline.instance_timeline(db_session(), instance, deployment().calendar)]}
