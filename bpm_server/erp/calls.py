"""Service-task calls to external systems: created with the engine state, attempted by
jobs with retries, and an incident (with the error) once the last attempt failed.

A call's id is the idempotency key the system receives, the same on every
attempt, so a retry after a lost answer cannot make a second invoice request.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bpm_server.accounts.models import Account
from bpm_server.audit.service import record as audit
from bpm_server.database import new_id, rows_changed
from bpm_server.engine.adapter import ServiceCall
from bpm_server.erp.models import OutboundCall
from bpm_server.errors import Conflict, NotFound
from bpm_server.extensions import Deployment
from bpm_server.identity.models import User
from bpm_server.instances.models import ProcessInstance
from bpm_server.integration_log import service as integration_log
from bpm_server.notifications.service import Message
from bpm_server.notifications.texts import render
from bpm_server.outbound import service as outbound
from integrations.base import CallResult
from integrations.connectors import HTTP_OPERATIONS, HttpConnector

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attempt:
    """What a job needs to make one attempt, read before the network call."""

    call_id: str
    instance_id: str
    system: str
    operation: str
    params: dict[str, Any]
    number: int


def is_configured(system: str) -> bool:
    """Whether this deployment has the system a service task names."""
    return outbound.registry().service(system) is not None


def target_of(call: ServiceCall) -> tuple[str, str]:
    """(system, operation) of a service call: ``<system>.<operation>``, or for the generic
    ``http/...`` operations the declared system whose base URL holds the call's URL
    ("http" when none does: the attempt then fails into an incident naming the URL)."""
    if call.operation in HTTP_OPERATIONS:
        url = str(call.params.get("url") or "")
        owner = next((name for name, adapter in outbound.registry().services.items()
                      if isinstance(adapter, HttpConnector) and adapter.owns(url)), "http")
        return owner, call.operation
    system, _, operation = call.operation.partition(".")
    return system, operation


def is_skipped(call: ServiceCall) -> bool:
    """Only calls to the built-in ERP of a deployment without one are skipped (answered at
    once); a call to any other system goes out, and the upload made sure it is declared."""
    system, _ = target_of(call)
    return system in SKIPPABLE and not is_configured(system)


SKIPPABLE = {"erp"}


def skipped_response(system: str) -> dict[str, Any]:
    """What a service task of a system this deployment does not have gets as its answer."""
    return {"status": "skipped", "reason": f"no {system} is configured in this deployment"}


def apply_step(session: Session, rt: Deployment, instance: ProcessInstance, *, started: list[ServiceCall],
               skipped: list[ServiceCall], now: datetime) -> None:
    """The outbound side of one step (called by the runtime): a call row and a first
    attempt for every service task the step started; a settled row and a log line for
    each one skipped (the runtime already answered those in the engine)."""
    skipped_ids = {c.engine_task_id for c in skipped}
    for pending in [*started, *skipped]:
        system, operation = target_of(pending)
        params = {**pending.params, "process_instance_id": instance.id, "account_id": instance.account_id}
        call = OutboundCall(id=new_id(), process_instance_id=instance.id, engine_task_id=pending.engine_task_id,
                            element_id=pending.element_id, system=system, operation=operation, params=params,
                            state="pending", attempts=0, max_attempts=rt.config.outbound_max_attempts,
                            next_attempt_at=now, created_at=now, updated_at=now)
        session.add(call)
        if pending.engine_task_id in skipped_ids:
            call.state, call.completed_at, call.next_attempt_at = "skipped", now, None
            call.response = skipped_response(system)
            integration_log.record(session, direction="outbound", system=system, endpoint=pending.operation,
                                   operation=operation, status="not_configured", outcome="skipped",
                                   duration_ms=0.0, payload=params, error=None, reference=call.id,
                                   instance_id=instance.id, now=now)
        else:
            outbound.schedule_attempt(session, what="service_call", ref_id=call.id, attempt=1, due=now,
                                      instance_id=instance.id, now=now)


@dataclass(frozen=True)
class Answered:
    """A call that succeeded: the runtime hands its answer to the waiting service task."""

    process_instance_id: str
    engine_task_id: str
    response: Any


def begin_attempt(session: Session, call_id: str, number: int) -> Attempt | None:
    """The attempt to make, or None when it is stale (already made, or the call is settled)."""
    call = session.get(OutboundCall, call_id)
    if call is None or call.state != "pending" or call.attempts != number - 1:
        return None
    return Attempt(call.id, call.process_instance_id, call.system, call.operation, dict(call.params), number)


def send(attempt: Attempt, now: datetime) -> CallResult:
    adapter = outbound.registry().service(attempt.system)
    if adapter is None:
        return CallResult(ok=False, endpoint=f"{attempt.system}.{attempt.operation}", status="not_configured",
                          duration_ms=0.0, request=attempt.params,
                          error=f"no {attempt.system} is configured in this deployment any more")
    return adapter.call(attempt.operation, attempt.params, idempotency_key=attempt.call_id, now=now)


def record_attempt(session: Session, rt: Deployment, attempt: Attempt, result: CallResult,
                   now: datetime) -> tuple[str, Answered | None]:
    """Count the attempt once and log it; then retry later, open an incident, or (on
    success) return the answer for the runtime to move the process on with."""
    claimed = rows_changed(session, update(OutboundCall).where(
        OutboundCall.id == attempt.call_id, OutboundCall.state == "pending",
        OutboundCall.attempts == attempt.number - 1).values(attempts=attempt.number, updated_at=now))
    if not claimed:
        return "attempt already recorded", None
    integration_log.record(session, direction="outbound", system=attempt.system, endpoint=result.endpoint,
                           operation=attempt.operation, status=result.status, outcome="ok" if result.ok else "failed",
                           duration_ms=result.duration_ms, payload=result.request, error=result.error,
                           reference=attempt.call_id, instance_id=attempt.instance_id, now=now)
    # The compare-and-set above just matched this row, so it exists.
    call = session.get_one(OutboundCall, attempt.call_id, populate_existing=True)
    if result.ok:
        call.state, call.response, call.completed_at = "succeeded", result.response, now
        call.next_attempt_at, call.last_error = None, None
        return "succeeded", Answered(call.process_instance_id, call.engine_task_id, result.response)
    call.last_error = result.error
    if attempt.number < call.max_attempts:
        call.next_attempt_at = now + outbound.backoff(rt, attempt.number)
        outbound.schedule_attempt(session, what="service_call", ref_id=call.id, attempt=attempt.number + 1,
                                  due=call.next_attempt_at, instance_id=call.process_instance_id, now=now)
        return f"attempt {attempt.number} failed ({result.error}); next at {call.next_attempt_at.isoformat()}", None
    call.state, call.incident_at, call.next_attempt_at = "incident", now, None
    _raise_incident(session, rt, call, now)
    return f"attempt {attempt.number} failed ({result.error}); incident opened", None


def _raise_incident(session: Session, rt: Deployment, call: OutboundCall, now: datetime) -> None:
    """Tell the people who can act: admins, and the account's owner."""
    log.warning("incident: %s.%s of instance %s failed %d times: %s", call.system, call.operation,
                call.process_instance_id, call.attempts, call.last_error)
    audit(session, actor="system", action="incident.open", object_type="outbound_call", object_id=call.id, now=now,
          process_instance_id=call.process_instance_id, element_id=call.element_id, error=call.last_error)
    instance = session.get(ProcessInstance, call.process_instance_id)
    account = session.get(Account, instance.account_id) if instance else None
    people = [u for u in session.scalars(select(User).where(User.active)) if u.has_role("admin")
              or (account is not None and u.username == account.owner)]
    account_id = instance.account_id if instance else ""
    params = {"variant": "call", "system": call.system, "operation": call.operation,
              "account": account.name if account else account_id, "instance": call.process_instance_id,
              "element": call.element_id, "attempts": call.attempts, "error": call.last_error, "call_id": call.id}
    message = Message("incident", *render("incident", params), params=params)  # worded per recipient
    for person in people:
        rt.notifier.notify(session, person, message, now)


def retry_incident(session: Session, rt: Deployment, call_id: str, *, actor: str, now: datetime) -> OutboundCall:
    call = session.get(OutboundCall, call_id)
    if call is None or call.incident_at is None:
        raise NotFound(f"incident {call_id!r} does not exist", code="unknown_incident")
    claimed = rows_changed(session, update(OutboundCall)
                           .where(OutboundCall.id == call_id, OutboundCall.state == "incident")
                           .values(state="pending", max_attempts=OutboundCall.attempts
                                   + rt.config.outbound_max_attempts, next_attempt_at=now, retried_by=actor,
                                   updated_at=now))
    if not claimed:
        raise Conflict(f"incident {call_id} is not open (the call is {call.state})", code="incident_not_open")
    session.refresh(call)
    outbound.schedule_attempt(session, what="service_call", ref_id=call.id, attempt=call.attempts + 1, due=now,
                              instance_id=call.process_instance_id, now=now)
    audit(session, actor=actor, action="incident.retry", object_type="outbound_call", object_id=call.id, now=now,
          process_instance_id=call.process_instance_id)
    session.flush()
    return call


def withdraw(session: Session, instance_id: str, now: datetime) -> int:
    """The instance was cancelled: its calls still pending or in incident are not made."""
    return rows_changed(session, update(OutboundCall).where(
        OutboundCall.process_instance_id == instance_id, OutboundCall.state.in_(("pending", "incident")))
        .values(state="cancelled", next_attempt_at=None, updated_at=now))


def answered_calls(session: Session, instance_id: str) -> list[OutboundCall]:
    """Calls that succeeded; the runtime gives a suspended instance their answers on resume."""
    return list(session.scalars(select(OutboundCall).where(OutboundCall.process_instance_id == instance_id,
                                                           OutboundCall.state == "succeeded")))


def incidents(session: Session, *, open_only: bool = True, process_instance_id: str | None = None, page: int = 1,
              per_page: int = 50) -> tuple[list[OutboundCall], int]:
    query = select(OutboundCall).where(OutboundCall.incident_at.is_not(None))
    if open_only:
        query = query.where(OutboundCall.state == "incident")
    if process_instance_id:
        query = query.where(OutboundCall.process_instance_id == process_instance_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(OutboundCall.incident_at.desc(), OutboundCall.id)
                           .limit(per_page).offset((page - 1) * per_page)).all()
    return list(rows), total


def calls_of(session: Session, instance_id: str) -> list[OutboundCall]:
    return list(session.scalars(select(OutboundCall).where(OutboundCall.process_instance_id == instance_id)
                                .order_by(OutboundCall.created_at, OutboundCall.id)))
