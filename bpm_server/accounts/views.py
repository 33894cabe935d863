"""Customer accounts over HTTP."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from bpm_server.accounts import service
from bpm_server.accounts.models import TIERS
from bpm_server.extensions import db_session, deployment
from bpm_server.identity.auth import READERS, requires

blp = Blueprint("accounts", __name__, url_prefix="/api/v1/accounts", description="Customer accounts")


class AccountSchema(Schema):
    id = fields.String(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=300))
    tier = fields.String(load_default="standard", validate=validate.OneOf(TIERS))
    owner = fields.String(allow_none=True, load_default=None)
    executive_sponsor = fields.String(allow_none=True, load_default=None)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


@blp.route("/<account_id>")
@requires(*READERS)
@blp.response(200, AccountSchema)
def get_account(account_id: str):
    """One account with tier and owner."""
    return service.get_account(db_session(), account_id)


@blp.route("/<account_id>", methods=["PUT"])
@requires("staff")
@blp.arguments(AccountSchema)
@blp.response(200, AccountSchema)
def put_account(body: dict, account_id: str):
    """Create or update an account (the ERP webhook does this too)."""
    return service.upsert_account(db_session(), account_id, now=deployment().clock.now(), **body)
