"""The ERP's contract-signed webhook: verify, deduplicate on ``event_id``, start the project.

A delivery is authenticated by its HMAC signature over ``<timestamp>.<raw body>``
(``BPM_ERP_WEBHOOK_SECRET``, compared in constant time) and a timestamp within
300 s of the deployment clock. The first delivery of an event id upserts the
account and starts ``account-project`` with the kickoff SLA anchored on
``signed_at``; a repeat answers with the same instance and starts nothing.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bpm_server.accounts.models import TIERS
from bpm_server.accounts.service import upsert_account
from bpm_server.erp.models import ContractSignedEvent
from bpm_server.errors import AppError, Conflict, Invalid, Unauthenticated
from bpm_server.extensions import Deployment
from integrations.signing import signature_matches

REPLAY_WINDOW_SECONDS = 300
PROCESS_MODEL_ID = "account-project"


class WebhookNotConfigured(AppError):
    status, code = 503, "webhook_not_configured"


class _Account(Schema):
    id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    name = fields.String(required=True, validate=validate.Length(min=1, max=300))
    tier = fields.String(required=True, validate=validate.OneOf(TIERS, error="unknown tier {input!r}; "
                                                                             "tiers are {choices}"))


class ContractSignedSchema(Schema):
    event_id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    contract_no = fields.String(required=True, validate=validate.Length(min=1, max=64))
    account = fields.Nested(_Account, required=True)
    signed_at = fields.AwareDateTime(required=True, format="iso")
    amount = fields.Decimal(required=True, validate=validate.Range(min=0), as_string=False, allow_nan=False)
    currency = fields.String(required=True, validate=validate.Regexp(r"^[A-Z]{3}$", error="an ISO 4217 code "
                                                                                           "such as CNY"))
    owner = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))

    class Meta:
        unknown = "include"  # ERPs add fields; they travel into the process data untouched


@dataclass(frozen=True)
class Outcome:
    process_instance_id: str
    created: bool


def verify(rt: Deployment, body: bytes, timestamp: str | None, signature: str | None, now: datetime) -> None:
    secret = rt.config.erp_webhook_secret
    if not secret:
        raise WebhookNotConfigured("the ERP webhook is not configured on this server (BPM_ERP_WEBHOOK_SECRET)")
    if not timestamp:
        raise Unauthenticated("the X-BPM-Timestamp header is missing", code="missing_timestamp")
    if not signature:
        raise Unauthenticated("the X-BPM-Signature header is missing", code="missing_signature")
    try:
        moment = int(timestamp.strip())
    except ValueError:
        raise Unauthenticated("X-BPM-Timestamp must be unix seconds", code="bad_timestamp") from None
    if not signature_matches(secret, timestamp.strip(), body, signature):
        raise Unauthenticated("the signature does not match the body", code="bad_signature")
    if abs(now.timestamp() - moment) > REPLAY_WINDOW_SECONDS:
        raise Unauthenticated(f"the timestamp is more than {REPLAY_WINDOW_SECONDS} s from the server's clock",
                              code="stale_timestamp")


def parse(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Invalid(f"the body is not JSON: {exc}", code="invalid_json") from None
    if not isinstance(document, dict):
        raise Invalid("the body must be a JSON object", code="invalid_json")
    try:
        ContractSignedSchema().load(document)
    except ValidationError as exc:
        fields_at_fault = sorted(_paths(exc.messages))
        raise Invalid(f"missing or invalid fields: {', '.join(fields_at_fault)}", code="invalid_event",
                      details=exc.messages) from None
    return document


def _paths(messages: Any, prefix: str = "") -> list[str]:
    if isinstance(messages, dict):
        return [p for key, value in messages.items() for p in _paths(value, f"{prefix}{key}.")]
    return [prefix.rstrip(".")]


def body_hash(document: dict[str, Any]) -> str:
    """Of the parsed body, so a redelivery with other whitespace or key order still counts as the same."""
    return hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class NewContract:
    """A first delivery: the project to start for it (the caller starts it through the runtime)."""

    event: ContractSignedEvent
    account_id: str
    data: dict[str, Any]


def receive(session: Session, document: dict[str, Any], now: datetime) -> Outcome | NewContract:
    """Record the event once and upsert its account; a repeated delivery answers with the first one's instance."""
    digest = body_hash(document)
    event = ContractSignedEvent(event_id=document["event_id"], body_hash=digest, contract_no=document["contract_no"],
                                account_id=document["account"]["id"], received_at=now)
    try:
        # The INSERT is the request's first statement: the unique key decides
        # between simultaneous deliveries (the loser waits for the winner's
        # commit, then fails here).
        session.add(event)
        session.flush()
    except IntegrityError:
        session.rollback()  # nothing else was written in this transaction
        return _repeat(session, document["event_id"], digest)
    account = document["account"]
    upsert_account(session, account["id"], name=account["name"], tier=account["tier"], owner=document.get("owner"),
                   now=now)
    data = {k: v for k, v in document.items() if k not in ("account", "event_id") and v is not None}
    data["erp_event_id"] = document["event_id"]
    return NewContract(event, account["id"], data)


def link(session: Session, contract: NewContract, process_instance_id: str) -> Outcome:
    contract.event.process_instance_id = process_instance_id
    session.flush()
    return Outcome(process_instance_id, True)


def _repeat(session: Session, event_id: str, digest: str) -> Outcome:
    first = session.get(ContractSignedEvent, event_id)
    if first is None:  # the other delivery failed and rolled back: let the ERP send it again
        raise Conflict(f"event {event_id!r} is being processed; retry", code="event_in_progress")
    if first.body_hash != digest:
        raise Conflict(f"event_id {event_id!r} was already delivered with a different body", code="event_id_reused",
                       details={"event_id": ["reused with a different body"]})
    return Outcome(first.process_instance_id or "", False)
