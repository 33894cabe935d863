"""委托 over the API: list, create and end delegations."""
from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from bpm_server.extensions import db_session, deployment
from bpm_server.identity.auth import WORKERS, current_user, requires
from bpm_server.tasks import delegation

blp = Blueprint("delegations", __name__, url_prefix="/api/v1",
                description="委托: delegate one's work to a colleague for a period, for all or named processes")


class DelegationSchema(Schema):
    id = fields.String()
    delegator = fields.Function(lambda d: d.delegator.username)
    delegator_name = fields.Function(lambda d: d.delegator.display_name)
    delegate = fields.Function(lambda d: d.delegate.username)
    delegate_name = fields.Function(lambda d: d.delegate.display_name)
    starts_at = fields.DateTime()
    ends_at = fields.DateTime(metadata={"description": "exclusive: the delegation ends at this moment"})
    process_model_ids = fields.List(fields.String(), metadata={"description": "empty: every process"})
    reason = fields.String(allow_none=True)
    created_by = fields.String()
    created_at = fields.DateTime()
    active = fields.Function(lambda d: d.starts_at <= deployment().clock.now() < d.ends_at,
                             metadata={"description": "in force right now"})


class NewDelegationSchema(Schema):
    delegator = fields.String(load_default=None, allow_none=True,
                              metadata={"description": "whose work (username); default: yours. Someone else's: "
                                                       "their department's lead or an admin"})
    delegate = fields.String(required=True, metadata={"description": "who takes the work (username)"})
    starts_at = fields.AwareDateTime(required=True)
    ends_at = fields.AwareDateTime(required=True, metadata={"description": "exclusive"})
    process_model_ids = fields.List(fields.String(), load_default=list,
                                    metadata={"description": "only these processes; empty or absent: all"})
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))


class DelegationListSchema(Schema):
    items = fields.List(fields.Nested(DelegationSchema))
    total = fields.Integer()


class DelegationArgs(Schema):
    user = fields.String(metadata={"description": "only delegations this person gives or takes"})
    department = fields.String(metadata={"description": "only delegations of this department's people"})


@blp.route("/delegations")
@requires(*WORKERS, "admin")
@blp.arguments(DelegationArgs, location="query")
@blp.response(200, DelegationListSchema)
def list_delegations(args: dict) -> Any:
    """Current and coming delegations: yours (given or taken), and, for a lead, those of the
    department's people (admins: everyone's)."""
    rows = delegation.listed(db_session(), current_user(), now=deployment().clock.now(), user=args.get("user"),
                             department_id=args.get("department"))
    return {"items": rows, "total": len(rows)}


@blp.route("/delegations", methods=["POST"])
@requires(*WORKERS, "admin")
@blp.arguments(NewDelegationSchema)
@blp.response(201, DelegationSchema)
@blp.alt_response(403, description="someone else's work, and the caller neither leads their department nor is admin")
@blp.alt_response(409, description="an overlapping delegation of the same scope (delegation_overlaps), or one that "
                                   "would go round in a circle (delegation_cycle)")
def create_delegation(body: dict) -> Any:
    """委托: from `starts_at` until `ends_at`, tasks that would land on `delegator` land on
    `delegate` instead ("delegate on behalf of delegator"), who is notified. 422 names the
    field: an unknown person, yourself, a period that ends before it starts, an unknown model."""
    user = current_user()
    return delegation.create(db_session(), user, delegator=body["delegator"] or user.username,
                             delegate=body["delegate"], starts_at=body["starts_at"], ends_at=body["ends_at"],
                             process_model_ids=body["process_model_ids"], reason=body["reason"],
                             now=deployment().clock.now())


@blp.route("/delegations/<delegation_id>", methods=["DELETE"])
@requires(*WORKERS, "admin")
@blp.response(204)
@blp.alt_response(403, description="not the delegator, their lead or an admin")
@blp.alt_response(404, description="no such delegation, or it was already ended")
def cancel_delegation(delegation_id: str) -> None:
    """End a delegation now (the person is back)."""
    delegation.cancel(db_session(), current_user(), delegation_id, deployment().clock.now())
