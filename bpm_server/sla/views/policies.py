"""Escalation policies over HTTP: list, and replace one (process owners, audited)."""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from bpm_server.errors import Invalid
from bpm_server.extensions import db_session, deployment
from bpm_server.identity.auth import READERS, current_user, requires
from bpm_server.sla import gaps, policies
from bpm_server.sla.models import EscalationPolicy, EscalationSetting
from bpm_server.sla.views.blueprint import blp


class PolicySchema(Schema):
    name = fields.String(dump_only=True)
    rules = fields.List(fields.Dict(), required=True)
    updated_at = fields.DateTime(dump_only=True)
    updated_by = fields.String(dump_only=True, allow_none=True)
    # Targets that resolve to nobody today (saved anyway: the data may follow);
    # such a rung goes to the deployment's fallback person or role.
    warnings = fields.List(fields.Dict(), dump_only=True)


class PolicyListSchema(Schema):
    policies = fields.List(fields.Nested(PolicySchema))
    settings = fields.Dict(keys=fields.String(), values=fields.String())


@blp.route("/sla/policies")
@requires(*READERS)
@blp.response(200, PolicyListSchema)
def list_policies() -> dict[str, Any]:
    """Escalation ladders, and which one is the default and which each tier uses."""
    session = db_session()
    return {"policies": session.query(EscalationPolicy).order_by(EscalationPolicy.name).all(),
            "settings": {s.key: s.policy for s in session.query(EscalationSetting)}}


@blp.route("/sla/policies/<name>", methods=["PUT"])
@requires("process_owner")
@blp.arguments(PolicySchema)
@blp.response(200, PolicySchema)
def put_policy(body: dict, name: str) -> dict[str, Any]:
    """Create or replace a ladder; validated (actions, targets, departments, users) before it is saved.
    ``warnings`` lists targets that resolve to nobody today."""
    if not 1 <= len(name) <= 100:
        raise Invalid("policy name must be 1 to 100 characters")
    session = db_session()
    policy = policies.put_policy(session, name, body["rules"], actor=current_user().username,
                                 now=deployment().clock.now())
    return {"name": policy.name, "rules": policy.rules, "updated_at": policy.updated_at,
            "updated_by": policy.updated_by, "warnings": gaps.policy_gaps(session, name, policy.rules)}
