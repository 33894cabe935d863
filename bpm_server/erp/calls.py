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

from bpm_server.audit.service import record as audit
from bpm_server.database import new_id, rows_changed
from bpm_server.engine.adapter import Run
from bpm_server.erp.models import OutboundCall
from bpm_server.errors import Conflict, NotFound
from bpm_server.extensions import Runtime
from bpm_server.instances.models import ProcessInstance
from bpm_server.integration_log import service as integration_log
from bpm_server.outbound import service as outbound
from integrations.base import CallResult

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


def sync_calls(session: Session, rt: Runtime, instance: ProcessInstance, run: Run, now: datetime) -> None:
    """Give every service task now waiting in ``run`` its call row and first attempt.

    A system this deployment does not have is skipped at once: the task
    completes with ``{"status": "skipped"}`` and the diagram decides what then.
    """
    while True:
        waiting = run.pending_service_calls()
        if not waiting:  # most steps: no query (this runs on every step of every instance)
            return
        known = set(session.scalars(select(OutboundCall.engine_task_id)
                                    .where(OutboundCall.process_instance_id == instance.id)))
        new = [c for c in waiting if c.engine_task_id not in known]
        if not new:
            return
        skipped = False
        for pending in new:
            system, _, operation = pending.operation.partition(".")
            params = {**pending.params, "process_instance_id": instance.id, "account_id": instance.account_id}
            call = OutboundCall(id=new_id(), process_instance_id=instance.id, engine_task_id=pending.engine_task_id,
                                element_id=pending.element_id, system=system, operation=operation, params=params,
                                state="pending", attempts=0, max_attempts=rt.config.outbound_max_attempts,
                                next_attempt_at=now, created_at=now, updated_at=now)
            session.add(call)
            if outbound.registry().service(system) is None:
                call.state, call.completed_at, call.next_attempt_at = "skipped", now, None
                call.response = {"status": "skipped", "reason": f"no {system} is configured in this deployment"}
                integration_log.record(session, direction="outbound", system=system, endpoint=pending.operation,
                                       operation=operation, status="not_configured", outcome="skipped",
                                       duration_ms=0.0, payload=params, error=None, reference=call.id,
                                       instance_id=instance.id, now=now)
                run.complete_service_call(pending.engine_task_id, call.response)
                skipped = True
            else:
                outbound.schedule_attempt(session, what="service_call", ref_id=call.id, attempt=1, due=now,
                                          instance_id=instance.id, now=now)
        session.flush()
        if not skipped:
            return


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


def record_attempt(session: Session, rt: Runtime, attempt: Attempt, result: CallResult, now: datetime) -> str:
    """Count the attempt once, log it, and move the process on, retry later, or open an incident."""
    from bpm_server.instances import service as instances

    claimed = rows_changed(session, update(OutboundCall).where(
        OutboundCall.id == attempt.call_id, OutboundCall.state == "pending",
        OutboundCall.attempts == attempt.number - 1).values(attempts=attempt.number, updated_at=now))
    if not claimed:
        return "attempt already recorded"
    integration_log.record(session, direction="outbound", system=attempt.system, endpoint=result.endpoint,
                           operation=attempt.operation, status=result.status, outcome="ok" if result.ok else "failed",
                           duration_ms=result.duration_ms, payload=result.request, error=result.error,
                           reference=attempt.call_id, instance_id=attempt.instance_id, now=now)
    call = session.get_one(OutboundCall, attempt.call_id, populate_existing=True)
    if result.ok:
        instance = instances.lock_instance(session, call.process_instance_id)
        call.state, call.response, call.completed_at = "succeeded", result.response, now
        call.next_attempt_at, call.last_error = None, None
        moved = instances.complete_service_call(session, rt, instance, call.engine_task_id, result.response, now)
        return "succeeded" + ("" if moved else " (the instance no longer waits for it)")
    call.last_error = result.error
    if attempt.number < call.max_attempts:
        call.next_attempt_at = now + outbound.backoff(rt, attempt.number)
        outbound.schedule_attempt(session, what="service_call", ref_id=call.id, attempt=attempt.number + 1,
                                  due=call.next_attempt_at, instance_id=call.process_instance_id, now=now)
        return f"attempt {attempt.number} failed ({result.error}); next at {call.next_attempt_at.isoformat()}"
    call.state, call.incident_at, call.next_attempt_at = "incident", now, None
    _raise_incident(session, rt, call, now)
    return f"attempt {attempt.number} failed ({result.error}); incident opened"


def _raise_incident(session: Session, rt: Runtime, call: OutboundCall, now: datetime) -> None:
    """Tell the people who can act: admins, and the account's owner."""
    from bpm_server.accounts.models import Account
    from bpm_server.identity.models import User
    from bpm_server.notifications.service import Message

    log.warning("incident: %s.%s of instance %s failed %d times: %s", call.system, call.operation,
                call.process_instance_id, call.attempts, call.last_error)
    audit(session, actor="system", action="incident.open", object_type="outbound_call", object_id=call.id, now=now,
          process_instance_id=call.process_instance_id, element_id=call.element_id, error=call.last_error)
    instance = session.get(ProcessInstance, call.process_instance_id)
    account = session.get(Account, instance.account_id) if instance else None
    people = [u for u in session.scalars(select(User).where(User.active)) if u.has_role("admin")
              or (account is not None and u.username == account.owner)]
    message = Message("incident",
                      f"Incident: {call.system} {call.operation} failed ({instance.account_id if instance else ''})",
                      f"The call '{call.operation}' to {call.system} for process instance {call.process_instance_id} "
                      f"(stage {call.element_id}) failed {call.attempts} times; last error: {call.last_error}. "
                      f"An admin can retry it: POST /api/v1/incidents/{call.id}/retry")
    for person in people:
        rt.notifier.notify(session, person, message, now)


def retry_incident(session: Session, rt: Runtime, call_id: str, *, actor: str, now: datetime) -> OutboundCall:
    call = session.get(OutboundCall, call_id)
    if call is None or call.incident_at is None:
        raise NotFound(f"incident {call_id!r} does not exist", code="unknown_incident")
    claimed = rows_changed(session, update(OutboundCall).where(OutboundCall.id == call_id,
                                                               OutboundCall.state == "incident")
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
