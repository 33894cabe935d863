"""The notifier: one interface every escalation and reminder goes through.

The in-app channel (a list per user, read through the API) is always on;
outbound channels (e-mail, group-chat robots) plug in behind the same
``Notifier`` interface.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bpm_server.database import new_id
from bpm_server.errors import Invalid, NotFound
from bpm_server.extensions import deployment
from bpm_server.identity import departments
from bpm_server.identity.models import User
from bpm_server.notifications import texts
from bpm_server.notifications.channels import dispatch
from bpm_server.notifications.models import Notification, NotificationPreference
from bpm_server.tasks import service as tasks
from bpm_server.tasks.models import HumanTask


@dataclass(frozen=True)
class Message:
    kind: str  # e.g. "sla_warning", "sla_breach", "escalation"
    title: str
    body: str
    task_id: str | None = None
    params: dict | None = None  # what ``texts.render`` made title and body from


class Notifier(Protocol):
    def notify(self, session: Session, user: User, message: Message, now: datetime) -> None: ...


class InAppNotifier:
    """The in-app list (always), plus a delivery job per outbound channel the
    deployment routes to the person (e-mail, WeCom, DingTalk, Feishu, webhook)."""

    def notify(self, session: Session, user: User, message: Message, now: datetime) -> None:
        # Written in the recipient's language, whoever's request or job raised it.
        language = language_of(session, user)
        title, body = message.title, message.body
        if message.params is not None and texts.knows(message.kind, message.params):
            title, body = texts.render(message.kind, message.params, language,
                                       model_texts_of(session, message.task_id, language),
                                       # read only for a text that names a department
                                       departments.names(session, language) if "department_id" in message.params
                                       else None)
        notification = Notification(id=new_id(), user_id=user.id, kind=message.kind, title=title[:300],
                                    body=body, task_id=message.task_id, params=message.params, created_at=now)
        session.add(notification)
        dispatch(session, deployment(), user, kind=message.kind, title=title, body=body, task_id=message.task_id,
                 notification_id=notification.id, now=now, language=language)


def model_texts_of(session: Session, task_id: str | None, language: str) -> Mapping[str, str]:
    """The translations into ``language`` of the model whose stage a notification is about."""
    task = session.get(HumanTask, task_id) if task_id else None
    return tasks.catalog_of(session, task, language) if task is not None else {}


def language_of(session: Session, user: User) -> str:
    """The language of the person's notifications: Chinese unless they chose English."""
    known = session.info.get(_LANGUAGES, {}).get(user.id)
    if known is not None:
        return known
    chosen = session.get(NotificationPreference, user.id)
    return texts.language_of(chosen.locale if chosen else None)


#: session.info key: user id -> language, read at once for a batch of notices (``remember_languages``).
_LANGUAGES = "bpm_notification_languages"


def remember_languages(session: Session, user_ids: set[str]) -> None:
    """Read the languages of these people with one query, for a batch of notices
    (a person without a preference costs a query per notice otherwise). Kept
    until ``forget_languages``; ``set_language`` keeps it true."""
    chosen = dict(session.execute(select(NotificationPreference.user_id, NotificationPreference.locale)
                                  .where(NotificationPreference.user_id.in_(user_ids))).all())
    known = session.info.setdefault(_LANGUAGES, {})
    for user_id in user_ids:
        known[user_id] = texts.language_of(chosen.get(user_id))


def forget_languages(session: Session) -> None:
    session.info.pop(_LANGUAGES, None)


def set_language(session: Session, user: User, locale: str, now: datetime) -> str:
    if locale not in texts.LANGUAGES:
        raise Invalid(f"locale must be one of {', '.join(texts.LANGUAGES)}, got {locale!r}", code="invalid_locale",
                      details={"locale": [f"one of {', '.join(texts.LANGUAGES)}"]})
    session.info.get(_LANGUAGES, {}).pop(user.id, None)
    chosen = session.get(NotificationPreference, user.id)
    if chosen is None:
        session.add(NotificationPreference(user_id=user.id, locale=locale, updated_at=now))
    else:
        chosen.locale, chosen.updated_at = locale, now
    session.flush()
    return locale


def notifications_for(session: Session, user: User, *, unread_only: bool, page: int,
                      per_page: int) -> tuple[list[Notification], int]:
    query = select(Notification).where(Notification.user_id == user.id)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Notification.created_at.desc(), Notification.id)
                           .limit(per_page).offset((page - 1) * per_page)).all()
    return list(rows), total


def unread_count(session: Session, user: User) -> int:
    return session.scalar(select(func.count()).select_from(Notification).where(
        Notification.user_id == user.id, Notification.read_at.is_(None))) or 0


def mark_read(session: Session, user: User, notification_id: str | None, now: datetime) -> int:
    """Mark one of the user's notifications read (or all of them, with None). Returns how many changed.
    Someone else's notification is unknown (404), not forbidden: ids reveal nothing."""
    query = select(Notification).where(Notification.user_id == user.id, Notification.read_at.is_(None))
    if notification_id is not None:
        found = session.get(Notification, notification_id)
        if found is None or found.user_id != user.id:
            raise NotFound(f"notification {notification_id!r} does not exist", code="unknown_notification")
        query = query.where(Notification.id == notification_id)
    rows = list(session.scalars(query))
    for row in rows:
        row.read_at = now
    return len(rows)
