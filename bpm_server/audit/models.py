"""The audit trail of user operations (append-only)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from bpm_server.database import JsonType, Model, UTCDateTime


class AuditEvent(Model):
    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_at", "at"), Index("ix_audit_object", "object_type", "object_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(100))  # username, or "system"
    action: Mapped[str] = mapped_column(String(50))  # task.claim, task.complete, model.upload, ...
    object_type: Mapped[str] = mapped_column(String(50))
    object_id: Mapped[str] = mapped_column(String(200))
    details: Mapped[dict] = mapped_column(JsonType)
