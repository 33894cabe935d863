"""Extensions, created unbound and bound to an app in ``create_app``, plus the
per-deployment objects (config, clock, job queue, script evaluator, business
calendar, notifier) that every layer reaches through ``deployment()``.

A foundation module: it imports no domain package. The notifier and the
evaluator are named here by the small interfaces the rest of the server uses;
the app factory plugs in the real ones.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from flask import current_app
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
    calendar: BusinessCalendar
    notifier: Notifier


def deployment() -> Deployment:
    return current_app.extensions["bpm"]


def db_session() -> Session:
    return db.session
