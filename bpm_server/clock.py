"""The one source of "now" for the whole deployment.

Everything time-dependent (task creation, SLA due dates, timers, webhook
replay windows) asks the clock in ``current_app.extensions["bpm"].clock``
instead of ``datetime.now()``, so a test or a demo can move time forward.
"""
from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class SettableClock:
    """A clock that stands still until it is set; used by tests and ``BPM_TEST_CLOCK``."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("the clock needs a timezone-aware moment")
        with self._lock:
            self._now = moment.astimezone(UTC)
