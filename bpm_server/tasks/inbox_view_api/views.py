"""Saved inbox views over the API: /api/v1/inbox-views."""
from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from bpm_server.api_common import PageArgs, page_of
from bpm_server.extensions import db_session, deployment
from bpm_server.identity.auth import WORKERS, current_user, requires
from bpm_server.tasks import saved_views, service
from bpm_server.tasks.saved_views import ViewFiltersSchema
from bpm_server.tasks.schemas import TaskPageSchema

blp = Blueprint("inbox_views", __name__, url_prefix="/api/v1/inbox-views",
                description="Saved inbox views: named filter sets, personal or shared with a department")


class ViewSchema(Schema):
    id = fields.String()
    name = fields.String()
    owner = fields.Function(lambda v: v.owner.username)
    shared_with_department = fields.String(attribute="department_id", allow_none=True)
    filters = fields.Nested(ViewFiltersSchema)
    mine = fields.Function(lambda v: v.owner_id == current_user().id)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class ViewListSchema(Schema):
    items = fields.List(fields.Nested(ViewSchema))


class CreateViewSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    filters = fields.Dict(load_default=dict, metadata={"description": "the inbox's query arguments: "
                                                                      "q, state, account_id, process_model_id, "
                                                                      "overdue, sort, order, per_page (and tab)"})
    shared = fields.Boolean(load_default=False, metadata={"description": "share with your department"})


class UpdateViewSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=100))
    filters = fields.Dict()
    shared = fields.Boolean()


class ViewTasksArgs(PageArgs):
    class Meta:
        exclude = ("per_page",)  # the view's own page size


@blp.route("")
@requires(*WORKERS)
@blp.response(200, ViewListSchema)
def list_views() -> Any:
    """Your views, then those colleagues share with your department."""
    return {"items": saved_views.visible_views(db_session(), current_user())}


@blp.route("", methods=["POST"])
@requires(*WORKERS)
@blp.arguments(CreateViewSchema)
@blp.response(201, ViewSchema)
@blp.alt_response(409, description="you already have a view of that name")
@blp.alt_response(422, description="a filter is unknown or out of range")
def create_view(body: dict) -> Any:
    return saved_views.create_view(db_session(), current_user(), body["name"], body["filters"], body["shared"],
                                   deployment().clock.now())


@blp.route("/<view_id>")
@requires(*WORKERS)
@blp.response(200, ViewSchema)
def get_view(view_id: str) -> Any:
    return saved_views.get_view(db_session(), current_user(), view_id)


@blp.route("/<view_id>", methods=["PATCH"])
@requires(*WORKERS)
@blp.arguments(UpdateViewSchema)
@blp.response(200, ViewSchema)
@blp.alt_response(403, description="the view is shared with you, not yours")
@blp.alt_response(409, description="you already have a view of that name")
def update_view(body: dict, view_id: str) -> Any:
    """Rename, change the filters of, or (un)share your own view."""
    return saved_views.update_view(db_session(), current_user(), view_id, body, deployment().clock.now())


@blp.route("/<view_id>", methods=["DELETE"])
@requires(*WORKERS)
@blp.response(204)
@blp.alt_response(403, description="the view is shared with you, not yours")
def delete_view(view_id: str) -> Any:
    saved_views.delete_view(db_session(), current_user(), view_id)


@blp.route("/<view_id>/tasks")
@requires(*WORKERS)
@blp.arguments(ViewTasksArgs, location="query")
@blp.response(200, TaskPageSchema)
def view_tasks(args: dict, view_id: str) -> Any:
    """The inbox through the view's filters (the same rows as GET /api/v1/tasks with them)."""
    view = saved_views.get_view(db_session(), current_user(), view_id)
    filters = saved_views.inbox_filter(view.filters, page=args["page"])
    rows, total = service.inbox(db_session(), current_user(), filters, deployment().clock.now())
    return page_of(rows, total, filters.page, filters.per_page)
