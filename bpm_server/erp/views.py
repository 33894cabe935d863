"""The ERP webhook, and incidents of service calls (what an admin retries)."""
from __future__ import annotations

import time

from flask import g, request
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from bpm_server import runtime
from bpm_server.api_common import PageArgs, page_of
from bpm_server.erp import calls, service
from bpm_server.extensions import db_session, deployment
from bpm_server.identity.auth import READERS, current_user, requires
from bpm_server.integration_log.hooks import log_inbound
from bpm_server.request_guard import check_request, checks_after_auth

blp = Blueprint("erp", __name__, url_prefix="/api/v1", description="ERP webhook and service-call incidents")
log_inbound(blp, system="erp", endpoints={"erp.contract_signed"})


class ContractSignedAnswer(Schema):
    process_instance_id = fields.String()


class IncidentSchema(Schema):
    id = fields.String()
    process_instance_id = fields.String()
    element_id = fields.String(metadata={"description": "the BPMN service task"})
    system = fields.String()
    operation = fields.String()
    state = fields.String(metadata={"description": "incident while open; pending after a retry; succeeded"})
    attempts = fields.Integer()
    max_attempts = fields.Integer()
    error = fields.String(attribute="last_error", allow_none=True)
    incident_at = fields.DateTime(allow_none=True)
    next_attempt_at = fields.DateTime(allow_none=True)
    retried_by = fields.String(allow_none=True)


class IncidentPageSchema(Schema):
    items = fields.List(fields.Nested(IncidentSchema))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()


class IncidentArgs(PageArgs):
    open = fields.Boolean(load_default=True)
    process_instance_id = fields.String()


@blp.route("/hooks/erp/contract-signed", methods=["POST"])
@checks_after_auth
@blp.doc(security=[], parameters=[
    {"in": "header", "name": "X-BPM-Timestamp", "required": True, "schema": {"type": "string"},
     "description": "unix seconds; more than 300 s from the server's clock is refused"},
    {"in": "header", "name": "X-BPM-Signature", "required": True, "schema": {"type": "string"},
     "description": "sha256=<hex HMAC-SHA256 over '<timestamp>.<raw body>' with BPM_ERP_WEBHOOK_SECRET>"}])
@blp.response(201, ContractSignedAnswer, description="the first delivery of this event_id: a project started")
@blp.alt_response(200, schema=ContractSignedAnswer, description="a repeated delivery: the same instance, nothing new")
@blp.alt_response(409, description="the event_id came before with another body, or is being processed")
def contract_signed():
    """A contract was signed in the ERP: start the account project (signed, idempotent on event_id).

    Body: ``{"event_id", "contract_no", "account": {"id", "name", "tier"}, "signed_at", "amount",
    "currency", "owner"}``. Authenticated by its signature, not by a bearer token."""
    rt = deployment()
    body = request.get_data(cache=True)
    g.inbound_started = getattr(g, "inbound_started", time.perf_counter())
    service.verify(rt, body, request.headers.get("X-BPM-Timestamp"), request.headers.get("X-BPM-Signature"),
                   rt.clock.now())
    check_request(body_is_json=True)  # only now: an unsigned caller gets 401 whatever the body holds
    document = service.parse(body)
    g.inbound_reference = document["event_id"]
    session, now = db_session(), rt.clock.now()
    received = service.receive(session, document, now)
    if isinstance(received, service.NewContract):
        instance = runtime.start_instance(session, rt, process_model_id=service.PROCESS_MODEL_ID,
                                          account_id=received.account_id, data=received.data, now=now,
                                          started_by="erp")
        outcome = service.link(session, received, instance.id)
    else:
        outcome = received
    g.inbound_instance_id = outcome.process_instance_id
    g.inbound_outcome = "ok" if outcome.created else "duplicate"
    return {"process_instance_id": outcome.process_instance_id}, (201 if outcome.created else 200)


@blp.route("/incidents")
@requires(*READERS)
@blp.arguments(IncidentArgs, location="query")
@blp.response(200, IncidentPageSchema)
def list_incidents(args: dict):
    """Service calls that failed after their last retry (open ones by default), with the error."""
    rows, total = calls.incidents(db_session(), open_only=args["open"],
                                  process_instance_id=args.get("process_instance_id"),
                                  page=args["page"], per_page=args["per_page"])
    return page_of(rows, total, args["page"], args["per_page"])


@blp.route("/incidents/<incident_id>/retry", methods=["POST"])

@requires("admin")
@blp.response(200, IncidentSchema)
@blp.alt_response(409, description="the incident is not open (incident_not_open)")
def retry_incident(incident_id: str):
    """Try the failed call again now, with a fresh round of retries (admins)."""
    rt = deployment()
    return calls.retry_incident(db_session(), rt, incident_id, actor=current_user().username, now=rt.clock.now())
