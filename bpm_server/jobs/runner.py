"""Running one job: resolve it by name, give it a session, own its transaction."""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from werkzeug.utils import import_string

from bpm_server.database import db

log = logging.getLogger(__name__)


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
