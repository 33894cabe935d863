"""Running one job: resolve it by name, give it a session, own its transaction."""
from __future__ import annotations

import logging
import time
from typing import Any

from flask import Flask
from werkzeug.utils import import_string

from bpm_server.database import db
from bpm_server.logs import log_job

log = logging.getLogger(__name__)


def perform_in_app(app: Flask, job: str, *args: Any) -> Any:
    """Run ``job`` (a dotted name) in an app context and commit; one log line whatever the outcome."""
    started = time.perf_counter()
    outcome = "failed"
    try:
        func = import_string(job)
        with app.app_context():
            try:
                result = func(*args)
                db.session.commit()
            except Exception:
                db.session.rollback()
                raise
            finally:
                db.session.remove()
        outcome = "ok" if result is None else f"ok: {result!r}"
        return result
    except Exception as exc:
        outcome = f"failed: {type(exc).__name__}"
        raise
    finally:
        log_job(job, args, outcome, time.perf_counter() - started)
