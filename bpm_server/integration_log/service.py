"""Writing and reading the integration log. Payloads are redacted before they are stored."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bpm_server.integration_log.models import IntegrationLogEntry

SECRET_KEYS = {"sign", "authorization", "api_key", "apikey", "key"}
SECRET_SUFFIXES = ("secret", "password", "token", "signature")
MAX_PAYLOAD_CHARS = 4000


def redact(value: Any) -> Any:
    """Secrets out, size bounded: keys that look like credentials keep their name, lose their value."""
    if isinstance(value, dict):
        return {k: "***" if _is_secret(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value[:100]]
    if isinstance(value, str) and len(value) > MAX_PAYLOAD_CHARS:
        return value[:MAX_PAYLOAD_CHARS] + "…"
    return value


def _is_secret(key: str) -> bool:
    key = key.lower()
    return key in SECRET_KEYS or key.endswith(SECRET_SUFFIXES)


def _bounded(value: Any) -> Any:
    value = redact(value)
    text = json.dumps(value, default=str)
    return value if len(text) <= MAX_PAYLOAD_CHARS else {"truncated": text[:MAX_PAYLOAD_CHARS]}


def _row(*, direction: str, system: str, endpoint: str, operation: str, status: str, outcome: str,
         duration_ms: float, payload: Any, error: str | None, reference: str | None, instance_id: str | None,
         now: datetime) -> dict[str, Any]:
    return dict(at=now, direction=direction, system=system, endpoint=endpoint[:500], operation=operation[:100],
                status=str(status)[:50], outcome=outcome, duration_ms=round(duration_ms, 3),
                payload=_bounded(payload), error=(error or None) and error[:4000],
                reference=reference and reference[:200], process_instance_id=instance_id)


def record(session: Session, **fields: Any) -> None:
    """Log in the caller's transaction (it commits or rolls back with the work it describes)."""
    session.add(IntegrationLogEntry(**_row(**fields)))


def record_apart(engine: Engine, **fields: Any) -> None:
    """Log in a transaction of its own: for rejected requests, whose own transaction is rolled back."""
    with engine.begin() as connection:
        connection.execute(insert(IntegrationLogEntry), [_row(**fields)])


def search(session: Session, *, direction: str | None = None, system: str | None = None,
           outcome: str | None = None, process_instance_id: str | None = None, reference: str | None = None,
           start: datetime | None = None, end: datetime | None = None, page: int = 1,
           per_page: int = 50) -> tuple[list[IntegrationLogEntry], int]:
    query = select(IntegrationLogEntry)
    for column, value in ((IntegrationLogEntry.direction, direction), (IntegrationLogEntry.system, system),
                          (IntegrationLogEntry.outcome, outcome), (IntegrationLogEntry.reference, reference),
                          (IntegrationLogEntry.process_instance_id, process_instance_id)):
        if value:
            query = query.where(column == value)
    if start:
        query = query.where(IntegrationLogEntry.at >= start)
    if end:
        query = query.where(IntegrationLogEntry.at < end)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(IntegrationLogEntry.id.desc()).limit(per_page)
                           .offset((page - 1) * per_page)).all()
    return list(rows), total
