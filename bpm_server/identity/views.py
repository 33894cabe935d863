"""Who am I: lets a client check its token."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from bpm_server.extensions import db_session, deployment
from bpm_server.identity import service
from bpm_server.identity.auth import current_user, requires
from bpm_server.identity.models import ROLES

blp = Blueprint("identity", __name__, url_prefix="/api/v1", description="The caller")


class MeSchema(Schema):
    id = fields.String()
    username = fields.String()
    display_name = fields.String()
    department = fields.String(attribute="department_id")
    roles = fields.List(fields.String())


@blp.route("/me")
@blp.response(200, MeSchema)
def me():
    """The authenticated user, with department and roles."""
    user = current_user()
    if not user.has_role(*ROLES):
        return {}
    return user


# --------------------------------------------------------------------------- out-of-office substitutes


class SubstituteSchema(Schema):
    id = fields.String(dump_only=True)
    user = fields.Function(lambda s: s.user.username, dump_only=True)
    substitute = fields.Function(lambda s: s.substitute.username, dump_only=True)
    starts_on = fields.Date(dump_only=True)
    ends_on = fields.Date(dump_only=True)
    reason = fields.String(allow_none=True, dump_only=True)
    created_by = fields.String(dump_only=True)


class NewSubstituteSchema(Schema):
    user = fields.String(required=True, metadata={"description": "who is out of office (username)"})
    substitute = fields.String(required=True, metadata={"description": "who takes their new tasks (username)"})
    starts_on = fields.Date(required=True, data_key="from", metadata={"description": "first day away (inclusive)"})
    ends_on = fields.Date(required=True, data_key="until", metadata={"description": "last day away (inclusive)"})
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))


class SubstituteListSchema(Schema):
    items = fields.List(fields.Nested(SubstituteSchema))


class SubstituteArgs(Schema):
    department = fields.String(metadata={"description": "only this department's people"})


@blp.route("/substitutes")
@requires("staff")
@blp.arguments(SubstituteArgs, location="query")
@blp.response(200, SubstituteListSchema)
def list_substitutes(args: dict):
    """Current and coming out-of-office substitutes (by default of your own department)."""
    rt = deployment()
    today = rt.clock.now().astimezone(rt.calendar.time_zone).date()
    department = args.get("department") or current_user().department_id
    return {"items": service.substitutes(db_session(), department_id=department, today=today)}


@blp.route("/substitutes", methods=["POST"])
@requires("staff")
@blp.arguments(NewSubstituteSchema)
@blp.response(201, SubstituteSchema)
@blp.alt_response(403, description="the caller does not lead the person's department")
@blp.alt_response(409, description="the person already has a substitute in an overlapping period")
def add_substitute(body: dict):
    """Department leads: while `user` is away (`from`..`until`, whole days), their new tasks go to `substitute`."""
    return service.set_substitute(db_session(), current_user(), username=body["user"], substitute=body["substitute"],
                                  starts_on=body["starts_on"], ends_on=body["ends_on"], reason=body["reason"],
                                  now=deployment().clock.now())


@blp.route("/substitutes/<substitute_id>", methods=["DELETE"])
@requires("staff")
@blp.response(204)
def cancel_substitute(substitute_id: str):
    """Department leads: end a substitution early (the person is back)."""
    service.cancel_substitute(db_session(), current_user(), substitute_id, deployment().clock.now())
