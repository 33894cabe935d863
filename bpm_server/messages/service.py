"""Delivering BPMN messages to the instance waiting for them, matched by correlation.

Each waiting message catch has a subscription row with the correlation values
it expects (computed from the process data with the diagram's correlation
properties, e.g. ``{"contract_no": "HT-1"}``), kept in step with the engine
state. A message no instance waits for starts an instance of the model whose
message start event waits for it (the current version of that one model);
otherwise it is refused (404, ``no_waiting_instance``) and not buffered: the
sender retries it later. Each ``message_id`` is handled once. Signal catches
have subscription rows too, named ``signal:<name>`` with no correlation: a
signal thrown in one instance reaches every other instance waiting for it.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bpm_server.database import new_id
from bpm_server.engine.adapter import WaitingMessage, events
from bpm_server.errors import Conflict, Invalid, NotFound
from bpm_server.instances.models import ProcessInstance
from bpm_server.messages.models import MessageSubscription, ReceivedMessage
from bpm_server.modeling.models import ProcessModel, ProcessModelVersion
from bpm_server.modeling.service import compiled


@dataclass(frozen=True)
class Delivery:
    message_id: str
    process_instance_id: str
    element_id: str | None
    duplicate: bool


def correlation_key(correlation: Mapping[str, Any]) -> str:
    return json.dumps(dict(correlation), sort_keys=True, separators=(",", ":"), default=str)


def apply_step(session: Session, instance: ProcessInstance, waiting: list[WaitingMessage], now: datetime) -> None:
    """Make the subscription rows match what the instance waits for after a step (called
    by the runtime only when the waits changed; none once the instance ended)."""
    # Keyed by task and name: an event-based gateway waits for several messages at once.
    by_task = {(w.engine_task_id, w.name): w for w in waiting}
    rows = {(r.engine_task_id, r.message_name): r for r in session.scalars(
        select(MessageSubscription).where(MessageSubscription.process_instance_id == instance.id))}
    gone = [r.id for key, r in rows.items() if key not in by_task]
    if gone:
        session.execute(delete(MessageSubscription).where(MessageSubscription.id.in_(gone)))
    for key, message in by_task.items():
        if key not in rows:
            session.add(MessageSubscription(id=new_id(), process_instance_id=instance.id, engine_task_id=key[0],
                                            element_id=message.element_id, message_name=message.name,
                                            correlation_key=correlation_key(message.correlation),
                                            correlation=message.correlation, created_at=now))


def waiting_for(session: Session, instance_id: str) -> list[MessageSubscription]:
    return list(session.scalars(select(MessageSubscription)
                                .where(MessageSubscription.process_instance_id == instance_id)
                                .order_by(MessageSubscription.created_at, MessageSubscription.id)))


@dataclass(frozen=True)
class StartByMessage:
    """A message seen for the first time that no instance waits for, but a model's message
    start event does: the runtime starts an instance of that model's current version."""

    row: ReceivedMessage
    version: ProcessModelVersion
    element_id: str  # the message start event


@dataclass(frozen=True)
class Received:
    """A message seen for the first time, matched to the one instance waiting for it."""

    row: ReceivedMessage
    process_instance_id: str
    correlation_key: str


def receive(session: Session, *, name: str, correlation: Mapping[str, Any], payload: Mapping[str, Any],
            message_id: str, now: datetime) -> Received | StartByMessage | Delivery:
    """Record the message id (a repeat answers with the first delivery) and find the one
    instance waiting for it (or the model whose message start event waits for it); the
    runtime then locks that instance and delivers, or starts one."""
    if name.startswith(events.SIGNAL_PREFIX):
        raise Invalid(f"message name {name!r}: names starting with {events.SIGNAL_PREFIX!r} are reserved for "
                      f"BPMN signals, which instances throw to each other", code="reserved_message_name",
                      details={"name": [f"must not start with {events.SIGNAL_PREFIX!r}"]})
    digest = hashlib.sha256(json.dumps({"name": name, "correlation": correlation, "payload": payload},
                                       sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()
    received = ReceivedMessage(message_id=message_id, name=name, body_hash=digest, received_at=now)
    try:
        # First write of the request: the primary key decides between two
        # simultaneous deliveries of the same message id.
        session.add(received)
        session.flush()
    except IntegrityError:
        session.rollback()  # nothing else was written in this transaction
        return _repeat(session, message_id, digest)
    key = correlation_key(correlation)
    matches = _matches(session, name, key)
    if not matches:
        starts = _start_versions(session, name)
        if len(starts) > 1:
            raise Conflict(f"{len(starts)} process models start on message {name!r} "
                           f"({', '.join(v.process_model_id for v in starts)}); rename one of the messages",
                           code="ambiguous_message_start",
                           details={"process_model_ids": [v.process_model_id for v in starts]})
        if starts:
            element = next(t.element_id for t in events.start_triggers(compiled(starts[0]).spec)
                           if t.kind == "message" and t.name == name)
            return StartByMessage(received, starts[0], element)
        raise NotFound(f"no process instance is waiting for message {name!r} with correlation {key}",
                       code="no_waiting_instance", details={"name": name, "correlation": dict(correlation)})
    instance_ids = sorted({m.process_instance_id for m in matches})
    if len(instance_ids) > 1:
        raise Conflict(f"{len(instance_ids)} process instances wait for message {name!r} with correlation {key}; "
                       f"add correlation keys to tell them apart", code="ambiguous_correlation",
                       details={"process_instance_ids": instance_ids})
    return Received(received, instance_ids[0], key)


def still_waiting(session: Session, received: Received, name: str) -> str:
    """Under the instance lock, look again: a concurrent message may have just consumed the
    wait. Returns the catch event's element id."""
    current = [m for m in _matches(session, name, received.correlation_key)
               if m.process_instance_id == received.process_instance_id]
    if not current:
        raise NotFound(f"process instance {received.process_instance_id} no longer waits for message {name!r}",
                       code="no_waiting_instance")
    return current[0].element_id


def record_delivery(session: Session, received: Received, element_id: str) -> Delivery:
    received.row.process_instance_id, received.row.element_id = received.process_instance_id, element_id
    session.flush()
    return Delivery(received.row.message_id, received.process_instance_id, element_id, False)


def record_start(session: Session, start: StartByMessage, instance_id: str) -> Delivery:
    start.row.process_instance_id, start.row.element_id = instance_id, start.element_id
    session.flush()
    return Delivery(start.row.message_id, instance_id, start.element_id, False)


def signal_waiters(session: Session, name: str, exclude: str) -> list[str]:
    """The instances (other than ``exclude``, the thrower) with a catch waiting for signal ``name``."""
    return sorted({m.process_instance_id for m in _matches(session, events.SIGNAL_PREFIX + name, correlation_key({}))
                   if m.process_instance_id != exclude})


def _start_versions(session: Session, name: str) -> list[ProcessModelVersion]:
    """The current versions whose entry process has a message start event for ``name``."""
    versions = session.scalars(select(ProcessModelVersion).join(
        ProcessModel, ProcessModel.current_version_id == ProcessModelVersion.id)
        .order_by(ProcessModelVersion.process_model_id))
    return [v for v in versions if getattr(session.get(ProcessModel, v.process_model_id), "archived_at", None) is None
            and any(t.kind == "message" and t.name == name for t in events.start_triggers(compiled(v).spec))]


def _matches(session: Session, name: str, key: str) -> list[MessageSubscription]:
    return list(session.scalars(select(MessageSubscription).where(
        MessageSubscription.message_name == name, MessageSubscription.correlation_key == key)
        .execution_options(populate_existing=True)))


def _repeat(session: Session, message_id: str, digest: str) -> Delivery:
    first = session.get(ReceivedMessage, message_id)
    if first is None:
        raise Conflict(f"message {message_id!r} is being delivered; retry", code="message_in_progress")
    if first.body_hash != digest:
        raise Conflict(f"message_id {message_id!r} was already used for a different message",
                       code="message_id_reused", details={"message_id": ["reused with a different body"]})
    return Delivery(message_id, first.process_instance_id or "", first.element_id, True)
