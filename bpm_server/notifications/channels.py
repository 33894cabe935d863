"""Outbound notification channels: a delivery row per configured channel, sent by jobs with retries.

Which channels a person gets is the deployment's channels file (see
``integrations.registry``). Sending never happens inside the transaction that
raised the notification: a channel that is down delays its own deliveries and
nothing else.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bpm_server.database import new_id, rows_changed
from bpm_server.extensions import Deployment
from bpm_server.identity.models import User
from bpm_server.integration_log import service as integration_log
from bpm_server.notifications import texts
from bpm_server.notifications.models import NotificationDelivery
from bpm_server.outbound import service as outbound
from bpm_server.tasks.models import HumanTask
from integrations.base import CallResult, Notice

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryAttempt:
    delivery_id: str
    channel: str
    notice: dict[str, Any]
    number: int


def dispatch(session: Session, rt: Deployment, user: User, *, kind: str, title: str, body: str, task_id: str | None,
             notification_id: str | None, now: datetime, language: str | None = None) -> list[NotificationDelivery]:
    """Queue the notification on every channel routed to the user (none without a channels file)."""
    registry = outbound.registry()
    names = registry.channels_for(user.username, user.department_id)
    if not names:
        return []
    instance_id = None
    if task_id:
        task = session.get(HumanTask, task_id)
        instance_id = task.process_instance_id if task else None
    # The channels' own lines ("for …", the e-mail signature) in the recipient's language too.
    for_line, signature = texts.addressee(user.display_name, user.username, language)
    notice = {"kind": kind, "title": title, "body": body, "username": user.username,
              "display_name": user.display_name, "department": user.department_id, "task_id": task_id,
              "extra": {"addressee": for_line, "signature": signature}}
    made = []
    for name in names:
        delivery = NotificationDelivery(id=new_id(), notification_id=notification_id, channel=name,
                                        username=user.username, notice=notice, state="pending", attempts=0,
                                        max_attempts=rt.config.outbound_max_attempts, created_at=now)
        session.add(delivery)
        outbound.schedule_attempt(session, what="delivery", ref_id=delivery.id, attempt=1, due=now,
                                  instance_id=instance_id, now=now)
        made.append(delivery)
    return made


def begin_attempt(session: Session, delivery_id: str, number: int) -> DeliveryAttempt | None:
    delivery = session.get(NotificationDelivery, delivery_id)
    if delivery is None or delivery.state != "pending" or delivery.attempts != number - 1:
        return None
    return DeliveryAttempt(delivery.id, delivery.channel, dict(delivery.notice), number)


def send(attempt: DeliveryAttempt, now: datetime) -> tuple[str, CallResult]:
    channel = outbound.registry().channel(attempt.channel)
    if channel is None:
        return "unknown", CallResult(ok=False, endpoint=attempt.channel, status="not_configured", duration_ms=0.0,
                                     error=f"channel {attempt.channel!r} is no longer configured")
    names = ("kind", "title", "body", "username", "display_name", "department", "task_id")
    fields: dict[str, Any] = {k: attempt.notice.get(k) for k in names}
    fields["extra"] = attempt.notice.get("extra") or {}
    return channel.kind, channel.send(Notice(**fields), now=now)


def record_attempt(session: Session, rt: Deployment, attempt: DeliveryAttempt, kind: str, result: CallResult,
                   now: datetime) -> str:
    claimed = rows_changed(session, update(NotificationDelivery).where(
        NotificationDelivery.id == attempt.delivery_id, NotificationDelivery.state == "pending",
        NotificationDelivery.attempts == attempt.number - 1).values(attempts=attempt.number))
    if not claimed:
        return "attempt already recorded"
    integration_log.record(session, direction="outbound", system=kind, endpoint=result.endpoint,
                           operation=f"notify:{attempt.channel}", status=result.status,
                           outcome="ok" if result.ok else "failed", duration_ms=result.duration_ms,
                           payload=result.request, error=result.error, reference=attempt.delivery_id,
                           instance_id=None, now=now)
    # The compare-and-set above just matched this row, so it exists.
    delivery = session.get_one(NotificationDelivery, attempt.delivery_id, populate_existing=True)
    if result.ok:
        delivery.state, delivery.sent_at, delivery.last_error = "sent", now, None
        return "sent"
    delivery.last_error = result.error
    if attempt.number < delivery.max_attempts:
        due = now + outbound.backoff(rt, attempt.number)
        outbound.schedule_attempt(session, what="delivery", ref_id=delivery.id, attempt=attempt.number + 1, due=due,
                                  instance_id=None, now=now)
        return f"attempt {attempt.number} failed ({result.error}); next at {due.isoformat()}"
    delivery.state = "failed"
    log.warning("notification %s on channel %s given up after %d attempts: %s", delivery.id, delivery.channel,
                delivery.attempts, result.error)
    return f"given up after {attempt.number} attempts: {result.error}"


def deliveries(session: Session, *, state: str | None = None, username: str | None = None,
               limit: int = 200) -> list[NotificationDelivery]:
    query = select(NotificationDelivery)
    if state:
        query = query.where(NotificationDelivery.state == state)
    if username:
        query = query.where(NotificationDelivery.username == username)
    return list(session.scalars(query.order_by(NotificationDelivery.created_at, NotificationDelivery.id).limit(limit)))
