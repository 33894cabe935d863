"""``POST /api/v1/messages``: a BPMN message from an external system (the ERP's "invoice issued")."""
from __future__ import annotations

from flask import g
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from bpm_server import runtime
from bpm_server.extensions import db_session, deployment
from bpm_server.identity.auth import requires
from bpm_server.integration_log.hooks import log_inbound

blp = Blueprint("messages", __name__, url_prefix="/api/v1/messages", description="BPMN messages from outside")
log_inbound(blp, system="messages", endpoints={"messages.deliver"})


class MessageSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200),
                         metadata={"description": "the BPMN message name, e.g. invoice_issued"})
    correlation = fields.Dict(keys=fields.String(), required=True,
                              metadata={"description": "correlation keys, e.g. {\"contract_no\": \"HT-1\"}"})
    payload = fields.Dict(load_default=dict)
    message_id = fields.String(required=True, validate=validate.Length(min=1, max=200),
                               metadata={"description": "the sender's id; a repeat is answered, not delivered again"})


class DeliverySchema(Schema):
    message_id = fields.String()
    process_instance_id = fields.String()
    element_id = fields.String(allow_none=True)
    duplicate = fields.Boolean()


@blp.route("", methods=["POST"])
@requires("integration")
@blp.arguments(MessageSchema)
@blp.response(200, DeliverySchema)
@blp.alt_response(404, description="no instance waits for this message and correlation (code no_waiting_instance)")
@blp.alt_response(409, description="several instances match (ambiguous_correlation), or message_id reused")
def deliver(body: dict):
    """Deliver a message to the one instance waiting for it (idempotent on message_id)."""
    rt = deployment()
    g.inbound_reference = body["message_id"]
    delivery = runtime.deliver_message(db_session(), rt, now=rt.clock.now(), **body)
    g.inbound_instance_id = delivery.process_instance_id
    g.inbound_outcome = "duplicate" if delivery.duplicate else "ok"
    return delivery
