"""Extensions, created unbound and bound to an app in ``create_app``, plus the
per-deployment runtime (clock, job queue, script sandbox) services reach
through ``runtime()``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import current_app
from flask_migrate import Migrate
from sqlalchemy.orm import Session

from bpm_server.clock import Clock
from bpm_server.config import Config
from bpm_server.database import db

if TYPE_CHECKING:
    from bpm_server.engine.sandbox import RestrictedEvaluator
    from bpm_server.jobs.queue import JobQueue
    from bpm_server.notifications.service import Notifier
    from bpm_server.sla.calendar import BusinessCalendar

migrate = Migrate()


@dataclass
class Runtime:
    config: Config
    clock: Clock
    jobs: JobQueue
    evaluator: RestrictedEvaluator
    calendar: BusinessCalendar
    notifier: Notifier


def runtime() -> Runtime:
    return current_app.extensions["bpm"]


def db_session() -> Session:
    return db.session
