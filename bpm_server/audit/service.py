"""Recording and reading the audit trail. Entries are only ever inserted."""
from __future__ import annotations

import csv
import io
import json
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
           per_page: int = 50, paged: bool = True) -> tuple[list[AuditEvent], int]:
    """Matching events, newest first: one page, or (``paged`` False, for an export) all of them."""
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
    ordered = query.order_by(AuditEvent.id.desc())
    if paged:
        ordered = ordered.limit(per_page).offset((page - 1) * per_page)
    return list(session.scalars(ordered)), total


CSV_COLUMNS = ("id", "at", "actor", "action", "object_type", "object_id", "details")


def to_csv(rows: list[AuditEvent]) -> str:
    """The events as CSV for a spreadsheet: details as JSON; a cell that would start a formula is quoted."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        values = [row.id, row.at.isoformat(), row.actor, row.action, row.object_type, row.object_id,
                  json.dumps(row.details, ensure_ascii=False, sort_keys=True, default=str)]
        writer.writerow([_cell(str(v)) for v in values])
    return out.getvalue()


def _cell(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
