"""External tasks over HTTP, as Camunda 7's external task API works: workers fetch and
lock tasks by topic, then complete them, report a failure, or extend the lock.

Bodies use the names of API.md (``worker_id``, ``topics: [{"name", "lock_ms"}]``,
``max_tasks``, ...); Camunda's own names (``workerId``, ``topicName``,
``lockDuration``, ``maxTasks``, ``errorMessage``, ``retryTimeout``,
``newDuration``) are accepted too, so Camunda's worker clients work unchanged.
Camunda's typed variables (``{"x": {"value": 1, "type": "Integer"}}``) are
unwrapped to their values.
"""
from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields, pre_load, validate, validates_schema
from marshmallow.exceptions import ValidationError

from bpm_server import runtime
from bpm_server.api_common import PageArgs, page_of
from bpm_server.extensions import db_session, deployment
from bpm_server.external_tasks import service
from bpm_server.external_tasks.models import STATES
from bpm_server.identity.auth import current_user, requires

blp = Blueprint("external_tasks", __name__, url_prefix="/api/v1/external-tasks",
                description="External tasks: service tasks done by workers that fetch and lock them")

WORKERS = ("integration",)  # admins too, as everywhere
CAMUNDA_NAMES = {"workerId": "worker_id", "maxTasks": "max_tasks", "topicName": "name", "lockDuration": "lock_ms",
                 "errorMessage": "error_message", "retryTimeout": "retry_timeout_ms", "newDuration": "lock_ms"}


def _renamed(data: Any) -> Any:
    if not isinstance(data, dict):
        return data
    return {CAMUNDA_NAMES.get(key, key): value for key, value in data.items()}


class _Body(Schema):
    @pre_load
    def _camunda_names(self, data: Any, **_: Any) -> Any:
        return _renamed(data)


WORKER_ID = fields.String(required=True, validate=validate.Length(min=1, max=200))
LOCK_MS = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=7 * 24 * 3600 * 1000,
                                                                             error="must be between 1 and "
                                                                                   "604800000 ms (7 days)"))


class ExternalTopicSchema(_Body):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    lock_ms = LOCK_MS


class ExternalFetchSchema(_Body):
    worker_id = WORKER_ID
    max_tasks = fields.Integer(load_default=1, strict=True,
                               validate=validate.Range(min=1, max=service.MAX_TASKS_PER_FETCH))
    topics = fields.List(fields.Nested(ExternalTopicSchema), required=True, validate=validate.Length(min=1, max=100))

    @validates_schema
    def _distinct_topics(self, data: dict, **_: Any) -> None:
        names = [t["name"] for t in data.get("topics", [])]
        if len(names) != len(set(names)):
            raise ValidationError("each topic once", "topics")


def _plain(variables: dict) -> dict:
    """Camunda's typed variables unwrapped; plain values kept."""
    def value(v: Any) -> Any:
        if isinstance(v, dict) and "value" in v and set(v) <= {"value", "type", "valueInfo"}:
            return v["value"]
        return v
    return {name: value(v) for name, v in variables.items()}


class ExternalCompleteSchema(_Body):
    worker_id = WORKER_ID
    variables = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=200)), load_default=dict)


class ExternalFailureSchema(_Body):
    worker_id = WORKER_ID
    error_message = fields.String(load_default="", validate=validate.Length(max=10_000))
    retries = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=1000))
    retry_timeout_ms = fields.Integer(load_default=0, strict=True,
                                      validate=validate.Range(min=0, max=7 * 24 * 3600 * 1000))


class ExternalExtendSchema(_Body):
    worker_id = WORKER_ID
    lock_ms = LOCK_MS


class ExternalRetriesSchema(Schema):
    retries = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=1000))


class ExternalTaskSchema(Schema):
    id = fields.String()
    topic = fields.String()
    process_instance_id = fields.String()
    process_model_id = fields.String()
    element_id = fields.String(metadata={"description": "the BPMN service task"})
    state = fields.String(metadata={"description": ", ".join(STATES)})
    worker_id = fields.String(allow_none=True, metadata={"description": "who holds the lock now"})
    lock_expires_at = fields.DateTime(allow_none=True)
    retries = fields.Integer(allow_none=True)
    error_message = fields.String(allow_none=True)
    variables = fields.Dict(metadata={"description": "the process data when the task started"})
    created_at = fields.DateTime()


class ExternalTaskListArgs(PageArgs):
    topic = fields.String()
    state = fields.String(validate=validate.OneOf(STATES))
    process_instance_id = fields.String()


class ExternalTaskPageSchema(Schema):
    items = fields.List(fields.Nested(ExternalTaskSchema))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()


@blp.route("/fetch-and-lock", methods=["POST"])
@requires(*WORKERS)
@blp.arguments(ExternalFetchSchema)
@blp.response(200, ExternalTaskSchema(many=True))
def fetch_and_lock(body: dict):
    """Lock up to ``max_tasks`` tasks of the topics for the worker (each topic with its lock length in ms);
    a task whose lock expired is fetchable again."""
    now = deployment().clock.now()
    locked = service.fetch_and_lock(db_session(), worker_id=body["worker_id"],
                                    topics={t["name"]: t["lock_ms"] for t in body["topics"]},
                                    max_tasks=body["max_tasks"], now=now)
    return [service.view(t, now) for t in locked]


@blp.route("/<task_id>/complete", methods=["POST"])
@requires(*WORKERS)
@blp.arguments(ExternalCompleteSchema)
@blp.response(200, ExternalTaskSchema)
@blp.alt_response(409, description="not locked by this worker, the lock expired, or the instance moved on")
def complete(body: dict, task_id: str):
    """Complete a locked task: its variables go into the process data and the instance moves on."""
    rt = deployment()
    task = runtime.complete_external_task(db_session(), rt, task_id, worker_id=body["worker_id"],
                                          variables=_plain(body["variables"]), now=rt.clock.now())
    return service.view(task, rt.clock.now())


@blp.route("/<task_id>/failure", methods=["POST"])
@requires(*WORKERS)
@blp.arguments(ExternalFailureSchema)
@blp.response(200, ExternalTaskSchema)
@blp.alt_response(409, description="not locked by this worker, or the lock expired")
def failure(body: dict, task_id: str):
    """Report a failure: with ``retries`` > 0 the task is fetchable again after ``retry_timeout_ms``;
    with 0 it becomes an incident (admins are notified)."""
    rt = deployment()
    task = service.report_failure(db_session(), rt, task_id, worker_id=body["worker_id"],
                                  error_message=body["error_message"], retries=body["retries"],
                                  retry_timeout_ms=body["retry_timeout_ms"], now=rt.clock.now())
    return service.view(task, rt.clock.now())


@blp.route("/<task_id>/extend-lock", methods=["POST"])
@requires(*WORKERS)
@blp.arguments(ExternalExtendSchema)
@blp.response(200, ExternalTaskSchema)
@blp.alt_response(409, description="not locked by this worker, or the lock expired")
def extend_lock(body: dict, task_id: str):
    """Extend the worker's lock to ``lock_ms`` from now."""
    now = deployment().clock.now()
    return service.view(service.extend_lock(db_session(), task_id, body["worker_id"], body["lock_ms"], now), now)


@blp.route("/<task_id>/retries", methods=["POST"])
@requires("process_owner")
@blp.arguments(ExternalRetriesSchema)
@blp.response(200, ExternalTaskSchema)
@blp.alt_response(409, description="the task is completed (external_task_not_open)")
def set_retries(body: dict, task_id: str):
    """Give a task new retries; an incident with retries > 0 is fetchable again."""
    rt = deployment()
    task = service.set_retries(db_session(), task_id, body["retries"], actor=current_user().username,
                               now=rt.clock.now())
    return service.view(task, rt.clock.now())


@blp.route("")
@requires("process_owner", "auditor", *WORKERS)
@blp.arguments(ExternalTaskListArgs, location="query")
@blp.response(200, ExternalTaskPageSchema)
def list_external_tasks(args: dict):
    """External tasks, oldest first; filters ``topic``, ``state``, ``process_instance_id``."""
    now = deployment().clock.now()
    rows, total = service.list_tasks(db_session(), topic=args.get("topic"), state=args.get("state"),
                                     process_instance_id=args.get("process_instance_id"), page=args["page"],
                                     per_page=args["per_page"])
    return page_of([service.view(t, now) for t in rows], total, args["page"], args["per_page"])
