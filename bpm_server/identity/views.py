"""Who am I, API tokens, and (admins) users and departments."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from bpm_server.api_common import PageArgs, page_of
from bpm_server.audit.service import record as audit
from bpm_server.errors import Forbidden
from bpm_server.extensions import db_session, deployment
from bpm_server.identity import service
from bpm_server.identity.auth import current_user, requires
from bpm_server.identity.models import ROLES
from bpm_server.tasks import leavers

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


# --------------------------------------------------------------------------- API tokens

ANYONE = ROLES  # every signed-in caller manages their own tokens


class TokenSchema(Schema):
    """A token as listed: never its secret (only a hash is stored)."""

    id = fields.String()
    user = fields.Function(lambda t: t.user.username)
    name = fields.String(allow_none=True)
    created_at = fields.DateTime()
    expires_at = fields.DateTime(allow_none=True)
    last_used_at = fields.DateTime(allow_none=True, metadata={"description": "to the minute"})
    revoked_at = fields.DateTime(allow_none=True)
    revoked_by = fields.String(allow_none=True)
    revoked = fields.Function(lambda t: t.revoked_at is not None)
    state = fields.Function(lambda t: service.token_state(t, deployment().clock.now()),
                            metadata={"description": "active, expired or revoked"})


class TokenPageSchema(Schema):
    items = fields.List(fields.Nested(TokenSchema))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()


class TokenArgs(PageArgs):
    user = fields.String(metadata={"description": "whose tokens (admins only; default: your own)"})


@blp.route("/tokens")
@requires(*ANYONE)
@blp.arguments(TokenArgs, location="query")
@blp.response(200, TokenPageSchema)
@blp.alt_response(403, description="a non-admin asked for someone else's tokens")
def list_tokens(args: dict):
    """Your API tokens (admins: anyone's, with `user`), newest first, revoked and expired ones included."""
    caller = current_user()
    owner = caller
    if args.get("user") and args["user"] != caller.username:
        if not caller.has_role("admin"):
            raise Forbidden("only admins can list another user's tokens", code="not_token_owner")
        owner = service.get_user(db_session(), args["user"])
    items, total = service.tokens(db_session(), user=owner, page=args["page"], per_page=args["per_page"])
    return page_of(items, total, args["page"], args["per_page"])


@blp.route("/tokens/<token_id>", methods=["DELETE"])
@requires(*ANYONE)
@blp.response(204)
@blp.alt_response(403, description="the token is someone else's and the caller is not an admin")
@blp.alt_response(409, description="the token is already revoked")
def revoke_token(token_id: str):
    """Revoke a token (your own; admins: anyone's). It answers 401 from the next request on."""
    service.revoke_token(db_session(), current_user(), token_id, now=deployment().clock.now())


# --------------------------------------------------------------------------- users and departments (admins)


class UserSchema(Schema):
    id = fields.String()
    username = fields.String()
    display_name = fields.String()
    department = fields.String(attribute="department_id")
    roles = fields.List(fields.String())
    active = fields.Boolean()
    created_at = fields.DateTime()


class UserPageSchema(Schema):
    items = fields.List(fields.Nested(UserSchema))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()


class UserArgs(PageArgs):
    department = fields.String()
    active = fields.Boolean()


class NewUserSchema(Schema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=100))
    department = fields.String(required=True, validate=validate.Length(min=1, max=64),
                               metadata={"description": "department code; created if it does not exist"})
    roles = fields.List(fields.String(), load_default=["staff"],
                        metadata={"description": f"any of {', '.join(ROLES)}"})
    display_name = fields.String(load_default=None, validate=validate.Length(min=1, max=200))
    password = fields.String(load_default=None, load_only=True, validate=validate.Length(min=8, max=200))
    lead = fields.Boolean(load_default=False, metadata={"description": "make the user the department's lead"})


class UserChangeSchema(Schema):
    display_name = fields.String(validate=validate.Length(min=1, max=200))
    department = fields.String(metadata={"description": "an existing department's code"})
    roles = fields.List(fields.String(), metadata={"description": f"replaces the roles; any of {', '.join(ROLES)}"})


class UserLifecycleSchema(UserSchema):
    tasks_returned = fields.List(fields.String(), metadata={"description": "ids of the open tasks sent back"})


@blp.route("/users")
@requires("admin")
@blp.arguments(UserArgs, location="query")
@blp.response(200, UserPageSchema)
def list_users(args: dict):
    """Users (admins), by username."""
    items, total = service.users(db_session(), department=args.get("department"), active=args.get("active"),
                                 page=args["page"], per_page=args["per_page"])
    return page_of(items, total, args["page"], args["per_page"])


@blp.route("/users", methods=["POST"])
@requires("admin")
@blp.arguments(NewUserSchema)
@blp.response(201, UserSchema)
@blp.alt_response(409, description="the username is taken")
@blp.alt_response(422, description="an unknown role (the message lists the known ones) or a bad field")
def create_user(body: dict):
    """Create a user (admins); audited."""
    session, now, actor = db_session(), deployment().clock.now(), current_user()
    user = service.add_user(session, body["username"], department=body["department"], roles=body["roles"],
                            password=body["password"], display_name=body["display_name"], now=now)
    if body["lead"] and user.department_id:
        service.save_department(session, actor.username, user.department_id, lead=user.username, now=now)
    audit(session, actor=actor.username, action="user.create", object_type="user", object_id=user.username,
          now=now, before=None, after={"display_name": user.display_name, "department": user.department_id,
                                       "roles": list(user.roles), "active": True, "lead": body["lead"]})
    return user


@blp.route("/users/<username>")
@requires("admin")
@blp.response(200, UserSchema)
def get_user(username: str):
    """One user (admins)."""
    return service.get_user(db_session(), username)


@blp.route("/users/<username>", methods=["PATCH"])
@requires("admin")
@blp.arguments(UserChangeSchema)
@blp.response(200, UserSchema)
@blp.alt_response(409, description="this would leave no active admin")
@blp.alt_response(422, description="an unknown role (the message lists the known ones) or department")
def change_user(body: dict, username: str):
    """Change a user's display name, department or roles (admins); audited with before and after."""
    return service.update_user(db_session(), current_user().username, username, now=deployment().clock.now(),
                               display_name=body.get("display_name"), department=body.get("department"),
                               roles=body.get("roles"))


@blp.route("/users/<username>/deactivate", methods=["POST"])
@requires("admin")
@blp.response(200, UserLifecycleSchema)
@blp.alt_response(409, description="already deactivated, or the last active admin")
def deactivate_user(username: str):
    """Deactivate a user (a leaver): their tokens and sessions stop at once, their open tasks go back to
    the task's department and its lead is notified. Audited."""
    user, returned = leavers.deactivate(db_session(), deployment(), current_user(), username,
                                        now=deployment().clock.now())
    fields_of_user = ("id", "username", "display_name", "department_id", "roles", "active", "created_at")
    return {**{name: getattr(user, name) for name in fields_of_user}, "tasks_returned": [t.id for t in returned]}


@blp.route("/users/<username>/reactivate", methods=["POST"])
@requires("admin")
@blp.response(200, UserSchema)
@blp.alt_response(409, description="the user is already active")
def reactivate_user(username: str):
    """Let a deactivated user sign in again (their unrevoked, unexpired tokens work again). Audited."""
    return service.set_active(db_session(), current_user().username, username, True, now=deployment().clock.now())


_NAME_EN = {"description": "the name English readers see; none: they see the code"}


class DepartmentSchema(Schema):
    id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    name = fields.String(load_default=None, validate=validate.Length(min=1, max=200))
    name_en = fields.String(allow_none=True, metadata=_NAME_EN)
    lead = fields.Function(lambda d: service.lead_username(db_session(), d), dump_only=True)


class NewDepartmentSchema(Schema):
    id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    name = fields.String(load_default=None, validate=validate.Length(min=1, max=200))
    name_en = fields.String(load_default=None, validate=validate.Length(min=1, max=200), metadata=_NAME_EN)
    lead = fields.String(load_default=None, metadata={"description": "username of the lead"})


class DepartmentChangeSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    name_en = fields.String(validate=validate.Length(min=1, max=200), metadata=_NAME_EN)
    lead = fields.String(allow_none=True, metadata={"description": "username of the lead; null: no lead"})


class DepartmentListSchema(Schema):
    items = fields.List(fields.Nested(DepartmentSchema))


@blp.route("/departments")
@requires("admin")
@blp.response(200, DepartmentListSchema)
def list_departments():
    """Departments with their leads (admins)."""
    return {"items": service.departments(db_session())}


@blp.route("/departments", methods=["POST"])
@requires("admin")
@blp.arguments(NewDepartmentSchema)
@blp.response(201, DepartmentSchema)
@blp.alt_response(409, description="the code is taken")
def create_department(body: dict):
    """Create a department (admins); audited."""
    return service.save_department(db_session(), current_user().username, body["id"], name=body["name"],
                                   name_en=body["name_en"], lead=body["lead"], create=True,
                                   now=deployment().clock.now())


@blp.route("/departments/<department_id>", methods=["PATCH"])
@requires("admin")
@blp.arguments(DepartmentChangeSchema)
@blp.response(200, DepartmentSchema)
def change_department(body: dict, department_id: str):
    """Rename a department or change its lead (`"lead": null` removes the lead); audited with before and after."""
    return service.save_department(db_session(), current_user().username, department_id, name=body.get("name"),
                                   name_en=body.get("name_en"), lead=body.get("lead"),
                                   clear_lead="lead" in body and body["lead"] is None,
                                   now=deployment().clock.now())
