"""Who am I: lets a client check its token."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from bpm_server.identity.auth import current_user
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
