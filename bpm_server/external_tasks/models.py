"""External tasks: service tasks that workers outside the server fetch, lock and complete."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bpm_server.database import JsonType, Model, UTCDateTime

STATES = ("open", "completed", "incident", "cancelled")


class ExternalTask(Model):
    """One external task of an instance, from the moment its service task starts.

    ``open`` while it waits for a worker: fetchable when it is not locked (or its
    lock has expired) and ``available_at`` has passed (a failure's retry timeout);
    ``completed`` once a worker completed it, ``incident`` after a failure with no
    retries left, ``cancelled`` when the instance stopped waiting for it.
    """

    __tablename__ = "external_task"
    __table_args__ = (
        UniqueConstraint("process_instance_id", "engine_task_id"),
        Index("ix_external_task_fetch", "state", "topic", "available_at"),
        Index("ix_external_task_instance", "process_instance_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    process_instance_id: Mapped[str] = mapped_column(String(36))
    process_model_id: Mapped[str] = mapped_column(String(100))
    engine_task_id: Mapped[str] = mapped_column(String(36))
    element_id: Mapped[str] = mapped_column(String(200))  # the BPMN service task
    topic: Mapped[str] = mapped_column(String(200))
    variables: Mapped[dict] = mapped_column(JsonType)  # the process data when the task started
    state: Mapped[str] = mapped_column(String(20))
    worker_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retries: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None until a worker reports a failure
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    incident_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
