"""Saved inbox views (Camunda 7 Tasklist's filters): named filter sets, personal
or shared with the owner's department; and claiming several tasks at once."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from bpm_server.database import new_id
from bpm_server.errors import AppError, Conflict, Forbidden, Invalid, NotFound
from bpm_server.identity.models import User
from bpm_server.tasks import service
from bpm_server.tasks.inbox import TABS
from bpm_server.tasks.inbox_query import MAX_SEARCH_CHARS, ORDERS, SORTS
from bpm_server.tasks.models import TASK_STATES, HumanTask, InboxView

MAX_VIEWS_PER_OWNER = 50


class ViewFiltersSchema(Schema):
    """What a view remembers: the inbox's query arguments (API names), and the page's tab."""

    q = fields.String(validate=validate.Length(max=MAX_SEARCH_CHARS))
    state = fields.String(validate=validate.OneOf(TASK_STATES))
    account_id = fields.String(validate=validate.Length(max=100))
    process_model_id = fields.String(validate=validate.Length(max=100))
    overdue = fields.Boolean()
    sort = fields.String(validate=validate.OneOf(SORTS))
    order = fields.String(validate=validate.OneOf(ORDERS))
    per_page = fields.Integer(validate=validate.Range(min=1, max=200))
    tab = fields.String(validate=validate.OneOf(TABS), metadata={"description": "the browser inbox's tab"})


def clean_filters(raw: Any) -> dict[str, Any]:
    """The filters as stored; 422 naming the field for anything unknown or out of range."""
    try:
        loaded = ViewFiltersSchema().load(raw or {})
    except ValidationError as error:
        raise Invalid("the view's filters are not valid", code="invalid_filters",
                      details={"filters": error.messages}) from None
    # Empty strings mean "no filter" (a form's blank field): not stored.
    return {key: value for key, value in loaded.items() if value not in ("", None)}


def visible_views(session: Session, user: User) -> list[InboxView]:
    """The user's own views, then those colleagues share with the user's department; by name."""
    mine: ColumnElement[bool] = InboxView.owner_id == user.id
    seen = or_(mine, InboxView.department_id == user.department_id) if user.department_id else mine
    rows = session.scalars(select(InboxView).where(seen)
                           .order_by(InboxView.name, InboxView.id))
    views = list(rows)
    return [v for v in views if v.owner_id == user.id] + [v for v in views if v.owner_id != user.id]


def get_view(session: Session, user: User, view_id: str) -> InboxView:
    """A view the user can see (own or shared with the department); 404 for any other."""
    view = session.get(InboxView, view_id)
    if view is None or (view.owner_id != user.id and (
            view.department_id is None or view.department_id != user.department_id)):
        raise NotFound(f"inbox view {view_id!r} does not exist", code="unknown_inbox_view")
    return view


def _owned(session: Session, user: User, view_id: str) -> InboxView:
    view = get_view(session, user, view_id)
    if view.owner_id != user.id:
        raise Forbidden(f"inbox view {view.name!r} belongs to {view.owner.username}; only its owner changes it",
                        code="not_your_inbox_view")
    return view


def _check_name(session: Session, user: User, name: str, keep: str | None = None) -> str:
    name = name.strip()
    if not name or len(name) > 100:
        raise Invalid("a view needs a name of 1 to 100 characters", code="invalid_view_name",
                      details={"name": ["must be 1 to 100 characters"]})
    clash = session.scalar(select(InboxView.id).where(InboxView.owner_id == user.id, InboxView.name == name,
                                                      InboxView.id != (keep or "")))
    if clash is not None:
        raise Conflict(f"you already have an inbox view named {name!r}", code="duplicate_view_name",
                       details={"name": [f"{name!r} is taken"]})
    return name


def create_view(session: Session, user: User, name: str, filters: Any, shared: bool,
                now: datetime) -> InboxView:
    name = _check_name(session, user, name)
    count = session.query(InboxView).filter(InboxView.owner_id == user.id).count()
    if count >= MAX_VIEWS_PER_OWNER:
        raise Invalid(f"at most {MAX_VIEWS_PER_OWNER} inbox views per person", code="too_many_views")
    view = InboxView(id=new_id(), owner_id=user.id, name=name, filters=clean_filters(filters),
                     department_id=_share_target(user, shared), created_at=now, updated_at=now)
    session.add(view)
    session.flush()
    return view


def _share_target(user: User, shared: bool) -> str | None:
    if shared and not user.department_id:
        raise Invalid("you belong to no department to share the view with", code="no_department",
                      details={"shared": ["you belong to no department"]})
    return user.department_id if shared else None


def update_view(session: Session, user: User, view_id: str, changes: dict[str, Any], now: datetime) -> InboxView:
    """Rename, refilter or (un)share the user's own view: only the keys given change."""
    view = _owned(session, user, view_id)
    if "name" in changes:
        view.name = _check_name(session, user, changes["name"], keep=view.id)
    if "filters" in changes:
        view.filters = clean_filters(changes["filters"])
    if "shared" in changes:
        view.department_id = _share_target(user, changes["shared"])
    view.updated_at = now
    session.flush()
    return view


def delete_view(session: Session, user: User, view_id: str) -> None:
    session.delete(_owned(session, user, view_id))
    session.flush()


def inbox_filter(filters: dict[str, Any], **overrides: Any) -> service.InboxFilter:
    """The API inbox filter a view stands for (the page's tab is not part of it)."""
    known = {k: v for k, v in filters.items() if k != "tab"}
    return service.InboxFilter(**{**known, **overrides})


# --------------------------------------------------------------------------- bulk claim


@dataclass(frozen=True)
class ClaimResult:
    task_id: str
    status: int                  # 200 claimed, else the status a single claim would have answered
    code: str
    message: str
    task: HumanTask | None = None


def claim_many(session: Session, user: User, task_ids: list[str], now: datetime) -> list[ClaimResult]:
    """Claim each task in its own savepoint: one taken meanwhile (or unknown, or
    not the user's department's) is reported and rolled back alone; the others stay claimed."""
    results: list[ClaimResult] = []
    for task_id in dict.fromkeys(task_ids):  # once each, in the order given
        savepoint = session.begin_nested()
        try:
            task = service.claim(session, user, task_id, now)
        except AppError as error:
            savepoint.rollback()
            results.append(ClaimResult(task_id, error.status, error.code, error.message))
            continue
        savepoint.commit()
        results.append(ClaimResult(task_id, 200, "claimed", f"claimed {task.title!r}", task))
    return results
