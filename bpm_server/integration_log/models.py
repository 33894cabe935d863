"""The integration log: every inbound and outbound call, inserted and never changed."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bpm_server.database import JsonType, Model, UTCDateTime


class IntegrationLogEntry(Model):
    __tablename__ = "integration_log"
    __table_args__ = (
        Index("ix_integration_log_at", "at"),
        Index("ix_integration_log_system", "system", "at"),
        Index("ix_integration_log_instance", "process_instance_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    direction: Mapped[str] = mapped_column(String(10))  # inbound, outbound
    system: Mapped[str] = mapped_column(String(50))  # erp, smtp, wecom, dingtalk, feishu, webhook
    endpoint: Mapped[str] = mapped_column(String(500))  # path or URL, credentials removed
    operation: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(50))  # HTTP status, timeout, ...
    outcome: Mapped[str] = mapped_column(String(20))  # ok, failed, rejected, duplicate, skipped
    duration_ms: Mapped[float] = mapped_column(Float)
    payload: Mapped[dict | list | str | None] = mapped_column(JsonType, nullable=True)  # redacted
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    reference: Mapped[str | None] = mapped_column(String(200), nullable=True)  # event id, message id, call id
    process_instance_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
