"""The ERP's contract-signed deliveries and the calls service tasks make to external systems."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bpm_server.database import JsonType, Model, UTCDateTime


class ContractSignedEvent(Model):
    """One ERP event id, once: the unique key is what makes two simultaneous
    deliveries start one instance (the loser's INSERT fails and it answers
    with the winner's instance)."""

    __tablename__ = "erp_event"

    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    body_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 of the canonical JSON body
    contract_no: Mapped[str] = mapped_column(String(64), index=True)
    account_id: Mapped[str] = mapped_column(String(100))
    process_instance_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


CALL_STATES = ("pending", "succeeded", "incident", "skipped")


class OutboundCall(Model):
    """A service task's call to an external system, with its attempts.

    ``pending`` while attempts remain (the next one is a durable timer row),
    ``incident`` after the last one failed (an admin can retry), ``succeeded``
    once the system answered and the task moved on; ``skipped`` when the
    deployment has no such system configured.
    """

    __tablename__ = "outbound_call"
    __table_args__ = (
        UniqueConstraint("process_instance_id", "engine_task_id"),
        Index("ix_outbound_call_state", "state", "incident_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # also the idempotency key sent
    process_instance_id: Mapped[str] = mapped_column(String(36), index=True)
    engine_task_id: Mapped[str] = mapped_column(String(36))
    element_id: Mapped[str] = mapped_column(String(200))  # the BPMN service task
    system: Mapped[str] = mapped_column(String(50))
    operation: Mapped[str] = mapped_column(String(100))
    params: Mapped[dict] = mapped_column(JsonType)
    state: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    response: Mapped[dict | None] = mapped_column(JsonType, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    incident_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # last time it became one
    retried_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
