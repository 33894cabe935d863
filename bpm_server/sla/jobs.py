"""Timer jobs: thin, by id."""
from __future__ import annotations

from bpm_server.extensions import db_session, runtime
from bpm_server.sla import service


def fire_timer(timer_id: str) -> str:
    """Act on one due timer (idempotent: a timer fired twice acts once)."""
    rt = runtime()
    return service.fire(db_session(), rt, timer_id, rt.clock.now())
