"""Recording and reading the audit trail. Entries are only ever inserted."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bpm_server.audit.models import AuditEvent


def record(session: Session, *, actor: str, action: str, object_type: str, object_id: str, now: datetime,
           **details: Any) -> None:
    session.add(AuditEvent(at=now, actor=actor, action=action, object_type=object_type, object_id=object_id,
                           details=details))


def search(session: Session, *, actor: str | None = None, action: str | None = None, object_id: str | None = None,
           start: datetime | None = None, end: datetime | None = None, page: int = 1,
           per_page: int = 50) -> tuple[list[AuditEvent], int]:
    query = select(AuditEvent)
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if action:
        query = query.where(AuditEvent.action == action)
    if object_id:
        query = query.where(AuditEvent.object_id == object_id)
    if start:
        query = query.where(AuditEvent.at >= start)
    if end:
        query = query.where(AuditEvent.at < end)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(AuditEvent.id.desc()).limit(per_page).offset((page - 1) * per_page)).all()
    return list(rows), total
