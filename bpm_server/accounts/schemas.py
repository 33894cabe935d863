"""The account API's bodies and answers."""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from bpm_server.accounts.models import CONTACT_ROLES, TIERS
from bpm_server.api_common import Moment, PageArgs

ID = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$", error="letters, digits, '.', '_' and '-' (at most 100)")


class ContactSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    role = fields.String(required=True, validate=validate.OneOf(CONTACT_ROLES),
                         metadata={"description": "decision_maker, user, finance, technical or other"})
    phone = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=40))
    email = fields.Email(allow_none=True, load_default=None)
    since = fields.Date(allow_none=True, load_default=None)

    @validates_schema
    def reachable(self, data: dict[str, Any], **_: Any) -> None:
        if not data.get("phone") and not data.get("email"):
            raise ValidationError("give a phone number or an e-mail address", "phone")


class AccountFields(Schema):
    name = fields.String(validate=validate.Length(min=1, max=300))
    owner = fields.String(allow_none=True, validate=validate.Length(max=100))
    executive_sponsor = fields.String(allow_none=True, validate=validate.Length(max=100))
    industry = fields.String(allow_none=True, validate=validate.Length(max=100))
    contacts = fields.List(fields.Nested(ContactSchema), validate=validate.Length(max=50))
    contract_value = fields.Float(allow_none=True, validate=validate.Range(min=0, max=1e13))
    relationship_start = fields.Date(allow_none=True)
    growth_potential = fields.Integer(allow_none=True, validate=validate.Range(min=0, max=100))


class AccountCreate(AccountFields):
    id = fields.String(required=True, validate=ID)
    name = fields.String(required=True, validate=validate.Length(min=1, max=300))
    tier = fields.String(load_default="standard", validate=validate.OneOf(TIERS))


class AccountPatch(AccountFields):
    tier = fields.String(validate=validate.OneOf(TIERS))
    tier_review = fields.String(validate=validate.Length(max=36),
                                metadata={"description": "the tier-review instance that approved a tier change"})


class AccountPut(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=300))
    tier = fields.String(load_default="standard", validate=validate.OneOf(TIERS))
    owner = fields.String(allow_none=True, load_default=None)
    executive_sponsor = fields.String(allow_none=True, load_default=None)


class AccountSchema(Schema):
    id = fields.String()
    name = fields.String()
    tier = fields.String()
    owner = fields.String(allow_none=True)
    executive_sponsor = fields.String(allow_none=True)
    industry = fields.String(allow_none=True)
    contacts = fields.List(fields.Dict())
    contract_value = fields.Float(allow_none=True)
    relationship_start = fields.Date(allow_none=True)
    growth_potential = fields.Integer(allow_none=True)
    health_score = fields.Float(allow_none=True)
    health_band = fields.String()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class AccountListArgs(PageArgs):
    tier = fields.String(validate=validate.OneOf(TIERS))
    owner = fields.String()
    health_band = fields.String(validate=validate.OneOf(("healthy", "watch", "at_risk", "unknown")))
    q = fields.String(validate=validate.Length(max=200), metadata={"description": "text search"})


class SignalIn(Schema):
    signal_id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    kind = fields.String(required=True, validate=validate.Length(min=1, max=40))
    value = fields.Float(allow_none=True, load_default=None, allow_nan=False)
    at = Moment(required=True)
    source = fields.String(required=True, validate=validate.Length(min=1, max=200))
    note = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=2000))


class SignalSchema(Schema):
    signal_id = fields.String()
    account_id = fields.String()
    kind = fields.String()
    value = fields.Float()
    at = fields.DateTime()
    source = fields.String()
    note = fields.String(allow_none=True)
    recorded_by = fields.String()
    recorded_at = fields.DateTime()


class FiringSchema(Schema):
    id = fields.Integer()
    account_id = fields.String()
    rule_id = fields.String()
    rule_version = fields.Integer()
    process_model_id = fields.String()
    priority = fields.String()
    facts = fields.Dict()
    inputs = fields.List(fields.Raw())
    trigger = fields.String()
    fired_at = fields.DateTime()
    outcome = fields.String()
    process_instance_id = fields.String(allow_none=True)
    error = fields.String(allow_none=True)


class SignalAnswer(Schema):
    signal = fields.Nested(SignalSchema)
    created = fields.Boolean()
    firings = fields.List(fields.Nested(FiringSchema))


class RuleVersionSchema(Schema):
    rule_id = fields.String()
    version = fields.Integer()
    name = fields.String()
    active = fields.Boolean()
    created_by = fields.String()
    created_at = fields.DateTime()
    dmn = fields.Function(lambda v: v.dmn.decode("utf-8", "replace"))


class RuleUpload(Schema):
    dmn = fields.String(required=True, validate=validate.Length(min=1, max=2 * 1024 * 1024))
    name = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=300))


class RuleActive(Schema):
    active = fields.Boolean(required=True)


class WeightsIn(Schema):
    weights = fields.Dict(keys=fields.String(), values=fields.Raw(), required=True)


class CutIn(Schema):
    value_cut = fields.Float(allow_none=True, load_default=None)
    potential_cut = fields.Float(allow_none=True, load_default=None)


class TierReviewIn(Schema):
    suggested_tier = fields.String(validate=validate.OneOf(TIERS), load_default=None, allow_none=True)
    reason = fields.String(load_default="", validate=validate.Length(max=2000))
