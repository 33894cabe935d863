"""Running one job: resolve it by name, give it a session, own its transaction."""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from werkzeug.utils import import_string

from bpm_server.database import db

log = logging.getLogger(__name__)

_worker_app: Flask | None = None


def perform_in_app(app: Flask, job: str, *args: Any) -> Any:
    func = import_string(job)
    with app.app_context():
        try:
            result = func(*args)
            db.session.commit()
            return result
        except Exception:
            db.session.rollback()
            raise
        finally:
            db.session.remove()


def use_app(app: Flask) -> None:
    """Run rq jobs in this process on ``app`` (set by ``bpm-server worker``)."""
    global _worker_app
    _worker_app = app


def perform(job: str, *args: Any) -> Any:
    """The function rq calls; the worker process builds its app once from the environment."""
    global _worker_app
    if _worker_app is None:
        from bpm_server.app import create_app

        _worker_app = create_app()
    return perform_in_app(_worker_app, job, *args)
