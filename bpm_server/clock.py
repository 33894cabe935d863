"""The one source of "now" for the whole deployment.

Everything time-dependent (task creation, SLA due dates, timers, webhook
replay windows) asks the clock in ``current_app.extensions["bpm"].clock``
instead of ``datetime.now()``, so a test or a demo can move time forward.
"""
from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Protocol

from flask import Flask, has_app_context
from sqlalchemy import Integer, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from bpm_server.database import Model, UTCDateTime, db, rows_changed


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("the clock needs a timezone-aware moment")
    return moment.astimezone(UTC)


class SettableClock:
    """A clock of one process that stands still until it is set; injected by tests."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, moment: datetime) -> None:
        moment = _aware(moment)
        with self._lock:
            self._now = moment


class ClockRow(Model):
    """The deployment's test clock: one row, so every web and worker process reads one time."""

    __tablename__ = "test_clock"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    moment: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True), nullable=False)


_ROW = 1


class DatabaseClock:
    """The test clock of ``BPM_TEST_CLOCK=1``, kept in the database.

    A clock in process memory made two gunicorn workers (and the rq workers)
    disagree; this one is read through the current session, so a move is seen
    by every process once the advance that made it commits, and inside that
    advance at once. It stands still until set; it starts at the real time of
    its first reading."""

    def __init__(self, app: Flask) -> None:
        self._app = app

    def now(self) -> datetime:
        if not has_app_context():
            with self._app.app_context():
                return self.now()
        with db.session.no_autoflush:  # reading the time must not flush half-built objects
            moment = db.session.scalar(select(ClockRow.moment).where(ClockRow.id == _ROW))
        return moment if moment is not None else self._start()

    def set(self, moment: datetime) -> None:
        moment = _aware(moment)
        if not has_app_context():
            with self._app.app_context():
                self.set(moment)
                db.session.commit()
            return
        with db.session.no_autoflush:
            if rows_changed(db.session, update(ClockRow).where(ClockRow.id == _ROW).values(moment=moment)):
                return
        self._start()
        rows_changed(db.session, update(ClockRow).where(ClockRow.id == _ROW).values(moment=moment))

    def _start(self) -> datetime:
        # On a connection of its own and committed at once: the first reading must hold
        # for every process even if the request that made it rolls back.
        started = datetime.now(UTC)
        try:
            with db.engine.begin() as connection:
                connection.execute(insert(ClockRow).values(id=_ROW, moment=started))
        except IntegrityError:  # another process started it first: its time holds
            pass
        with db.session.no_autoflush:
            stored = db.session.scalar(select(ClockRow.moment).where(ClockRow.id == _ROW))
        # None only where the session reads an older snapshot (SQLite): the row holds ``started``
        # or a time a racing process stored a moment earlier.
        return stored if stored is not None else started
