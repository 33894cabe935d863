"""BPMN messages: what instances wait for, and what was delivered (once per message id)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bpm_server.database import JsonType, Model, UTCDateTime


class MessageSubscription(Model):
    """An instance waiting for a message, with the correlation it expects.

    ``correlation_key`` is the correlation as canonical JSON, so matching is
    one indexed equality on both SQLite and PostgreSQL. Rows are kept in step
    with the engine state in the same transaction.
    """

    __tablename__ = "message_subscription"
    __table_args__ = (
        UniqueConstraint("process_instance_id", "engine_task_id", "message_name", name="uq_message_subscription_wait"),
        Index("ix_message_subscription_match", "message_name", "correlation_key"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    process_instance_id: Mapped[str] = mapped_column(String(36))
    engine_task_id: Mapped[str] = mapped_column(String(36))
    element_id: Mapped[str] = mapped_column(String(200))
    message_name: Mapped[str] = mapped_column(String(200))
    correlation_key: Mapped[str] = mapped_column(String(1000))
    correlation: Mapped[dict] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReceivedMessage(Model):
    """Each message id once: a repeat gets the first delivery's answer and changes nothing."""

    __tablename__ = "received_message"

    message_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    body_hash: Mapped[str] = mapped_column(String(64))
    process_instance_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    element_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
