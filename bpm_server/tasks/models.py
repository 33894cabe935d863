"""Human tasks as normalized rows, so the inbox never deserializes a workflow."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bpm_server.database import JsonType, Model, UTCDateTime
from bpm_server.identity.models import User

TASK_STATES = ("ready", "claimed", "completed", "cancelled")
OPEN_STATES = ("ready", "claimed")


class HumanTask(Model):
    __tablename__ = "human_task"
    __table_args__ = (
        # The two halves of the inbox query: my department's unclaimed work and
        # my own work, each already in due-date order.
        Index("ix_human_task_department_inbox", "department_id", "state", "due_at"),
        Index("ix_human_task_assignee_inbox", "assignee_id", "state", "due_at"),
        Index("ix_human_task_instance", "process_instance_id", "state"),
        Index("ix_human_task_account", "account_id", "state"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    process_instance_id: Mapped[str] = mapped_column(ForeignKey("process_instance.id"))
    engine_task_id: Mapped[str] = mapped_column(String(36))
    name: Mapped[str] = mapped_column(String(200))  # BPMN element id
    title: Mapped[str] = mapped_column(String(300))
    department_id: Mapped[str] = mapped_column(String(64))
    lane: Mapped[str | None] = mapped_column(String(200), nullable=True)
    form_name: Mapped[str | None] = mapped_column(String(300), nullable=True)
    instructions: Mapped[str | None] = mapped_column(String(4000), nullable=True)
    state: Mapped[str] = mapped_column(String(20))
    priority: Mapped[int] = mapped_column(Integer, default=0)  # raised by escalation rules
    assignee_id: Mapped[str | None] = mapped_column(ForeignKey("user_account.id"), nullable=True)
    account_id: Mapped[str] = mapped_column(String(100))
    process_model_id: Mapped[str] = mapped_column(String(100))
    data: Mapped[dict] = mapped_column(JsonType)  # process data when the task became ready
    submitted: Mapped[dict | None] = mapped_column(JsonType, nullable=True)  # what the completer entered
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    warn_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    history_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)  # order of completion in the instance
    completed_by_id: Mapped[str | None] = mapped_column(ForeignKey("user_account.id"), nullable=True)
    row_version: Mapped[int] = mapped_column(Integer, nullable=False)

    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id], lazy="joined")
    completed_by: Mapped[User | None] = relationship(foreign_keys=[completed_by_id], lazy="joined")

    # Not stored: the single-task view attaches the form's JSON Schema here.
    # (Typed for the checker only: SQLAlchemy would take an annotation for a column.)
    if TYPE_CHECKING:
        form: dict[str, Any] | None = None
    else:
        form = None

    # Two claims or completions racing on the same row: the second UPDATE
    # finds the version moved on and becomes a 409.
    __mapper_args__ = {"version_id_col": row_version}  # noqa: RUF012 - read once by SQLAlchemy
