"""In-app notifications: the built-in channel of the notifier."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bpm_server.database import JsonType, Model, UTCDateTime


class Notification(Model):
    """In-app notifications per user (the notifier's built-in channel)."""

    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_user", "user_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"))
    kind: Mapped[str] = mapped_column(String(50))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    task_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    # What the text was made from (notifications.texts), so a page can say it in
    # the reader's language; empty for notifications written as plain text.
    params: Mapped[dict | None] = mapped_column(JsonType, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class NotificationDelivery(Model):
    """One notification to one outbound channel (e-mail, a robot, a webhook), sent by a job with retries."""

    __tablename__ = "notification_delivery"
    __table_args__ = (Index("ix_notification_delivery_state", "state", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    notification_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    channel: Mapped[str] = mapped_column(String(100))
    username: Mapped[str] = mapped_column(String(100))
    notice: Mapped[dict] = mapped_column(JsonType)  # what to say (kind, title, body, ...)
    state: Mapped[str] = mapped_column(String(20))  # pending, sent, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class NotificationPreference(Model):
    """The language a person's notifications are written in (Chinese when there is no row)."""

    __tablename__ = "notification_preference"

    user_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"), primary_key=True)
    locale: Mapped[str] = mapped_column(String(10))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
