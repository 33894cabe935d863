"""Extensions, created unbound and bound to an app in ``create_app``, plus the
per-deployment objects (config, clock, job queue, script evaluator, business
calendar, notifier) that every layer reaches through ``deployment()``.

A foundation module: it imports no domain package. The notifier and the
evaluator are named here by the small interfaces the rest of the server uses;
the app factory plugs in the real ones.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from flask import current_app, g, has_app_context
from flask_migrate import Migrate
from sqlalchemy.orm import Session

from bpm_server.clock import Clock
from bpm_server.config import Config
from bpm_server.database import db
from bpm_server.jobs.queue import JobQueue
from bpm_server.sla.calendar import BusinessCalendar

migrate = Migrate()


class Notifier(Protocol):
    """Tells a person something (``bpm_server.notifications.service.InAppNotifier``)."""

    def notify(self, session: Session, user: Any, message: Any, now: datetime) -> None: ...


class ScriptEvaluator(Protocol):
    """Runs a diagram's expressions and scripts (``bpm_server.engine.sandbox.RestrictedEvaluator``)."""

    def evaluate(self, expression: str, context: Mapping[str, Any]) -> Any: ...

    def execute(self, script: str, context: Mapping[str, Any]) -> dict[str, Any]: ...


@dataclass
class Deployment:
    config: Config
    clock: Clock
    jobs: JobQueue
    evaluator: ScriptEvaluator
    loaded_calendar: BusinessCalendar
    notifier: Notifier
    # Brings ``loaded_calendar`` up to date with what other processes stored
    # (``bpm_server.sla.notices.refresh_if_changed``, plugged in by the app factory).
    calendar_probe: Callable[[Deployment], None] | None = None

    @property
    def calendar(self) -> BusinessCalendar:
        """The business calendar, checked against the stored holiday notices once per app context
        (a request, a job) at its first use: contexts that never read the calendar pay nothing, and
        one context computes all its deadlines on one calendar."""
        if self.calendar_probe is not None and has_app_context() and not g.get("_bpm_calendar_probed"):
            g._bpm_calendar_probed = True  # first: the probe itself reads the calendar
            self.calendar_probe(self)
        return self.loaded_calendar

    @calendar.setter
    def calendar(self, calendar: BusinessCalendar) -> None:
        self.loaded_calendar = calendar


def deployment() -> Deployment:
    return current_app.extensions["bpm"]


def db_session() -> Session:
    return db.session
