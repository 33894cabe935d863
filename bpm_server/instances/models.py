"""A running (or finished) process instance and its serialized engine state."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bpm_server.accounts.models import Account
from bpm_server.database import JsonType, Model, UTCDateTime
from bpm_server.modeling.models import ProcessModelVersion

INSTANCE_STATES = ("running", "completed", "error", "cancelled")


class ProcessInstance(Model):
    __tablename__ = "process_instance"
    __table_args__ = (Index("ix_process_instance_account_state", "account_id", "state"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    process_model_id: Mapped[str] = mapped_column(ForeignKey("process_model.id"), index=True)
    version_id: Mapped[str] = mapped_column(ForeignKey("process_model_version.id"))
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"))
    state: Mapped[str] = mapped_column(String(20))
    engine_state: Mapped[str] = mapped_column(Text)  # SpiffWorkflow JSON without the spec
    data: Mapped[dict] = mapped_column(JsonType)  # process data after the latest step
    error: Mapped[dict | None] = mapped_column(JsonType, nullable=True)  # {element_id, message, line}
    steps_completed: Mapped[int] = mapped_column(Integer, default=0)  # numbers the history
    started_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Operations (bpm_server.runtime.operations): a suspended instance keeps its state
    # ("running") and holds its pending timers here until it is resumed.
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    suspended_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    held_timers: Mapped[list | None] = mapped_column(JsonType, nullable=True)
    cancelled_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    cancel_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Call activities into other models: process id -> the callee's version id, its
    # current version when the instance first called it (the same one on every reload).
    called_versions: Mapped[dict | None] = mapped_column(JsonType, nullable=True)
    # Optimistic lock: every change bumps it, and an UPDATE that finds another
    # writer got there first matches no row (StaleDataError -> 409). Together
    # with SELECT ... FOR UPDATE on PostgreSQL this is the per-instance lock.
    lock_version: Mapped[int] = mapped_column(Integer, nullable=False)

    version: Mapped[ProcessModelVersion] = relationship(lazy="joined")
    # Loaded with the instance lock (the account's tier picks each new stage's SLA).
    account: Mapped[Account] = relationship(lazy="select")

    __mapper_args__ = {"version_id_col": lock_version}  # noqa: RUF012 - read once by SQLAlchemy
